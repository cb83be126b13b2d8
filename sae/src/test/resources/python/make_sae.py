#!/usr/bin/python3
"""Independent Python reference for saeguard's SAE loaders and encoders.

Generates a random SAE on disk in one of the supported file formats, random input activations, and
the outputs the published formulas give for them, computed in float64 PyTorch from the weights AS
STORED (after BF16 rounding, widened back exactly) and saved as F32. Shares no code with the Java
side. Run with Debian's interpreter (it has torch and numpy):

    /usr/bin/python3 make_sae.py --format FORMAT [--arch ARCH] --out DIR [--seed S]
        [--d-in 64] [--d-sae 256] [--k 8] [--tokens 16] [--weights-dtype F32|BF16]
        [--norm none|expected_average_only_in|constant_norm_rescale|layer_norm]
        [--apply-b-dec 1|0] [--rescale-by-decoder-norm 0|1] [--sparsity 0|1]
        [--cfg-version 6|5] [--npz-compressed 0|1]
        [--residual-input error|input] [--d-sae-res 64] [--k-res 4]
        [--llama-threshold-space raw|normalized] [--tie-tol 1e-4]
    /usr/bin/python3 make_sae.py --self-test [--keep DIR]

It prints `seed: S` first. An unsupported combination exits with status 2 and a message on stderr
starting with `unsupported:`; bad usage exits 2 via argparse.

Output:
  DIR/sae/                   the SAE in the requested format (layouts below)
  DIR/input.safetensors      `activations` [tokens, d_in] F32
  DIR/expected.safetensors   F32 `features` [tokens, d_sae_total], `pre` [tokens, d_sae_total],
                             `threshold_used` [tokens, d_sae_total], `reconstruction` [tokens, d_in]
  DIR/case.json              parameters used, `d_sae_total`, `architecture`, `format`, `hook`/`model`
                             (formats that carry them), and generation statistics

`pre` is the value the keep/drop decision was made on: pre-activation for standard / jumprelu /
batchtopk / llama-scope (from the normalised input), pi_gate for gated, the (decoder-norm-
rescaled) pre-activation for SAELens topk, |z| for abstopk, ReLU(pre) for sparsify.
`threshold_used` is what it was compared with: theta (jumprelu, batchtopk; for llama-scope the
effective cut, see below), 0 (standard, gated), or the token's k-th largest score (topk kinds).
Tokens are re-drawn until no decision value lies within TOL * max(1, |cut|) of its cut
(TOL = --tie-tol, default 1e-4); for top-k kinds, until the k-th and (k+1)-th scores are that far
apart (unless both are <= 0, when either choice gives a 0 code). With very wide SAEs (d_sae in
the 100k range) lower --tie-tol, or nearly every token has some near-tie.

SUPPORTED COMBINATIONS (anything else exits 2 with `unsupported: ...`)
  format saelens, --cfg-version 6 (default; SAELens v6 cfg.json with `metadata`)
      --arch standard | jumprelu | batchtopk | abstopk | gated | topk
      --weights-dtype F32 | BF16 (threshold always F32)
      --norm none | expected_average_only_in | constant_norm_rescale | layer_norm
      --apply-b-dec 1 (default) | 0
      --rescale-by-decoder-norm 0 | 1   (1 only with --arch topk)
      --sparsity 0 | 1                  (1 writes sae/sparsity.safetensors)
      --k (topk, abstopk)
  format saelens, --cfg-version 5 (pre-6.0 flat cfg.json)
      --arch standard | jumprelu | gated | topk (written as architecture "standard",
                                                activation_fn_str "topk")
      same dtype / norm / apply-b-dec / sparsity options; --rescale-by-decoder-norm 0 only
  format gemma-scope (Gemma Scope 1, params.npz)
      --arch jumprelu only; F32 only; --norm none; --apply-b-dec 0; --npz-compressed 0 | 1
  format gemma-scope-2 (params.safetensors + config.json)
      --arch jumprelu only; F32 only; --norm none; --apply-b-dec 0
  format sparsify (EleutherAI, cfg.json + sae.safetensors)
      --arch topk only; F32 | BF16; --norm none; b_dec always subtracted (--apply-b-dec 1);
      --k any 1..d_sae (k above the number of positive pre-activations gives zero codes)
  format llama-scope (hyperparams.json + checkpoints/final.safetensors)
      --arch jumprelu only; BF16 (default) | F32; --norm none (its own dataset-wise norm);
      --apply-b-dec 0; --llama-threshold-space raw (default) | normalized:
        s = sqrt(d_model)/n_in, pre = (x*s) @ encoder.weight.T + encoder.bias,
        a = ReLU(pre) * 1[pre > cut], x_hat = (a @ decoder.weight.T + decoder.bias) * n_out/sqrt(d)
        raw:        cut = jump_relu_threshold * s  (OpenMOSS lm-saes at the Llama Scope release,
                    and SAELens' llama_scope loader: theta is in raw-activation units)
        normalized: cut = jump_relu_threshold      (the formula in the saeguard brief)
  format composed (SAE Boost: saeguard-composed.json + SAELens v6 folders base/ and residual/)
      --arch topk | jumprelu (the base SAE); --residual-input error (default) | input;
      base takes --weights-dtype, --norm, --apply-b-dec, --rescale-by-decoder-norm (topk),
      --sparsity, --k; the residual is SAELens topk, --k-res (default 4), --d-sae-res
      (default 64), b_dec all zeros, apply_b_dec_to_input false, norm none, same weights dtype.

FILE LAYOUTS (tensor orientation as on disk)
  saelens:      sae/cfg.json, sae/sae_weights.safetensors: W_enc [d_in,d_sae], b_enc [d_sae],
                W_dec [d_sae,d_in], b_dec [d_in]; jumprelu + threshold [d_sae] F32;
                batchtopk + threshold [] F32 (one global theta); gated: W_enc, b_gate, r_mag,
                b_mag [d_sae], W_dec, b_dec, no b_enc. sae/sparsity.safetensors: sparsity [d_sae].
  gemma-scope:  sae/params.npz: W_enc [d_in,d_sae], W_dec [d_sae,d_in], b_enc, b_dec, threshold
  gemma-scope-2: sae/params.safetensors (no __metadata__): w_enc [d_in,d_sae], w_dec [d_sae,d_in],
                b_enc, b_dec, threshold; sae/config.json
  sparsify:     sae/cfg.json, sae/sae.safetensors: encoder.weight [d_sae,d_in], encoder.bias,
                W_dec [d_sae,d_in], b_dec [d_in]
  llama-scope:  sae/hyperparams.json, sae/checkpoints/final.safetensors: encoder.weight
                [d_sae,d_model], encoder.bias, decoder.weight [d_model,d_sae], decoder.bias
  composed:     sae/saeguard-composed.json, sae/base/ and sae/residual/ (SAELens v6 folders)
"""
import argparse
import json
import math
import os
import shutil
import sys
import zipfile

