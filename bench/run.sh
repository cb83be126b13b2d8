#!/usr/bin/env bash
# The pipeline benchmark (issue 9): saeguard's sidecar against the three Python consumers a user would
# otherwise write (bench/baseline/naive.py, batched.py, sliced.py), on one broker, with the same records from
# the same load generator, and against the machine's ceilings measured in the same run.
#
#   bench/run.sh            full run (~25 min on 2 cores): per workload, the three systems run at once on
#                           their own topics and are measured in rotation (3 saturation rounds, then
#                           25/50/90 % of each one's saturation, then a backlog drain per round: each system
#                           stopped while ~20 s of its saturation rate (at most 200,000 tokens) is queued, then timed draining it alone),
#                           then the ceilings; writes
#                           bench/results/pipeline-<date>.md/.png/ (raw files) and the README table
#   bench/run.sh --quick    one round, short windows: a smoke run (~11 min); README untouched
#   bench/run.sh --soak     per workload (--workloads, default both), 10 minutes of the sidecar at 50 % of its
#                           saturation: heap after GC and RSS at start, every minute, end; bench/results/soak-<date>.md
#   --jfr                   record the sidecar with JFR (settings=profile); summarise the engine thread by
#                           pipeline stage and every busy thread's hottest frames (w<N>-saeguard.jfr.txt); record
#                           the broker too and summarise it in each system's saturation windows
#                           (w<N>-broker-<system>-sat.jfr.txt: request handling by Kafka API, busiest threads)
# Options: --skip-build, --workloads 1,2, --systems saeguard,naive,batched,sliced, --soak-s SECONDS.
# BLAS: the baselines must run torch on an optimised BLAS. On Debian's reference libblas.so.3 batched.py decided
#   50 tokens/s instead of ~1,400, a ratio that flatters saeguard: run.sh installs libopenblas0-pthread when it can
#   (root, or sudo without a password) and otherwise stops with the command to run; SAEGUARD_BENCH_ALLOW_REFERENCE_BLAS=1
#   runs anyway, and the report then withholds every ratio against a baseline.
# Environment: SAEGUARD_BENCH_SAE_DIR (default /tmp/saeguard-bench/sae-2304x16384; written once, ~300 MB);
#   SAEGUARD_BENCH_ENGINE_THREADS (the sidecar's engine.threads and JMH's threads) and SAEGUARD_BENCH_PY_THREADS
#   (the baselines' torch.set_num_threads and OPENBLAS_NUM_THREADS), both default: one per core; SAEGUARD_BENCH_BF16=1 runs every
#   encoder GEMM in BF16: the sidecar with engine.cpu_bf16, the JMH ceiling with -p precision=bf16, and the
#   baselines (saebaseline.py) with torch's BF16 linear (oneDNN); the report says which.
#   SAEGUARD_BENCH_BF16=sidecar: BF16 for the sidecar and its JMH ceiling only, the baselines stay F32
#   (what a user turning engine.cpu_bf16 on gains over the F32 consumer they would otherwise write).
#   SAEGUARD_BENCH_DEVICE=gpu[:N] (bench/gpu.sh --pipeline): the sidecar with engine.device gpu, the JMH ceiling
#   with -p device=gpu, the baselines' torch on CUDA; SAEGUARD_BENCH_PYTHON: the baselines' interpreter
#   (default /usr/bin/python3; it needs torch, numpy, confluent-kafka, yaml, and CUDA for a GPU run).
#   SAEGUARD_BENCH_SIDECAR_YAML: YAML appended to the sidecar's config, for top-level sections the script does
#   not write (metrics, batching, state), e.g. $'metrics:\n  fvu_sample_rate: 0'.
#   SAEGUARD_BENCH_BACKLOG_S (default 5): at saturation the load generator keeps this many seconds of the
#   system's recent decided rate (at least 2048 tokens; naive.py 4 records) sent and not yet decided.
#   SAEGUARD_BENCH_KAFKA_YAML: YAML lines inserted into the sidecar's kafka section (indented by two), for client
#   properties, e.g. $'  producer:\n    linger.ms: 5'.
#   SAEGUARD_BENCH_SAE_ARCH=topk (SAEGUARD_BENCH_SAE_K, default 64): the TopK row: the same weights read as a TopK SAE,
#   which every system encodes whole (the sidecar's watched-feature encode and sliced.py's slice do not apply).
#   SAEGUARD_BENCH_SIDECAR_JVM: JVM options for the sidecar, space-separated, e.g. '-XX:G1HeapRegionSize=32m'.
#   SAEGUARD_BENCH_LOADGEN_JVM: JVM options added to each load generator's, e.g. '-Xlog:gc:file=/tmp/lg-%p.log'.
#   SAEGUARD_BENCH_BROKER_ARGS: more arguments of `saeguard broker`, e.g. '--set max.incremental.fetch.session.cache.slots=0'.
#   SAEGUARD_BENCH_JAVA (default java), SAEGUARD_BENCH_CLASSPATH (default bench/target/benchmarks.jar) and
#   SAEGUARD_BENCH_SIDECAR_CLASSPATH (default sidecar/target/saeguard.jar): another Java and thin class paths in
#   place of the fat jars, e.g. on a GPU host without a JDK (bench/gpu-pack.sh --pipeline; use with --skip-build).
#
# Workload 1, generation stream: 64 concurrent requests, 1 token per record (F32, d_in 2304).
# Workload 2, prompt chunks:     64 concurrent requests, 64 tokens per record.
# SAE: 2304x16384 JumpReLU, random weights (io.saeguard.bench.BenchSae), one-feature threshold detector.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0; soak=0; build=1; soak_s=600; jfr=0
workloads=1,2; systems=saeguard,naive,batched,sliced
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --soak) soak=1 ;;
    --skip-build) build=0 ;;
    --jfr) jfr=1 ;;
    --workloads) workloads=$2; shift ;;
    --systems) systems=$2; shift ;;
    --soak-s) soak_s=$2; shift ;;
    -h|--help) sed -n '2,/^set /{/^set /!p}' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

