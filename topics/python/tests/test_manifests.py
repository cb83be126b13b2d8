"""Kubernetes (kustomize) and Compose files: parsed, schema-checked offline, cross-checked.

Core kinds are validated against the official client's API models (k8s_schema.py); the custom
resources (PodMonitor, PrometheusRule, ScaledObject) field by field. When kubectl is on the PATH
the overlays are also built with its kustomize and the rendered objects checked the same way.
"""
import base64
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import k8s_schema
from deploy_files import load_config, parse_dockerfile
from paths import REPO

K8S = REPO / "deploy" / "kubernetes"
COMPOSE_DIR = REPO / "deploy" / "compose"
OVERLAYS = ["standalone", "standalone-gpu", "sidecar-in-pod"]
CONFIG = load_config("kubernetes")
TOPICS = {t["role"]: t for t in yaml.safe_load((REPO / "topics" / "topics.yaml").read_text())["topics"]}
HTTP_PORT = CONFIG["http"]["port"]
UID = int(next(arg for ins, arg in parse_dockerfile(REPO / "Dockerfile").image("runtime") if ins == "USER").split(":")[0])


def _docs(path: Path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _manifests():
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or path.name == "saeguard.yaml" or "detectors" in path.parts \
                or "components" in path.parts:  # components hold partial patches, checked on their own
            continue
        for doc in _docs(path):
            yield path, doc


def _by_kind(kind):
    return [(p, d) for p, d in _manifests() if d["kind"] == kind]


def _saeguard_containers():
    for path, d in _by_kind("Deployment"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            if c["name"] == "saeguard":
                yield path, d, c


def test_every_manifest_parses_and_names_its_kind():
    manifests = list(_manifests())
    assert len(manifests) >= 10
    for path, d in manifests:
        assert d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name"), path


@pytest.mark.parametrize("path,doc", [(p, d) for p, d in _manifests() if k8s_schema.known(d)],
                         ids=lambda x: x.name if isinstance(x, Path) else "")
def test_core_objects_match_the_kubernetes_api_schema(path, doc):
    assert k8s_schema.validate(doc) == []


def test_the_schema_check_itself_catches_a_misspelt_probe_and_a_missing_selector():
    (_, d, _), *_ = list(_saeguard_containers())
    broken = yaml.safe_load(yaml.safe_dump(d))
    c = broken["spec"]["template"]["spec"]["containers"][0]
    c["readinesProbe"] = c.pop("readinessProbe")
    del broken["spec"]["selector"]
    errors = k8s_schema.validate(broken)
    assert any("readinesProbe: unknown field" in e for e in errors)
    assert any("spec.selector: required" in e for e in errors)


def test_every_kustomization_refers_to_files_that_exist():
    for kfile in K8S.rglob("kustomization.yaml"):
        k = yaml.safe_load(kfile.read_text())
        refs = list(k.get("resources", [])) + list(k.get("components", []))
        refs += [p["path"] for p in k.get("patches", []) if "path" in p]
        refs += [f for g in k.get("configMapGenerator", []) for f in g.get("files", [])]
        assert refs, kfile
        for ref in refs:
            assert (kfile.parent / ref).exists(), "%s: %s does not exist" % (kfile, ref)


def test_saeguard_containers_probe_health_on_the_configured_port():
    containers = list(_saeguard_containers())
    assert {p.parent.name for p, _, _ in containers} == {"standalone", "sidecar-in-pod"}
    for path, _, c in containers:
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["saeguard-http"] == HTTP_PORT, path
        assert c["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "saeguard-http"}, path
        assert c["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "saeguard-http"}, path
        assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], path


def test_saeguard_containers_read_the_generated_config_and_detectors():
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    generated = {g["name"]: [Path(f).name for f in g["files"]] for g in base["configMapGenerator"]}
    claims = {d["metadata"]["name"] for _, d in _by_kind("PersistentVolumeClaim")}
    for path, d, c in _saeguard_containers():
        volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
        config_path = Path(c["args"][c["args"].index("--config") + 1])
        config_volume = mounts[str(config_path.parent)]
        assert config_path.name in generated[config_volume["configMap"]["name"]], path
        for detector in CONFIG["detectors"]:
            volume = mounts[str(Path(detector).parent)]
            assert Path(detector).name in generated[volume["configMap"]["name"]], "%s: %s not mounted" % (path, detector)
        sae_mount = next(v for m, v in mounts.items() if CONFIG["saes"][0]["path"].startswith(m + "/"))
        assert sae_mount["persistentVolumeClaim"]["claimName"] in claims
        assert any(m == "/var/cache/saeguard" for m in mounts), "the DJL cache needs a writable volume"
        assert all(m["readOnly"] for m in c["volumeMounts"] if m["mountPath"].startswith("/etc/saeguard"))


def test_saeguard_runs_as_the_images_non_root_user_on_a_read_only_root():
    for path, d, c in _saeguard_containers():
        pod = d["spec"]["template"]["spec"].get("securityContext", {})
        sc = {**pod, **c.get("securityContext", {})}
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == UID, path
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, path
        assert sc["capabilities"]["drop"] == ["ALL"], path


def test_detector_copies_match_the_catalog():
    copies = sorted((K8S / "base" / "detectors").glob("*.yaml"))
    assert [p.name for p in copies] == sorted(p.name for p in (REPO / "detectors" / "catalog").glob("*.yaml"))
    for p in copies:
        assert p.read_bytes() == (REPO / "detectors" / "catalog" / p.name).read_bytes(), \
            "%s differs from detectors/catalog: copy it again" % p


def test_the_prometheus_rule_carries_exactly_the_dashboards_rules():
    import importlib.util
    spec = importlib.util.spec_from_file_location("sync_prometheus_rule", K8S / "sync_prometheus_rule.py")
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    source = REPO / "dashboards" / "prometheus" / "saeguard-rules.yml"
    rule = yaml.safe_load((K8S / "base" / "prometheusrule.yaml").read_text())
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == yaml.safe_load(source.read_text())["groups"], \
        "run: python3 deploy/kubernetes/sync_prometheus_rule.py"
    assert (K8S / "base" / "prometheusrule.yaml").read_text() == sync.render(source.read_text())
    assert all(r.get("expr") for g in rule["spec"]["groups"] for r in g["rules"])


def test_the_pod_monitor_scrapes_every_saeguard_pod_as_job_saeguard():
    (_, pm), = _by_kind("PodMonitor")
    assert pm["apiVersion"] == "monitoring.coreos.com/v1"
    selector = pm["spec"]["selector"]["matchLabels"]
    endpoint, = pm["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["port"] == "saeguard-http"
    assert {"action": "replace", "targetLabel": "job", "replacement": "saeguard"} in endpoint["relabelings"]
    prometheus = yaml.safe_load((REPO / "dashboards" / "prometheus" / "prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["job_name"] == "saeguard"
    for path, d, _ in _saeguard_containers():
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), "%s: pods not selected by the PodMonitor" % path


def test_keda_scales_the_standalone_deployment_on_the_activations_lag():
    (_, so), = _by_kind("ScaledObject")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert so["spec"]["scaleTargetRef"]["name"] == "saeguard"
    assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"] <= TOPICS["activations"]["partitions"]
    trigger, = so["spec"]["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert meta["topic"] == TOPICS["activations"]["name"] and meta["consumerGroup"] == CONFIG["kafka"]["group"]
    assert int(meta["lagThreshold"]) > 0 and all(isinstance(v, str) for v in meta.values())
    (_, d, c), = [x for x in _saeguard_containers() if x[0].parent.name == "standalone"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert meta["bootstrapServers"] == env["SAEGUARD_KAFKA_BOOTSTRAP"]


def test_the_gpu_component_asks_for_a_gpu_and_the_cuda_image():
    k = yaml.safe_load((K8S / "components" / "gpu" / "kustomization.yaml").read_text())
    assert k["kind"] == "Component" and k["images"][0]["newTag"].endswith("-cuda")
    patch = yaml.safe_load((K8S / "components" / "gpu" / "saeguard-gpu.yaml").read_text())
    c, = patch["spec"]["template"]["spec"]["containers"]
    assert c["name"] == "saeguard" and c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "SAEGUARD_ENGINE_DEVICE", "value": "gpu"} in c["env"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_builds_with_kustomize_into_valid_objects(overlay):
    out = subprocess.run(["kubectl", "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    for d in docs:
        if k8s_schema.known(d):
            assert k8s_schema.validate(d) == [], d["metadata"]["name"]
    configmaps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    used = {v["configMap"]["name"] for v in deployment["spec"]["template"]["spec"]["volumes"] if "configMap" in v}
    assert used and used <= configmaps, "volumes name ConfigMaps kustomize did not generate: %s" % (used - configmaps)
    c = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "saeguard")
    assert ("nvidia.com/gpu" in c["resources"]["limits"]) == overlay.endswith("-gpu")
    assert c["image"].endswith("-cuda") == overlay.endswith("-gpu")


# ---------------------------------------------------------------------------------------------- compose
COMPOSE = yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def _binds(service):
    for v in SERVICES[service].get("volumes", []):
        source, target = v.split(":")[:2]
        if source.startswith("."):
            yield (COMPOSE_DIR / source).resolve(), target


def test_compose_has_kafka_saeguard_prometheus_and_grafana_with_pinned_images():
    assert {"kafka", "saeguard", "prometheus", "grafana"} <= set(SERVICES)
    assert SERVICES["kafka"]["image"] == "apache/kafka:4.1.1"
    for name, s in SERVICES.items():
        if "build" not in s:
            image = s["image"]
            assert ":" in image and not image.endswith(":latest"), "%s: %s is not pinned" % (name, image)


def test_compose_builds_saeguard_from_the_repository_dockerfile():
    for name in ("saeguard", "topics"):
        build = SERVICES[name]["build"]
        context = (COMPOSE_DIR / build["context"]).resolve()
        assert context == REPO and (context / build["dockerfile"]).is_file()
    assert SERVICES["topics"]["command"][:2] == ["topics", "create"]
    assert SERVICES["saeguard"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_every_compose_bind_mount_exists_in_the_repository():
    for service in SERVICES:
        for source, target in _binds(service):
            assert source.exists(), "%s: %s (for %s) does not exist" % (service, source, target)


def test_compose_wiring_matches_ports_names_and_paths():
    config = load_config("compose")
    port = config["http"]["port"]
    assert "%d:%d" % (port, port) in SERVICES["saeguard"]["ports"]
    # saeguard reaches Kafka on the internal listener the broker advertises
    env = SERVICES["kafka"]["environment"]
    bootstrap = SERVICES["saeguard"]["environment"]["SAEGUARD_KAFKA_BOOTSTRAP"]
    assert bootstrap == config["kafka"]["bootstrap"] and "INTERNAL://%s" % bootstrap in env["KAFKA_ADVERTISED_LISTENERS"]
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16, "CLUSTER_ID must be a base64 UUID"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith("%s@kafka:" % env["KAFKA_NODE_ID"])
    # Prometheus scrapes the saeguard service and loads the rules from where it mounts them
    binds = dict((t, s) for s, t in _binds("prometheus"))
    prom = yaml.safe_load(binds["/etc/prometheus/prometheus.yml"].read_text())
    assert prom["scrape_configs"][0]["static_configs"][0]["targets"] == ["saeguard:%d" % port]
    for rule_file in prom["rule_files"]:
        assert "/etc/prometheus/" + rule_file in binds
    # Grafana: provisioning mounted, dashboards where the provider looks, datasource pointing at Prometheus
    gbinds = dict((t, s) for s, t in _binds("grafana"))
    provisioning = gbinds["/etc/grafana/provisioning"]
    provider = yaml.safe_load((provisioning / "dashboards" / "saeguard.yaml").read_text())["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/saeguard"
    assert list(gbinds[provider["options"]["path"]].glob("*.json")), "no dashboard JSON mounted"
    datasource = yaml.safe_load((provisioning / "datasources" / "saeguard.yaml").read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090" and "9090:9090" in SERVICES["prometheus"]["ports"]
    # The detectors the config names are the catalog files mounted into the container
    dbinds = dict((t, s) for s, t in _binds("saeguard"))
    for detector in config["detectors"]:
        assert (dbinds[str(Path(detector).parent)] / Path(detector).name).is_file(), detector
