"""The Dockerfile and the sidecar configs shipped with it, read for their essentials (no Docker
engine here); the image's default config is also started for real against the test broker."""
import re
import uuid

import pytest
import yaml

import paths
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
    assert "-DskipTests package" in runs and "sidecar/target/saeguard.jar" in runs and "sidecar/target/saeguard-server.jar" in runs
    assert "--strict-checksums" in runs, "Maven must fail on an artifact whose checksum differs from Maven Central's"


def test_the_build_selects_the_natives_of_the_target_architecture():
    # Maven runs on the build machine (FROM --platform=$BUILDPLATFORM) and picks the target's natives by profile
    text = (REPO / "Dockerfile").read_text()
    assert "FROM --platform=$BUILDPLATFORM ${MAVEN_IMAGE} AS build" in text
    build = DOCKERFILE.stage("build").instructions
    assert ("ARG", "TARGETARCH") in build
    run = next(arg for ins, arg in build if ins == "RUN" and "mvn " in arg)
    assert 'arm64) platform="-Plinux-aarch64"' in run and 'amd64) platform=""' in run and "$platform" in run
    pom = (REPO / "pom.xml").read_text()
    assert "<id>linux-aarch64</id>" in pom and "<natives.platform>linux-aarch64</natives.platform>" in pom


def test_the_cpu_image_is_the_default_and_cuda_is_a_build_argument():
    assert DOCKERFILE.args["VARIANT"] == "cpu"
    assert DOCKERFILE.stage("runtime-base").base == "runtime-cpu", "runtime-base must be FROM runtime-${VARIANT}"
    assert {"runtime-cpu", "runtime-cuda"} <= {s.name for s in DOCKERFILE.stages}
    cuda_env = " ".join(arg for ins, arg in DOCKERFILE.stage("runtime-cuda").instructions if ins == "ENV")
    assert "PYTORCH_LIBRARY_PATH=" in cuda_env and "PYTORCH_FLAVOR=" in cuda_env
    assert "PYTORCH_VERSION=" not in cuda_env, "a PYTORCH_VERSION env makes DJL download natives at run time"


def test_the_cuda_natives_are_checked_against_the_pinned_manifest_and_the_jni_comes_from_the_jar():
    stage = DOCKERFILE.stage("cuda-natives").instructions
    args = dict(arg.partition("=")[::2] for ins, arg in stage if ins == "ARG" and "=" in arg)
    manifest = REPO / "deploy" / "cuda" / ("pytorch-%s-%s-linux-x86_64.sha256" % (args["PYTORCH_VERSION"], args["CUDA_FLAVOR"]))
    assert manifest.is_file(), "no manifest for the default CUDA flavor"
    header = {k: v for k, _, v in (line[2:].partition(": ") for line in manifest.read_text().splitlines() if line.startswith("# "))}
    assert (header["version"], header["flavor"]) == (args["PYTORCH_VERSION"], args["CUDA_FLAVOR"])
    pom = (REPO / "pom.xml").read_text()
    assert "<pytorch.native.version>%s</pytorch.native.version>" % header["version"] in pom
    assert "<pytorch.jni.version>%s-%s</pytorch.jni.version>" % (header["version"], header["djl"]) in pom
    run = " ".join(arg for ins, arg in stage if ins == "RUN")
    assert "djl-natives.sh fetch" in run and "djl-natives.sh jni" in run and "publish.djl.ai" not in run
    assert "curl" in run and "unzip" in run, "the script needs curl and unzip in the stage"
    runtime_env = " ".join(arg for ins, arg in DOCKERFILE.stage("runtime-cuda").instructions if ins in ("ENV", "ARG"))
    assert "CUDA_FLAVOR=%s" % args["CUDA_FLAVOR"] in runtime_env


def test_the_images_run_as_a_non_root_user():
    for target in ("runtime", "demo"):
        users = [arg for ins, arg in DOCKERFILE.image(target) if ins == "USER"]
        assert users, "%s has no USER" % target
        uid = users[-1].split(":")[0]
        assert uid.isdigit() and int(uid) != 0, "USER %s: use a numeric non-root uid (Kubernetes runAsNonRoot checks it)" % uid


def test_the_exposed_port_is_the_configured_http_port_and_the_healthcheck_asks_for_liveness():
    image = DOCKERFILE.image("runtime")
    exposed = [int(p) for ins, arg in image if ins == "EXPOSE" for p in arg.split()]
    port = load_config("image default")["http"]["port"]
    assert exposed == [port]
    checks = [arg for ins, arg in image if ins == "HEALTHCHECK"]
    assert len(checks) == 1
    command = " ".join(exec_form(checks[0][checks[0].index("CMD") + 3:].strip()))
    assert "/health/live" in command and "/%d" % port in command


def test_the_default_target_runs_the_production_jar_and_the_demo_target_the_full_one():
    assert DOCKERFILE.final.name == "runtime", "docker build without --target builds the last stage: the production image"
    for target, jar in (("runtime", "saeguard-server.jar"), ("demo", "saeguard.jar")):
        image = DOCKERFILE.image(target)
        entry = exec_form(next(arg for ins, arg in reversed(image) if ins == "ENTRYPOINT"))
        assert entry[-2:] == ["-jar", "/opt/saeguard/" + jar], target
        jars = [arg for ins, arg in image if ins == "COPY" and arg.startswith("--from=build")]
        assert jars == ["--from=build /%s /opt/saeguard/%s" % (jar, jar)], target


def test_the_default_command_reads_the_config_the_image_carries():
    image = DOCKERFILE.image("runtime")
    cmd = exec_form(next(arg for ins, arg in reversed(image) if ins == "CMD"))
    assert cmd[:2] == ["run", "--config"]
    copies = [arg.split() for ins, arg in image if ins == "COPY" and not arg.startswith("--from")]
    assert ["deploy/config/saeguard.yaml", cmd[2]] in copies


def test_compose_builds_the_demo_target_because_its_config_uses_the_built_in_model():
    compose = yaml.safe_load((REPO / "deploy" / "compose" / "compose.yaml").read_text())["services"]
    assert load_config("compose")["prompts"]["model"] == "builtin:all-minilm-l6-v2"
    for name in ("saeguard", "topics"):
        assert compose[name]["build"]["target"] == "demo", name
    assert {s.name for s in DOCKERFILE.stages} >= {"demo"}


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
    # (the default image runs the production jar, saeguard-server.jar)
    sidecar = stack.JavaProcess(["run", "--config", str(CONFIGS["image default"])], tmp_path / "default.log", tmp_path, env=env,
                                jar=paths.server_jar())
    # When it starts, Then it becomes live and ready
    try:
        stack.wait_http_ready(sidecar, port, 120)
        assert stack.http_status("http://127.0.0.1:%d/health/live" % port) == 200
    finally:
        sidecar.stop()
