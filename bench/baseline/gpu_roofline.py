#!/usr/bin/env python3
"""GPU roofline for saeguard's SAE encode, measured with the host's own PyTorch (bench/gpu.sh, part 1).

    python3 bench/baseline/gpu_roofline.py [--device cuda] [--out-json R.json] [--out-md R.md]
    python3 bench/baseline/gpu_roofline.py --smoke          # tiny shapes on the CPU: checks the script itself

What it measures, all in one process, each cell timed after a warm-up with the device synchronised:

1. The GPU's matmul throughput: a square n x n x n GEMM per precision (f32, tf32, bf16, f16), TFLOP/s.
2. Per SAE shape (d_in x d_sae) and batch: the bare GEMM x [batch, d_in] . W_enc [d_in, d_sae], and the
   JumpReLU encode as saeguard's DeviceSae runs it (GEMM, + b_enc in place, mask h > max(threshold, 0),
   top-(k+1) per token, ids and values of the top k), with the input already on the device ("resident")
   and end to end from a pageable host F32 array to ids and values back on the host ("with copies"):
   tokens/s, and the encode's useful GEMM rate against the bare GEMM at that batch and against (1).
3. A self-check per precision: the encode of a few tokens against a float64 CPU reference (share of the
   reference's active features the encode keeps, and the largest code error relative to the token's
   largest code). F32 without TF32 must keep >= 99 % of them, or the script exits 1.

The SAE is random (unit-norm encoder columns, zero bias, threshold 2.05 so ~2 % of features fire on
N(0, 1) inputs, as the JMH benchmark's): throughput does not depend on the values. Works with the
PyTorch 1.13 Debian ships (CPU, for --smoke) and 2.x with CUDA. Prints progress to stderr.
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

import torch

DTYPES = {"f32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def tf32(on):
    """F32 matmuls on TF32 tensor cores or not (the API PyTorch 1.12 to 2.x all accept)."""
    torch.set_float32_matmul_precision("high" if on else "highest")


def log(msg):
    print(f"[gpu_roofline {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_shape(s):
    try:
        d_in, d_sae = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape must be D_INxD_SAE (e.g. 2304x16384), found {s!r}")
    if d_in < 1 or d_sae < 2:
        raise argparse.ArgumentTypeError(f"shape {s!r}: d_in >= 1 and d_sae >= 2 required")
    return d_in, d_sae


def csv(kind):
    return lambda s: [kind(v) for v in s.split(",") if v]


class Timer:
    """Median seconds per call of fn over repetitions of `inner` calls, after `warmup` calls; syncs the device."""

    def __init__(self, device, seconds):
        self.device = device
        self.seconds = seconds

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, fn, warmup=3):
        for _ in range(warmup):
            fn()
        self.sync()
        # calls per repetition: enough that one repetition takes ~1/20 of the budget
        t = time.perf_counter()
        fn()
        self.sync()
        once = max(time.perf_counter() - t, 1e-6)
        inner = max(1, min(1000, int(self.seconds / 20 / once)))
        reps = []
        end = time.perf_counter() + self.seconds
        while time.perf_counter() < end or len(reps) < 3:
            t = time.perf_counter()
            for _ in range(inner):
                fn()
            self.sync()
            reps.append((time.perf_counter() - t) / inner)
        return statistics.median(reps), len(reps) * inner


class RandomJumpRelu:
    """W_enc [d_in, d_sae] with unit-norm columns, b_enc 0, threshold 2.05 (~2 % fire on N(0, 1) inputs)."""

    THRESHOLD = 2.05

    def __init__(self, d_in, d_sae, device, dtype, seed=20250701):
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(d_in, d_sae, generator=g)
        w /= w.norm(dim=0, keepdim=True)
        self.w64 = w.double()  # the reference's, on the CPU
        self.W = w.to(device=device, dtype=dtype)
        self.b = torch.zeros(d_sae, device=device, dtype=dtype)
        self.cut = torch.full((d_sae,), self.THRESHOLD, device=device, dtype=dtype)  # max(threshold, 0)

    def gemm(self, x):
        return x @ self.W

    def encode(self, x, k):
        """saeguard's op sequence: ids [n, k] int32 and values [n, k] float32, on the device."""
        h = x @ self.W
        h += self.b
        h *= h > self.cut
        values, ids = h.topk(k + 1, dim=1)
        return ids[:, :k].int(), values[:, :k].float()

    def reference(self, x64):
        """float64 dense codes on the CPU."""
        h = x64 @ self.w64
        return h * (h > self.THRESHOLD)


