"""What a user would otherwise write: the pieces shared by naive.py, batched.py and sliced.py.

A reader for safetensors (the `safetensors` package is not installed here; the format is a u64
little-endian header length, a JSON header, then the raw tensors), the SAELens JumpReLU encoder in
torch (`relu(x @ W_enc + b_enc) * (pre > threshold)`), the one-feature threshold detector read from
the same YAML file the sidecar loads, and the decision JSON (topics/schemas/decision.schema.json).

Run with Debian's interpreter (/usr/bin/python3: python3-torch, python3-numpy, python3-confluent-kafka,
python3-yaml). Activation values are never printed.
"""

import json
import os
import re
import struct
import sys
import time

import numpy as np
import torch
import yaml

from blas import reference_blas  # noqa: F401  (re-exported: run.sh and check_baselines.py call sb.reference_blas)


def read_header(buf):
    """(header dict without __metadata__, metadata dict, offset of the data section) of a safetensors buffer."""
    (n,) = struct.unpack_from("<Q", buf, 0)
    header = json.loads(bytes(buf[8:8 + n]))
    meta = header.pop("__metadata__", {}) or {}
    return header, meta, 8 + n


def tensor(buf, header, base, name):
    """Tensor `name` as a float32 numpy array (a view for F32; widened for F16 / BF16)."""
    t = header[name]
    begin, end = t["data_offsets"]
    shape = t["shape"]
    dtype = t["dtype"]
    count = int(np.prod(shape)) if shape else 1
    if dtype == "F32":
        a = np.frombuffer(buf, dtype="<f4", count=count, offset=base + begin)
    elif dtype == "F16":
        a = np.frombuffer(buf, dtype="<f2", count=count, offset=base + begin).astype(np.float32)
    elif dtype == "BF16":
        u = np.frombuffer(buf, dtype="<u2", count=count, offset=base + begin).astype(np.uint32)
        a = (u << 16).view(np.float32)
    else:
        raise ValueError(f"tensor {name}: unsupported dtype {dtype}")
    if end - begin != count * {"F32": 4, "F16": 2, "BF16": 2}[dtype]:
        raise ValueError(f"tensor {name}: size mismatch")
    return a.reshape(shape)


def decode_record(value):
    """(metadata, activations [n_tokens, d_in] float32) of an activation record (docs/architecture.md#the-wire-contract)."""
    header, meta, base = read_header(value)
    return meta, tensor(value, header, base, "activations")


def bf16_requested():
    """SAEGUARD_BENCH_BF16=1 (bench/run.sh sets it with the sidecar's engine.cpu_bf16): the encoder GEMM in BF16."""
    return os.environ.get("SAEGUARD_BENCH_BF16", "0") == "1"


def bench_device():
    """SAEGUARD_BENCH_DEVICE (bench/run.sh): cpu, or gpu / gpu:N to encode on that CUDA device (exits if torch has no CUDA)."""
    d = os.environ.get("SAEGUARD_BENCH_DEVICE", "cpu") or "cpu"
    if d == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"(?:gpu|cuda)(?::(\d+))?", d)
    if not m:
        raise SystemExit(f"SAEGUARD_BENCH_DEVICE must be cpu, gpu or gpu:N, found {d!r}")
    if not torch.cuda.is_available():
        raise SystemExit(f"SAEGUARD_BENCH_DEVICE={d}, but this PyTorch ({torch.__version__}) sees no CUDA GPU: "
                         "point SAEGUARD_BENCH_PYTHON at an interpreter whose torch has CUDA")
    return torch.device(f"cuda:{m.group(1) or 0}")


def topk_of(cfg):
    """k of a SAELens TopK cfg (`architecture: topk`, k in `activation_fn_kwargs` or top level), else None."""
    if cfg.get("architecture") != "topk":
        return None
    k = (cfg.get("activation_fn_kwargs") or {}).get("k", cfg.get("k"))
    if k is None:
        raise ValueError("a topk SAE needs k (activation_fn_kwargs.k)")
    return int(k)


