"""Labels a detector's SAE features by the tokens that activate them most (max-activating tokens).

Usage: label_features.py SAE_DIR TOKENIZER.json DETECTOR.yaml ACTIVATIONS.safetensors...
Encodes every token of the activation files (written by `saeguard activations`: `activations`,
`token_ids`) with the TopK SAE (SAELens format, float64 numpy), and gives each feature named in the
detector's rule the label "tokens: t1, t2, ..." (the distinct tokens of its highest activations).
Rewrites DETECTOR.yaml in place. Needs python3-numpy and python3-yaml (Debian).
"""
import json
import os
import sys

import numpy as np
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sae", "src", "test", "resources", "python"))
from safetensors_io import read_safetensors  # noqa: E402


def main():
    sae_dir, tokenizer_path, detector_path = sys.argv[1:4]
    files = sys.argv[4:]
    with open(os.path.join(sae_dir, "cfg.json")) as f:
        cfg = json.load(f)
    k = int(cfg.get("k") or cfg.get("metadata", {}).get("k") or cfg.get("activation_fn_kwargs", {}).get("k"))
    w, _ = read_safetensors(os.path.join(sae_dir, "sae_weights.safetensors"))
    w_enc, b_enc, b_dec = (np.asarray(w[n], dtype=np.float64) for n in ("W_enc", "b_enc", "b_dec"))
    with open(tokenizer_path, encoding="utf-8") as f:
        vocab = {i: t for t, i in json.load(f)["model"]["vocab"].items()}
    with open(detector_path) as f:
        detector = yaml.safe_load(f)
    wanted = [int(ft["id"]) for ft in detector["rule"]["features"]]
    best = {fid: [] for fid in wanted}
    for path in files:
        t, _ = read_safetensors(path)
        x = np.asarray(t["activations"], dtype=np.float64)
        ids = np.asarray(t["token_ids"]).astype(np.int64)
        pre = (x - b_dec) @ w_enc + b_enc
        kth = np.partition(pre, -k, axis=1)[:, -k][:, None]
        codes = np.where((pre >= kth) & (pre > 0), pre, 0.0)
        for fid in wanted:
            col = codes[:, fid]
            top = np.argsort(-col)[:200]
            best[fid].extend((float(col[i]), vocab.get(int(ids[i]), "?")) for i in top if col[i] > 0)
    for ft in detector["rule"]["features"]:
        seen = []
        for _, tok in sorted(best[int(ft["id"])], reverse=True):
            tok = tok.replace("##", "")
            if tok not in seen and tok not in ("[CLS]", "[SEP]"):
                seen.append(tok)
            if len(seen) == 5:
                break
        ft["label"] = "tokens: " + ", ".join(seen) if seen else "no activation in the corpus"
    with open(detector_path, "w") as f:
        yaml.safe_dump(detector, f, sort_keys=False, allow_unicode=True)
    for ft in detector["rule"]["features"]:
        print(ft["id"], ft["threshold"], ft["label"])


if __name__ == "__main__":
    main()