PY=${SAEGUARD_BENCH_PYTHON:-/usr/bin/python3}   # Debian's: python3-torch, python3-numpy, python3-confluent-kafka, python3-yaml
JAVA=${SAEGUARD_BENCH_JAVA:-java}
JAR=${SAEGUARD_BENCH_CLASSPATH:-bench/target/benchmarks.jar}
SG=${SAEGUARD_BENCH_SIDECAR_CLASSPATH:-sidecar/target/saeguard.jar}
SGMAIN=io.saeguard.sidecar.cli.Main
cores=$(nproc)
eth=${SAEGUARD_BENCH_ENGINE_THREADS:-$cores}
pth=${SAEGUARD_BENCH_PY_THREADS:-$cores}
# torch.set_num_threads does not bound a pthreads OpenBLAS (Debian's torch BLAS), which starts one thread per core:
# with SAEGUARD_BENCH_PY_THREADS=1 the baselines' GEMM would still use every core (bench/README.md, the F32 GEMM table).
export OPENBLAS_NUM_THREADS=$pth
cpu_bf16=false; precision=f32
case "${SAEGUARD_BENCH_BF16:-0}" in
  1) cpu_bf16=true; precision=bf16; export SAEGUARD_BENCH_BF16=1 ;;
  sidecar) cpu_bf16=true; precision=bf16; export SAEGUARD_BENCH_BF16=0 ;;   # the baselines read it: F32 for them
  0|'') export SAEGUARD_BENCH_BF16=0 ;;
  *) echo "run.sh: SAEGUARD_BENCH_BF16 must be 0, 1 or sidecar, found $SAEGUARD_BENCH_BF16" >&2; exit 2 ;;
