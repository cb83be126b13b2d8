"""A tiny TorchScript "language model" for the prompt path's TorchScript engine test.

Usage: make_torchscript_lm.py OUT.pt IDS.safetensors OUT_HIDDEN.safetensors [seed]
Writes a traced module taking (input_ids, attention_mask) int64 [batch, seq] and returning
hidden states [batch, seq, 16]: an embedding, one self-attention layer with the mask, a GELU MLP.
Also evaluates it on IDS (tensor input_ids [1, seq]) and writes `hidden` for comparison.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402


class TinyLm(torch.nn.Module):
    def __init__(self, vocab=30522, d=16):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, d)
        self.q = torch.nn.Linear(d, d)
        self.k = torch.nn.Linear(d, d)
        self.v = torch.nn.Linear(d, d)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d, 4 * d), torch.nn.GELU(), torch.nn.Linear(4 * d, d))

    def forward(self, input_ids, attention_mask):
        x = self.emb(input_ids)
        scores = self.q(x) @ self.k(x).transpose(1, 2) / 4.0
        scores = scores.masked_fill(attention_mask[:, None, :] == 0, -1e9)
        x = x + torch.softmax(scores, dim=-1) @ self.v(x)
        return x + self.mlp(x)


def main():
    out_pt, ids_path, hidden_path = sys.argv[1:4]
    torch.manual_seed(int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    model = TinyLm().eval()
    ids = torch.tensor(np.asarray(read_safetensors(ids_path)[0]["input_ids"], dtype=np.int64))
    with torch.no_grad():
        traced = torch.jit.trace(model, (ids, torch.ones_like(ids)))
        traced.save(out_pt)
        hidden = traced(ids, torch.ones_like(ids))
    write_safetensors(hidden_path, [("hidden", hidden[0].numpy().astype(np.float32), "F32")])


if __name__ == "__main__":
    main()
