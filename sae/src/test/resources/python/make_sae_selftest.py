"""Self-test for make_sae.py (run: /usr/bin/python3 make_sae.py --self-test [--keep DIR]).

For every supported combination in CASES it generates a case, then checks it WITHOUT reusing the
generator's objects:
  1. re-reads every file from disk (safetensors / npz / json), checks names, shapes, dtypes and the
     config keys a Java loader reads;
  2. recomputes features / pre / threshold_used / reconstruction with a second, numpy-only float64
     implementation of the formulas (per format, from the files as loaded) and compares with
     expected.safetensors;
  3. checks sparsity levels, near-tie margins, and determinism (same seed -> identical bytes);
  4. checks BF16 rounding against torch's own float32 -> bfloat16 conversion;
  5. checks that unsupported combinations are rejected.
"""
import json
import math
import os
import shutil
import sys
import tempfile
import time
import zipfile

import numpy as np
import torch

import make_sae
from safetensors_io import SafetensorsFile, f32_to_bf16_bits, bf16_bits_to_f32

# name, extra CLI args (added to --format/--out/--seed)
CASES = [
    # SAELens v6
    ("saelens-standard", "--format saelens --arch standard"),
    ("saelens-standard-bf16-ln-sparsity", "--format saelens --arch standard --weights-dtype BF16 "
                                          "--norm layer_norm --sparsity 1"),
    ("saelens-standard-cnr-nobdec", "--format saelens --arch standard --norm constant_norm_rescale "
                                    "--apply-b-dec 0"),
    ("saelens-standard-eavg", "--format saelens --arch standard --norm expected_average_only_in"),
    ("saelens-jumprelu", "--format saelens --arch jumprelu"),
    ("saelens-jumprelu-bf16-eavg-nobdec-sparsity", "--format saelens --arch jumprelu --weights-dtype BF16 "
                                                   "--norm expected_average_only_in --apply-b-dec 0 --sparsity 1"),
    ("saelens-jumprelu-ln", "--format saelens --arch jumprelu --norm layer_norm"),
    ("saelens-topk", "--format saelens --arch topk"),
    ("saelens-topk-rescale", "--format saelens --arch topk --rescale-by-decoder-norm 1"),
    ("saelens-topk-rescale-bf16-cnr", "--format saelens --arch topk --rescale-by-decoder-norm 1 "
                                      "--weights-dtype BF16 --norm constant_norm_rescale"),
    ("saelens-topk-k200", "--format saelens --arch topk --k 200"),
    ("saelens-batchtopk", "--format saelens --arch batchtopk"),
    ("saelens-batchtopk-bf16-ln", "--format saelens --arch batchtopk --weights-dtype BF16 --norm layer_norm"),
    ("saelens-abstopk", "--format saelens --arch abstopk"),
    ("saelens-abstopk-bf16-nobdec", "--format saelens --arch abstopk --weights-dtype BF16 --apply-b-dec 0"),
    ("saelens-gated", "--format saelens --arch gated"),
    ("saelens-gated-bf16-ln", "--format saelens --arch gated --weights-dtype BF16 --norm layer_norm"),
    ("saelens-gated-eavg", "--format saelens --arch gated --norm expected_average_only_in"),
    # SAELens pre-6.0 flat cfg
    ("saelens5-standard", "--format saelens --cfg-version 5 --arch standard"),
    ("saelens5-jumprelu-bf16", "--format saelens --cfg-version 5 --arch jumprelu --weights-dtype BF16"),
    ("saelens5-gated-nobdec", "--format saelens --cfg-version 5 --arch gated --apply-b-dec 0"),
    ("saelens5-topk-ln", "--format saelens --cfg-version 5 --arch topk --norm layer_norm"),
    # Gemma Scope 1 / 2
    ("gemma-scope", "--format gemma-scope"),
    ("gemma-scope-compressed", "--format gemma-scope --npz-compressed 1"),
    ("gemma-scope-2", "--format gemma-scope-2 --arch jumprelu"),
    # sparsify
    ("sparsify", "--format sparsify"),
    ("sparsify-bf16", "--format sparsify --arch topk --weights-dtype BF16 --k 16"),
    ("sparsify-k200", "--format sparsify --k 200"),
    # Llama Scope
    ("llama-scope", "--format llama-scope"),
    ("llama-scope-f32", "--format llama-scope --weights-dtype F32"),
    ("llama-scope-normalized-theta", "--format llama-scope --llama-threshold-space normalized"),
    # composed (SAE Boost)
    ("composed-topk-error", "--format composed --arch topk --residual-input error"),
    ("composed-topk-input", "--format composed --arch topk --residual-input input"),
    ("composed-jumprelu-error", "--format composed --arch jumprelu"),
    ("composed-jumprelu-input-bf16", "--format composed --arch jumprelu --residual-input input "
                                     "--weights-dtype BF16"),
    ("composed-topk-rescale-ln-error", "--format composed --arch topk --rescale-by-decoder-norm 1 "
                                       "--norm layer_norm --k 16 --k-res 8 --d-sae-res 32"),
    # other sizes
    ("saelens-jumprelu-small", "--format saelens --arch jumprelu --d-in 8 --d-sae 24 --tokens 3"),
    ("saelens-topk-one-token", "--format saelens --arch topk --tokens 1 --k 1"),
]