esac
device=${SAEGUARD_BENCH_DEVICE:-cpu}
if [[ ! $device =~ ^(cpu|gpu(:[0-9]+)?)$ ]]; then echo "run.sh: SAEGUARD_BENCH_DEVICE must be cpu, gpu or gpu:N, found $device" >&2; exit 2; fi
if [[ $device != cpu && $cpu_bf16 == true ]]; then echo "run.sh: SAEGUARD_BENCH_BF16 is for the CPU (engine.cpu_bf16); unset it with SAEGUARD_BENCH_DEVICE=$device" >&2; exit 2; fi
export SAEGUARD_BENCH_DEVICE=$device   # the baselines (saebaseline.bench_device) read it
stamp=$(date -u +%Y-%m-%d-%H%M)
if [[ $soak == 1 ]]; then kind=soak; elif [[ $quick == 1 ]]; then kind=quick; else kind=pipeline; fi
raw=bench/results/$kind-$stamp
mkdir -p "$raw"
work=$(mktemp -d /tmp/saeguard-bench-run.XXXXXX)
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# Windows (seconds). The full run keeps the whole thing under ~30 minutes on 2 cores.
if [[ $quick == 1 ]]; then
  W=(--warmup-s 4 --measure-s 10 --rate-warmup-s 3 --rate-measure-s 10 --min-samples 50 --rate-measure-max-s 15 --drain-timeout-s 60)
  JMH=(-wi 1 -i 3 -w 1 -r 1); PYCEIL=2; KSEC=3; ROUNDS=1; DRAIN_S=20
else
  W=(--warmup-s 6 --measure-s 15 --rate-warmup-s 5 --rate-measure-s 20 --min-samples 200 --rate-measure-max-s 60 --drain-timeout-s 90)
  JMH=(-wi 2 -i 5 -w 1 -r 1); PYCEIL=5; KSEC=5; ROUNDS=3; DRAIN_S=20
fi

pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill -CONT "$p" 2>/dev/null || true   # a system the load generator left stopped (backlog phase) must see the TERM
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null || true; fi
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop() { # stop one process we started, by pid: SIGTERM, then SIGKILL after 30 s
  local p=$1
  kill -TERM "$p" 2>/dev/null || return 0
  for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.2; done
  log "pid $p did not stop in 30 s: SIGKILL"; kill -KILL "$p" 2>/dev/null || true
}

await() { # await DESCRIPTION TIMEOUT_S COMMAND...
  local what=$1 t=$2; shift 2
  for _ in $(seq 1 $((t * 5))); do if "$@" >/dev/null 2>&1; then return 0; fi; sleep 0.2; done
  log "timed out after ${t}s waiting for $what"; return 1
}

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json_get() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' "$@"; }

# --- build ---------------------------------------------------------------------------------------
if [[ $build == 1 ]]; then
  log "building bench and sidecar"
  ./mvnw -q -B -ntp -DskipTests package -pl bench,sidecar -am
fi