sys.dont_write_bytecode = True  # keep __pycache__ out of the test-resources folder
HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import sae_reference as ref  # noqa: E402
from safetensors_io import round_to_dtype, write_safetensors  # noqa: E402

FORMATS = ("saelens", "gemma-scope", "gemma-scope-2", "sparsify", "llama-scope", "composed")
ARCHS = ("standard", "jumprelu", "topk", "batchtopk", "abstopk", "gated")
NORMS = ("none", "expected_average_only_in", "constant_norm_rescale", "layer_norm")
SAELENS_V6_ARCHS = ("standard", "jumprelu", "topk", "batchtopk", "abstopk", "gated")
SAELENS_V5_ARCHS = ("standard", "jumprelu", "gated", "topk")
DEFAULT_ARCH = {"gemma-scope": "jumprelu", "gemma-scope-2": "jumprelu", "sparsify": "topk",
                "llama-scope": "jumprelu"}

HOOK_TL = "blocks.3.hook_resid_post"
HOOK_HF = "model.layers.3.output"
MODEL_SAELENS = "test-model"
MODEL_GS2 = "gemma-3-test"

TIE_TOL = 1e-4
MAX_INPUT_DRAWS = 500


class Unsupported(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Argument resolution: fill format-dependent defaults, reject what is not supported.
# ---------------------------------------------------------------------------------------------
def build_parser():
    ap = argparse.ArgumentParser(description="Generate a random SAE, inputs and reference outputs.")
    ap.add_argument("--format", choices=FORMATS)
    ap.add_argument("--arch", choices=ARCHS)
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--d-in", type=int, default=64)
    ap.add_argument("--d-sae", type=int, default=256)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--weights-dtype", choices=("F32", "BF16"))
    ap.add_argument("--norm", choices=NORMS, default="none")
    ap.add_argument("--apply-b-dec", type=int, choices=(0, 1))
    ap.add_argument("--rescale-by-decoder-norm", type=int, choices=(0, 1), default=0)
    ap.add_argument("--residual-input", choices=("error", "input"))
    ap.add_argument("--sparsity", type=int, choices=(0, 1), default=0)
    ap.add_argument("--cfg-version", type=int, choices=(5, 6))
    ap.add_argument("--npz-compressed", type=int, choices=(0, 1))
    ap.add_argument("--d-sae-res", type=int)
    ap.add_argument("--k-res", type=int)
    ap.add_argument("--tie-tol", type=float, default=1e-4,
                    help="re-draw tokens with a decision within TOL * max(1, |cut|) of its cut")
    ap.add_argument("--llama-threshold-space", choices=("raw", "normalized"),
                    help="llama-scope only: units of jump_relu_threshold (default raw, see docstring)")
    ap.add_argument("--self-test", action="store_true",
                    help="generate every supported combination into a temp dir and verify them")
    ap.add_argument("--keep", help="with --self-test: write the cases here and keep them")
    return ap


def resolve(a):
    """argparse namespace -> case dict with every parameter decided. Raises Unsupported."""
    fmt = a.format
    if fmt is None:
        raise Unsupported("--format is required")
    arch = a.arch or DEFAULT_ARCH.get(fmt)
    if arch is None:
        raise Unsupported("--arch is required for format %s" % fmt)
    for name, v in (("--d-in", a.d_in), ("--d-sae", a.d_sae), ("--k", a.k), ("--tokens", a.tokens)):
        if v < 1:
            raise Unsupported("%s must be >= 1 (got %d)" % (name, v))
    if a.d_in < 2:
        raise Unsupported("--d-in must be >= 2")

    def only(flag, value, allowed, why):
        if value is not None and value not in allowed:
            ctx = "--format " + fmt
            if flag != "--arch" and fmt != "composed":
                ctx += " --arch " + arch
            raise Unsupported("%s %s is not supported with %s: %s" % (flag, value, ctx, why))

    if fmt != "saelens":
        only("--cfg-version", a.cfg_version, (6,), "only the saelens format has a v5 cfg")
    if fmt != "gemma-scope":
        only("--npz-compressed", a.npz_compressed, (0,), "only gemma-scope is stored as npz")
    if fmt != "composed":
        if a.residual_input is not None:
            raise Unsupported("--residual-input applies to --format composed only")
        if a.d_sae_res is not None or a.k_res is not None:
            raise Unsupported("--d-sae-res / --k-res apply to --format composed only")
    if fmt != "llama-scope" and a.llama_threshold_space is not None:
        raise Unsupported("--llama-threshold-space applies to --format llama-scope only")
    if fmt not in ("saelens", "composed"):
        only("--sparsity", a.sparsity, (0,), "only SAELens folders carry sparsity.safetensors")

    c = {"format": fmt, "arch": arch, "d_in": a.d_in, "d_sae": a.d_sae, "tokens": a.tokens,
         "norm": a.norm, "rescale_acts_by_decoder_norm": bool(a.rescale_by_decoder_norm),
         "sparsity": bool(a.sparsity), "tie_tol": a.tie_tol}
    if not 0 <= a.tie_tol < 0.1:
        raise Unsupported("--tie-tol must be in [0, 0.1)")

    if fmt == "saelens":
        ver = a.cfg_version or 6
        archs = SAELENS_V6_ARCHS if ver == 6 else SAELENS_V5_ARCHS
        if arch not in archs:
            raise Unsupported("--arch %s with --format saelens --cfg-version %d (supported: %s)"
                              % (arch, ver, ", ".join(archs)))
        if c["rescale_acts_by_decoder_norm"] and (arch != "topk" or ver != 6):
            raise Unsupported("--rescale-by-decoder-norm 1 needs --arch topk and --cfg-version 6")
        c.update(cfg_version=ver, weights_dtype=a.weights_dtype or "F32",
                 apply_b_dec_to_input=True if a.apply_b_dec is None else bool(a.apply_b_dec))
    elif fmt in ("gemma-scope", "gemma-scope-2"):
        only("--arch", arch, ("jumprelu",), "Gemma Scope SAEs are JumpReLU")
        only("--weights-dtype", a.weights_dtype, ("F32",), "Gemma Scope weights are float32")
        only("--norm", a.norm, ("none",), "Gemma Scope has no input normalisation")
        only("--apply-b-dec", a.apply_b_dec, (0,), "Gemma Scope does not subtract b_dec")
        only("--rescale-by-decoder-norm", a.rescale_by_decoder_norm, (0,), "JumpReLU")
        c.update(weights_dtype="F32", apply_b_dec_to_input=False)
        if fmt == "gemma-scope":
            c["npz_compressed"] = bool(a.npz_compressed)
    elif fmt == "sparsify":
        only("--arch", arch, ("topk",), "sparsify SAEs are TopK")
        only("--norm", a.norm, ("none",), "sparsify has no input normalisation")
        only("--apply-b-dec", a.apply_b_dec, (1,), "sparsify SAEs always subtract b_dec")
        only("--rescale-by-decoder-norm", a.rescale_by_decoder_norm, (0,),
             "sparsify has no decoder-norm rescale (normalize_decoder keeps rows at unit norm)")
        if a.k > a.d_sae:
            raise Unsupported("--k %d > --d-sae %d" % (a.k, a.d_sae))
        c.update(weights_dtype=a.weights_dtype or "F32", apply_b_dec_to_input=True, k=a.k)
    elif fmt == "llama-scope":
        only("--arch", arch, ("jumprelu",), "Llama Scope SAEs are JumpReLU with one scalar theta")
        only("--norm", a.norm, ("none",), "Llama Scope uses its own dataset-wise norm "
             "(hyperparams dataset_average_activation_norm); pass --norm none")
        only("--apply-b-dec", a.apply_b_dec, (0,), "apply_decoder_bias_to_pre_encoder is false")
        only("--rescale-by-decoder-norm", a.rescale_by_decoder_norm, (0,), "JumpReLU")
        c.update(weights_dtype=a.weights_dtype or "BF16", apply_b_dec_to_input=False,
                 llama_threshold_space=a.llama_threshold_space or "raw")
    elif fmt == "composed":
        only("--arch", arch, ("topk", "jumprelu"), "the composed base SAE is topk or jumprelu")
        if c["rescale_acts_by_decoder_norm"] and arch != "topk":
            raise Unsupported("--rescale-by-decoder-norm 1 needs a topk base")
        c.update(cfg_version=6, weights_dtype=a.weights_dtype or "F32",
                 apply_b_dec_to_input=True if a.apply_b_dec is None else bool(a.apply_b_dec),
                 residual_input=a.residual_input or "error",
                 d_sae_res=64 if a.d_sae_res is None else a.d_sae_res,
                 k_res=4 if a.k_res is None else a.k_res)
        if c["d_sae_res"] < 1 or c["k_res"] < 1 or c["k_res"] > c["d_sae_res"]:
            raise Unsupported("need 1 <= --k-res <= --d-sae-res")
    if arch in ("topk", "abstopk") or (fmt == "composed" and arch == "topk"):
        if a.k > a.d_sae:
            raise Unsupported("--k %d > --d-sae %d" % (a.k, a.d_sae))
        c["k"] = a.k
    return c


# ---------------------------------------------------------------------------------------------
# Random weights and inputs.
# ---------------------------------------------------------------------------------------------
def draw_input(rng, tokens, d_in):
    """Standard normal x 2, plus a per-token offset, times a per-token scale in [0.5, 2]."""
    scale = rng.uniform(0.5, 2.0, size=(tokens, 1))
    offset = rng.normal(0.0, 1.0, size=(tokens, 1))
    x = scale * (2.0 * rng.standard_normal((tokens, d_in)) + offset)
    return x.astype(np.float32)


def t64(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64).copy())


