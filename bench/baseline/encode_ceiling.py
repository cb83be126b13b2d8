#!/usr/bin/python3
"""Encode-only throughput of the baselines' torch JumpReLU (saebaseline.JumpReluSae.encode) at given
batch sizes, on N(0, 1) inputs: the Python side's counterpart of the JMH encode ceiling.

    /usr/bin/python3 bench/baseline/encode_ceiling.py --sae DIR --batch 1 --batch 512 [--threads N] [--seconds 5] [--columns J,...]

--columns: the sliced encoder of sliced.py (only those features' columns), instead of the full one.

Prints one JSON object: runtime (BLAS, threads) and per batch the median time per encode and tokens/s.
"""

import argparse
import json
import os
import statistics
import time

import torch

import saebaseline as sb


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sae", required=True)
    p.add_argument("--batch", type=int, action="append", required=True)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seconds", type=float, default=5.0, help="measuring time per batch size (after 1 s of warm-up)")
    p.add_argument("--columns", default=None, help="comma-separated feature ids: time sliced.py's encoder of only these")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    full = sb.JumpReluSae(args.sae)
    sae = full.sliced([int(c) for c in args.columns.split(",")]) if args.columns else full
    out = {"runtime": sb.runtime_info(args.threads), "encoder": "sliced " + args.columns if args.columns else "full", "batches": {}}
    for b in args.batch:
        x = torch.randn(b, sae.d_in, generator=torch.Generator().manual_seed(b))
        end = time.perf_counter() + 1.0
        while time.perf_counter() < end:
            sae.encode(x)
        sae.sync()
        times = []
        end = time.perf_counter() + args.seconds
        while time.perf_counter() < end or len(times) < 3:
            t = time.perf_counter()
            sae.encode(x)
            sae.sync()
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        out["batches"][str(b)] = {"median_ms": med * 1000, "tokens_per_s": b / med, "reps": len(times)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