# --- BLAS of the baselines ------------------------------------------------------------------------------
blas_reference() { # exit 0 when the baselines' torch runs its GEMMs on the reference BLAS
  (cd bench/baseline && $PY -c 'import sys,torch,saebaseline as sb; a=torch.randn(64,64); a@a; sys.exit(0 if sb.reference_blas(sb.runtime_info(1)) else 1)')
}
if [[ $systems =~ (naive|batched|sliced) ]] && blas_reference; then
  fix="apt-get install -y libopenblas0-pthread"
  if [[ $(id -u) == 0 ]] || sudo -n true 2>/dev/null; then
    log "the baselines' torch runs on Debian's reference BLAS: installing libopenblas0-pthread"
    [[ $(id -u) == 0 ]] && sudo_=() || sudo_=(sudo -n)
    DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -qq --no-install-recommends libopenblas0-pthread >&2 \
      || { "${sudo_[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -qq --no-install-recommends libopenblas0-pthread >&2; }
  fi
  if blas_reference; then
    if [[ ${SAEGUARD_BENCH_ALLOW_REFERENCE_BLAS:-0} == 1 ]]; then
      log "WARNING: the baselines run on the reference BLAS; the report will withhold every ratio against them"
    else
      echo "run.sh: the baselines' torch ($PY) runs its GEMMs on Debian's reference BLAS (/usr/lib/*/blas/libblas.so.3), where" \
        "batched.py decides ~28x fewer tokens/s than on OpenBLAS: a ratio against it would flatter saeguard. Fix: $fix" \
        "(as root), or point SAEGUARD_BENCH_PYTHON at a torch with an optimised BLAS; SAEGUARD_BENCH_ALLOW_REFERENCE_BLAS=1" \
        "runs anyway and withholds the ratios." >&2
      exit 1
    fi
  fi
fi

# --- environment -----------------------------------------------------------------------------------
{
  echo "{"
  echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%MZ)\", \"kind\": \"$kind\", \"cores\": $cores,"
  echo "  \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\","
  echo "  \"mem_gib\": $(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo),"
  echo "  \"java\": \"$("$JAVA" -version 2>&1 | head -1 | sed 's/"//g')\","
  echo "  \"sidecar_engine_threads\": $eth,"
  echo "  \"libtorch\": \"${PYTORCH_VERSION:-2.7.1}${PYTORCH_FLAVOR:+ ($PYTORCH_FLAVOR)}\","
  echo "  \"device\": \"$device\","
  echo "  \"bf16\": $cpu_bf16,"
  echo "  \"backlog_s\": ${SAEGUARD_BENCH_BACKLOG_S:-5},"
  echo "  \"loadavg_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
  echo "  \"python_runtime\": $(cd bench/baseline && $PY -c 'import json,sys,torch,saebaseline as sb; torch.set_num_threads(int(sys.argv[1])); print(json.dumps(sb.runtime_info(int(sys.argv[1]))))' "$pth")"
  echo "}"
} > "$raw/env.json"

# --- SAE and detector (written once) ---------------------------------------------------------------
sae_root=${SAEGUARD_BENCH_SAE_DIR:-/tmp/saeguard-bench/sae-2304x16384}
"$JAVA" -Xmx2g -cp "$JAR" io.saeguard.bench.BenchSae --dir "$sae_root" > "$raw/sae.json"
sae_dir=$(json_get "$raw/sae.json" '["sae_dir"]')
detector=$(json_get "$raw/sae.json" '["detector"]')
case ${SAEGUARD_BENCH_SAE_ARCH:-jumprelu} in
  jumprelu) ;;
  topk) # the TopK row: the same weights read as a TopK SAE (every system then encodes every feature)
    sae_k=${SAEGUARD_BENCH_SAE_K:-64}
    topk_dir="$sae_root-topk$sae_k/sae"
    mkdir -p "$topk_dir"
    ln -sf "$sae_dir/sae_weights.safetensors" "$topk_dir/sae_weights.safetensors"
    $PY - "$sae_dir/cfg.json" "$topk_dir/cfg.json" "$sae_k" "$raw/sae.json" "$topk_dir" <<'PYEOF'
import json, sys
src, dst, k, meta, topk_dir = sys.argv[1:6]
cfg = json.load(open(src))
cfg.update({"architecture": "topk", "activation_fn_kwargs": {"k": int(k)}})
json.dump(cfg, open(dst, "w"), indent=2)
m = json.load(open(meta))
m.update({"architecture": f"TopK (k {k})", "sae_dir": topk_dir})
json.dump(m, open(meta, "w"), indent=2)
PYEOF
    sae_dir=$topk_dir ;;
  *) echo "SAEGUARD_BENCH_SAE_ARCH must be jumprelu or topk" >&2; exit 2 ;;
esac
log "SAE $sae_dir, detector $detector"