def rms(a):
    a = np.asarray(a, dtype=np.float64)
    return float(np.sqrt(np.mean(a * a)))


def sig(v, digits=6):
    """A float rounded to `digits` significant digits (like values published in registries)."""
    return float("%.*g" % (digits, v))


class Stored:
    """Tensors as they go to disk: (name, float32 value as stored, dtype) + float64 torch copies."""

    def __init__(self):
        self.entries = []
        self.t = {}

    def add(self, name, value, dtype):
        stored = round_to_dtype(np.asarray(value, dtype=np.float64).astype(np.float32), dtype)
        stored = stored.reshape(np.shape(value))
        self.entries.append((name, stored, dtype))
        self.t[name] = t64(stored)
        return stored


def decoder_rows(rng, n, d, norm_lo, norm_hi):
    w = rng.standard_normal((n, d))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    return w * rng.uniform(norm_lo, norm_hi, size=(n, 1))


def make_saelens_weights(rng, arch, d_in, d_sae, in_rms, wdtype, zero_b_dec=False):
    """SAELens-orientation weights. The encoder is scaled so that sae_in @ W_enc has std ~ 1; the
    biases then put roughly 5-20% of ReLU/JumpReLU/Gated features above their cut."""
    st = Stored()
    w_enc = rng.standard_normal((d_in, d_sae)) / (math.sqrt(d_in) * in_rms)
    w_dec = decoder_rows(rng, d_sae, d_in, 0.5, 2.0)
    b_dec = np.zeros(d_in) if zero_b_dec else rng.normal(0.0, 0.2, size=d_in)
    st.add("W_enc", w_enc, wdtype)
    if arch == "gated":
        st.add("b_gate", rng.normal(-1.3, 0.15, size=d_sae), wdtype)
        st.add("r_mag", rng.normal(0.0, 0.2, size=d_sae), wdtype)
        st.add("b_mag", rng.normal(0.1, 0.1, size=d_sae), wdtype)
    else:
        mean = {"standard": -1.3, "jumprelu": -1.0, "batchtopk": -1.0}.get(arch, 0.0)
        sd = 0.15 if arch in ("standard", "jumprelu", "batchtopk") else 0.1
        st.add("b_enc", rng.normal(mean, sd, size=d_sae), wdtype)
    st.add("W_dec", w_dec, wdtype)
    st.add("b_dec", b_dec, wdtype)
    if arch == "jumprelu":
        st.add("threshold", rng.uniform(0.05, 0.5, size=d_sae), "F32")
    elif arch == "batchtopk":
        st.add("threshold", np.array(rng.uniform(0.1, 0.4)), "F32")
    return st


