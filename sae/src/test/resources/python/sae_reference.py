"""Reference SAE encode/decode in float64 PyTorch, from the published formulas.

Sources: docs/algorithms.md#sae-encoders (SAELens `sae.py`, `topk_sae.py`, `gated_sae.py`,
`jumprelu_sae.py`; EleutherAI sparsify `sparse_coder.py`; Llama Scope hyperparams; AbsTopK paper;
SAE Boost paper). Every function takes float64 torch tensors holding the weights AS STORED (after
any BF16 rounding, widened back exactly) and returns float64 tensors.

Each encoder returns (features, pre, cut):
  features  [T, F]  dense SAE codes
  pre       [T, F]  the value the keep/drop decision was made on:
                      standard / jumprelu / batchtopk / llama-scope: sae_in @ W_enc + b_enc
                      gated: pi_gate
                      topk (SAELens): pre-activation, times ||W_dec[i]|| when rescaled
                      abstopk: |z|
                      sparsify: ReLU(pre) (sparsify applies ReLU before its top-k)
  cut       [T, F]  what `pre` was compared with: theta (jumprelu, batchtopk, llama-scope),
                    0 (standard, gated), the k-th largest score of the token (topk kinds)
"""
import math

import torch

LN_EPS = 1e-5


# ---------------------------------------------------------------------------------------------
# Input normalisation (SAELens `normalize_activations`), per token over the last dimension.
# Returns (normalised input, function that maps decoder output back to input space).
# ---------------------------------------------------------------------------------------------
def normalize(x, mode, norm_scaling_factor=None):
    if mode == "none":
        return x, (lambda y: y)
    if mode == "expected_average_only_in":
        s = float(norm_scaling_factor)
        return x * s, (lambda y: y / s)
    if mode == "constant_norm_rescale":
        c = math.sqrt(x.shape[-1]) / x.norm(dim=-1, keepdim=True)
        return x * c, (lambda y: y / c)
    if mode == "layer_norm":
        mu = x.mean(dim=-1, keepdim=True)
        xc = x - mu
        sigma = xc.std(dim=-1, keepdim=True, unbiased=True)
        return xc / (sigma + LN_EPS), (lambda y: y * sigma + mu)
    raise ValueError("unknown normalisation " + mode)


def _topk_mask_scores(scores, k):
    """(indices of the k largest scores per row, the k-th largest score per row as [T, 1])."""
    vals, idx = torch.topk(scores, k, dim=-1, largest=True, sorted=True)
    return idx, vals[..., -1:]


# ---------------------------------------------------------------------------------------------
# SAELens-convention encoders. `p` is a dict of float64 tensors in SAELens orientation:
# W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in], threshold, ...
# ---------------------------------------------------------------------------------------------
def encode_standard(sae_in, p):
    pre = sae_in @ p["W_enc"] + p["b_enc"]
    return torch.relu(pre), pre, torch.zeros_like(pre)


def encode_jumprelu(sae_in, p):
    """JumpReLU; `threshold` may be [d_sae] or a scalar (batchtopk inference, Llama Scope)."""
    pre = sae_in @ p["W_enc"] + p["b_enc"]
    theta = p["threshold"].expand_as(pre)
    feats = torch.relu(pre) * (pre > theta).to(pre.dtype)
    return feats, pre, theta.clone()


def encode_topk(sae_in, p, k, rescale_acts_by_decoder_norm=False):
    """SAELens TopKSAE: (rescale) -> keep the k largest -> ReLU on the kept values."""
    pre = sae_in @ p["W_enc"] + p["b_enc"]
    if rescale_acts_by_decoder_norm:
        pre = pre * p["W_dec"].norm(dim=-1)
    idx, cut = _topk_mask_scores(pre, k)
    feats = torch.zeros_like(pre).scatter(-1, idx, torch.relu(pre.gather(-1, idx)))
    return feats, pre, cut.expand_as(pre).clone()


def encode_abstopk(sae_in, p, k):
    """AbsTopK: keep the k entries with the largest |z|, with their sign."""
    z = sae_in @ p["W_enc"] + p["b_enc"]
    score = z.abs()
    idx, cut = _topk_mask_scores(score, k)
    feats = torch.zeros_like(z).scatter(-1, idx, z.gather(-1, idx))
    return feats, score, cut.expand_as(z).clone()


def encode_gated(sae_in, p):
    pi_gate = sae_in @ p["W_enc"] + p["b_gate"]
    pi_mag = sae_in @ (p["W_enc"] * torch.exp(p["r_mag"])) + p["b_mag"]
    feats = (pi_gate > 0).to(pi_gate.dtype) * torch.relu(pi_mag)
    return feats, pi_gate, torch.zeros_like(pi_gate)