UNSUPPORTED = [
    "--format gemma-scope --arch topk",
    "--format gemma-scope --weights-dtype BF16",
    "--format gemma-scope --norm layer_norm",
    "--format gemma-scope --apply-b-dec 1",
    "--format gemma-scope-2 --npz-compressed 1",
    "--format sparsify --arch jumprelu",
    "--format sparsify --norm layer_norm",
    "--format sparsify --apply-b-dec 0",
    "--format sparsify --rescale-by-decoder-norm 1",
    "--format llama-scope --arch standard",
    "--format llama-scope --norm expected_average_only_in",
    "--format llama-scope --apply-b-dec 1",
    "--format composed --arch gated",
    "--format composed --arch jumprelu --rescale-by-decoder-norm 1",
    "--format composed --arch topk --cfg-version 5",
    "--format saelens --arch jumprelu --rescale-by-decoder-norm 1",
    "--format saelens --cfg-version 5 --arch batchtopk",
    "--format saelens --cfg-version 5 --arch abstopk",
    "--format saelens --cfg-version 5 --arch topk --rescale-by-decoder-norm 1",
    "--format saelens --arch topk --k 300",
    "--format saelens --arch standard --residual-input error",
    "--format gemma-scope --sparsity 1",
    "--format saelens",
    "--format saelens --arch jumprelu --llama-threshold-space raw",
]


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


# ---------------------------------------------------------------------------------------------
# Loading from disk (what a Java loader does), into numpy float64.
# ---------------------------------------------------------------------------------------------
def load_st(path, expect):
    """expect: name -> (shape tuple, dtype). Checks the file holds exactly these."""
    f = SafetensorsFile(path)
    check(set(f.names()) == set(expect), "%s: tensors %s, expected %s" % (path, sorted(f.names()), sorted(expect)))
    for name, (shape, dtype) in expect.items():
        check(f.shapes[name] == tuple(shape), "%s: %s shape %s, expected %s" % (path, name, f.shapes[name], shape))
        check(f.dtypes[name] == dtype, "%s: %s dtype %s, expected %s" % (path, name, f.dtypes[name], dtype))
    return {n: f.get(n).astype(np.float64) for n in f.names()}, f


