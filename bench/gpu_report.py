#!/usr/bin/env python3
"""bench/gpu.sh's report: python3 bench/gpu_report.py RAW_DIR OUT.md (standard library only).

Reads what gpu.sh left in RAW_DIR (machine.txt; roofline.{json,md}; probe.json; jmh-*.json;
pipeline.report; *.skipped) and writes one Markdown report: every part either with its figures or with
the reason it was skipped. JMH cells are shown as encode against the libtorch GEMM of the same precision
in the same fork, and that GEMM against the roofline's square-GEMM rate when part 1 ran.
"""

import glob
import json
import os
import sys


def read(path):
    with open(path) as f:
        return f.read()


def of_peak(tflops, peak):
    return f"{tflops / peak['tflops']:.2f}" if peak and tflops else "—"


def jmh_rows(raw):
    cells = {}
    for path in sorted(glob.glob(os.path.join(raw, "jmh-*.json"))):
        try:
            runs = json.loads(read(path) or "[]")
        except json.JSONDecodeError as e:
            print(f"gpu_report: {path}: {e}", file=sys.stderr)
            continue
        for run in runs:
            p = run["params"]
            key = (p["shape"], int(p["batch"]), p.get("precision", "f32"), p.get("device", "cpu"))
            method = run["benchmark"].rsplit(".", 1)[1]
            raw_iters = run["primaryMetric"].get("rawData") or [[run["primaryMetric"]["score"]]]
            iters = sorted(v for fork in raw_iters for v in fork)
            cells.setdefault(key, {})[method] = iters[len(iters) // 2]  # µs per op, median iteration
    return cells


def main(raw, out):
    L = []
    kind = "smoke run (CPU, tiny shapes: checks the script, not a GPU figure)" if "gpu-smoke" in out else "GPU benchmarks"
    L.append(f"# saeguard {kind}: `bench/gpu.sh`\n")
    if os.path.exists(os.path.join(raw, "machine.txt")):
        L += ["```", read(os.path.join(raw, "machine.txt")).strip(), "```", ""]

    L.append("## 1. Roofline with the host's PyTorch\n")
    roof = None
    if os.path.exists(os.path.join(raw, "roofline.json")):
        roof = json.loads(read(os.path.join(raw, "roofline.json")))
        L.append(read(os.path.join(raw, "roofline.md")))
        if not roof.get("ok", True):
            L.append("**The F32 self-check failed**: the encode disagrees with the float64 reference (roofline.json).\n")
    if os.path.exists(os.path.join(raw, "roofline.skipped")):
        L.append(read(os.path.join(raw, "roofline.skipped")).strip() + "\n")

    L.append("## 2. DJL on CUDA\n")
    if os.path.exists(os.path.join(raw, "djl-jni.log")):
        L += ["DJL's JNI built against the host's PyTorch (`bench/djl-cuda-jni.sh`, through `gpu.sh --packed`):", "", "```",
              read(os.path.join(raw, "djl-jni.log")).strip()[-3000:], read(os.path.join(raw, "djl-jni.txt")).strip()
              if os.path.exists(os.path.join(raw, "djl-jni.txt")) else "", "```", ""]
    if os.path.exists(os.path.join(raw, "probe.json")):
        text = read(os.path.join(raw, "probe.json")).strip()
        L += ["`GpuProbe` (what DJL saw, and one batch encoded on the CPU and on the device):", "", "```json", text, "```", ""]
    if os.path.exists(os.path.join(raw, "djl.skipped")):
        L.append(read(os.path.join(raw, "djl.skipped")).strip() + "\n")
    cells = jmh_rows(raw)
    if cells:
        peak = (roof or {}).get("peak", {})
        L += ["`EncodeBenchmark` (`DeviceSae.encode`, `max_active` 256, against the bare libtorch GEMM on the same device "
              "in F16 for f16 and in F32 otherwise (DJL holds no BF16 array: for bf16, encode / GEMM is the BF16 encode's "
              "gain over the F32 GEMM), one fork per shape; median iteration):", "",
              "| device | shape | precision | batch | encode µs | GEMM µs | encode tokens/s | encode / GEMM | GEMM TFLOP/s | GEMM / square-GEMM peak |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for (shape, batch, prec, dev), m in sorted(cells.items(), key=lambda kv: (kv[0][3], kv[0][0], kv[0][2], kv[0][1])):
            enc, mm = m.get("encode"), m.get("matmul")
            if not (enc and mm):
                L.append(f"| {dev} | {shape} | {prec} | {batch} | {enc} | {mm} | — | — | — | — |")
                continue
            d_in, d_sae = (int(v) for v in shape.split("x"))
            tfl = 2.0 * batch * d_in * d_sae / (mm * 1e-6) / 1e12
            pk = peak.get("f16" if prec == "f16" else "f32") if dev.startswith("gpu") else None
            L.append(f"| {dev} | {shape} | {prec} | {batch} | {enc:,.0f} | {mm:,.0f} | {batch / (enc * 1e-6):,.0f} | "
                     f"{mm / enc:.2f} | {tfl:.2f} | {of_peak(tfl, pk)} |")
        L.append("")

    L.append("## 3. Pipeline on the GPU\n")
    if os.path.exists(os.path.join(raw, "pipeline.report")):
        L.append(f"`bench/run.sh --quick` with the sidecar on the GPU: `{read(os.path.join(raw, 'pipeline.report')).strip()}`.\n")
    elif os.path.exists(os.path.join(raw, "pipeline.skipped")):
        L.append(read(os.path.join(raw, "pipeline.skipped")).strip() + "\n")
    else:
        L.append("Not run (`--pipeline` adds it).\n")
    with open(out, "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: gpu_report.py RAW_DIR OUT.md")
    main(sys.argv[1], sys.argv[2])
