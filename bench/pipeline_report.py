#!/usr/bin/python3
"""Turns a bench/run.sh results folder into the pipeline benchmark's report (run by run.sh).

    pipeline_report.py batch [--stats PYTHON.stats] SAT.json...   median over rounds of the mean tokens per encode
    pipeline_report.py median-saturation SAT.json...      median saturation tokens/s over rounds
    pipeline_report.py report RAW_DIR OUT.md [--readme bench/README.md]   table, ratios, PNG plot (OUT.png)
    pipeline_report.py soak RAW_DIR OUT.md                 heap / RSS over the soak
    pipeline_report.py jfr RECORDING.jfr [SAT.json...]     hottest frames per thread (JFR execution + native samples),
                                                          only inside the saturation windows of SAT.json if given

Reads only what run.sh wrote: env.json, sae.json, w{1,2}-{saeguard,naive,batched,sliced}-{sat<r>,load<pct>}.json (LoadGenerator),
w*.stats (the baselines' STATS lines), w*-kafka.json (ConsumeCeiling), w*-encode-jmh.json (JMH),
w*-{naive,batched,sliced}.encode.json (encode_ceiling.py). The plot needs python3-matplotlib (Debian); without
it the report says so and skips the PNG.
"""

import glob
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "baseline"))
from blas import reference_blas  # noqa: E402  (no torch: the report runs without it)

SYSTEMS = ["saeguard", "naive", "batched", "sliced"]
PY_SYSTEMS = SYSTEMS[1:]
WORKLOADS = {"1": "generation stream: 64 concurrent requests, 1 token per record",
             "2": "prompt chunks: 64 concurrent requests, 64 tokens per record"}