class JumpReluSae:
    """A SAELens JumpReLU SAE directory (cfg.json + sae_weights.safetensors), on the CPU in float32; also a TopK one
    (`architecture: topk`: the k largest pre-activations per token, ReLU'd, the rest zero), which bench/run.sh's
    TopK row uses (SAEGUARD_BENCH_SAE_ARCH=topk).

    With bf16 (default: SAEGUARD_BENCH_BF16=1) the GEMM runs as a careful user would write it in
    BF16 and as the sidecar's engine.cpu_bf16 does: a contiguous BF16 copy of W_enc^T, the input
    rounded to BF16, torch's linear (oneDNN), widened to float32 before the bias and the activation.
    """

    def __init__(self, path, bf16=None, device=None):
        with open(os.path.join(path, "cfg.json")) as f:
            cfg = json.load(f)
        arch = cfg.get("architecture", "standard")
        if arch not in ("jumprelu", "topk"):
            raise ValueError(f"{path}: this baseline implements jumprelu and topk only, found {arch}")
        self.k = topk_of(cfg)
        if cfg.get("normalize_activations", "none") not in ("none", None):
            raise ValueError(f"{path}: this baseline implements normalize_activations none only")
        with open(os.path.join(path, "sae_weights.safetensors"), "rb") as f:
            buf = f.read()
        header, _, base = read_header(buf)
        self.d_in = int(cfg["d_in"])
        self.d_sae = int(cfg["d_sae"])
        w = tensor(buf, header, base, "W_enc")
        if w.shape == (self.d_sae, self.d_in) and self.d_in != self.d_sae:
            w = w.T
        # W_enc: [d_in, d_sae]; copies own their memory (the file buffer can go)
        self.W_enc = torch.from_numpy(np.ascontiguousarray(w).copy())
        self.b_enc = torch.from_numpy(tensor(buf, header, base, "b_enc").copy())
        self.threshold = torch.from_numpy(tensor(buf, header, base, "threshold").copy()) if self.k is None else None
        self.b_dec = torch.from_numpy(tensor(buf, header, base, "b_dec").copy())
        self.apply_b_dec_to_input = bool(cfg.get("apply_b_dec_to_input", True))
        self.bf16 = bf16_requested() if bf16 is None else bf16
        # [d_sae, d_in] BF16, linear's layout; the F32 copy is dropped so memory matches the sidecar's
        self.W_enc_t = self.W_enc.t().contiguous().to(torch.bfloat16) if self.bf16 else None
        if self.bf16:
            self.W_enc = None
        # SAEGUARD_BENCH_DEVICE=gpu: everything on CUDA; codes come back as device tensors (callers use .cpu())
        self.device = bench_device() if device is None else device
        if self.device.type != "cpu":
            for name in ("W_enc", "W_enc_t", "b_enc", "threshold", "b_dec"):
                t = getattr(self, name)
                if t is not None:
                    setattr(self, name, t.to(self.device))

    def sync(self):
        """Waits for queued device work (CUDA is asynchronous); a no-op on the CPU."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @torch.no_grad()
    def encode(self, x):
        """x: [n, d_in] float32 tensor -> codes [n, d_sae] (SAELens JumpReLU; [n, k] on a sliced encoder), on the SAE's device."""
        x = x.to(self.device)
        if self.apply_b_dec_to_input:
            x = x - self.b_dec
        if self.bf16:
            pre = torch.nn.functional.linear(x.to(torch.bfloat16), self.W_enc_t).float() + self.b_enc
        else:
            pre = x @ self.W_enc + self.b_enc
        if self.k is not None:
            values, idx = torch.topk(pre, self.k, dim=1)
            return torch.zeros_like(pre).scatter_(1, idx, torch.relu(values))
        return torch.relu(pre) * (pre > self.threshold)

    def sliced(self, columns):
        """The encoder of only these features (sliced.py): each JumpReLU code depends on its own pre-activation.
        A TopK code depends on the k-th largest pre-activation of all features: the full encode, those columns kept."""
        if self.k is not None:
            return FullColumns(self, columns)
        return SlicedJumpRelu(self, columns)


