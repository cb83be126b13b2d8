"""The Dockerfile and the sidecar configs shipped with it, read for their essentials (no Docker
engine here); the image's default config is also started for real against the test broker."""
import re
import uuid

import pytest

import stack
from deploy_files import (CONFIGS, dockerignore_excludes, exec_form, key_paths, load_config, parse_dockerfile,
                          readme_config_schema)
from paths import REPO

DOCKERFILE = parse_dockerfile(REPO / "Dockerfile")
VERSION_TAG = re.compile(r"^[^:@]+:(?=[^:]*\d+\.\d+)[^:]+$")  # repository:tag, the tag names a version


def _external_bases():
    stage_names = {s.name for s in DOCKERFILE.stages}
    return [s.base for s in DOCKERFILE.stages if s.base not in stage_names]


def test_every_base_image_is_pinned_by_a_version_tag():
    bases = _external_bases()
    assert bases, "no FROM found"
    for image in bases:
        assert "$" not in image, "unresolved ARG in FROM %s" % image
        assert VERSION_TAG.match(image) and not image.endswith(":latest"), "%s is not pinned by a version tag" % image


def test_it_builds_with_maven_on_java_17_and_runs_on_a_java_17_jre():
    assert DOCKERFILE.stages[0].base.startswith("maven:3.9") and "temurin-17" in DOCKERFILE.stages[0].base
    assert DOCKERFILE.args["RUNTIME_IMAGE"].startswith("eclipse-temurin:17") and "-jre" in DOCKERFILE.args["RUNTIME_IMAGE"]
    runs = " ".join(arg for _, arg in DOCKERFILE.stage("build").instructions)
    assert "-DskipTests package" in runs and "sidecar/target/saeguard.jar" in runs


def test_the_cpu_image_is_the_default_and_cuda_is_a_build_argument():
    assert DOCKERFILE.args["VARIANT"] == "cpu"
    assert DOCKERFILE.final.base == "runtime-cpu", "the final stage must be FROM runtime-${VARIANT}"
    assert {"runtime-cpu", "runtime-cuda"} <= {s.name for s in DOCKERFILE.stages}
    cuda_env = " ".join(arg for ins, arg in DOCKERFILE.stage("runtime-cuda").instructions if ins == "ENV")
    assert "PYTORCH_LIBRARY_PATH=" in cuda_env and "PYTORCH_FLAVOR=" in cuda_env
    assert "PYTORCH_VERSION=" not in cuda_env, "a PYTORCH_VERSION env makes DJL download natives at run time"


def test_the_final_image_runs_as_a_non_root_user():
    users = [arg for ins, arg in DOCKERFILE.final.instructions if ins == "USER"]
    assert users, "final stage has no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "USER %s: use a numeric non-root uid (Kubernetes runAsNonRoot checks it)" % uid


def test_the_exposed_port_is_the_configured_http_port_and_the_healthcheck_asks_for_liveness():
    exposed = [int(p) for ins, arg in DOCKERFILE.final.instructions if ins == "EXPOSE" for p in arg.split()]
    port = load_config("image default")["http"]["port"]
    assert exposed == [port]
    checks = [arg for ins, arg in DOCKERFILE.final.instructions if ins == "HEALTHCHECK"]
    assert len(checks) == 1
    command = " ".join(exec_form(checks[0][checks[0].index("CMD") + 3:].strip()))
    assert "/health/live" in command and "/%d" % port in command


def test_the_default_command_reads_the_config_the_image_carries():
    cmd = exec_form(next(arg for ins, arg in DOCKERFILE.final.instructions if ins == "CMD"))
    entry = exec_form(next(arg for ins, arg in DOCKERFILE.final.instructions if ins == "ENTRYPOINT"))
    assert entry[-2:] == ["-jar", "/opt/saeguard/saeguard.jar"] and cmd[:2] == ["run", "--config"]
    copies = [arg.split() for ins, arg in DOCKERFILE.final.instructions if ins == "COPY" and not arg.startswith("--from")]
    assert ["deploy/config/saeguard.yaml", cmd[2]] in copies


def test_what_the_dockerfile_copies_exists_and_is_not_dockerignored():
    assert not dockerignore_excludes("pom.xml") and not dockerignore_excludes("sidecar/src/main/java")
    assert dockerignore_excludes("sidecar/target/saeguard.jar") and dockerignore_excludes(".git/HEAD")
    for _, arg in DOCKERFILE.all("COPY"):
        if arg.startswith("--from") or arg.startswith(". "):
            continue
        for source in arg.split()[:-1]:
            matches = list(REPO.glob(source))
            assert matches, "COPY source %s does not exist" % source
            for m in matches:
                assert not dockerignore_excludes(str(m.relative_to(REPO))), "%s is excluded by .dockerignore" % m


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shipped_configs_use_only_keys_the_readme_documents_and_the_same_http_port(name):
    config = load_config(name)
    unknown = key_paths(config) - readme_config_schema()
    assert not unknown, "%s: keys the sidecar would reject: %s" % (CONFIGS[name], sorted(unknown))
    assert config["http"]["port"] == load_config("image default")["http"]["port"]
    if name == "image default":
        # No tokens in the image's own file, so it binds 127.0.0.1 only (the sidecar refuses another address
        # without tokens); a deployment mounts a file with tokens that listens on all interfaces.
        assert "host" not in config["http"] and not config["http"].get("auth", {}).get("tokens"), \
            "the image's default config must not serve other hosts without tokens"
    else:
        assert config["http"]["host"] == "0.0.0.0", "a container must listen on all interfaces"
        assert config["http"]["auth"]["tokens"], "%s listens on all interfaces, so it needs tokens" % CONFIGS[name]


@pytest.mark.sidecar
def test_the_images_default_config_starts_the_real_sidecar(world, tmp_path):
    # Given the image's config, with the environment overrides a container would get
    port = stack.free_port()
    env = {"SAEGUARD_KAFKA_BOOTSTRAP": world.bootstrap, "SAEGUARD_KAFKA_GROUP": "image-default-" + uuid.uuid4().hex[:6],
           "SAEGUARD_HTTP_PORT": str(port), "SAEGUARD_HTTP_HOST": "127.0.0.1", "SAEGUARD_ENGINE_DEVICE": "cpu"}
    sidecar = stack.JavaProcess(["run", "--config", str(CONFIGS["image default"])], tmp_path / "default.log", tmp_path, env=env)
    # When it starts, Then it becomes live and ready
    try:
        stack.wait_http_ready(sidecar, port, 120)
        assert stack.http_status("http://127.0.0.1:%d/health/live" % port) == 200
    finally:
        sidecar.stop()
