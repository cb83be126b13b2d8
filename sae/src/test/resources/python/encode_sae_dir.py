#!/usr/bin/python3
"""Independent PyTorch reference for an SAE directory written by saeguard (e.g. `saeguard train`).

Reads a SAELens v6 directory (cfg.json + sae_weights.safetensors) or a composed directory
(saeguard-composed.json naming SAELens `base` and `residual` directories, residual_input "error" or
"input"), and an activation file (tensor `activations` [n, d_in]); encodes in float64 with the
published formulas of sae_reference.py (SAELens `run_saelens`), and writes F32 tensors:

    features        [n, d_sae]   (composed: [a_base ; a_res])
    pre             [n, d_sae]   the value each keep/drop decision was made on
    threshold_used  [n, d_sae]   what `pre` was compared with (the k-th largest score for topk)
    reconstruction  [n, d_in]    (composed: the base's plus the residual's)

Usage: /usr/bin/python3 encode_sae_dir.py --sae DIR --input IN.safetensors --out OUT.safetensors
Shares no code with the Java side.
"""
import argparse
import json
import os

import numpy as np
import torch

from safetensors_io import read_safetensors, write_safetensors
from sae_reference import run_saelens


def load_saelens(folder):
    with open(os.path.join(folder, "cfg.json")) as f:
        cfg = json.load(f)
    tensors, _ = read_safetensors(os.path.join(folder, "sae_weights.safetensors"))
    p = {name: torch.from_numpy(np.asarray(a, dtype=np.float64)) for name, a in tensors.items()}
    return cfg, p


def encode_saelens(folder, x):
    cfg, p = load_saelens(folder)
    if cfg.get("normalize_activations", "none") not in ("none", None):
        raise SystemExit("unsupported: normalize_activations " + str(cfg["normalize_activations"]))
    return run_saelens(x, p, cfg.get("architecture", "standard"), apply_b_dec_to_input=cfg.get("apply_b_dec_to_input", True),
                       k=cfg.get("k"), rescale_acts_by_decoder_norm=cfg.get("rescale_acts_by_decoder_norm", False))


def encode(folder, x):
    composed = os.path.join(folder, "saeguard-composed.json")
    if not os.path.exists(composed):
        return encode_saelens(folder, x)
    with open(composed) as f:
        c = json.load(f)
    fb, pb, cb, rb = encode_saelens(os.path.join(folder, c["base"]), x)
    res_in = x - rb if c.get("residual_input", "error") == "error" else x
    fr, pr, cr, rr = encode_saelens(os.path.join(folder, c["residual"]), res_in)
    return torch.cat([fb, fr], -1), torch.cat([pb, pr], -1), torch.cat([cb, cr], -1), rb + rr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sae", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    tensors, _ = read_safetensors(a.input)
    x = torch.from_numpy(np.asarray(tensors["activations"], dtype=np.float64))
    feats, pre, cut, recon = encode(a.sae, x)
    write_safetensors(a.out, [("features", feats.numpy(), "F32"), ("pre", pre.numpy(), "F32"),
                              ("threshold_used", cut.numpy(), "F32"), ("reconstruction", recon.numpy(), "F32")])


if __name__ == "__main__":
    main()