# ---------------------------------------------------------------------------------------------
# Models: write files, then compute (features, pre, cut, reconstruction) for an input.
# ---------------------------------------------------------------------------------------------
def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


class SaeLensModel:
    """One SAELens folder. Also used for the composed base and residual SAEs."""

    def __init__(self, rng, c, arch, x_cal, d_sae, k=None, norm=None, apply_b_dec=None,
                 rescale=None, zero_b_dec=False):
        self.arch = arch
        self.d_in = c["d_in"]
        self.d_sae = d_sae
        self.k = k
        self.norm = c["norm"] if norm is None else norm
        self.apply_b_dec = c["apply_b_dec_to_input"] if apply_b_dec is None else apply_b_dec
        self.rescale = c["rescale_acts_by_decoder_norm"] if rescale is None else rescale
        self.wdtype = c["weights_dtype"]
        self.cfg_version = c.get("cfg_version", 6)
        self.sparsity = c["sparsity"]
        self.norm_scaling_factor = None
        if self.norm == "expected_average_only_in":
            # s = sqrt(d_in) / E||x||, as SAELens' activation scaler computes it
            self.norm_scaling_factor = sig(math.sqrt(self.d_in) / np.linalg.norm(
                x_cal.astype(np.float64), axis=1).mean())
        xn, _ = ref.normalize(t64(x_cal), self.norm, self.norm_scaling_factor)
        self.st = make_saelens_weights(rng, arch, self.d_in, d_sae, rms(xn.numpy()), self.wdtype,
                                       zero_b_dec=zero_b_dec)
        self.sparsity_values = (rng.uniform(-6.0, -0.5, size=d_sae).astype(np.float32)
                                if self.sparsity else None)

    def compute(self, x):
        return ref.run_saelens(x, self.st.t, self.arch, self.norm, self.norm_scaling_factor,
                               self.apply_b_dec, self.k, self.rescale)

    def tie_kind(self):
        if self.arch in ("topk",):
            return "topk"
        if self.arch == "abstopk":
            return "abstopk"
        return "threshold"

    def cfg(self):
        dtype = "bfloat16" if self.wdtype == "BF16" else "float32"
        if self.cfg_version == 5:
            cfg = {"architecture": "standard" if self.arch == "topk" else self.arch,
                   "d_in": self.d_in, "d_sae": self.d_sae, "dtype": dtype, "device": "cpu",
                   "apply_b_dec_to_input": self.apply_b_dec,
                   "normalize_activations": self.norm,
                   "activation_fn_str": "topk" if self.arch == "topk" else "relu",
                   "activation_fn_kwargs": {"k": self.k} if self.arch == "topk" else {},
                   "finetuning_scaling_factor": False,
                   "model_name": MODEL_SAELENS, "hook_name": HOOK_TL, "hook_layer": 3,
                   "hook_head_index": None, "context_size": 128, "prepend_bos": True,
                   "dataset_path": "test/dataset", "sae_lens_training_version": "5.10.0"}
        else:
            cfg = {"architecture": self.arch, "d_in": self.d_in, "d_sae": self.d_sae,
                   "dtype": dtype, "device": "cpu", "apply_b_dec_to_input": self.apply_b_dec,
                   "normalize_activations": self.norm, "reshape_activations": "none"}
            if self.arch in ("topk", "abstopk"):
                cfg["k"] = self.k
            if self.arch == "topk":
                cfg["rescale_acts_by_decoder_norm"] = self.rescale
            cfg["metadata"] = {"model_name": MODEL_SAELENS, "hook_name": HOOK_TL,
                               "hook_head_index": None, "model_class_name": "HookedTransformer",
                               "prepend_bos": True, "context_size": 128,
                               "dataset_path": "test/dataset", "sae_lens_version": "6.5.0",
                               "sae_lens_training_version": "6.5.0"}
        if self.norm_scaling_factor is not None:
            cfg["norm_scaling_factor"] = self.norm_scaling_factor
        return cfg

    def write(self, folder):
        os.makedirs(folder, exist_ok=True)
        write_json(os.path.join(folder, "cfg.json"), self.cfg())
        write_safetensors(os.path.join(folder, "sae_weights.safetensors"), self.st.entries,
                          {"format": "pt"})
        files = ["cfg.json", "sae_weights.safetensors"]
        if self.sparsity_values is not None:
            write_safetensors(os.path.join(folder, "sparsity.safetensors"),
                              [("sparsity", self.sparsity_values, "F32")], {"format": "pt"})
            files.append("sparsity.safetensors")
        return files