def load_saelens(folder, case, d_sae, wdt, is_residual=False):
    cfg = json.load(open(os.path.join(folder, "cfg.json")))
    d_in = case["d_in"]
    check(cfg["d_in"] == d_in and cfg["d_sae"] == d_sae, "cfg d_in/d_sae")
    check(cfg["dtype"] == {"F32": "float32", "BF16": "bfloat16"}[wdt], "cfg dtype")
    if "metadata" in cfg:  # v6
        arch = cfg["architecture"]
        k = cfg.get("k")
        rescale = cfg.get("rescale_acts_by_decoder_norm", False)
        hook, model = cfg["metadata"]["hook_name"], cfg["metadata"]["model_name"]
        check(cfg["device"] == "cpu" and cfg["reshape_activations"] == "none", "v6 cfg keys")
    else:  # pre-6.0
        check("activation_fn_str" in cfg, "v5 cfg has activation_fn_str")
        arch = cfg["architecture"]
        k, rescale = None, False
        if cfg["activation_fn_str"] == "topk":
            check(arch == "standard", "v5 topk is architecture standard")
            arch, k = "topk", cfg["activation_fn_kwargs"]["k"]
        else:
            check(cfg["activation_fn_str"] == "relu" and cfg["activation_fn_kwargs"] == {}, "v5 relu")
        hook, model = cfg["hook_name"], cfg["model_name"]
    check(hook == "blocks.3.hook_resid_post" and model == "test-model", "hook/model")
    if arch in ("topk", "abstopk"):
        check(isinstance(k, int) and 1 <= k <= d_sae, "k")
    norm = cfg["normalize_activations"]
    s = cfg.get("norm_scaling_factor")
    check((s is not None) == (norm == "expected_average_only_in"), "norm_scaling_factor presence")
    exp = {"W_enc": ((d_in, d_sae), wdt), "W_dec": ((d_sae, d_in), wdt), "b_dec": ((d_in,), wdt)}
    if arch == "gated":
        exp.update(b_gate=((d_sae,), wdt), r_mag=((d_sae,), wdt), b_mag=((d_sae,), wdt))
    else:
        exp["b_enc"] = ((d_sae,), wdt)
    if arch == "jumprelu":
        exp["threshold"] = ((d_sae,), "F32")
    if arch == "batchtopk":
        exp["threshold"] = ((), "F32")
    w, f = load_st(os.path.join(folder, "sae_weights.safetensors"), exp)
    check(f.metadata == {"format": "pt"}, "sae_weights metadata")
    sp = os.path.join(folder, "sparsity.safetensors")
    if case["sparsity"]:
        sw, _ = load_st(sp, {"sparsity": ((d_sae,), "F32")})
        check(sw["sparsity"].min() >= -6 and sw["sparsity"].max() <= -0.5, "sparsity range")
    else:
        check(not os.path.exists(sp), "no sparsity file expected")
    if is_residual:
        check(arch == "topk" and not cfg["apply_b_dec_to_input"] and norm == "none", "residual cfg")
        check(np.all(w["b_dec"] == 0), "residual b_dec zeros")
    return dict(kind="saelens", arch=arch, k=k, rescale=rescale, norm=norm, s=s,
                apply=cfg["apply_b_dec_to_input"], w=w, cfg=cfg)


def np_normalize(x, mode, s):
    d = x.shape[1]
    if mode == "none":
        return x, lambda y: y
    if mode == "expected_average_only_in":
        return x * s, lambda y: y / s
    if mode == "constant_norm_rescale":
        c = math.sqrt(d) / np.sqrt((x * x).sum(1, keepdims=True))
        return x * c, lambda y: y / c
    if mode == "layer_norm":
        mu = x.sum(1, keepdims=True) / d
        xc = x - mu
        sd = np.sqrt((xc * xc).sum(1, keepdims=True) / (d - 1))
        return xc / (sd + 1e-5), lambda y: y * sd + mu
    raise Fail("norm " + mode)


