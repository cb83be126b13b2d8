"""Encode activations with a SAELens-format SAE in float64 PyTorch (sae_reference.py's formulas).

Usage: encode_saelens.py SAE_DIR INPUT.safetensors OUTPUT.safetensors
  SAE_DIR: cfg.json + sae_weights.safetensors (standard, jumprelu, topk; normalize_activations none)
  INPUT: tensor `activations` [tokens, d_in]; OUTPUT: tensor `features` [tokens, d_sae] F32.
Shares no code with saeguard's Java runtime.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402
from sae_reference import run_saelens  # noqa: E402


def main():
    sae_dir, input_path, output_path = sys.argv[1:4]
    with open(os.path.join(sae_dir, "cfg.json")) as f:
        cfg = json.load(f)
    meta = cfg.get("metadata", {})
    arch = cfg.get("architecture") or meta.get("architecture") or "standard"
    weights, _ = read_safetensors(os.path.join(sae_dir, "sae_weights.safetensors"))
    p = {k: torch.tensor(np.asarray(v, dtype=np.float64)) for k, v in weights.items()}
    x = torch.tensor(np.asarray(read_safetensors(input_path)[0]["activations"], dtype=np.float64))
    feats, _, _, _ = run_saelens(x, p, arch, apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)), k=cfg.get("k"))
    write_safetensors(output_path, [("features", feats.numpy().astype(np.float32), "F32")])


if __name__ == "__main__":
    main()