class GemmaScopeModel:
    def __init__(self, rng, c, x_cal):
        self.c = c
        self.st = make_saelens_weights(rng, "jumprelu", c["d_in"], c["d_sae"], rms(x_cal), "F32")

    def compute(self, x):
        return ref.run_saelens(x, self.st.t, "jumprelu", "none", None, False)

    def tie_kind(self):
        return "threshold"

    def write(self, folder):
        os.makedirs(folder, exist_ok=True)
        arrays = {name: v.astype(np.float32) for name, v, _ in self.st.entries}
        order = ("W_enc", "W_dec", "b_enc", "b_dec", "threshold")
        if self.c["format"] == "gemma-scope":
            save = np.savez_compressed if self.c["npz_compressed"] else np.savez
            save(os.path.join(folder, "params.npz"), **{n: arrays[n] for n in order})
            return ["params.npz"]
        write_safetensors(os.path.join(folder, "params.safetensors"),
                          [(n.lower(), arrays[n], "F32") for n in order], None)
        write_json(os.path.join(folder, "config.json"), {
            "hf_hook_point_in": HOOK_HF, "hf_hook_point_out": HOOK_HF, "width": self.c["d_sae"],
            "model_name": MODEL_GS2, "architecture": "jump_relu", "l0": 20,
            "affine_connection": False, "type": "sae"})
        return ["params.safetensors", "config.json"]