def decode_saelens(feats, p, rescale_acts_by_decoder_norm=False):
    if rescale_acts_by_decoder_norm:
        feats = feats / p["W_dec"].norm(dim=-1)
    return feats @ p["W_dec"] + p["b_dec"]


def run_saelens(x, p, arch, norm="none", norm_scaling_factor=None, apply_b_dec_to_input=True,
                k=None, rescale_acts_by_decoder_norm=False):
    """Full SAELens forward: returns (features, pre, cut, reconstruction in input space)."""
    xn, denorm = normalize(x, norm, norm_scaling_factor)
    sae_in = xn - p["b_dec"] if apply_b_dec_to_input else xn
    if arch == "standard":
        feats, pre, cut = encode_standard(sae_in, p)
    elif arch in ("jumprelu", "batchtopk"):
        feats, pre, cut = encode_jumprelu(sae_in, p)
    elif arch == "topk":
        feats, pre, cut = encode_topk(sae_in, p, k, rescale_acts_by_decoder_norm)
    elif arch == "abstopk":
        feats, pre, cut = encode_abstopk(sae_in, p, k)
    elif arch == "gated":
        feats, pre, cut = encode_gated(sae_in, p)
    else:
        raise ValueError("unknown SAELens architecture " + arch)
    recon = denorm(decode_saelens(feats, p, rescale_acts_by_decoder_norm and arch == "topk"))
    return feats, pre, cut, recon


# ---------------------------------------------------------------------------------------------
# EleutherAI sparsify: encoder.weight [d_sae, d_in], encoder.bias, W_dec [d_sae, d_in], b_dec.
# ---------------------------------------------------------------------------------------------
def run_sparsify(x, p, k):
    scores = torch.relu((x - p["b_dec"]) @ p["encoder.weight"].T + p["encoder.bias"])
    idx, cut = _topk_mask_scores(scores, k)
    top_acts = scores.gather(-1, idx)
    feats = torch.zeros_like(scores).scatter(-1, idx, top_acts)
    # x_hat = sum_i top_acts_i * W_dec[top_indices_i] + b_dec
    recon = (top_acts.unsqueeze(-1) * p["W_dec"][idx]).sum(dim=-2) + p["b_dec"]
    return feats, scores, cut.expand_as(scores).clone(), recon


# ---------------------------------------------------------------------------------------------
# Llama Scope: encoder.weight [d_sae, d_model], encoder.bias, decoder.weight [d_model, d_sae],
# decoder.bias [d_model]; dataset-wise norm with separate in/out averages; one scalar theta.
#
# threshold_space says in which units hyperparams.json's jump_relu_threshold is:
#   "raw"        (default) theta is in raw-activation units, so the cut on pre (computed from the
#                normalised input x*s) is theta*s. This is what OpenMOSS lm-saes does at inference
#                (Llama Scope release commit 4ec6f0aa: `standardize_parameters_of_dataset_
#                activation_scaling` divides encoder.bias by s and drops the input scaling, then
#                gates `hidden_pre > jump_relu_threshold`; post_processing.py computed theta on that
#                same standardised model) and what SAELens' llama_scope loader does
#                (`jump_relu_threshold * norm_scaling_factor` with the norm folded into W_enc).
#   "normalized" theta is compared with pre directly (the formula in the saeguard brief).
# In both, the codes are ReLU(pre) on the normalised scale (SAELens convention; lm-saes' own codes
# are pre/s) and the reconstruction is (a @ decoder.weight.T + decoder.bias) * n_out / sqrt(d).
# ---------------------------------------------------------------------------------------------
def llama_scope_cut(theta, norm_in, d_model, threshold_space="raw"):
    if threshold_space == "raw":
        return float(theta) * (math.sqrt(d_model) / float(norm_in))
    if threshold_space == "normalized":
        return float(theta)
    raise ValueError("unknown threshold space " + threshold_space)


def run_llama_scope(x, p, theta, norm_in, norm_out, threshold_space="raw"):
    d_model = x.shape[-1]
    s = math.sqrt(d_model) / float(norm_in)
    cut = llama_scope_cut(theta, norm_in, d_model, threshold_space)
    pre = (x * s) @ p["encoder.weight"].T + p["encoder.bias"]
    feats = torch.relu(pre) * (pre > cut).to(pre.dtype)
    recon = (feats @ p["decoder.weight"].T + p["decoder.bias"]) * float(norm_out) / math.sqrt(d_model)
    return feats, pre, torch.full_like(pre, cut), recon
