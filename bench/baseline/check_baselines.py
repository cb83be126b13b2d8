#!/usr/bin/python3
"""Self-check of the Python baselines' pieces that a benchmark ratio rests on (run by BaselinesIT):

1. sliced.py's encoder (saebaseline.SlicedJumpRelu) gives the full encoder's codes for the watched
   columns, on a random SAELens JumpReLU SAE, with the F32 GEMM and with the BF16 one;
2. on a TopK SAE the baseline's codes are the k largest ReLU'd pre-activations of each token (against a
   numpy computation), and sliced.py's encoder gives the full encoder's columns;
3. saebaseline.reference_blas tells Debian's reference BLAS from OpenBLAS by the loaded libraries.

    /usr/bin/python3 bench/baseline/check_baselines.py [--seed N]

Prints one JSON object with "ok" and the figures; exits 1 when a check fails.
"""

import argparse
import json
import os
import random
import struct
import sys
import tempfile

import numpy as np
import torch

import saebaseline as sb


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def random_sae(directory, d_in, d_sae, rng):
    w = rng.standard_normal((d_in, d_sae)).astype(np.float32) / np.sqrt(d_in)
    write_safetensors(os.path.join(directory, "sae_weights.safetensors"), {
        "W_enc": w, "W_dec": w.T.copy(), "b_enc": rng.standard_normal(d_sae).astype(np.float32) * 0.1,
        "b_dec": rng.standard_normal(d_in).astype(np.float32) * 0.1,
        "threshold": np.abs(rng.standard_normal(d_sae)).astype(np.float32) * 0.3})
    with open(os.path.join(directory, "cfg.json"), "w") as f:
        json.dump({"architecture": "jumprelu", "d_in": d_in, "d_sae": d_sae, "apply_b_dec_to_input": True}, f)


def sliced_matches_full(directory, bf16, columns, rng):
    sae = sb.JumpReluSae(directory, bf16=bf16, device=torch.device("cpu"))
    x = torch.from_numpy(rng.standard_normal((200, sae.d_in)).astype(np.float32))
    full = sae.encode(x)[:, columns]
    part = sae.sliced(columns).encode(x)
    # Same formula, different GEMM shapes: the sums may round differently, so allow float rounding, and a code
    # may flip only where its pre-activation sits within that rounding of its threshold.
    diff = (full - part).abs()
    tol = 1e-2 if bf16 else 1e-5
    flips = int(((full == 0) != (part == 0)).sum())
    both = diff[(full != 0) & (part != 0)]
    worst = float(both.max()) if both.numel() else 0.0
    active = int((full != 0).sum())
    return {"precision": "bf16" if bf16 else "f32", "columns": len(columns), "max_abs_diff_where_both_fire": worst,
            "active": active, "flipped": flips,
            "ok": active > 0 and flips <= max(1, full.numel() // 1000) and worst <= tol}


def topk_matches_numpy(directory, d_in, d_sae, k, columns, rng):
    with open(os.path.join(directory, "cfg.json")) as f:
        cfg = json.load(f)
    cfg.update({"architecture": "topk", "activation_fn_kwargs": {"k": k}})
    with open(os.path.join(directory, "cfg.json"), "w") as f:
        json.dump(cfg, f)
    sae = sb.JumpReluSae(directory, bf16=False, device=torch.device("cpu"))
    x = rng.standard_normal((50, d_in)).astype(np.float32)
    codes = sae.encode(torch.from_numpy(x)).numpy()
    pre = (x.astype(np.float64) - sae.b_dec.numpy()) @ sae.W_enc.numpy().astype(np.float64) + sae.b_enc.numpy()
    expected = np.zeros_like(pre)
    top = np.argsort(-pre, axis=1)[:, :k]
    rows = np.arange(pre.shape[0])[:, None]
    expected[rows, top] = np.maximum(pre[rows, top], 0)
    worst = float(np.abs(codes - expected).max())
    at_most_k = int(((codes != 0).sum(axis=1) <= k).all())
    part = sae.sliced(columns).encode(torch.from_numpy(x)).numpy()
    sliced_equal = bool(np.array_equal(part, codes[:, columns]))
    return {"k": k, "max_abs_diff": worst, "at_most_k_per_token": bool(at_most_k), "sliced_equals_full_columns": sliced_equal,
            "ok": worst <= 1e-4 and bool(at_most_k) and sliced_equal}


def blas_cases():
    maps = {
        "reference": (["/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0", "/usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3.11.0"], True),
        "openblas": (["/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3", "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so"], False),
        "mkl": (["/opt/intel/oneapi/mkl/lib/libmkl_rt.so.2"], False),
        "none loaded": ([], False),
    }
    return {name: {"expected": want, "found": sb.reference_blas({"blas_libraries_loaded": libs}),
                   "ok": sb.reference_blas({"blas_libraries_loaded": libs}) == want} for name, (libs, want) in maps.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        random_sae(d, 96, 768, rng)
        columns = sorted(rng.choice(768, size=5, replace=False).tolist())
        sliced = [sliced_matches_full(d, bf16, cols, rng) for bf16 in (False, True) for cols in ([columns[0]], columns)]
        topk = topk_matches_numpy(d, 96, 768, 16, columns, rng)
    blas = blas_cases()
    ok = all(c["ok"] for c in sliced) and topk["ok"] and all(c["ok"] for c in blas.values())
    print(json.dumps({"ok": ok, "seed": args.seed, "sliced": sliced, "topk": topk, "reference_blas": blas}, indent=2))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