class SparsifyModel:
    def __init__(self, rng, c, x_cal):
        self.c = c
        d_in, d_sae, wd = c["d_in"], c["d_sae"], c["weights_dtype"]
        st = Stored()
        st.add("encoder.weight", rng.standard_normal((d_sae, d_in)) / (math.sqrt(d_in) * rms(x_cal)), wd)
        st.add("encoder.bias", rng.normal(0.0, 0.1, size=d_sae), wd)
        st.add("W_dec", decoder_rows(rng, d_sae, d_in, 1.0, 1.0), wd)  # normalize_decoder: unit rows
        st.add("b_dec", rng.normal(0.0, 0.2, size=d_in), wd)
        self.st = st

    def compute(self, x):
        return ref.run_sparsify(x, self.st.t, self.c["k"])

    def tie_kind(self):
        return "topk"

    def write(self, folder):
        os.makedirs(folder, exist_ok=True)
        c = self.c
        ef = c["d_sae"] // c["d_in"] if c["d_sae"] % c["d_in"] == 0 else c["d_sae"] / c["d_in"]
        write_json(os.path.join(folder, "cfg.json"), {
            "expansion_factor": ef, "normalize_decoder": True, "num_latents": c["d_sae"],
            "k": c["k"], "signed": False, "d_in": c["d_in"]})
        write_safetensors(os.path.join(folder, "sae.safetensors"), self.st.entries, {"format": "pt"})
        return ["cfg.json", "sae.safetensors"]


class LlamaScopeModel:
    def __init__(self, rng, c, x_cal):
        self.c = c
        d, d_sae, wd = c["d_in"], c["d_sae"], c["weights_dtype"]
        self.norm_in = sig(np.linalg.norm(x_cal.astype(np.float64), axis=1).mean())
        self.norm_out = sig(self.norm_in * rng.uniform(0.8, 1.25))
        s = math.sqrt(d) / self.norm_in
        self.space = c["llama_threshold_space"]
        # the cut on the normalised pre-activation is ~U(0.1, 0.4); theta is stored in its space
        cut = rng.uniform(0.1, 0.4)
        self.theta = sig(cut / s if self.space == "raw" else cut)
        self.cut = ref.llama_scope_cut(self.theta, self.norm_in, d, self.space)
        xs = x_cal.astype(np.float64) * s
        st = Stored()
        st.add("encoder.weight", rng.standard_normal((d_sae, d)) / (math.sqrt(d) * rms(xs)), wd)
        st.add("encoder.bias", rng.normal(-1.0, 0.15, size=d_sae), wd)
        st.add("decoder.weight", decoder_rows(rng, d_sae, d, 0.5, 2.0).T, wd)
        st.add("decoder.bias", rng.normal(0.0, 0.2, size=d), wd)
        self.st = st

    def compute(self, x):
        return ref.run_llama_scope(x, self.st.t, self.theta, self.norm_in, self.norm_out, self.space)

    def tie_kind(self):
        return "threshold"

    def write(self, folder):
        os.makedirs(os.path.join(folder, "checkpoints"), exist_ok=True)
        c = self.c
        write_json(os.path.join(folder, "hyperparams.json"), {
            "d_model": c["d_in"], "d_sae": c["d_sae"], "act_fn": "jumprelu",
            "jump_relu_threshold": self.theta, "norm_activation": "dataset-wise",
            "dataset_average_activation_norm": {"in": self.norm_in, "out": self.norm_out},
            "apply_decoder_bias_to_pre_encoder": False, "hook_point_in": HOOK_TL,
            "hook_point_out": HOOK_TL, "top_k": 50})
        write_safetensors(os.path.join(folder, "checkpoints", "final.safetensors"),
                          self.st.entries, {"format": "pt"})
        return ["hyperparams.json", "checkpoints/final.safetensors"]