def np_topk_rows(scores, k):
    """Boolean keep-mask of the k largest per row (argsort, not torch.topk) and the k-th value."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    mask = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    kth = np.take_along_axis(scores, order[:, -1:], axis=1)
    return mask, np.broadcast_to(kth, scores.shape)


def np_saelens(m, x):
    w = m["w"]
    xn, denorm = np_normalize(x, m["norm"], m["s"])
    sae_in = xn - w["b_dec"][None, :] if m["apply"] else xn
    arch = m["arch"]
    if arch == "gated":
        gate = np.einsum("td,df->tf", sae_in, w["W_enc"]) + w["b_gate"]
        mag = np.einsum("td,df->tf", sae_in, w["W_enc"]) * np.exp(w["r_mag"]) + w["b_mag"]
        feats = np.where(gate > 0, np.maximum(mag, 0), 0.0)
        pre, cut = gate, np.zeros_like(gate)
    else:
        z = np.einsum("td,df->tf", sae_in, w["W_enc"]) + w["b_enc"]
        if arch == "standard":
            feats, pre, cut = np.maximum(z, 0), z, np.zeros_like(z)
        elif arch in ("jumprelu", "batchtopk"):
            th = np.broadcast_to(w["threshold"], z.shape)
            feats, pre, cut = np.where(z > th, z, 0.0), z, th
        elif arch == "topk":
            dn = np.sqrt((w["W_dec"] ** 2).sum(1))
            if m["rescale"]:
                z = z * dn
            keep, cut = np_topk_rows(z, m["k"])
            feats, pre = np.where(keep, np.maximum(z, 0), 0.0), z
        elif arch == "abstopk":
            keep, cut = np_topk_rows(np.abs(z), m["k"])
            feats, pre = np.where(keep, z, 0.0), np.abs(z)
        else:
            raise Fail("arch " + arch)
    dec_in = feats / np.sqrt((w["W_dec"] ** 2).sum(1)) if (arch == "topk" and m["rescale"]) else feats
    recon = denorm(np.einsum("tf,fd->td", dec_in, w["W_dec"]) + w["b_dec"])
    return feats, pre, cut, recon


def load_and_run(case_dir, case, x):
    """Load the SAE from case_dir/sae the way a loader would, run it on x with numpy float64."""
    fmt, d_in, d_sae = case["format"], case["d_in"], case["d_sae"]
    sae = os.path.join(case_dir, "sae")
    wdt = case["weights_dtype"]
    if fmt == "saelens":
        m = load_saelens(sae, case, d_sae, wdt)
        expect_arch = case["arch"]
        check(m["arch"] == expect_arch, "arch %s vs %s" % (m["arch"], expect_arch))
        check(bool(m["apply"]) == case["apply_b_dec_to_input"] and m["norm"] == case["norm"], "cfg flags")
        return np_saelens(m, x)
    if fmt == "gemma-scope":
        path = os.path.join(sae, "params.npz")
        with zipfile.ZipFile(path) as z:
            names = sorted(i.filename for i in z.infolist())
            methods = {i.compress_type for i in z.infolist()}
        check(names == sorted(n + ".npy" for n in ("W_enc", "W_dec", "b_enc", "b_dec", "threshold")), "npz names")
        check(methods == ({zipfile.ZIP_DEFLATED} if case["npz_compressed"] else {zipfile.ZIP_STORED}), "npz method")
        with np.load(path) as npz:
            w = {n: npz[n] for n in npz.files}
        shapes = {"W_enc": (d_in, d_sae), "W_dec": (d_sae, d_in), "b_enc": (d_sae,), "b_dec": (d_in,),
                  "threshold": (d_sae,)}
        for n, sh in shapes.items():
            check(w[n].shape == sh and w[n].dtype == np.float32, "npz %s %s %s" % (n, w[n].shape, w[n].dtype))
        check(os.listdir(sae) == ["params.npz"], "gemma-scope folder holds only params.npz")
        m = dict(arch="jumprelu", norm="none", s=None, apply=False, w={n: v.astype(np.float64) for n, v in w.items()})
        return np_saelens(m, x)
    if fmt == "gemma-scope-2":
        cfg = json.load(open(os.path.join(sae, "config.json")))
        check(cfg == {"hf_hook_point_in": "model.layers.3.output", "hf_hook_point_out": "model.layers.3.output",
                      "width": d_sae, "model_name": "gemma-3-test", "architecture": "jump_relu", "l0": 20,
                      "affine_connection": False, "type": "sae"}, "gemma-scope-2 config")
        w, f = load_st(os.path.join(sae, "params.safetensors"), {
            "w_enc": ((d_in, d_sae), "F32"), "w_dec": ((d_sae, d_in), "F32"), "b_enc": ((d_sae,), "F32"),
            "b_dec": ((d_in,), "F32"), "threshold": ((d_sae,), "F32")})
        check(f.metadata is None, "gemma-scope-2 file has no __metadata__")
        m = dict(arch="jumprelu", norm="none", s=None, apply=False,
                 w={"W_enc": w["w_enc"], "W_dec": w["w_dec"], "b_enc": w["b_enc"], "b_dec": w["b_dec"],
                    "threshold": w["threshold"]})
        return np_saelens(m, x)
    if fmt == "sparsify":
        cfg = json.load(open(os.path.join(sae, "cfg.json")))
        check(cfg["num_latents"] == d_sae and cfg["d_in"] == d_in and cfg["k"] == case["k"]
              and cfg["normalize_decoder"] is True and cfg["signed"] is False
              and cfg["expansion_factor"] == d_sae / d_in, "sparsify cfg")
        w, _ = load_st(os.path.join(sae, "sae.safetensors"), {
            "encoder.weight": ((d_sae, d_in), wdt), "encoder.bias": ((d_sae,), wdt),
            "W_dec": ((d_sae, d_in), wdt), "b_dec": ((d_in,), wdt)})
        pre = np.maximum((x - w["b_dec"]) @ w["encoder.weight"].T + w["encoder.bias"], 0)
        keep, cut = np_topk_rows(pre, cfg["k"])
        feats = np.where(keep, pre, 0.0)
        # sparse decode: sum over kept (index, value) pairs
        recon = np.tile(w["b_dec"], (x.shape[0], 1))
        for t in range(x.shape[0]):
            for i in np.nonzero(keep[t])[0]:
                recon[t] += pre[t, i] * w["W_dec"][i]
        return feats, pre, cut, recon
    if fmt == "llama-scope":
        hp = json.load(open(os.path.join(sae, "hyperparams.json")))
        check(hp["d_model"] == d_in and hp["d_sae"] == d_sae and hp["act_fn"] == "jumprelu"
              and hp["norm_activation"] == "dataset-wise" and hp["apply_decoder_bias_to_pre_encoder"] is False
              and hp["hook_point_in"] == "blocks.3.hook_resid_post" and hp["top_k"] == 50, "llama hyperparams")
        w, _ = load_st(os.path.join(sae, "checkpoints", "final.safetensors"), {
            "encoder.weight": ((d_sae, d_in), wdt), "encoder.bias": ((d_sae,), wdt),
            "decoder.weight": ((d_in, d_sae), wdt), "decoder.bias": ((d_in,), wdt)})
        n_in = hp["dataset_average_activation_norm"]["in"]
        n_out = hp["dataset_average_activation_norm"]["out"]
        theta = hp["jump_relu_threshold"]
        # lm-saes inference form: encoder.bias / s, no input scaling, gate > theta (raw units);
        # codes reported on the normalised scale (times s), as SAELens does
        s = math.sqrt(d_in) / n_in
        pre_raw = x @ w["encoder.weight"].T + w["encoder.bias"] / s
        if case["llama_threshold_space"] == "raw":
            gate, other, cut = pre_raw > theta, pre_raw * s > theta, theta * s
        else:
            gate, other, cut = pre_raw * s > theta, pre_raw > theta, theta
        check(not np.array_equal(gate, other), "the two threshold spaces should give different codes here")
        pre = pre_raw * s
        feats = np.where(gate, pre, 0.0)
        recon = (feats @ w["decoder.weight"].T + w["decoder.bias"]) * (n_out / math.sqrt(d_in))
        check(abs(case["threshold_effective"] - cut) <= 1e-12 * max(1, cut), "threshold_effective")
        return feats, pre, np.full_like(pre, cut), recon
    if fmt == "composed":
        cj = json.load(open(os.path.join(sae, "saeguard-composed.json")))
        check(cj == {"base": "base", "residual": "residual", "residual_input": case["residual_input"]}, "composed json")
        mb = load_saelens(os.path.join(sae, cj["base"]), case, d_sae, wdt)
        mr = load_saelens(os.path.join(sae, cj["residual"]), case, case["d_sae_res"], wdt, is_residual=True)
        check(mb["arch"] == case["arch"] and mr["k"] == case["k_res"], "composed archs")
        fb, pb, cb, rb = np_saelens(mb, x)
        fr, pr, cr, rr = np_saelens(mr, x - rb if cj["residual_input"] == "error" else x)
        return (np.concatenate([fb, fr], 1), np.concatenate([pb, pr], 1), np.concatenate([cb, cr], 1), rb + rr)
    raise Fail("format " + fmt)


# ---------------------------------------------------------------------------------------------
def close(a, b, name, tol=2e-6):
    """max |a - b| <= tol * max(1, max |b|): F32 rounding of the stored expected values."""
    check(a.shape == b.shape, "%s shape %s vs %s" % (name, a.shape, b.shape))
    scale = max(1.0, float(np.abs(b).max())) if b.size else 1.0
    err = float(np.abs(a - b).max()) if a.size else 0.0
    check(err <= tol * scale, "%s differs: max abs err %.3g (scale %.3g)" % (name, err, scale))


def verify_case(case_dir, args_str):
    case = json.load(open(os.path.join(case_dir, "case.json")))
    fmt = case["format"]
    d_in, T, F = case["d_in"], case["tokens"], case["d_sae_total"]
    check(case["d_sae_total"] == case["d_sae"] + case.get("d_sae_res", 0), "d_sae_total")
    check(case["architecture"] in ("standard", "jumprelu", "topk", "batchtopk", "abstopk", "gated", "composed"),
          "architecture")
    check(("hook" in case) == (fmt in ("saelens", "composed", "gemma-scope-2", "llama-scope")), "hook presence")
    for rel in case["files"]:
        check(os.path.isfile(os.path.join(case_dir, rel)), "missing " + rel)
    xin, _ = load_st(os.path.join(case_dir, "input.safetensors"), {"activations": ((T, d_in), "F32")})
    ex, ef = load_st(os.path.join(case_dir, "expected.safetensors"), {
        "features": ((T, F), "F32"), "pre": ((T, F), "F32"), "threshold_used": ((T, F), "F32"),
        "reconstruction": ((T, d_in), "F32")})
    check(ef.metadata["seed"] == str(case["seed"]), "expected metadata seed")
    x = xin["activations"]
    feats, pre, cut, recon = load_and_run(case_dir, case, x)
    close(feats, ex["features"], "features")
    close(pre, ex["pre"], "pre")
    close(cut, ex["threshold_used"], "threshold_used")
    # reconstruction after layer_norm / constant_norm_rescale can be larger; compare relative to its scale
    close(recon, ex["reconstruction"], "reconstruction", tol=5e-6)
    # active sets must agree exactly (no near-ties were allowed)
    check(np.array_equal(feats != 0, ex["features"] != 0), "active sets differ")

    # sparsity levels
    arch = case["architecture"]
    active = ex["features"] != 0
    frac = active.mean()
    if arch in ("standard", "jumprelu", "batchtopk", "gated"):
        check(0.02 <= frac <= 0.25, "firing fraction %.3f outside [2%%, 25%%]" % frac)
        if case["d_sae"] >= 128:
            check(active.any(1).mean() >= 0.5, "most tokens should fire something")
    if arch in ("topk", "abstopk") or (fmt == "composed" and case["arch"] == "topk"):
        k = case["k"]
        l0 = active[:, :case["d_sae"]].sum(1)
        check(np.all(l0 <= k), "topk L0 > k")
        if arch == "abstopk":
            check(np.all(l0 == k), "abstopk L0 != k")
            check((ex["features"] < 0).any(), "abstopk should keep some negative codes")
        if k <= 16:
            check(np.all(l0 == k), "topk with small k should have L0 == k (random weights)")
        elif k >= 200:
            check(np.all(l0 < k), "k=200 case should have fewer than k positive codes")
    if fmt == "composed":
        l0r = active[:, case["d_sae"]:].sum(1)
        check(np.all(l0r <= case["k_res"]) and l0r.mean() >= 1, "residual L0")

    # margins in the F32 file
    for lo, hi, kind, k in composed_parts(case):
        p, q = ex["pre"][:, lo:hi], ex["threshold_used"][:, lo:hi]
        if kind == "threshold":
            check(np.all(np.abs(p - q) > 0.9e-4 * np.maximum(1, np.abs(q))), "near-tie in file")
        elif k < hi - lo:
            srt = -np.sort(-p, axis=1)
            kth, nxt = srt[:, k - 1], srt[:, k]
            check(np.all(np.abs(q[:, 0] - kth) == 0), "threshold_used is the k-th largest score")
            ok = (kth - nxt) > 0.9e-4 * np.maximum(1, np.abs(kth))
            if kind == "topk":
                ok |= kth <= 0
            check(np.all(ok), "near-tie in top-k")
    return case


def composed_parts(case):
    arch, fmt = case["arch"], case["format"]
    kind = "topk" if arch == "topk" else "abstopk" if arch == "abstopk" else "threshold"
    parts = [(0, case["d_sae"], kind, case.get("k"))]
    if fmt == "composed":
        parts.append((case["d_sae"], case["d_sae_total"], "topk", case["k_res"]))
    return parts


def bf16_check():
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.standard_normal(100000).astype(np.float32) * 10,
                        np.array([0.0, -0.0, 1.0, 1.00390625, 1.01171875, 65504.0, 1e-40, -3.4e38], np.float32),
                        # exact halfway points: round to even
                        (np.arange(0, 4096, dtype=np.uint32) << 16 | 0x8000).view(np.float32)])
    ours = f32_to_bf16_bits(x)
    theirs = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    check(np.array_equal(ours, theirs), "BF16 rounding differs from torch")
    back = bf16_bits_to_f32(ours)
    check(np.array_equal(back, torch.from_numpy(x).to(torch.bfloat16).float().numpy()), "BF16 widening")


def run(keep=None):
    t0 = time.time()
    root = keep or tempfile.mkdtemp(prefix="make_sae_selftest_")
    os.makedirs(root, exist_ok=True)
    parser = make_sae.build_parser()
    failures = []
    bf16_check()
    print("bf16 rounding matches torch")
    for i, (name, args) in enumerate(CASES):
        d = os.path.join(root, name)
        seed = 1000 + i
        try:
            c = make_sae.resolve(parser.parse_args(args.split() + ["--out", d, "--seed", str(seed)]))
            case = make_sae.generate(c, d, seed)
            verify_case(d, args)
            print("ok   %-45s %-13s %-9s L0 %6.2f  draws %d" % (
                name, case["format"], case["architecture"], case["stats"]["l0_mean"], case["stats"]["input_draws"]))
        except (Fail, make_sae.Unsupported, AssertionError, KeyError, ValueError) as e:
            failures.append(name)
            print("FAIL %-45s %s: %s" % (name, type(e).__name__, e))
    # determinism: regenerate two cases and compare bytes
    names = [n for n, _ in CASES]
    for name in ("saelens-standard-bf16-ln-sparsity", "composed-topk-rescale-ln-error", "llama-scope"):
        i = names.index(name)
        args = CASES[i][1]
        d2 = os.path.join(root, name + "-again")
        c = make_sae.resolve(parser.parse_args(args.split() + ["--out", d2, "--seed", str(1000 + i)]))
        make_sae.generate(c, d2, 1000 + i)
        for rel in json.load(open(os.path.join(d2, "case.json")))["files"]:
            a, b = open(os.path.join(root, name, rel), "rb").read(), open(os.path.join(d2, rel), "rb").read()
            if a != b:
                failures.append(name + " determinism " + rel)
                print("FAIL determinism %s %s" % (name, rel))
        shutil.rmtree(d2)
    print("deterministic per seed")
    for args in UNSUPPORTED:
        try:
            make_sae.resolve(parser.parse_args(args.split() + ["--out", "/nonexistent"]))
            failures.append("accepted: " + args)
            print("FAIL accepted unsupported: " + args)
        except make_sae.Unsupported:
            pass
    print("%d unsupported combinations rejected" % len(UNSUPPORTED))
    if keep is None:
        shutil.rmtree(root)
    print("%d cases, %d failures, %.1fs" % (len(CASES), len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else None))
