"""A small decoder-only transformer with random weights, shaped like an HF causal LM.

``TinyLM.model.layers[L]`` returns ``(hidden_states, present_kv)`` as HF decoder layers do, so a
GuardHook attaches to it exactly as to a real model; pre-LayerNorm blocks, learned positions, a KV
cache so that each decode step is one token. Embeddings are scaled so the residual stream has an
RMS of a few units, the scale make_sae.py calibrates its random SAEs to.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Tuple

import torch
from torch import nn

KV = Tuple[torch.Tensor, torch.Tensor]


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor, past: Optional[KV] = None):
        b, s, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (t.view(b, s, self.heads, hd).transpose(1, 2) for t in (q, k, v))  # [b, h, s, hd]
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        total = k.shape[2]
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd)  # [b, h, s, total]
        causal = torch.ones(s, total, dtype=torch.bool).tril(diagonal=total - s)
        att = scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v
        x = x + self.out(att.transpose(1, 2).reshape(b, s, d))
        x = x + self.mlp(self.ln2(x))
        return x, (k, v)


class Inner(nn.Module):
    def __init__(self, vocab: int, d: int, layers: int, heads: int, max_len: int) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        self.embed_positions = nn.Embedding(max_len, d)
        self.layers = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(d)


class TinyLM(nn.Module):
    """``forward(input_ids [b, s], past) -> (logits [b, s, vocab], present)``."""

    def __init__(self, seed: int, vocab: int = 101, d: int = 64, layers: int = 6, heads: int = 4,
                 max_len: int = 256) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.model = Inner(vocab, d, layers, heads, max_len)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        with torch.no_grad():
            self.model.embed_tokens.weight.mul_(2.0)
            self.model.embed_positions.weight.mul_(0.5)
        self.eval()

    def forward(self, input_ids: torch.Tensor, past: Optional[List[KV]] = None):
        offset = 0 if past is None else past[0][0].shape[2]
        pos = torch.arange(offset, offset + input_ids.shape[1])
        x = self.model.embed_tokens(input_ids) + self.model.embed_positions(pos)
        present = []
        for i, layer in enumerate(self.model.layers):
            x, kv = layer(x, None if past is None else past[i])
            present.append(kv)
        return self.lm_head(self.model.norm(x)), present


@torch.no_grad()
def generate(model: TinyLM, prompt: torch.Tensor, steps: int,
             before_pass: Optional[Callable[[int], None]] = None) -> List[int]:
    """Greedy decoding: pass 0 is the prefill of ``prompt`` ``[1, P]``, pass k >= 1 feeds the token
    pass k - 1 chose. ``before_pass(k)`` runs before each pass. Returns the chosen tokens."""
    past, ids, chosen = None, prompt, []
    for k in range(steps + 1):
        if before_pass is not None:
            before_pass(k)
        logits, past = model(ids, past)
        nxt = int(logits[0, -1].argmax())
        chosen.append(nxt)
        ids = torch.tensor([[nxt]])
    return chosen
