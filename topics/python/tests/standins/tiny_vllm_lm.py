"""A tiny decoder in vLLM's fused-residual style (vllm/model_executor/models/llama.py
``LlamaDecoderLayer.forward(positions, hidden_states, residual)`` returns ``(hidden_states,
residual)``; the residual stream after the layer is their sum), on packed ``[num_tokens, d]``."""
from __future__ import annotations

import torch
import torch.nn as nn


class DecoderLayer(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, positions, hidden_states, residual):
        residual = hidden_states if residual is None else hidden_states + residual
        return self.mlp(self.norm(residual)), residual


class _Inner(nn.Module):
    def __init__(self, vocab: int, d: int, n_layers: int) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        self.embed_positions = nn.Embedding(64, d)
        self.layers = nn.ModuleList(DecoderLayer(d) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d)


class TinyVllmLM(nn.Module):
    def __init__(self, vocab: int = 64, d: int = 16, n_layers: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.model = _Inner(vocab, d, n_layers)

    @torch.no_grad()
    def forward(self, input_ids, positions):
        h, residual = self._embed(input_ids, positions), None
        for layer in self.model.layers:
            h, residual = layer(positions, h, residual)
        return self.model.norm(h + residual)

    def _embed(self, input_ids, positions):
        return self.model.embed_tokens(input_ids) + self.model.embed_positions(positions)

    def logits(self, h):
        return self.model.embed_tokens.weight @ h

    @torch.no_grad()
    def resid_post(self, input_ids, layer: int) -> torch.Tensor:
        """The residual stream after ``layer`` for one request's tokens (no cache: the whole prefix from position 0)."""
        h, residual = self._embed(input_ids, torch.arange(input_ids.shape[0])), None
        for i, block in enumerate(self.model.layers):
            h, residual = block(None, h, residual)
            if i == layer:
                return h + residual
        raise IndexError(layer)

    @torch.no_grad()
    def block_output(self, input_ids, layer: int) -> torch.Tensor:
        """``output[0]`` of decoder layer ``layer``: what the PR's ObservationHook captures."""
        h, residual = self._embed(input_ids, torch.arange(input_ids.shape[0])), None
        for i, block in enumerate(self.model.layers):
            h, residual = block(None, h, residual)
            if i == layer:
                return h
        raise IndexError(layer)
