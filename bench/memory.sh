#!/usr/bin/env bash
# Writes a 4096x65536 F32 SAELens SAE (~2 GiB) under /tmp, loads it, uploads it to a CPU engine,
# encodes one batch, and prints heap / buffer pools / RSS after each step (saved under
# bench/results/). The heap is capped far below the weights' size on purpose.
# Arguments: [d_inxd_sae] [tokens] [f32|bf16] (bf16: engine.cpu_bf16). SAEGUARD_BENCH_SKIP_BUILD=1 reuses bench/target/benchmarks.jar.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${SAEGUARD_BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  ./mvnw -q -pl bench -am -DskipTests package
fi

mkdir -p bench/results
java -Xmx512m -Djava.io.tmpdir=/tmp -cp bench/target/benchmarks.jar io.saeguard.bench.MemoryReport "$@" \
  | tee "bench/results/memory-$(date -u +%Y-%m-%d-%H%M).txt"