def gemm_tflops(flops, seconds):
    return flops / seconds / 1e12


def peak(device, timer, precisions, n):
    out = {}
    for p in precisions:
        tf32(p == "tf32")
        if device.type == "cpu" and p in ("tf32", "f16"):
            out[p] = None  # no TF32 on a CPU; CPU F16 matmul is not what anyone would run
            continue
        a = torch.randn(n, n, device=device).to(DTYPES[p])
        b = torch.randn(n, n, device=device).to(DTYPES[p])
        sec, calls = timer(lambda: a @ b)
        out[p] = {"n": n, "ms": sec * 1e3, "tflops": gemm_tflops(2.0 * n ** 3, sec), "calls": calls}
        log(f"peak {p} {n}^3: {out[p]['tflops']:.2f} TFLOP/s")
        del a, b
    tf32(False)
    return out


def self_check(sae, device, p, k, tokens=8):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(tokens, sae.W.shape[0], generator=g)
    ref = sae.reference(x.double())
    ids, values = sae.encode(x.to(device=device, dtype=DTYPES[p]), min(k, ref.shape[1] - 1))
    ids, values = ids.cpu().long(), values.cpu().double()
    kept = total = 0
    worst = 0.0
    for t in range(tokens):
        active = set(torch.nonzero(ref[t]).flatten().tolist())
        got = {i: v for i, v in zip(ids[t].tolist(), values[t].tolist()) if v != 0.0}
        # the reference's active features the encode returned (the top k of them when more than k fire)
        want = set(sorted(active, key=lambda i: -ref[t, i].item())[:k])
        kept += len(want & set(got))
        total += len(want)
        scale = max(ref[t].abs().max().item(), 1e-30)
        for i, v in got.items():
            worst = max(worst, abs(v - ref[t, i].item()) / scale)
    return {"tokens": tokens, "reference_active": total, "kept": kept,
            "kept_fraction": kept / total if total else 1.0, "max_rel_error": worst}


def cells(device, timer, shapes, batches, precisions, k, mem_fraction):
    rows, checks = [], []
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    for d_in, d_sae in shapes:
        for p in precisions:
            if device.type == "cpu" and p in ("tf32", "f16"):
                continue
            tf32(p == "tf32")
            dt = DTYPES[p]
            sae = RandomJumpRelu(d_in, d_sae, device, dt)
            chk = self_check(sae, device, p, k)
            chk.update({"shape": f"{d_in}x{d_sae}", "precision": p})
            checks.append(chk)
            log(f"check {d_in}x{d_sae} {p}: kept {chk['kept']}/{chk['reference_active']}, "
                f"max error {chk['max_rel_error']:.2e} of the token's largest code")
            for b in batches:
                # h [b, d_sae] plus its mask and top-k copies: stay well inside free memory
                need = b * d_sae * (torch.tensor([], dtype=dt).element_size() * 3 + 1)
                if free is not None and need > mem_fraction * free:
                    log(f"skip {d_in}x{d_sae} {p} batch {b}: needs ~{need / 2**30:.1f} GiB")
                    continue
                kk = min(k, d_sae - 1)
                host = torch.randn(b, d_in, generator=torch.Generator().manual_seed(b))
                x = host.to(device=device, dtype=dt)
                g_sec, _ = timer(lambda: sae.gemm(x))
                e_sec, calls = timer(lambda: sae.encode(x, kk))

                def end_to_end():
                    ids, values = sae.encode(host.to(device=device, dtype=dt), kk)
                    return ids.cpu(), values.cpu()

                c_sec, _ = timer(end_to_end, warmup=2)
                flops = 2.0 * b * d_in * d_sae
                row = {"shape": f"{d_in}x{d_sae}", "precision": p, "batch": b, "k": kk,
                       "gemm_ms": g_sec * 1e3, "gemm_tflops": gemm_tflops(flops, g_sec),
                       "encode_ms": e_sec * 1e3, "encode_tokens_per_s": b / e_sec,
                       "encode_tflops": gemm_tflops(flops, e_sec), "encode_over_gemm": g_sec / e_sec,
                       "copies_ms": c_sec * 1e3, "copies_tokens_per_s": b / c_sec, "calls": calls}
                rows.append(row)
                log(f"{d_in}x{d_sae} {p} batch {b}: encode {row['encode_tokens_per_s']:,.0f} tokens/s "
                    f"({row['encode_over_gemm']:.2f}x the GEMM's rate), with copies {row['copies_tokens_per_s']:,.0f}")
                del x, host
            del sae
            if device.type == "cuda":
                torch.cuda.empty_cache()
    tf32(False)
    return rows, checks