class ComposedModel:
    def __init__(self, rng, c, x_cal):
        self.c = c
        self.base = SaeLensModel(rng, c, c["arch"], x_cal, c["d_sae"], k=c.get("k"))
        if c["residual_input"] == "error":
            _, _, _, recon = self.base.compute(t64(x_cal))
            res_cal = (t64(x_cal) - recon).numpy()
        else:
            res_cal = x_cal
        self.res = SaeLensModel(rng, c, "topk", res_cal.astype(np.float32), c["d_sae_res"],
                                k=c["k_res"], norm="none", apply_b_dec=False, rescale=False,
                                zero_b_dec=True)

    def compute(self, x):
        fb, pb, cb, rb = self.base.compute(x)
        res_in = x - rb if self.c["residual_input"] == "error" else x
        fr, pr, cr, rr = self.res.compute(res_in)
        return (torch.cat([fb, fr], -1), torch.cat([pb, pr], -1), torch.cat([cb, cr], -1), rb + rr)

    def tie_parts(self):
        return [(0, self.c["d_sae"], self.base.tie_kind(), self.base.k),
                (self.c["d_sae"], self.c["d_sae"] + self.c["d_sae_res"], "topk", self.c["k_res"])]

    def write(self, folder):
        os.makedirs(folder, exist_ok=True)
        write_json(os.path.join(folder, "saeguard-composed.json"), {
            "base": "base", "residual": "residual", "residual_input": self.c["residual_input"]})
        files = ["saeguard-composed.json"]
        files += ["base/" + f for f in self.base.write(os.path.join(folder, "base"))]
        files += ["residual/" + f for f in self.res.write(os.path.join(folder, "residual"))]
        return files


def make_model(rng, c, x_cal):
    fmt = c["format"]
    if fmt == "saelens":
        return SaeLensModel(rng, c, c["arch"], x_cal, c["d_sae"], k=c.get("k"))
    if fmt in ("gemma-scope", "gemma-scope-2"):
        return GemmaScopeModel(rng, c, x_cal)
    if fmt == "sparsify":
        return SparsifyModel(rng, c, x_cal)
    if fmt == "llama-scope":
        return LlamaScopeModel(rng, c, x_cal)
    if fmt == "composed":
        return ComposedModel(rng, c, x_cal)
    raise Unsupported("format " + fmt)


def tie_parts(model, c):
    if isinstance(model, ComposedModel):
        return model.tie_parts()
    return [(0, c["d_sae"], model.tie_kind(), c.get("k"))]


def near_tie_rows(pre, cut, parts, tie_tol=TIE_TOL):
    """Bool [T]: tokens with a decision within tie_tol * max(1, |cut|) of its cut."""
    bad = torch.zeros(pre.shape[0], dtype=torch.bool)
    for lo, hi, kind, k in parts:
        p, q = pre[:, lo:hi], cut[:, lo:hi]
        if kind == "threshold":
            tol = tie_tol * torch.clamp(q.abs(), min=1.0)
            bad |= ((p - q).abs() <= tol).any(dim=-1)
        else:
            if k >= p.shape[1]:
                continue
            vals = torch.topk(p, k + 1, dim=-1).values
            kth, nxt = vals[:, k - 1], vals[:, k]
            close = (kth - nxt) <= tie_tol * torch.clamp(kth.abs(), min=1.0)
            if kind == "topk":  # both <= 0: either way the code is 0
                close = close & (kth > 0)
            bad |= close
    return bad


# ---------------------------------------------------------------------------------------------
# One case.
# ---------------------------------------------------------------------------------------------
REPORTED_ARCH = {"gemma-scope": "jumprelu", "gemma-scope-2": "jumprelu", "sparsify": "topk",
                 "llama-scope": "jumprelu", "composed": "composed"}