LOADS = ["load-25", "load-50", "load-90"]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def stats_lines(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("STATS "):
                    out.append(json.loads(line[6:]))
    except OSError:
        pass
    return out


ENGINE_PARTS = ("assemble", "encode", "features", "detect", "publish", "fvu", "prompt_model")


def phase(run, name):
    for p in (run or {}).get("phases", []):
        if p["phase"] == name:
            return p
    return None


def stats_window(stats, window):
    """Difference of the baseline's cumulative counters over [start, end] epoch ms (nearest lines)."""
    if not stats or not window:
        return None
    a = [s for s in stats if s["epoch_ms"] <= window[0]]
    b = [s for s in stats if s["epoch_ms"] <= window[1]]
    if not a or not b or b[-1] is a[-1]:
        return None
    a, b = a[-1], b[-1]
    d = {k: b[k] - a[k] for k in b if isinstance(b[k], (int, float))}
    return d


def batch_of(sat, stats=None):
    """Mean tokens per encode in one saturation phase: the sidecar's metrics, or the baseline's STATS lines."""
    if stats is None:
        return sat.get("pipeline", {}).get("mean_batch_tokens")
    d = stats_window(stats, sat.get("window_epoch_ms"))
    if not d or d.get("encodes", 0) <= 0:
        return None
    return d["tokens"] / d["encodes"]


def mean_batch(files, stats=None):
    """Median over saturation rounds of the mean batch size, rounded, at least 1."""
    values = [batch_of(phase(load(f), "saturation"), stats) for f in files if phase(load(f), "saturation")]
    values = [v for v in values if v]
    return max(1, round(statistics.median(values))) if values else 1


def merged_run(raw, w, s):
    """One system's results in one workload: its saturation rounds (w{w}-{s}-sat{r}.json) and load levels
    (w{w}-{s}-load{pct}.json) as one run. Saturation = the median of the rounds; the phase shown for
    details (CPU, pipeline) is the median round (the lower middle one for an even count)."""
    rounds = []
    for f in sorted(glob.glob(os.path.join(raw, f"w{w}-{s}-sat*.json"))):
        r = load(f)
        if r and phase(r, "saturation"):
            rounds.append(r)
    if not rounds:
        return None
    rounds.sort(key=lambda r: phase(r, "saturation")["decided_tokens_per_s"])
    values = [phase(r, "saturation")["decided_tokens_per_s"] for r in rounds]
    effs = [e for e in (efficiency({"phases": [phase(r, "saturation")]}) for r in rounds) if e]
    parts = list(rounds)
    phases = [dict(phase(rounds[(len(rounds) - 1) // 2], "saturation"))]
    phases[0]["decided_tokens_per_s"] = statistics.median(values)
    for pct in ("25", "50", "90"):
        r = load(os.path.join(raw, f"w{w}-{s}-load{pct}.json"))
        if r and phase(r, f"load-{pct}"):
            phases.append(phase(r, f"load-{pct}"))
            parts.append(r)
    # Drain rounds that drained before the timeout (the others have no rate to compare), slowest first.
    drains = [phase(r, "backlog") for r in (load(f) for f in sorted(glob.glob(os.path.join(raw, f"w{w}-{s}-drain*.json"))))
              if r and phase(r, "backlog") and phase(r, "backlog").get("drained")]
    return {"phases": phases, "saturation_rounds": values, "efficiency_median": statistics.median(effs) if effs else None,
            "drains": sorted(drains, key=lambda p: p["decided_tokens_per_s"]),
            "workload": rounds[0].get("workload", {}),
            "records_sent": sum(p.get("records_sent", 0) for p in parts),
            "flagged_decisions": sum(p.get("flagged_decisions", 0) for p in parts),
            "duplicate_decisions": sum(p.get("duplicate_decisions", 0) for p in parts),
            "undecided_records": sum(q.get("undecided_records", 0) for p in parts for q in p.get("phases", []))}


def efficiency(run):
    """Saturation tokens/s per core the system under test used in that window (median over rounds if merged)."""
    if run and run.get("efficiency_median"):
        return run["efficiency_median"]
    p = phase(run, "saturation")
    if not p:
        return None
    cores = p["cpu"]["processes_cores"].get("sut")
    return ratio(p["decided_tokens_per_s"], cores)


def round_range(values):
    """' (min–max)' of several rounds, '' for one."""
    return f" ({fmt(min(values), 0)}–{fmt(max(values), 0)})" if len(values) > 1 else ""


def drain_rates(run):
    """Backlog-drain tokens/s of the drained rounds, slowest first."""
    return [p["decided_tokens_per_s"] for p in (run or {}).get("drains", [])]


def drain_rate(run):
    """Median backlog-drain tokens/s over the drained rounds, or None."""
    values = drain_rates(run)
    return statistics.median(values) if values else None


def busiest_threads(cpu, n=6):
    """'name cores, ...' of the system under test's busiest threads in one window's CPU record."""
    return ", ".join(f"{name} {v:.2f}" for name, v in list(cpu["threads_cores"].get("sut", {}).items())[:n])


def jmh(path):
    """{'encode': tokens/s, 'matmul': tokens/s, 'batch': b} from JMH's JSON."""
    data = load(path)
    if not data:
        return None
    out = {}
    for r in data:
        name = r["benchmark"].rsplit(".", 1)[1]
        b = int(r["params"]["batch"])
        score = r["primaryMetric"]["score"]
        unit = r["primaryMetric"]["scoreUnit"]
        seconds = score * {"us/op": 1e-6, "ms/op": 1e-3, "ns/op": 1e-9, "s/op": 1.0}[unit]
        out[name] = b / seconds
        out["batch"] = b
    return out


def fmt(v, digits=0):
    if v is None:
        return "—"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def verdict(value, target, higher_is_better=True):
    if value is None:
        return "not measured"
    ok = value >= target if higher_is_better else value <= target
    return "**met**" if ok else "**missed**"


def sample_gemm(raw):
    """The metrics encoder's full-code sample GEMM from the sidecar's start-up log line: BF16 when its bf16Sample names an
    SAE, F32 when it names none (or the line predates the key); None without a metrics encoder (GPU, sampling off)."""
    for name in sorted(os.listdir(raw)):
        if name.endswith("-saeguard.log"):
            with open(os.path.join(raw, name), errors="replace") as f:
                for line in f:
                    if "metrics' full encodes run on their own thread" in line:
                        return "BF16" if "bf16Sample=[" in line and "bf16Sample=[]" not in line else "F32"
    return None


def report(raw, out_md, readme=None):
    env = load(os.path.join(raw, "env.json")) or {}
    sae = load(os.path.join(raw, "sae.json")) or {}
    runs = {(w, s): merged_run(raw, w, s) for w in WORKLOADS for s in SYSTEMS}
    stats = {(w, s): stats_lines(os.path.join(raw, f"w{w}-{s}.stats")) for w in WORKLOADS for s in PY_SYSTEMS}
    present = [w for w in WORKLOADS if any(runs[(w, s)] for s in SYSTEMS)]
    py = env.get("python_runtime", {})
    blas = ", ".join(p for p in py.get("blas_libraries_loaded", []) if "blas" in p) or "?"
    withheld = reference_blas(py)
    sat = {k: (phase(r, "saturation") or {}).get("decided_tokens_per_s") for k, r in runs.items()}

    def lat(k, load_name, q):
        p = phase(runs[k], load_name)
        return None if p is None else p["latency_ms"].get(q)

    L = []
    L.append(f"Measured {env.get('date', '?')} ({env.get('kind', '?')} run) on {env.get('cpu', '?')}, {env.get('cores', '?')} cores "
             f"(`nproc`), {env.get('mem_gib', '?')} GiB RAM, a shared VM: load average {env.get('loadavg_start', '?')} at the start, "
             f"{env.get('loadavg_end', '?')} at the end (1/5/15 min). Everything ran on these cores at once: the Kafka broker "
             "(`saeguard broker`, one JVM), the load generator (one JVM), the system under test, and other tenants' builds.")
    L.append("")
    bf16 = bool(env.get("bf16", False))
    py_bf16 = str(py.get("encoder_gemm", "")).startswith("bf16")
    gemm = ("**BF16 encoder GEMM** (`engine.cpu_bf16: true`; W_enc held in BF16, F32 after the GEMM)" if bf16
            else "F32 weights and GEMM")
    sample = sample_gemm(raw)
    if sample:
        gemm += f" (every decision; the metrics' full-code sample, off the decision path: {sample}, `metrics.sample_precision`)"
    L.append(f"- **saeguard**: `saeguard run` (JDK: {env.get('java', '?')}), libtorch {env.get('libtorch', '2.7.1')} via DJL 0.35, {env.get('device', 'cpu').upper()}, {gemm}, "
             f"`engine.threads: {env.get('sidecar_engine_threads', '?')}` (intra-op; 1 inter-op), defaults otherwise "
             "(`max_batch_tokens` 512, `max_delay_ms` 5, `max_active` 256, at-least-once).")
    if withheld:
        L.append("**Every ratio against a Python baseline is withheld: the baselines' torch ran its GEMMs on Debian's reference "
                 "BLAS** (`/usr/lib/*/blas/libblas.so.3`), on which batched.py decided ~28x fewer tokens/s than on OpenBLAS. "
                 "Install `libopenblas0-pthread` and run again.")
        L.append("")
    L.append(f"- **naive.py / batched.py / sliced.py** (sliced.py: batched.py's loop encoding only the detector's column): Python {py.get('python', '?')}, torch {py.get('torch', '?')} "
             f"(`BLAS_INFO={py.get('torch_blas_info', '?')}`, i.e. the system `libblas.so.3`, which resolved to {blas}), "
             f"`torch.get_num_threads()` = {py.get('torch_threads', '?')}, confluent-kafka, numpy {py.get('numpy', '?')}, device {py.get('device', 'cpu')}; "
             f"encoder GEMM: {'**' if py_bf16 else ''}{py.get('encoder_gemm', 'f32 (x @ W_enc, BLAS)')}{'**' if py_bf16 else ''}"
             f"{'' if py_bf16 == bf16 else ' (**not the sidecar' + chr(39) + 's precision**: `SAEGUARD_BENCH_BF16=sidecar`)'}.")
    L.append(f"- SAE {sae.get('params', {}).get('shape', '?')} {sae.get('architecture', 'JumpReLU')}, random weights (`BenchSae`, the JMH benchmark's seed), "
             f"SAELens layout; detector: feature {sae.get('feature', '?')} ≥ {sae.get('threshold', 0):.4f} flags "
             f"(~{100 * sae.get('params', {}).get('fire_fraction', 0):.0f} % of tokens).")
    for w in present:
        L.append(f"- Workload {w}, {WORKLOADS[w]}; records F32, "
                 f"{fmt((next((runs[(w, s)] for s in SYSTEMS if runs[(w, s)]), None) or {}).get('workload', {}).get('record_bytes'))} bytes.")
    L.append("")
    L.append("### Throughput and latency")
    L.append("")
    L.append(f"Saturation: decided tokens/s with the system always ~{env.get('backlog_s', 2)} s of work behind; median of the rounds (range in brackets), "
             "the three systems measured in rotation so that the machine's drifting load hits them alike. Latency: ms from the record's "
             "scheduled send time (its Kafka timestamp) to its decision's arrival at the load generator, p50 / p95 / p99, at "
             "25 / 50 / 90 % of that system's own saturation rate.")
    L.append("")
    L.append("Tokens per CPU-second: saturation tokens/s divided by the cores the system under test itself used in that window "
             "(from `/proc`): how much work each system gets out of the CPU it was given, which other tenants' load moves less "
             "than the raw rate. Samples: decisions measured at 25 / 50 / 90 %.")
    L.append("")
    L.append("| workload | system | saturation tokens/s | tokens per CPU-second | 25 % load | 50 % load | 90 % load | kept up at 90 % | samples | flagged |")
    L.append("|---|---|---:|---:|---:|---:|---:|---|---:|---:|")
    for w in present:
        for s in SYSTEMS:
            r = runs[(w, s)]
            if not r:
                continue
            cells = []
            for ln in LOADS:
                p = phase(r, ln)
                cells.append("—" if p is None or not p["latency_ms"].get("count") else
                             f"{fmt(p['latency_ms']['p50'], 1)} / {fmt(p['latency_ms']['p95'], 1)} / {fmt(p['latency_ms']['p99'], 1)}")
            p90 = phase(r, "load-90")
            kept = "—" if p90 is None else ("yes" if p90.get("kept_up") else f"no ({fmt(p90['decided_tokens_per_s'], 1)} of {fmt(p90['offered_tokens_per_s'], 1)})")
            decided = max(1, r.get("records_sent", 1))
            samples = " / ".join(str((phase(r, ln) or {}).get("latency_ms", {}).get("count", "—")) for ln in LOADS)
            L.append(f"| {w} | {s} | {fmt(sat[(w, s)], 1)}{round_range(r.get('saturation_rounds', []))} | {fmt(efficiency(runs[(w, s)]), 0)} | {cells[0]} | {cells[1]} | {cells[2]} | "
                     f"{kept} | {samples} | {100 * r.get('flagged_decisions', 0) / decided:.1f} % |")
    L.append("")

    # Ceilings
    ceil = {}
    for w in present:
        k = load(os.path.join(raw, f"w{w}-kafka.json"))
        j = jmh(os.path.join(raw, f"w{w}-encode-jmh.json"))
        pye = {s: load(os.path.join(raw, f"w{w}-{s}.encode.json")) for s in PY_SYSTEMS}
        ceil[w] = (k, j, pye)

    L.append("### Ratios against the targets (issue 18)")
    L.append("")
    L.append("| claim | workload | measured | target | |")
    L.append("|---|---|---:|---:|---|")
    rows = []
    for w in present:
        if w == "1":
            v = ratio(sat[(w, "saeguard")], sat[(w, "naive")])
            rows.append(("saeguard / naive, sustained tokens/s", w, v, "≥ 10×", verdict(v, 10)))
        for base, target in (("batched", 10), ("sliced", 2)):
            v = ratio(sat[(w, "saeguard")], sat[(w, base)])
            rows.append((f"saeguard / {base}, sustained tokens/s", w, v, f"≥ {target}×", verdict(v, target)))
            v = ratio(lat((w, "saeguard"), "load-50", "p99"), lat((w, base), "load-50", "p99"))
            rows.append((f"saeguard / {base}, p99 latency at 50 % load", w, v, "≤ 0.5×", verdict(v, 0.5, False)))
        j = ceil[w][1]
        v = ratio(sat[(w, "saeguard")], j and j.get("encode"))
        rows.append((f"saeguard pipeline / JMH encode-only at the batch it ran ({j['batch'] if j else '?'} tokens)", w, v, "≥ 0.75×",
                     verdict(v, 0.75)))
    drain = {k: drain_rate(r) for k, r in runs.items()}
    for w in present:
        k = ceil[w][0]
        kd = k and k["fetch_and_decode"]["tokens_per_s"]
        v = ratio(sat[(w, "saeguard")], kd)
        rows.append(("saeguard pipeline / Kafka fetch + decode ceiling, saturation (load generator producing on the same cores)", w, v,
                     "≥ 0.5×", verdict(v, 0.5)))
        if drain[(w, "saeguard")]:
            v = ratio(drain[(w, "saeguard")], kd)
            rows.append(("saeguard pipeline / Kafka fetch + decode ceiling, backlog drain (nothing producing)", w, v, "≥ 0.5×", verdict(v, 0.5)))
            for base, target in (("batched", 10), ("sliced", 2)):
                if drain[(w, base)]:
                    v = ratio(drain[(w, "saeguard")], drain[(w, base)])
                    rows.append((f"saeguard / {base}, backlog drain tokens/s", w, v, f"≥ {target}×", verdict(v, target)))
    for w in present:
        v = ratio(efficiency(runs[(w, "saeguard")]), efficiency(runs[(w, "batched")]))
        rows.append(("(context) saeguard / batched, tokens per CPU-second", w, v, "—", ""))
        p = phase(runs[(w, "saeguard")], "saturation")
        q = (p or {}).get("pipeline", {})
        v = ratio(p and p["decided_tokens_per_s"], q.get("encode_tokens_per_s_while_encoding"))
        rows.append(("(context) saeguard pipeline / its own encode rate in the same window", w, v, "≥ 0.75×",
                     "met" if v and v >= 0.75 else ("missed" if v else "")))
    for name, w, v, t, ok in rows:
        against_python = any(f"/ {b}" in name for b in PY_SYSTEMS)
        if withheld and against_python:
            L.append(f"| {name} | {w} | withheld | {t} | the baseline ran on the reference BLAS |")
        else:
            L.append(f"| {name} | {w} | {fmt(v, 2)}× | {t} | {ok} |")
    L.append("")
    L.append("### Ceilings, measured in the same run")
    L.append("")
    L.append("Kafka: one plain consumer reading the saeguard run's activation records back from the broker (`ConsumeCeiling`, "
             "like `kafka-consumer-perf-test`), raw and with the sidecar's per-record decode + copy to `float[]`. "
             f"Encode: `EncodeBenchmark` (JMH, `DeviceSae.encode` with `max_active` 256{' and its GEMM in BF16' if bf16 else ''}, and the bare libtorch F32 GEMM) at the mean "
             "batch the sidecar ran in its saturation window, with the sidecar stopped. Python encode: `encode_ceiling.py`, the "
             "baselines' own torch encode at the batch each ran.")
    L.append("")
    L.append("| workload | Kafka fetch tokens/s (MB/s) | fetch + decode tokens/s | JMH encode tokens/s (batch) | JMH GEMM tokens/s | saeguard / encode | naive.py torch encode tokens/s (batch) | naive / its encode | batched.py torch encode tokens/s (batch) | batched / its encode | sliced.py torch encode tokens/s (batch) | sliced / its encode |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in present:
        k, j, pye = ceil[w]
        def pyc(s):
            d = pye.get(s)
            if not d:
                return None, None
            b, v = next(iter(d["batches"].items()))
            return v["tokens_per_s"], b
        nv, nb = pyc("naive")
        bv, bb = pyc("batched")
        sv, sb_ = pyc("sliced")
        L.append(f"| {w} | {fmt(k and k['fetch']['tokens_per_s'])} ({fmt(k and k['fetch']['mb_per_s'])}) | "
                 f"{fmt(k and k['fetch_and_decode']['tokens_per_s'])} | {fmt(j and j.get('encode'))} ({j['batch'] if j else '—'}) | "
                 f"{fmt(j and j.get('matmul'))} | {fmt(ratio(sat[(w, 'saeguard')], j and j.get('encode')), 2)} | "
                 f"{fmt(nv, 1)} ({nb or '—'}) | {fmt(ratio(sat[(w, 'naive')], nv), 2)} | {fmt(bv, 1)} ({bb or '—'}) | "
                 f"{fmt(ratio(sat[(w, 'batched')], bv), 2)} | {fmt(sv, 1)} ({sb_ or '—'}) | {fmt(ratio(sat[(w, 'sliced')], sv), 2)} |")
    L.append("")
    if any(drain.values()):
        L.append("### Backlog drain")
        L.append("")
        L.append("Each system stopped (SIGSTOP) while the load generator queued about 20 s of its saturation rate (at most "
                 "200,000 tokens), then resumed (SIGCONT): tokens/s from the resume to the backlog's last decision, median of "
                 "the rounds (range in brackets). Nothing else produces while it drains, so this is the system's own rate on "
                 "these cores, the one to set beside Kafka's fetch + decode ceiling. CPU in cores over the drain, from `/proc`.")
        L.append("")
        L.append("| workload | system | drain tokens/s | backlog tokens | drain s | system under test | broker | load generator | machine | busiest threads of the system under test |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for w in present:
            for s in SYSTEMS:
                drains = (runs[(w, s)] or {}).get("drains", [])
                if not drains:
                    continue
                p = drains[(len(drains) - 1) // 2]  # the median round (the lower middle one for an even count)
                c = p["cpu"]
                pc = c["processes_cores"]
                L.append(f"| {w} | {s} | {fmt(drain[(w, s)], 0)}{round_range(drain_rates(runs[(w, s)]))} | {fmt(p.get('backlog_tokens'))} | {p['window_s']:.2f} | "
                         f"{pc.get('sut', 0):.2f} | {pc.get('broker', 0):.2f} | {pc.get('loadgen', 0):.2f} | {c['machine_cores']:.2f} | {busiest_threads(c)} |")
        L.append("")
    L.append("### Where the time goes (saturation windows)")
    L.append("")
    L.append("CPU in cores (2.0 = both cores busy for the whole window), from `/proc`, in the median saturation round: the "
             "system under test (its busiest threads in the last column), the other two systems idling on their own topics, the "
             "broker, the load generator, and everything else on the machine (other tenants).")
    L.append("")
    L.append("| workload | system | machine | system under test | idle systems | broker | load generator | others | busiest threads of the system under test |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for w in present:
        for s in SYSTEMS:
            p = phase(runs[(w, s)], "saturation")
            if not p:
                continue
            c = p["cpu"]
            pc = c["processes_cores"]
            th = busiest_threads(c)
            idle = sum(v for k, v in pc.items() if k.startswith("idle-"))
            L.append(f"| {w} | {s} | {c['machine_cores']:.2f} | {pc.get('sut', 0):.2f} | {idle:.2f} | {pc.get('broker', 0):.2f} | "
                     f"{pc.get('loadgen', 0):.2f} | {c['others_cores']:.2f} | {th} |")
    L.append("")
    L.append("Inside each system, saturation window:")
    L.append("")
    for w in present:
        p = phase(runs[(w, "saeguard")], "saturation")
        if p and p.get("pipeline"):
            q = p["pipeline"]
            j = ceil[w][1]
            L.append(f"- workload {w}, saeguard: {q['batches']:.0f} batches of {q['mean_batch_tokens']:.0f} tokens on average; the engine "
                     f"thread spent {100 * q['encode_busy_fraction']:.0f} % of the window inside `DeviceSae.encode`, which ran at "
                     f"{fmt(q['encode_tokens_per_s_while_encoding'])} tokens/s while encoding (JMH alone: {fmt(j and j.get('encode'))}); "
                     f"{fmt(q['truncated_tokens'])} tokens had more than 256 active features (truncated).")
        for s in PY_SYSTEMS:
            ps = phase(runs[(w, s)], "saturation")
            d = stats_window(stats[(w, s)], ps and ps.get("window_epoch_ms"))
            if d and d.get("wall_s"):
                parts = ", ".join(f"{k[:-2]} {100 * d[k] / d['wall_s']:.0f} %" for k in
                                  ("poll_s", "decode_s", "encode_s", "detect_s", "produce_s", "commit_s"))
                L.append(f"- workload {w}, {s}.py: {d['encodes']:.0f} encodes of {d['tokens'] / max(1, d['encodes']):.0f} tokens on "
                         f"average; share of wall time: {parts}; encode ran at {fmt(d['tokens'] / d['encode_s'] if d['encode_s'] else None)} "
                         "tokens/s while encoding.")
    spread = []
    for w in present:
        for sname in SYSTEMS:
            for name in ("saturation", "load-50"):
                bp = (phase(runs[(w, sname)], name) or {}).get("latency_ms_by_partition") or {}
                bp = {k: v for k, v in bp.items() if v.get("count", 0) >= 20 and v.get("p50") is not None}
                if len(bp) >= 2:
                    lo = min(bp, key=lambda k: bp[k]["p50"])
                    hi = max(bp, key=lambda k: bp[k]["p50"])
                    spread.append(f"workload {w}, {sname}, {name}: p50 {fmt(bp[lo]['p50'])} ms (partition {lo}) to "
                                  f"{fmt(bp[hi]['p50'])} ms (partition {hi}), {fmt(bp[hi]['p50'] / max(bp[lo]['p50'], 1e-9), 2)}x")
    if spread:
        L.append("")
        L.append("Latency by partition (does one partition wait longer than the others? from `latency_ms_by_partition` in "
                 "the raw JSON; partitions with at least 20 decisions): " + "; ".join(spread) + ".")
    late = []
    for w in present:
        for sname in SYSTEMS:
            cells = []
            for name, label in (("load-25", "25 %"), ("load-50", "50 %"), ("load-90", "90 %")):
                g = (phase(runs[(w, sname)], name) or {}).get("generator_behind_ms") or {}
                if g.get("p99") is not None:
                    cells.append(f"{label} {fmt(g['p50'], 1)} / {fmt(g['p99'], 1)} / {fmt(g['max'], 1)}")
            if cells:
                late.append(f"workload {w}, {sname}: " + ", ".join(cells))
    if late:
        L.append("")
        L.append("How late the load generator sent (ms behind each record's scheduled time, p50 / p99 / max, from "
                 "`generator_behind_ms` in the raw JSON). Latency counts from the scheduled time, so this lateness, the "
                 "generator's share of the same cores, is inside every latency percentile above: " + "; ".join(late) + ".")
    engine_rows = []
    for w in present:
        for name, label in (("saturation", "saturation"), ("load-25", "25 % load"), ("load-50", "50 % load"), ("load-90", "90 % load")):
            q = (phase(runs[(w, "saeguard")], name) or {}).get("pipeline", {})
            if "engine_busy" in q:
                cells = " | ".join(f"{100 * q.get('engine_busy_' + k, 0):.1f}" for k in ENGINE_PARTS)
                engine_rows.append(f"| {w} | {label} | {q['mean_batch_tokens']:.0f} | {100 * q['engine_busy']:.1f} | {cells} | "
                                   f"{100 * max(0.0, 1 - q['engine_busy']):.1f} |")
    if engine_rows:
        L.append("")
        L.append("saeguard's engine thread, by part of the batch work (`saeguard_engine_busy_seconds_total{part}`, timed on the "
                 "engine thread itself, scraped at each window's start and end): % of the window's wall time. `waiting` is the "
                 "rest (the engine had nothing to do, or waited for a batch's `max_delay`).")
        L.append("")
        L.append("| workload | window | mean batch | busy | " + " | ".join(ENGINE_PARTS) + " | waiting |")
        L.append("|---|---|---:|---:|" + "---:|" * len(ENGINE_PARTS) + "---:|")
        L.extend(engine_rows)
    for w in present:
        for suffix, scope in (("-sat", "inside the saturation windows"), ("", "whole run (saturation rounds and loads)")):
            t = os.path.join(raw, f"w{w}-saeguard{suffix}.jfr.txt")
            if os.path.exists(t):
                with open(t) as f:
                    text = f.read()
                block = text.split("\n\n")[1] if text.count("\n\n") >= 1 else text
                L.append("")
                L.append(f"JFR, workload {w}, saeguard, {scope}: the engine thread's samples by pipeline stage; per-thread "
                         f"hottest frames in `{os.path.relpath(t, os.path.dirname(out_md))}`.")
                L.append("")
                L.append("```")
                L.append(block.strip())
                L.append("```")
    L.append("")
    L.append("Sanity: every system ran the same detector on the same records; `flagged` above is the share of decisions that "
             "were not `allow` (the sidecar keeps the 256 strongest of the ~320 features active per token of this random SAE, "
             "the baselines look at the dense codes, so their shares may differ slightly). Records sent, duplicates and undecided "
             "records per run are in the raw JSON.")
    png = os.path.splitext(out_md)[0] + ".png"
    plotted = plot(runs, present, png)
    L.append("")
    L.append(f"Plot: `{os.path.basename(png)}` (p50 and p99 latency against decided tokens/s, one panel per workload)."
             if plotted else "Plot: not drawn (python3-matplotlib is not installed: `apt-get install python3-matplotlib`).")
    L.append(f"Raw files: `{os.path.relpath(raw, os.path.dirname(out_md))}/`.")
    body = "\n".join(L) + "\n"
    with open(out_md, "w") as f:
        f.write(f"# Pipeline benchmark, {env.get('date', '?')}\n\n" + body)
    if readme:
        with open(readme) as f:
            text = f.read()
        begin, end = "<!-- BEGIN pipeline-results (written by run.sh) -->", "<!-- END pipeline-results -->"
        if begin not in text or end not in text:
            sys.exit(f"{readme}: markers {begin} / {end} not found")
        pre, rest = text.split(begin, 1)
        _, post = rest.split(end, 1)
        body = body.replace(f"`{os.path.relpath(raw, os.path.dirname(out_md))}/`", f"`results/{os.path.basename(raw)}/`")
        body = body.replace(f"`{os.path.basename(png)}`", f"`results/{os.path.basename(png)}`")
        body = body.replace(f"`{os.path.basename(raw)}/", f"`results/{os.path.basename(raw)}/")
        body = body.replace("\n### ", "\n#### ")
        with open(readme, "w") as f:
            f.write(pre + begin + "\n" + body + end + post)


def plot(runs, present, png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    colors = {"saeguard": "tab:blue", "naive": "tab:red", "batched": "tab:orange", "sliced": "tab:green"}
    fig, axes = plt.subplots(1, len(present), figsize=(6 * len(present), 4.5), squeeze=False)
    for ax, w in zip(axes[0], present):
        for s in SYSTEMS:
            r = runs[(w, s)]
            if not r:
                continue
            pts = [phase(r, ln) for ln in LOADS]
            pts = [p for p in pts if p and p["latency_ms"].get("count")]
            x = [p["decided_tokens_per_s"] for p in pts]
            ax.plot(x, [p["latency_ms"]["p99"] for p in pts], "o-", color=colors[s], label=f"{s} p99")
            ax.plot(x, [p["latency_ms"]["p50"] for p in pts], "s--", color=colors[s], alpha=0.6, label=f"{s} p50")
            sp = phase(r, "saturation")
            if sp:
                ax.axvline(sp["decided_tokens_per_s"], color=colors[s], linestyle=":", alpha=0.7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("decided tokens/s (points: 25 / 50 / 90 % load; dotted: saturation)")
        ax.set_ylabel("decision latency, ms")
        ax.set_title(f"workload {w}: {WORKLOADS[w]}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    return True


def soak(raw, out_md):
    env = load(os.path.join(raw, "env.json")) or {}
    L = [f"# Soak, {env.get('date', '?')}", ""]
    found = False
    for w, what in (("1", "64 requests, 1 token per record"), ("2", "64 requests, 64 tokens per record")):
        r = load(os.path.join(raw, f"soak-w{w}-saeguard.json"))
        p = phase(r, "soak-50") if r else None
        if not p:
            continue
        found = True
        sat = phase(r, "saturation")["decided_tokens_per_s"]
        L.append(f"## Workload {w}")
        L.append("")
        L.append(f"saeguard sidecar, workload {w} ({what}), {p['window_s']:.0f} s at 50 % of its measured "
                 f"saturation ({sat:,.1f} tokens/s → offered {p['offered_tokens_per_s']:,.1f}); {env.get('cores', '?')} cores, load average "
                 f"{env.get('loadavg_start', '?')} at the start of the run. Heap: used after `jcmd PID GC.run` (then `GC.heap_info`); RSS: "
                 "`/proc/PID/status` VmRSS. Latency: p50 / p99 of the records scheduled since the previous snapshot.")
        L.append("")
        L.append("| t (s) | sidecar heap after GC MiB | sidecar RSS MiB | broker RSS MiB | p50 / p99 ms |")
        L.append("|---:|---:|---:|---:|---:|")
        mem = p["memory"]
        for m in mem:
            lt = m.get("latency_ms_since_previous", {})
            heap = m["heap_used_after_gc_mib"].get("sut")
            L.append(f"| {m['t_s']:.0f} | {heap if isinstance(heap, str) else f'{heap:,.1f}'} | {m['rss_mib'].get('sut', 0):,.0f} | "
                     f"{m['rss_mib'].get('broker', 0):,.0f} | {fmt(lt.get('p50'), 1)} / {fmt(lt.get('p99'), 1)} |")
        L.append("")
        a, b = mem[0], mem[-1]
        ha, hb = a["heap_used_after_gc_mib"].get("sut"), b["heap_used_after_gc_mib"].get("sut")
        if isinstance(ha, (int, float)) and isinstance(hb, (int, float)):
            # From the first minute on: t = 0 is taken right after the saturation phase, whose backlog still fills the heap and RSS.
            m1 = mem[1] if len(mem) > 2 else a
            h1 = m1["heap_used_after_gc_mib"].get("sut")
            L.append(f"Start → end: heap after GC {ha:,.1f} → {hb:,.1f} MiB ({hb - ha:+,.1f}), RSS {a['rss_mib']['sut']:,.0f} → "
                     f"{b['rss_mib']['sut']:,.0f} MiB ({b['rss_mib']['sut'] - a['rss_mib']['sut']:+,.0f}); from minute "
                     f"{m1['t_s'] / 60:.0f} to the end: heap {h1:,.1f} → {hb:,.1f} MiB, RSS {m1['rss_mib']['sut']:,.0f} → "
                     f"{b['rss_mib']['sut']:,.0f} MiB ({b['rss_mib']['sut'] - m1['rss_mib']['sut']:+,.0f}); decided "
                     f"{p['decided_tokens_per_s']:,.1f} tokens/s, kept up: {p.get('kept_up')}, overall p50 / p99 "
                     f"{fmt(p['latency_ms'].get('p50'), 1)} / {fmt(p['latency_ms'].get('p99'), 1)} ms.")
        L.append("")
    if not found:
        L.append("No soak phase in the results.")
    with open(out_md, "w") as f:
        f.write("\n".join(L) + "\n")


def epoch_ms(iso):
    """'2026-11-22T18:03:37.828002003Z' -> milliseconds since the epoch."""
    import datetime
    base, _, frac = iso.rstrip("Z").partition(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()
    return int(t * 1000) + int((frac + "000")[:3])


def jfr_summary(path, top=8, windows=None):
    """Counts JFR's execution samples (threads running Java) and native-method samples (threads inside a
    native method: libtorch through JNI, socket waits) per thread, and each thread's top frames; with
    `windows` ([start, end] epoch ms), only the samples inside them."""
    import collections
    import subprocess
    out = subprocess.run(["jfr", "print", "--json", "--stack-depth", "64", "--events", "jdk.ExecutionSample,jdk.NativeMethodSample", path],
                         capture_output=True, text=True, check=True).stdout
    events = json.loads(out)["recording"]["events"]
    per_thread = collections.defaultdict(collections.Counter)
    totals = collections.Counter()
    # The engine thread's samples by pipeline stage: the outermost-listed stage found on the stack wins.
    fvu = "FVU sampling (metrics.fvu_sample_rate: reconstructing sampled rows)"
    stages = [("EngineLoop.sampleReconstruction", fvu), ("EngineLoop.sampleForFvu", fvu), ("EngineLoop.reconstructForFvu", fvu),
              ("FeatureStats.record", "feature statistics"), ("TokenNorms.of", "token norms"),
              ("DetectorEngine.evaluate", "detectors"), ("DecisionPublisher.publish", "decision JSON + producer.send"),
              ("DeadLetterPublisher.send", "dead letters"), ("DeviceSae.encode", "DeviceSae.encode (the batch: GEMM, JumpReLU, top-k)"),
              ("EngineLoop.flush", "batch assembly (copying rows)"), ("EngineLoop.run", "engine loop (queue, waiting)")]
    engine = collections.Counter()
    # A Kafka broker's samples (its own recording): request handling by API, from the KafkaApis.handle* frame on the stack.
    apis = collections.Counter()
    for e in events:
        v = e["values"]
        if windows and not any(a <= epoch_ms(v["startTime"]) < b for a, b in windows):
            continue
        thread = (v.get("sampledThread") or {}).get("javaName") or "?"
        frames = (v.get("stackTrace") or {}).get("frames") or []
        api = next((f["method"]["name"] for f in frames if f["method"]["type"]["name"].endswith("KafkaApis")
                    and f["method"]["name"].startswith("handle") and f["method"]["name"] != "handle"), None)
        if api:
            apis[api] += 1
        if thread == "saeguard-engine":
            names = [f"{f['method']['type']['name'].rsplit('/', 1)[-1].rsplit('.', 1)[-1]}.{f['method']['name']}" for f in frames]
            engine[next((label for key, label in stages if key in names), "other")] += 1
        kind = "java" if e["type"] == "jdk.ExecutionSample" else "native"
        if frames:
            m = frames[0]["method"]
            top_frame = f"{m['type']['name'].rsplit('.', 1)[-1]}.{m['name']}"
        else:
            top_frame = "?"
        per_thread[thread][f"[{kind}] {top_frame}"] += 1
        totals[(thread, kind)] += 1
    waits = ("EPoll.wait", "LinuxWatchService.poll", "Object.wait", "Unsafe.park", "Thread.sleep", "Net.poll", "Net.accept")
    scope = f"inside {len(windows)} saturation window(s)" if windows else "the whole recording"
    lines = [f"JFR samples in {os.path.basename(path)}, {scope} (settings=profile, one sample per thread every 10-20 ms; "
             "threads that only waited on sockets, locks or timers left out)", ""]
    n = sum(engine.values())
    if n:
        lines.append(f"saeguard-engine by pipeline stage ({n} samples while running or in native code):")
        for label, k in engine.most_common():
            lines.append(f"  {100 * k / n:5.1f} %  {label}")
        lines.append("")
    n = sum(apis.values())
    if n:
        lines.append(f"Kafka broker request handlers by API ({n} samples inside KafkaApis.handle*):")
        for label, k in apis.most_common(10):
            lines.append(f"  {100 * k / n:5.1f} %  {label}")
        lines.append("")

    def busy(c):
        return sum(k for f, k in c.items() if not f.endswith(waits))
    for thread, c in sorted(per_thread.items(), key=lambda kv: -busy(kv[1])):
        n = sum(c.values())
        if busy(c) < 20:
            continue
        lines.append(f"{thread}: {n} samples ({totals[(thread, 'java')]} running Java, {totals[(thread, 'native')]} in native methods)")
        for frame, k in c.most_common(top):
            lines.append(f"  {100 * k / n:5.1f} %  {frame}")
    return "\n".join(lines)


def main(argv):
    if len(argv) >= 2 and argv[0] == "batch":
        files, stats = argv[1:], None
        if files[0] == "--stats":
            stats, files = stats_lines(files[1]), files[2:]
        print(mean_batch(files, stats))
    elif len(argv) >= 2 and argv[0] == "median-saturation":
        values = [phase(load(f), "saturation")["decided_tokens_per_s"] for f in argv[1:] if phase(load(f), "saturation")]
        print(statistics.median(values))
    elif len(argv) >= 3 and argv[0] == "report":
        readme = argv[argv.index("--readme") + 1] if "--readme" in argv else None
        report(argv[1], argv[2], readme)
    elif len(argv) >= 2 and argv[0] == "jfr":
        windows = [phase(load(f), "saturation")["window_epoch_ms"] for f in argv[2:] if phase(load(f), "saturation")]
        print(jfr_summary(argv[1], windows=windows or None))
    elif len(argv) >= 3 and argv[0] == "soak":
        soak(argv[1], argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
