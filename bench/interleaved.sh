#!/usr/bin/env bash
# Robust ratios on a shared machine: for each (shape, batch) cell, one JVM alternates the bare GEMM,
# DeviceSae.encode and the lean-encode proposal (EncodeBreakdown --row), and reports medians and the
# median of per-repetition ratios. Writes bench/results/interleaved-<date>.md and the README block.
#   SHAPES / BATCHES / REPS override the cells and repetitions.
#   SAEGUARD_BENCH_SKIP_BUILD=1 reuses bench/target/benchmarks.jar.
set -euo pipefail
cd "$(dirname "$0")/.."

shapes=(${SHAPES:-768x24576 2304x16384 4096x65536})
batches=(${BATCHES:-1 8 64 512})

if [[ "${SAEGUARD_BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  ./mvnw -q -pl bench -am -DskipTests package
fi
jar=bench/target/benchmarks.jar

mkdir -p bench/results
out="bench/results/interleaved-$(date -u +%Y-%m-%d-%H%M).md"
{
  echo "Interleaved in one JVM per cell, $(date -u +%Y-%m-%d), $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| d_in×d_sae | batch | matmul ms | encode ms | lean ms | encode/matmul | lean/matmul | reps |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for shape in "${shapes[@]}"; do
    for batch in "${batches[@]}"; do
      # Fewer repetitions where one GEMM takes seconds.
      if [[ -n "${REPS:-}" ]]; then reps=$REPS
      elif [[ "$shape" == 4096x65536 && "$batch" -ge 64 ]]; then reps=5
      elif [[ "$batch" -ge 64 ]]; then reps=11
      else reps=21; fi
      java -Xmx1g -XX:MaxDirectMemorySize=6g -cp "$jar" io.saeguard.bench.EncodeBreakdown "$shape" "$batch" "$reps" --row 2>/dev/null
    done
  done
} | tee "$out"

awk -v f="$out" '
  /<!-- BEGIN interleaved/ { print; while ((getline line < f) > 0) print line; skip = 1; next }
  /<!-- END interleaved/ { skip = 0 }
  !skip' bench/README.md > bench/README.md.tmp && mv bench/README.md.tmp bench/README.md
