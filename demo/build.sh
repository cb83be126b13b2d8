#!/usr/bin/env bash
# The demo's assets (sidecar/src/main/resources/io/saeguard/sidecar/demo/) are the MiniLM detector catalog's SAE
# and packs plus held-out texts; the catalog's build script writes them (detectors/catalog/minilm/README.md):
#
#   apt-get install fortunes python3-numpy python3-yaml && ./mvnw -q -DskipTests package
#   SAEGUARD_DATA_DIR=/path/to/data demo/build.sh
set -euo pipefail
exec "$(dirname "$0")/../detectors/catalog/minilm/build.sh" "$@"