class FullColumns:
    """The full encoder's codes of a few columns (what sliced.py must do on a TopK SAE)."""

    def __init__(self, sae, columns):
        self.sae = sae
        self.idx = torch.tensor(columns, dtype=torch.long, device=sae.device)
        self.sync = sae.sync
        self.d_in = sae.d_in
        self.device = sae.device
        self.bf16 = sae.bf16

    def encode(self, x):
        return self.sae.encode(x)[:, self.idx]


class SlicedJumpRelu:
    """JumpReLU codes of a few features: contiguous copies of their W_enc columns, b_enc and thresholds.

    With bf16 the sliced weights are BF16 like the full encoder's (linear's [k, d_in] layout)."""

    def __init__(self, sae, columns):
        idx = torch.tensor(columns, dtype=torch.long, device=sae.device)
        self.k = None  # JumpReLU only (a TopK SAE's sliced() is FullColumns)
        self.d_in = sae.d_in
        self.sync = sae.sync
        self.device = sae.device
        self.bf16 = sae.bf16
        self.apply_b_dec_to_input = sae.apply_b_dec_to_input
        self.b_dec = sae.b_dec
        self.b_enc = sae.b_enc[idx].contiguous()
        self.threshold = sae.threshold[idx].contiguous()
        if self.bf16:
            self.W_enc_t = sae.W_enc_t[idx].contiguous()  # [k, d_in] BF16
            self.W_enc = None
        else:
            self.W_enc = sae.W_enc[:, idx].contiguous()  # [d_in, k] F32
            self.W_enc_t = None

    # The full encoder's code on the sliced weights: x [n, d_in] -> codes of the sliced features [n, k].
    encode = JumpReluSae.encode


class ThresholdDetector:
    """The `features` detector YAML with one feature, `match: any`, `aggregate: token`, as the sidecar
    evaluates it: token score = code / threshold, chunk score = max over the chunk's counted tokens
    (request position 0, BOS, never counts unless special_tokens.skip_first is false), action = the
    highest policy band whose `min` the score reaches, else allow."""

    def __init__(self, path):
        with open(path) as f:
            d = yaml.safe_load(f)
        rule = d["rule"]
        if rule.get("kind") != "features" or len(rule["features"]) != 1 or d.get("aggregate", "token") != "token":
            raise ValueError(f"{path}: this baseline implements a one-feature 'features' rule with aggregate token only")
        self.id = d["id"]
        self.sae = d["sae"]
        self.feature = int(rule["features"][0]["id"])
        self.threshold = float(rule["features"][0]["threshold"])
        self.skip_first = bool((d.get("special_tokens") or {}).get("skip_first", True))
        self.bands = sorted(((float(b["min"]), b["action"]) for b in d["policy"]["bands"]), reverse=True)

    def score(self, column, position):
        """column: this chunk's codes of the feature, [n] numpy; position: the chunk's first token position."""
        s = column / self.threshold
        if self.skip_first and position == 0:
            s = s[1:]
        return float(s.max()) if len(s) else 0.0

    def action(self, score):
        for lo, act in self.bands:
            if score >= lo:
                return act
        return "allow"


class Requests:
    """Per-request decision sequence numbers (the sidecar's `seq`), forgotten on the final chunk."""

    def __init__(self):
        self.seq = {}

    def next(self, request_id, final):
        s = self.seq.get(request_id, 0)
        if final:
            self.seq.pop(request_id, None)
        else:
            self.seq[request_id] = s + 1
        return s