def generate(c, out_dir, seed):
    rng = np.random.default_rng(seed)
    sae_dir = os.path.join(out_dir, "sae")
    os.makedirs(out_dir, exist_ok=True)
    if os.path.isdir(sae_dir):
        shutil.rmtree(sae_dir)
    x_cal = draw_input(rng, 256, c["d_in"])
    model = make_model(rng, c, x_cal)
    parts = tie_parts(model, c)
    # every computation is per token, so only the tokens with a near-tie are re-drawn
    x = draw_input(rng, c["tokens"], c["d_in"])
    redrawn = 0
    for draw in range(1, MAX_INPUT_DRAWS + 1):
        feats, pre, cut, recon = model.compute(t64(x))
        bad = near_tie_rows(pre, cut, parts, c["tie_tol"]).numpy()
        if not bad.any():
            break
        redrawn += int(bad.sum())
        x[bad] = draw_input(rng, int(bad.sum()), c["d_in"])
    else:
        raise RuntimeError("could not draw tokens without near-ties in %d rounds" % MAX_INPUT_DRAWS)

    files = ["sae/" + f for f in model.write(sae_dir)]
    write_safetensors(os.path.join(out_dir, "input.safetensors"),
                      [("activations", x, "F32")], {"format": "pt"})
    f32 = lambda t: t.numpy().astype(np.float32)  # noqa: E731
    write_safetensors(os.path.join(out_dir, "expected.safetensors"), [
        ("features", f32(feats), "F32"), ("pre", f32(pre), "F32"),
        ("threshold_used", f32(cut), "F32"), ("reconstruction", f32(recon), "F32")],
        {"format": "pt", "generator": "make_sae.py", "seed": str(seed)})

    d_sae_total = c["d_sae"] + (c["d_sae_res"] if c["format"] == "composed" else 0)
    case = {"generator": "make_sae.py", "seed": seed, "format": c["format"],
            "architecture": REPORTED_ARCH.get(c["format"], c["arch"]), "arch": c["arch"],
            "d_in": c["d_in"], "d_sae": c["d_sae"], "d_sae_total": d_sae_total,
            "tokens": c["tokens"], "weights_dtype": c["weights_dtype"], "norm": c["norm"],
            "apply_b_dec_to_input": c["apply_b_dec_to_input"],
            "rescale_acts_by_decoder_norm": c["rescale_acts_by_decoder_norm"],
            "sparsity": c["sparsity"], "tie_tol": c["tie_tol"]}
    if "k" in c:
        case["k"] = c["k"]
    for key in ("cfg_version", "npz_compressed", "residual_input", "d_sae_res", "k_res"):
        if key in c:
            case[key] = c[key]
    if c["format"] == "composed":
        case["base_architecture"] = c["arch"]
    if c["format"] in ("saelens", "composed"):
        case["hook"], case["model"] = HOOK_TL, MODEL_SAELENS
        base = model.base if isinstance(model, ComposedModel) else model
        if base.norm_scaling_factor is not None:
            case["norm_scaling_factor"] = base.norm_scaling_factor
        if c["arch"] == "batchtopk":
            case["threshold"] = float(base.st.t["threshold"])
    elif c["format"] == "gemma-scope-2":
        case["hook"], case["model"] = HOOK_HF, MODEL_GS2
    elif c["format"] == "llama-scope":
        case["hook"] = HOOK_TL
        case["threshold"] = model.theta
        case["llama_threshold_space"] = model.space
        case["threshold_effective"] = model.cut  # what `pre` (normalised scale) is compared with
        case["dataset_average_activation_norm"] = {"in": model.norm_in, "out": model.norm_out}
    active = feats != 0
    case["stats"] = {"input_draws": draw, "tokens_redrawn": redrawn, "l0_mean": float(active.sum(-1).double().mean()),
                     "firing_fraction": float(active.double().mean())}
    case["files"] = files + ["input.safetensors", "expected.safetensors", "case.json"]
    write_json(os.path.join(out_dir, "case.json"), case)
    return case


def main(argv=None):
    a = build_parser().parse_args(argv)
    if a.self_test:
        import make_sae_selftest
        return make_sae_selftest.run(keep=a.keep)
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
    print("seed: %d" % seed, flush=True)
    try:
        if a.out is None:
            raise Unsupported("--out is required")
        c = resolve(a)
    except Unsupported as e:
        print("unsupported: %s" % e, file=sys.stderr)
        return 2
    case = generate(c, a.out, seed)
    print("wrote %s: format=%s architecture=%s d_sae_total=%d l0_mean=%.2f input_draws=%d" % (
        a.out, case["format"], case["architecture"], case["d_sae_total"], case["stats"]["l0_mean"],
        case["stats"]["input_draws"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
