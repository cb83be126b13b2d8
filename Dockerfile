# syntax=docker/dockerfile:1.7
#
# saeguard sidecar image: the fat jar on a JRE, run as a non-root user.
#
#   docker build -t saeguard:0.1.0 .                          # CPU (libtorch CPU natives are inside the jar)
#   docker build --build-arg VARIANT=cuda -t saeguard:0.1.0-cuda .
#
# The CUDA variant adds DJL's CUDA natives for the jar's PyTorch (2.7.1, DJL 0.35.0), fetched from
# publish.djl.ai while the image is built, never at run time; the container then needs an NVIDIA
# driver and the NVIDIA container toolkit (Kubernetes: the nvidia.com/gpu device plugin).

ARG MAVEN_IMAGE=maven:3.9.11-eclipse-temurin-17
ARG RUNTIME_IMAGE=eclipse-temurin:17.0.16_8-jre-noble
ARG VARIANT=cpu

# ---------------------------------------------------------------------------- build
FROM ${MAVEN_IMAGE} AS build
WORKDIR /src
COPY . .
# Unit and integration tests need Python, Kafka and more: they run in CI (.ci/run), not here.
RUN --mount=type=cache,target=/root/.m2 mvn -B -ntp -pl sidecar -am -DskipTests package \
 && cp sidecar/target/saeguard.jar /saeguard.jar

# ---------------------------------------------------------------------------- CUDA natives (VARIANT=cuda)
FROM ${RUNTIME_IMAGE} AS cuda-natives
ARG PYTORCH_VERSION=2.7.1
ARG DJL_VERSION=0.35.0
ARG CUDA_FLAVOR=cu126
# DJL's own cache layout: <cache>/pytorch/<version>-<flavor>-linux-x86_64/ holds libtorch and
# <djl version>-libdjl_torch.so. The runtime uses /opt/djl as its (read-only) DJL cache and points
# PYTORCH_LIBRARY_PATH at that directory, so DJL finds both and downloads nothing.
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates && rm -rf /var/lib/apt/lists/*
RUN set -eu; \
    dir="/opt/djl/pytorch/${PYTORCH_VERSION}-${CUDA_FLAVOR}-linux-x86_64"; mkdir -p "$dir"; \
    base="https://publish.djl.ai/pytorch/${PYTORCH_VERSION}"; \
    curl -fsSL "$base/files.txt" -o /tmp/files.txt; \
    grep "^${CUDA_FLAVOR}/linux-x86_64/native/lib/" /tmp/files.txt > /tmp/natives.txt \
      || { echo "no ${CUDA_FLAVOR} natives for PyTorch ${PYTORCH_VERSION}; flavors:"; cut -d/ -f1 /tmp/files.txt | sort -u; exit 1; }; \
    while read -r f; do \
      name="$(basename "$f" .gz)"; \
      curl -fsSL "$base/$f" | gunzip > "$dir/$name"; \
    done < /tmp/natives.txt; \
    curl -fsSL "$base/jnilib/${DJL_VERSION}/linux-x86_64/${CUDA_FLAVOR}/libdjl_torch.so" -o "$dir/${DJL_VERSION}-libdjl_torch.so"; \
    test -s "$dir/libtorch.so"

# ---------------------------------------------------------------------------- runtime
FROM ${RUNTIME_IMAGE} AS runtime-cpu
# libtorch's CPU natives come with the jar and are extracted here at first start (~430 MB); mount
# a volume at /var/cache/saeguard to keep them across restarts.
ENV SAEGUARD_ENGINE_DEVICE=cpu \
    SAEGUARD_ENGINE_DJL_CACHE=/var/cache/saeguard/djl

FROM ${RUNTIME_IMAGE} AS runtime-cuda
ARG PYTORCH_VERSION=2.7.1
ARG CUDA_FLAVOR=cu126
COPY --from=cuda-natives /opt/djl /opt/djl
ENV SAEGUARD_ENGINE_DEVICE=auto \
    SAEGUARD_ENGINE_DJL_CACHE=/opt/djl \
    PYTORCH_LIBRARY_PATH=/opt/djl/pytorch/${PYTORCH_VERSION}-${CUDA_FLAVOR}-linux-x86_64 \
    PYTORCH_FLAVOR=${CUDA_FLAVOR} \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

FROM runtime-${VARIANT} AS runtime
ARG UID=10001
RUN groupadd --system --gid ${UID} saeguard \
 && useradd --system --uid ${UID} --gid saeguard --home-dir /var/lib/saeguard --create-home --shell /usr/sbin/nologin saeguard \
 && mkdir -p /opt/saeguard /etc/saeguard/config /etc/saeguard/detectors /var/cache/saeguard/djl \
 && chown -R saeguard:saeguard /var/cache/saeguard /var/lib/saeguard
COPY --from=build /saeguard.jar /opt/saeguard/saeguard.jar
COPY deploy/config/saeguard.yaml /etc/saeguard/config/saeguard.yaml
COPY detectors/catalog/*.yaml /etc/saeguard/detectors/
ENV JAVA_TOOL_OPTIONS="-XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError"
USER 10001:10001
WORKDIR /var/lib/saeguard
EXPOSE 8080
# No curl in the JRE image: bash's /dev/tcp speaks just enough HTTP.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health/live HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["java", "-jar", "/opt/saeguard/saeguard.jar"]
CMD ["run", "--config", "/etc/saeguard/config/saeguard.yaml"]