def decision(meta, seq, detector, score, action, produced_ms):
    """The decision JSON for one record."""
    now = int(time.time() * 1000)
    d = {"request_id": meta["request_id"], "seq": seq, "action": action, "position": int(meta.get("position", 0))}
    if action != "allow":
        d["detector"] = detector.id
        d["score"] = score
        d["features"] = [{"sae": detector.sae, "id": detector.feature, "value": score * detector.threshold}]
        d["reason"] = f"feature {detector.feature} reached {score:.2f} x its threshold"
    else:
        d["features"] = []
    d["latency_ms"] = max(0, now - produced_ms)
    d["ts"] = now
    return json.dumps(d, separators=(",", ":")).encode()


def runtime_info(threads):
    """Which BLAS torch really loaded (from this process's memory map) and the thread counts in force."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if any(k in p for k in ("blas", "lapack", "mkl", "gomp", "omp")) and p.startswith("/"):
                libs.add(p)
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "requested_threads": threads,
        "blas_libraries_loaded": sorted(libs),
        "torch_blas_info": (re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show()) or [None, "?"])[1],
        "encoder_gemm": "bf16 (torch linear, oneDNN)" if bf16_requested() else "f32 (x @ W_enc, BLAS)",
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "device": os.environ.get("SAEGUARD_BENCH_DEVICE", "cpu") or "cpu",
    }


class Stats:
    """Cumulative counters and seconds per stage, printed as one `STATS {json}` line to stderr every
    second and at exit (with the wall-clock time), so the benchmark can difference two lines around
    a measurement window and say where the time went."""

    def __init__(self, every_s=1.0):
        self.c = {"records": 0, "tokens": 0, "encodes": 0, "poll_s": 0.0, "decode_s": 0.0, "encode_s": 0.0,
                  "detect_s": 0.0, "produce_s": 0.0, "commit_s": 0.0}
        self.t0 = time.monotonic()
        self.every = every_s
        self.last = self.t0

    def add(self, key, v):
        self.c[key] += v

    def maybe_print(self, force=False):
        now = time.monotonic()
        if force or now - self.last >= self.every:
            self.last = now
            out = dict(self.c)
            out["wall_s"] = now - self.t0
            out["epoch_ms"] = int(time.time() * 1000)
            print("STATS " + json.dumps(out), file=sys.stderr, flush=True)


def consumer_config(args, group):
    return {
        "bootstrap.servers": args.bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }


def producer_config(args):
    return {"bootstrap.servers": args.bootstrap}


def common_args(parser):
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--activations", required=True, help="topic to read activation records from")
    parser.add_argument("--decisions", required=True, help="topic to write decisions to")
    parser.add_argument("--group", default=None, help="consumer group (default: a fresh one)")
    parser.add_argument("--sae", required=True, help="SAELens directory (cfg.json + sae_weights.safetensors)")
    parser.add_argument("--detector", required=True, help="the detector YAML the sidecar runs")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads (default: one per core)")


def start(args, kind):
    """What both consumers set up the same way: torch threads, the SAE, the detector, request and
    timing state, SIGTERM/SIGINT handling, and a consumer subscribed to the activations topic that
    prints READY (with the runtime info) once it has partitions. Returns
    (sae, detector, requests, stats, running, consumer, producer); `running[0]` turns False on a signal."""
    import json
    import signal
    import uuid

    import torch
    from confluent_kafka import Consumer, Producer

    torch.set_num_threads(args.threads)
    sae = JumpReluSae(args.sae)
    det = ThresholdDetector(args.detector)
    requests = Requests()
    stats = Stats()
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    signal.signal(signal.SIGINT, lambda *_: running.__setitem__(0, False))
    consumer = Consumer(consumer_config(args, args.group or kind + "-" + uuid.uuid4().hex[:8]))
    producer = Producer(producer_config(args))
    ready = [False]

    def on_assign(c, parts):
        if not ready[0] and parts:
            ready[0] = True
            print("READY " + json.dumps(runtime_info(args.threads)), flush=True)

    consumer.subscribe([args.activations], on_assign=on_assign)
    return sae, det, requests, stats, running, consumer, producer
