# syntax=docker/dockerfile:1.7
#
# saeguard sidecar images: a fat jar on a JRE, run as a non-root user.
#
#   docker build -t saeguard:0.1.0 .                                  # production, CPU: saeguard-server.jar
#   docker build --build-arg VARIANT=cuda -t saeguard:0.1.0-cuda .    # production, CUDA (linux/amd64 only)
#   docker build --target demo -t saeguard:0.1.0-demo .               # saeguard.jar: demo, built-in MiniLM, catalog
#   docker buildx build --platform linux/amd64,linux/arm64 -t saeguard:0.1.0 .   # CPU, both architectures
#
# The production image runs saeguard-server.jar: the product without the demo's assets (the built-in MiniLM
# prompt model, 91 MB, the demo's SAE and the MiniLM detector catalog); its config names its own SAE and, to
# decide text, a prompt model file. The demo target runs saeguard.jar, which has them (`demo`, `run` with no
# config, prompts.model builtin:all-minilm-l6-v2).
#
# Maven builds the jars on the build machine's own platform for the target's natives (TARGETARCH arm64:
# -Plinux-aarch64). The CUDA variant adds DJL's CUDA libtorch for the jar's PyTorch (2.7.1, DJL 0.35.0, cu128),
# fetched while the image is built and checked against deploy/cuda/pytorch-2.7.1-cu128-linux-x86_64.sha256
# (deploy/cuda/djl-natives.sh), never at run time; the container then needs an NVIDIA driver for CUDA 12.8 and
# the NVIDIA container toolkit (Kubernetes: the nvidia.com/gpu device plugin).

ARG MAVEN_IMAGE=maven:3.9.11-eclipse-temurin-17
ARG RUNTIME_IMAGE=eclipse-temurin:17.0.16_8-jre-noble
ARG VARIANT=cpu

# ---------------------------------------------------------------------------- build
FROM --platform=$BUILDPLATFORM ${MAVEN_IMAGE} AS build
ARG TARGETARCH
WORKDIR /src
COPY . .
# Unit and integration tests need Python, Kafka and more: they run in CI (.ci/run), not here.
# --strict-checksums: every artifact (libtorch's and DJL's natives among them) must match the checksum Maven
# Central publishes for it.
RUN --mount=type=cache,target=/root/.m2 set -eu; \
    case "${TARGETARCH:-amd64}" in \
      amd64) platform="" ;; \
      arm64) platform="-Plinux-aarch64" ;; \
      *) echo "no saeguard image for ${TARGETARCH}: linux/amd64 and linux/arm64 only"; exit 1 ;; \
    esac; \
    mvn -B -ntp --strict-checksums $platform -pl sidecar -am -DskipTests package; \
    cp sidecar/target/saeguard.jar sidecar/target/saeguard-server.jar /

# ---------------------------------------------------------------------------- CUDA natives (VARIANT=cuda)
FROM ${RUNTIME_IMAGE} AS cuda-natives
ARG PYTORCH_VERSION=2.7.1
ARG CUDA_FLAVOR=cu128
ARG TARGETARCH
# DJL's own cache layout: <cache>/pytorch/<version>-<flavor>-linux-x86_64/ holds libtorch and libdjl_torch.so.
# The runtime uses /opt/djl as its (read-only) DJL cache and points PYTORCH_LIBRARY_PATH at that directory, so
# DJL finds both and downloads nothing. DJL publishes CUDA libtorch for linux-x86_64 only.
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates unzip && rm -rf /var/lib/apt/lists/*
COPY deploy/cuda/ /tmp/cuda/
COPY --from=build /saeguard-server.jar /tmp/saeguard-server.jar
RUN set -eu; \
    test "${TARGETARCH:-amd64}" = amd64 || { echo "the CUDA image is linux/amd64 only (DJL has no CUDA libtorch for ${TARGETARCH})"; exit 1; }; \
    manifest="/tmp/cuda/pytorch-${PYTORCH_VERSION}-${CUDA_FLAVOR}-linux-x86_64.sha256"; \
    test -f "$manifest" || { echo "no manifest deploy/cuda/${manifest##*/}: copy one, change its header and run djl-natives.sh pin"; exit 1; }; \
    dir="/opt/djl/pytorch/${PYTORCH_VERSION}-${CUDA_FLAVOR}-linux-x86_64"; \
    bash /tmp/cuda/djl-natives.sh fetch "$manifest" "$dir"; \
    bash /tmp/cuda/djl-natives.sh jni "$manifest" /tmp/saeguard-server.jar "$dir"; \
    test -s "$dir/libtorch.so"; \
    rm -rf /tmp/cuda /tmp/saeguard-server.jar

# ---------------------------------------------------------------------------- runtime
FROM ${RUNTIME_IMAGE} AS runtime-cpu
# libtorch's CPU natives come with the jar and are extracted here at first start (~430 MB); mount
# a volume at /var/cache/saeguard to keep them across restarts.
ENV SAEGUARD_ENGINE_DEVICE=cpu \
    SAEGUARD_ENGINE_DJL_CACHE=/var/cache/saeguard/djl

FROM ${RUNTIME_IMAGE} AS runtime-cuda
ARG PYTORCH_VERSION=2.7.1
ARG CUDA_FLAVOR=cu128
COPY --from=cuda-natives /opt/djl /opt/djl
ENV SAEGUARD_ENGINE_DEVICE=auto \
    SAEGUARD_ENGINE_DJL_CACHE=/opt/djl \
    PYTORCH_LIBRARY_PATH=/opt/djl/pytorch/${PYTORCH_VERSION}-${CUDA_FLAVOR}-linux-x86_64 \
    PYTORCH_FLAVOR=${CUDA_FLAVOR} \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

FROM runtime-${VARIANT} AS runtime-base
ARG UID=10001
RUN groupadd --system --gid ${UID} saeguard \
 && useradd --system --uid ${UID} --gid saeguard --home-dir /var/lib/saeguard --create-home --shell /usr/sbin/nologin saeguard \
 && mkdir -p /opt/saeguard /etc/saeguard/config /etc/saeguard/detectors /var/cache/saeguard/djl \
 && chown -R saeguard:saeguard /var/cache/saeguard /var/lib/saeguard
COPY deploy/config/saeguard.yaml /etc/saeguard/config/saeguard.yaml
COPY detectors/catalog/*.yaml /etc/saeguard/detectors/
ENV JAVA_TOOL_OPTIONS="-XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError"
USER 10001:10001
WORKDIR /var/lib/saeguard
EXPOSE 8080
# No curl in the JRE image: bash's /dev/tcp speaks just enough HTTP.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health/live HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

# ---------------------------------------------------------------------------- demo (--target demo)
# saeguard.jar: `docker run --rm saeguard:0.1.0-demo demo`, or `run` with a config that uses the built-in model
# (deploy/compose).
FROM runtime-base AS demo
COPY --from=build /saeguard.jar /opt/saeguard/saeguard.jar
ENTRYPOINT ["java", "-jar", "/opt/saeguard/saeguard.jar"]
CMD ["run", "--config", "/etc/saeguard/config/saeguard.yaml"]

# ---------------------------------------------------------------------------- production (the default target)
FROM runtime-base AS runtime
COPY --from=build /saeguard-server.jar /opt/saeguard/saeguard-server.jar
ENTRYPOINT ["java", "-jar", "/opt/saeguard/saeguard-server.jar"]
CMD ["run", "--config", "/etc/saeguard/config/saeguard.yaml"]
