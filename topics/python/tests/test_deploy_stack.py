"""The deploy files that make a stack run as shipped (issue 22, item 3): the saeguard-vllm image, the
in-pod overlay that uses it, the Compose producer and MiniLM catalog, Grafana dashboards as
ConfigMaps and the topics Job. Checked offline: no Docker engine or cluster here."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

import k8s_schema
from deploy_files import load_config, parse_dockerfile
from paths import REPO
from saeguard_attach import ResidPost
from saeguard_attach.vllm_settings import VllmSettings

K8S = REPO / "deploy" / "kubernetes"
COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE = yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
TOPICS = {t["role"]: t["name"] for t in yaml.safe_load((REPO / "topics" / "topics.yaml").read_text())["topics"]}
KUBECTL = shutil.which("kubectl")


def _binds(service):
    out = {}
    for v in SERVICES[service].get("volumes", []):
        source, target = v.split(":")[:2]
        if source.startswith("."):
            out[target] = (COMPOSE_DIR / source).resolve()
    return out


def _kustomize(overlay):
    out = subprocess.run([KUBECTL, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


# ---------------------------------------------------------------------------------------------- compose
def _compose_errors(doc):
    schema = json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text())
    doc = {k: v for k, v in doc.items() if k != "name"}  # newer than the schema (schemas/README.md)
    return sorted(e.message for e in jsonschema.Draft201909Validator(schema).iter_errors(doc))


def test_the_compose_file_follows_the_compose_specification_schema():
    assert _compose_errors(COMPOSE) == []


def test_the_compose_schema_check_catches_a_misspelt_service_key():
    bad = dict(COMPOSE, services=dict(SERVICES, producer=dict(SERVICES["producer"], depend_on={})))
    assert any("depend_on" in e for e in _compose_errors(bad))


def test_compose_saeguard_runs_the_mounted_minilm_catalog_and_needs_nothing_in_models():
    # The config only names files of the mounted catalog, so an empty models/ cannot stop it
    config = load_config("compose")
    binds = _binds("saeguard")
    catalog = binds["/etc/saeguard/minilm"]
    assert catalog == REPO / "detectors" / "catalog" / "minilm"
    sae, = config["saes"]
    assert sae["path"].startswith("/etc/saeguard/minilm/") and "/models" not in json.dumps(config)
    assert (catalog / Path(sae["path"]).name / "cfg.json").is_file()
    catalog_config = yaml.safe_load((catalog / "saeguard.yaml").read_text())
    assert [Path(d).name for d in config["detectors"]] == catalog_config["detectors"]
    assert all((catalog / Path(d).name).is_file() for d in config["detectors"])
    assert config["prompts"] == catalog_config["prompts"]
    assert (sae["model"], sae["hook"]) == (catalog_config["saes"][0]["model"], catalog_config["saes"][0]["hook"])


def _producer_events(tmp_path):
    s = SERVICES["producer"]
    binds = _binds("producer")
    script = binds[s["entrypoint"][1]]
    env = dict(os.environ, PROMPTS=str(binds["/demo/prompts.tsv"]), ROUNDS="1", DRY_RUN="1", PROMPT_INTERVAL_S="0")
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return [line.split("\t", 1) for line in out.stdout.splitlines()]


def test_the_compose_producer_replays_every_demo_text_as_a_valid_prompt_event(tmp_path):
    # Given the producer's script and the demo texts it mounts
    schema = json.loads((REPO / "topics" / "schemas" / "prompt.schema.json").read_text())
    texts = (REPO / "sidecar/src/main/resources/io/saeguard/sidecar/demo/prompts.tsv").read_text().splitlines()

    # When it prints one round of events instead of producing them
    events = _producer_events(tmp_path)

    # Then every text is one schema-valid event keyed by its request id, routed to the catalog's model
    assert len(events) == len([t for t in texts if "\t" in t and t.split("\t", 1)[1]])
    model = load_config("compose")["saes"][0]["model"]
    for key, value in events:
        event = json.loads(value)
        jsonschema.validate(event, schema)
        assert event["request_id"] == key and event["model"] == model
    by_text = {json.loads(v)["text"] for _, v in events}
    assert "There *__\b\bis* no such thing as a civil engineer." in by_text  # backspaces survive, escaped


def test_the_compose_producer_writes_to_the_prompts_topic_after_the_topics_exist():
    s = SERVICES["producer"]
    script = _binds("producer")[s["entrypoint"][1]].read_text()
    assert '"${TOPIC:=%s}"' % TOPICS["prompts"] in script
    assert s["environment"]["BOOTSTRAP"] == SERVICES["saeguard"]["environment"]["SAEGUARD_KAFKA_BOOTSTRAP"]
    assert s["image"] == SERVICES["kafka"]["image"]  # its console producer
    assert s["depends_on"]["topics"]["condition"] == "service_completed_successfully"


# ---------------------------------------------------------------------------------------------- vLLM image
VLLM_DOCKERFILE = parse_dockerfile(REPO / "deploy" / "vllm" / "Dockerfile")
VLLM_CONTEXT = REPO / "topics" / "python"


def test_the_vllm_image_is_a_pinned_vllm_image_with_the_client_installed_and_its_entry_point_checked():
    stage, = VLLM_DOCKERFILE.stages
    image = VLLM_DOCKERFILE.args["VLLM_IMAGE"]
    assert image.startswith("vllm/vllm-openai:v") and any(c.isdigit() for c in image.split(":")[1])
    runs = " ".join(arg for ins, arg in stage.instructions if ins == "RUN")
    assert "pip install --no-cache-dir /opt/saeguard/attach" in runs
    assert "saeguard_attach.vllm_plugin:register" in runs and "vllm.general_plugins" in runs
    copies = [arg for ins, arg in stage.instructions if ins == "COPY"]
    assert copies == [". /opt/saeguard/attach"]
    assert not any(ins == "ENTRYPOINT" for ins, _ in stage.instructions), "keep vLLM's own entrypoint"


def test_the_vllm_images_context_is_the_client_package_without_its_tests():
    assert (VLLM_CONTEXT / "pyproject.toml").is_file() and (VLLM_CONTEXT / "saeguard_attach" / "vllm_plugin.py").is_file()
    ignore = (REPO / "deploy" / "vllm" / "Dockerfile.dockerignore").read_text().split()
    assert "tests/" in ignore


# ---------------------------------------------------------------------------------------------- kubernetes
def _llm_container():
    deployment = yaml.safe_load((K8S / "overlays" / "sidecar-in-pod" / "llm-server.yaml").read_text())
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    return containers["llm"], containers["saeguard"]


def test_the_in_pod_llm_server_runs_the_saeguard_vllm_image_with_the_plugin_configured_for_the_sae():
    # Given the in-pod server and the SAE the sidecar next to it loads
    llm, saeguard = _llm_container()
    sae, = load_config("kubernetes")["saes"]
    env = {e["name"]: e["value"] for e in llm["env"] if "value" in e}

    # When the plugin reads that environment
    settings = VllmSettings.from_env(env)

    # Then it is the saeguard-vllm image in eager mode, publishing what the SAE reads to the sidecar's Kafka
    assert llm["image"].startswith("ghcr.io/saeguard/saeguard-vllm:") and "--enforce-eager" in llm["args"]
    assert (settings.model, settings.hook) == (sae["model"], sae["hook"])
    assert settings.layer == ResidPost.parse(sae["hook"]).layer
    saeguard_env = {e["name"]: e.get("value") for e in saeguard["env"]}
    assert settings.bootstrap == saeguard_env["SAEGUARD_KAFKA_BOOTSTRAP"]


def test_the_dashboard_copies_match_the_dashboards():
    for original in sorted((REPO / "dashboards" / "grafana").glob("*.json")):
        copy = K8S / "base" / "dashboards" / original.name
        assert copy.is_file() and copy.read_bytes() == original.read_bytes(), \
            "cp %s %s" % (original.relative_to(REPO), copy.relative_to(REPO))


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize) not installed")
@pytest.mark.parametrize("overlay", ["standalone", "sidecar-in-pod"])
def test_kustomize_renders_each_dashboard_as_a_labelled_configmap(overlay):
    docs = _kustomize(overlay)
    dashboards = {d["metadata"]["name"]: d for d in docs
                  if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"}
    rendered = {name: json.loads(v) for d in dashboards.values() for name, v in d["data"].items()}
    originals = {p.name: json.loads(p.read_text()) for p in (REPO / "dashboards" / "grafana").glob("*.json")}
    assert rendered == originals
    for d in dashboards.values():
        assert k8s_schema.validate(d) == []


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize) not installed")
@pytest.mark.parametrize("overlay", ["standalone", "sidecar-in-pod", "standalone-gpu"])
def test_kustomize_renders_a_topics_job_with_the_saeguard_image_and_the_workloads_bootstrap(overlay):
    docs = _kustomize(overlay)
    job, = [d for d in docs if d["kind"] == "Job"]
    assert k8s_schema.validate(job) == []
    c, = job["spec"]["template"]["spec"]["containers"]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    saeguard = next(x for x in deployment["spec"]["template"]["spec"]["containers"] if x["name"] == "saeguard")
    bootstrap = next(e["value"] for e in saeguard["env"] if e["name"] == "SAEGUARD_KAFKA_BOOTSTRAP")
    assert c["args"] == ["topics", "create", "--bootstrap", bootstrap]
    assert c["image"] == saeguard["image"]
    assert c["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