# --- broker ------------------------------------------------------------------------------------------
kport=$(free_port)
bjvm=()
[[ $jfr == 1 ]] && bjvm=("-XX:StartFlightRecording=name=broker,settings=profile")
# shellcheck disable=SC2086 # SAEGUARD_BENCH_BROKER_ARGS is a list of words
"$JAVA" "${bjvm[@]}" -cp "$SG" "$SGMAIN" broker --port "$kport" --no-topics --data "$work/kafka" ${SAEGUARD_BENCH_BROKER_ARGS:-} > "$raw/broker.log" 2>&1 &
broker=$!; pids+=("$broker")
await "the broker" 120 grep -q "saeguard broker ready" "$raw/broker.log"
bootstrap=127.0.0.1:$kport
log "broker pid $broker on $bootstrap"

create_topics() { # create_topics PREFIX: every saeguard topic, renamed PREFIX.saeguard.*
  sed "s/^\(    name: \)saeguard\./\1$1.saeguard./" topics/topics.yaml > "$work/topics-$1.yaml"
  "$JAVA" -cp "$SG" "$SGMAIN" topics create --bootstrap "$bootstrap" --file "$work/topics-$1.yaml" > "$work/topics-$1.out" 2>&1
}

start_saeguard() { # start_saeguard PREFIX HTTP_PORT LOG -> sets sut
  local prefix=$1 http=$2 cfg=$work/$1.yaml
  cat > "$cfg" <<EOF
kafka:
  bootstrap: $bootstrap
  group: $prefix.saeguard
${SAEGUARD_BENCH_KAFKA_YAML:-}
topics:
  activations: $prefix.saeguard.activations
  decisions: $prefix.saeguard.decisions
  alerts: $prefix.saeguard.alerts
  shadow: $prefix.saeguard.shadow
  steering: $prefix.saeguard.steering
  detectors: $prefix.saeguard.detectors
  reviews: $prefix.saeguard.reviews
  deadletter: $prefix.saeguard.deadletter
  state: $prefix.saeguard.state
  prompts: $prefix.saeguard.prompts
  judge: $prefix.saeguard.judge
  judge_verdicts: $prefix.saeguard.judge-verdicts
saes:
  - id: bench-sae
    path: $sae_dir
    model: synthetic
    hook: blocks.0.hook_resid_post
detectors:
  - $detector
engine:
  device: $device
  threads: $eth
  cpu_bf16: $cpu_bf16
http:
  host: 127.0.0.1
  port: $http
${SAEGUARD_BENCH_SIDECAR_YAML:-}
EOF
  cp "$cfg" "$raw/$prefix.saeguard.yaml"
  local jvm=()
  [[ -n ${SAEGUARD_BENCH_SIDECAR_JVM:-} ]] && read -r -a jvm <<< "$SAEGUARD_BENCH_SIDECAR_JVM"
  [[ $jfr == 1 ]] && jvm+=("-XX:StartFlightRecording=filename=${3%.log}.jfr,settings=profile,dumponexit=true")
  "$JAVA" "${jvm[@]}" -cp "$SG" "$SGMAIN" run --config "$cfg" > "$3" 2>&1 &
  sut=$!; pids+=("$sut")
  for _ in $(seq 1 900); do # 180 s, but give up at once when the sidecar has exited (e.g. no GPU for device: gpu)
    if curl -sf "http://127.0.0.1:$http/health/ready" > /dev/null 2>&1; then return 0; fi
    if ! kill -0 "$sut" 2>/dev/null; then log "the sidecar exited before it was ready: $(grep -m1 'error' "$3" || tail -1 "$3")"; exit 1; fi
    sleep 0.2
  done
  log "timed out after 180s waiting for the sidecar to be ready"; return 1
}

start_python() { # start_python SCRIPT PREFIX OUT ERR -> sets sut
  (cd bench/baseline && exec $PY "$1.py" --bootstrap "$bootstrap" --activations "$2.saeguard.activations" \
     --decisions "$2.saeguard.decisions" --sae "$sae_dir" --detector "$detector" --threads "$pth") > "$3" 2> "$4" &
  sut=$!; pids+=("$sut")
  await "$1.py to be assigned its partitions" 120 grep -q "^READY" "$3"
}

