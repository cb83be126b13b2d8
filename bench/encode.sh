#!/usr/bin/env bash
# Runs EncodeBenchmark (JMH) once per (shape, batch) cell, so a cell's encode and matmul are
# measured back to back rather than minutes apart (the machine is shared), merges the per-cell JSON
# into bench/results/encode-<date>.json and writes the results table into bench/README.md.
#   SHAPES / BATCHES  override the cells (defaults: the benchmark's @Param values);
#   extra arguments   go to JMH (e.g. -wi 1);
#   SAEGUARD_BENCH_SKIP_BUILD=1 reuses bench/target/benchmarks.jar.
# A partial run still rewrites the README table: keep the README for full runs.
set -euo pipefail
cd "$(dirname "$0")/.."

shapes=(${SHAPES:-768x24576 2304x16384 4096x65536})
batches=(${BATCHES:-1 8 64 512})

if [[ "${SAEGUARD_BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  ./mvnw -q -pl bench -am -DskipTests package
fi
jar=bench/target/benchmarks.jar

mkdir -p bench/results
stamp="$(date -u +%Y-%m-%d-%H%M)"
parts="$(mktemp -d)"
trap 'rm -rf "$parts"' EXIT
for shape in "${shapes[@]}"; do
  for batch in "${batches[@]}"; do
    java -jar "$jar" EncodeBenchmark -p shape="$shape" -p batch="$batch" \
      -rf json -rff "$parts/$shape-$batch.json" "$@"
  done
done
results="bench/results/encode-$stamp.json"
java -cp "$jar" io.saeguard.bench.BenchReport --merge "$results" "$parts"/*.json
java -cp "$jar" io.saeguard.bench.BenchReport "$results" --readme bench/README.md