def environment(device):
    env = {"torch": torch.__version__, "python": platform.python_version(), "device": str(device),
           "cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update({"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                    "cuda": torch.version.cuda, "capability": f"{props.major}.{props.minor}",
                    "cudnn": torch.backends.cudnn.version()})
        try:
            env["nvidia_smi"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm,power.limit", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError) as e:
            env["nvidia_smi"] = f"unavailable: {e}"
    return env


def markdown(result):
    env, pk = result["environment"], result["peak"]
    L = [f"GPU roofline (`bench/baseline/gpu_roofline.py`), {result['date']}: {env.get('gpu', env['device'])}, "
         f"PyTorch {env['torch']}" + (f", CUDA {env['cuda']}" if env.get("cuda") else "") + ".", ""]
    L += ["Matmul throughput (square GEMM):", "", "| precision | n | ms | TFLOP/s |", "|---|---:|---:|---:|"]
    for p, v in pk.items():
        if v:
            L.append(f"| {p} | {v['n']} | {v['ms']:.3f} | {v['tflops']:.2f} |")
    L += ["", "SAE encode (saeguard's op sequence, top-k ids and values out) against the bare GEMM at the same batch "
          "and the square GEMM's rate of the same precision:", "",
          "| shape | precision | batch | GEMM TFLOP/s | encode tokens/s | encode / GEMM | encode / peak | with host copies, tokens/s |",
          "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["cells"]:
        pv = pk.get(r["precision"])
        of_peak = f"{r['encode_tflops'] / pv['tflops']:.2f}" if pv else "—"
        L.append(f"| {r['shape']} | {r['precision']} | {r['batch']} | {r['gemm_tflops']:.2f} | "
                 f"{r['encode_tokens_per_s']:,.0f} | {r['encode_over_gemm']:.2f} | {of_peak} | {r['copies_tokens_per_s']:,.0f} |")
    L += ["", "Self-check against a float64 CPU reference (8 tokens):", "",
          "| shape | precision | reference active features kept | max error / token's largest code |", "|---|---|---:|---:|"]
    for c in result["checks"]:
        L.append(f"| {c['shape']} | {c['precision']} | {c['kept']} / {c['reference_active']} | {c['max_rel_error']:.1e} |")
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    ap.add_argument("--shapes", type=csv(parse_shape), default=[(2304, 16384), (4096, 65536), (768, 24576)])
    ap.add_argument("--batches", type=csv(int), default=[1, 64, 512, 4096, 16384])
    ap.add_argument("--precisions", type=csv(str), default=["f32", "tf32", "bf16", "f16"])
    ap.add_argument("--k", type=int, default=256, help="features kept per token (the sidecar's max_active)")
    ap.add_argument("--peak-n", type=int, default=8192)
    ap.add_argument("--seconds", type=float, default=1.0, help="measuring time per cell")
    ap.add_argument("--mem-fraction", type=float, default=0.5)
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny shapes, short windows: checks the script")
    ap.add_argument("--out-json")
    ap.add_argument("--out-md")
    a = ap.parse_args(argv)
    for p in a.precisions:
        if p not in DTYPES:
            ap.error(f"precision must be one of {', '.join(DTYPES)}, found {p!r}")
    if a.smoke:
        a.device, a.shapes, a.batches, a.peak_n, a.seconds, a.k = "cpu", [(64, 512)], [1, 16], 256, 0.05, 32
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu_roofline: --device {a.device}, but this PyTorch ({torch.__version__}) sees no CUDA GPU "
              f"(torch.version.cuda={torch.version.cuda}); use a CUDA build of PyTorch on a GPU machine, or --smoke",
              file=sys.stderr)
        return 2
    torch.manual_seed(0)
    log(f"device {device}, torch {torch.__version__}")
    timer = Timer(device, a.seconds)
    result = {"date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), "environment": environment(device),
              "peak": peak(device, timer, a.precisions, a.peak_n)}
    result["cells"], result["checks"] = cells(device, timer, a.shapes, a.batches, a.precisions, a.k, a.mem_fraction)
    bad = [c for c in result["checks"] if c["precision"] == "f32" and c["kept_fraction"] < 0.99]
    result["ok"] = not bad
    text = markdown(result)
    if a.out_json:
        with open(a.out_json, "w") as f:
            json.dump(result, f, indent=2)
    if a.out_md:
        with open(a.out_md, "w") as f:
            f.write(text)
    print(text)
    if bad:
        print(f"gpu_roofline: F32 encode disagrees with the float64 reference: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