loadgen() { # loadgen LABEL PREFIX TOKENS_PER_RECORD REQUEST_TOKENS PHASES EXTRA...
  local label=$1 prefix=$2 tpr=$3 rt=$4 phases=$5; shift 5
  local jvm=()
  [[ -n ${SAEGUARD_BENCH_LOADGEN_JVM:-} ]] && read -r -a jvm <<< "$SAEGUARD_BENCH_LOADGEN_JVM"
  # C1 only: a fresh generator JVM per phase otherwise spends 0.12-0.35 cores on C2 compiles inside the window
  # (2026-11-22 19:27 run), taking them from the system under test on a 2-core machine.
  # 4 MiB regions: with the 1 GiB heap's default 1 MiB, each 590 KB record of workload 2 (and the producer's buffer for
  # it) was a humongous allocation, and G1's concurrent marking took 0.17-0.19 cores of the generator in workload 2's
  # saturation and 90 % windows (2026-12-08 02:08 run; 0.04 with 4 MiB regions, quick run 02:40).
  "$JAVA" -Xmx1g -XX:TieredStopAtLevel=1 -XX:G1HeapRegionSize=4m "${jvm[@]}" -cp "$JAR" io.saeguard.bench.LoadGenerator --bootstrap "$bootstrap" \
    --activations "$prefix.saeguard.activations" --decisions "$prefix.saeguard.decisions" --label "$label" \
    --d-in 2304 --tokens-per-record "$tpr" --requests 64 --request-tokens "$rt" --phases "$phases" \
    --pid "sut=$sut" --pid "broker=$broker" --out-json "$raw/$label.json" --out-csv "$raw/$label.csv" "$@" \
    2> "$raw/$label.loadgen.log"
}

jmh_ceiling() { # jmh_ceiling BATCH OUT
  "$JAVA" -cp "$JAR" org.openjdk.jmh.Main 'EncodeBenchmark' -p shape=2304x16384 -p batch="$1" -p precision="$precision" -p device="$device" -f 1 "${JMH[@]}" \
    -jvmArgsAppend "-Xms256m -Xmx1g -XX:MaxDirectMemorySize=6g -Dsaeguard.bench.maxActive=256 -Dsaeguard.bench.threads=$eth" \
    -rf json -rff "$2" > "${2%.json}.txt" 2>&1
}

# --- soak ---------------------------------------------------------------------------------------------
if [[ $soak == 1 ]]; then
  for wl in ${workloads//,/ }; do # a fresh sidecar on fresh topics per workload
    case $wl in
      1) tpr=1; rt=256 ;;
      2) tpr=64; rt=512 ;;
      *) echo "unknown workload $wl" >&2; exit 2 ;;
    esac
    prefix=s${stamp}w$wl; prefix=${prefix//-/}
    create_topics "$prefix"
    http=$(free_port)
    start_saeguard "$prefix" "$http" "$raw/soak-w$wl-saeguard.log"
    log "soak, workload $wl: sidecar pid $sut; saturation, then ${soak_s}s at 50 %"
    loadgen "soak-w$wl-saeguard" "$prefix" "$tpr" "$rt" saturation,soak:50 --warmup-s 10 --measure-s 20 --rate-warmup-s 10 \
      --min-backlog-tokens 2048 --soak-s "$soak_s" --snapshot-s 60 --jcmd sut --metrics-url "http://127.0.0.1:$http/metrics"
    stop "$sut"
  done
  $PY bench/pipeline_report.py soak "$raw" "bench/results/soak-$stamp.md"
  log "wrote bench/results/soak-$stamp.md"
  exit 0
fi

# --- workloads × systems, interleaved -------------------------------------------------------------
# The machine is shared and its load drifts by minutes, so the systems of a workload are not run one
# after the other: all three run at once, each on its own topics (an idle one costs next to nothing),
# and the load generator measures them in rotation: R saturation rounds (system order rotated every
# round; a system's saturation is the median of its rounds), then each load level for each system.
saturation_of() { $PY bench/pipeline_report.py median-saturation "$@"; }
for wl in ${workloads//,/ }; do
  case $wl in
    1) tpr=1; rt=256 ;;
    2) tpr=64; rt=512 ;;
    *) echo "run.sh: unknown workload $wl" >&2; exit 2 ;;
  esac
  declare -A spid=() sprefix=() shttp=()
  sys_list=(${systems//,/ })
  for sys in "${sys_list[@]}"; do
    prefix=b$stamp-w$wl-$sys; prefix=${prefix//-/}
    sprefix[$sys]=$prefix
    create_topics "$prefix"
    case $sys in
      saeguard)
        shttp[$sys]=$(free_port)
        start_saeguard "$prefix" "${shttp[$sys]}" "$raw/w$wl-$sys.log" ;;
      naive|batched|sliced)
        start_python "$sys" "$prefix" "$raw/w$wl-$sys.out" "$raw/w$wl-$sys.stats" ;;
      *) echo "run.sh: unknown system $sys" >&2; exit 2 ;;
    esac
    spid[$sys]=$sut
    log "w$wl-$sys: pid $sut"
  done
  measure() { # measure SYS LABEL PHASES EXTRA...: one load generator run against SYS, the others idle
    local sys=$1 label=$2 phases=$3; shift 3
    local extra=(--min-backlog-tokens $([[ $sys == naive ]] && echo $((4 * tpr)) || echo 2048) --backlog-s "${SAEGUARD_BENCH_BACKLOG_S:-5}")
    [[ $sys == saeguard ]] && extra+=(--metrics-url "http://127.0.0.1:${shttp[$sys]}/metrics")
    for other in "${sys_list[@]}"; do [[ $other != "$sys" ]] && extra+=(--pid "idle-$other=${spid[$other]}"); done
    sut=${spid[$sys]}
    loadgen "$label" "${sprefix[$sys]}" "$tpr" "$rt" "$phases" "${W[@]}" "${extra[@]}" "$@"
    log "$label: $(grep -E '^loadgen' "$raw/$label.loadgen.log" | sed 's/^loadgen [^:]*: //' | tr '\n' ' ')"
  }
  n=${#sys_list[@]}
  # One unrecorded saturation phase per system first: the sidecar's JIT otherwise compiles through the first
  # round (C2 0.24 cores in round 1 vs 0.06-0.09 later, 19:27 run); a long-running sidecar is past that.
  for sys in "${sys_list[@]}"; do measure "$sys" "w$wl-$sys-warmup" saturation; done
  for r in $(seq 1 "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
      sys=${sys_list[$(((i + r - 1) % n))]}
      measure "$sys" "w$wl-$sys-sat$r" saturation
    done
  done
  declare -A sat=()
  for sys in "${sys_list[@]}"; do sat[$sys]=$(saturation_of "$raw"/w$wl-$sys-sat*.json); done
  for pct in 25 50 90; do
    for sys in "${sys_list[@]}"; do
      measure "$sys" "w$wl-$sys-load$pct" "$pct" --saturation "${sat[$sys]}"
    done
  done
  # Backlog drain: each system stopped while ~DRAIN_S seconds of its saturation rate are queued, then timed while it
  # drains with nothing else producing (LoadGenerator's backlog phase).
  for r in $(seq 1 "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
      sys=${sys_list[$(((i + r - 1) % n))]}
      measure "$sys" "w$wl-$sys-drain$r" "backlog:$DRAIN_S" --saturation "${sat[$sys]}"
    done
  done
  if [[ -n ${spid[saeguard]:-} ]]; then
    curl -sf "http://127.0.0.1:${shttp[saeguard]}/metrics" > "$raw/w$wl-saeguard.metrics.txt" || true
  fi
  for sys in "${sys_list[@]}"; do stop "${spid[$sys]}"; done
  # Ceilings, with every system stopped: Kafka's consume rate of the saeguard run's records, the encode-only
  # rate at the batch size each system ran in its saturation rounds.
  log "w$wl: ceilings"
  if [[ $jfr == 1 ]]; then # the broker's recording so far, summarised in each system's saturation windows
    jcmd "$broker" JFR.dump name=broker filename="$raw/w$wl-broker.jfr" > /dev/null 2>&1 || log "w$wl: broker JFR dump failed"
    for sys in "${sys_list[@]}"; do
      [[ -f $raw/w$wl-broker.jfr ]] && { $PY bench/pipeline_report.py jfr "$raw/w$wl-broker.jfr" "$raw"/w$wl-$sys-sat*.json \
        > "$raw/w$wl-broker-$sys-sat.jfr.txt" || log "w$wl: broker JFR summary failed"; }
    done
  fi
  for sys in "${sys_list[@]}"; do
    case $sys in
      saeguard)
        if [[ $jfr == 1 && -f $raw/w$wl-saeguard.jfr ]]; then
          $PY bench/pipeline_report.py jfr "$raw/w$wl-saeguard.jfr" > "$raw/w$wl-saeguard.jfr.txt" || log "w$wl: JFR summary failed"
          $PY bench/pipeline_report.py jfr "$raw/w$wl-saeguard.jfr" "$raw"/w$wl-saeguard-sat*.json > "$raw/w$wl-saeguard-sat.jfr.txt" \
            || log "w$wl: JFR summary failed"
        fi
        "$JAVA" -cp "$JAR" io.saeguard.bench.ConsumeCeiling --bootstrap "$bootstrap" --topic "${sprefix[$sys]}.saeguard.activations" \
          --tokens-per-record "$tpr" --seconds "$KSEC" --out "$raw/w$wl-kafka.json" > /dev/null 2> "$raw/w$wl-kafka.log"
        jmh_ceiling "$($PY bench/pipeline_report.py batch "$raw"/w$wl-saeguard-sat*.json)" "$raw/w$wl-encode-jmh.json" ;;
      naive|batched|sliced)
        batch=$($PY bench/pipeline_report.py batch --stats "$raw/w$wl-$sys.stats" "$raw"/w$wl-$sys-sat*.json)
        cols=(); [[ $sys == sliced ]] && cols=(--columns "$(json_get "$raw/sae.json" '["feature"]')")
        (cd bench/baseline && $PY encode_ceiling.py --sae "$sae_dir" --batch "$batch" --threads "$pth" --seconds "$PYCEIL" "${cols[@]}") \
          > "$raw/w$wl-$sys.encode.json" ;;
    esac
  done
  # The workload's topics go now: their logs (up to 256 MiB a partition with the broker arguments of the full runs,
  # ~9 GB for three systems) would otherwise hold the page cache through the next workload, whose saturation windows
  # then ran with < 1 GB free and the kernel reclaiming and compacting memory (2026-12-08 02:08 run, /proc/vmstat).
  "$JAVA" -cp "$JAR" io.saeguard.bench.DeleteTopics --bootstrap "$bootstrap" $(for sys in "${sys_list[@]}"; do echo --prefix "${sprefix[$sys]}"; done) \
    > "$work/delete-w$wl.out" 2>&1 || log "w$wl: deleting the workload's topics failed (see $work/delete-w$wl.out); continuing"
  unset spid sprefix shttp sat
done

sed -i "s/^}$/, \"loadavg_end\": \"$(cut -d' ' -f1-3 /proc/loadavg)\" }/" "$raw/env.json"
report=bench/results/$kind-$stamp.md
readme=()
[[ $kind == pipeline ]] && readme=(--readme bench/README.md)
$PY bench/pipeline_report.py report "$raw" "$report" "${readme[@]}"
log "wrote $report and ${report%.md}.png (raw files in $raw/)"
