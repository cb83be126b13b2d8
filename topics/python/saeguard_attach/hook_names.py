"""Naming the hook point: one residual stream, four numbering schemes.

The residual stream *after* decoder layer ``L`` (0-based) is called

======================================  =====================================================
where                                    name
======================================  =====================================================
SAELens / TransformerLens                ``blocks.L.hook_resid_post``
HF module whose output it is             ``model.layers[L]`` (``model.layers.L``)
Gemma Scope 2 ``hf_hook_point_in``        ``model.layers.L.output``
HF ``output_hidden_states=True``          ``hidden_states[L + 1]`` (index 0 is the embeddings)
vLLM ``eagle_aux_hidden_state_layer_ids`` ``L + 1`` (id ``i`` is the *input* of layer ``i``)
EleutherAI sparsify folder               ``layers.L``
======================================  =====================================================

An off-by-one here is silent: the SAE still produces codes, just meaningless ones
(docs/algorithms.md#file-formats-and-hook-names). Publish under the name the SAE was trained
with (its ``cfg.json`` ``hook_name``) and attach the hook to the module that produces it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

__all__ = ["ResidPost", "find_decoder_layer"]

_PATTERNS = (
    re.compile(r"^blocks\.(\d+)\.hook_resid_post$"),
    re.compile(r"^(?:model\.)?layers\.(\d+)(?:\.output)?$"),
    re.compile(r"^model\.layers\[(\d+)\]$"),
)
# Where common HF architectures keep their decoder layers.
_LAYER_LISTS = ("model.layers", "model.model.layers", "layers", "transformer.h", "gpt_neox.layers",
                "model.decoder.layers", "language_model.model.layers", "model.language_model.layers")


@dataclass(frozen=True)
class ResidPost:
    """The residual stream after decoder layer ``layer`` (0-based), under every name it has."""

    layer: int

    def __post_init__(self) -> None:
        if self.layer < 0:
            raise ValueError("layer must be >= 0, got %d" % self.layer)

    @classmethod
    def parse(cls, name: str) -> "ResidPost":
        """From ``blocks.L.hook_resid_post``, ``model.layers.L``, ``model.layers.L.output``,
        ``model.layers[L]`` or ``layers.L``."""
        for p in _PATTERNS:
            m = p.match(name.strip())
            if m:
                return cls(int(m.group(1)))
        raise ValueError("%r names no residual-stream-after-layer hook point; expected e.g. "
                         "'blocks.12.hook_resid_post' or 'model.layers.12'" % name)

    @classmethod
    def from_hidden_states_index(cls, index: int) -> "ResidPost":
        """From an index into HF's ``hidden_states`` tuple (``index >= 1``)."""
        if index < 1:
            raise ValueError("hidden_states[0] is the embedding output, not a layer's; index must be >= 1")
        return cls(index - 1)

    @property
    def saelens(self) -> str:
        """``blocks.L.hook_resid_post``: the name to publish under for SAELens-format SAEs."""
        return "blocks.%d.hook_resid_post" % self.layer

    @property
    def hf_module(self) -> str:
        """``model.layers.L``: the HF module whose output this is."""
        return "model.layers.%d" % self.layer

    @property
    def hf_output(self) -> str:
        """``model.layers.L.output``: Gemma Scope 2's ``hf_hook_point_in``."""
        return "model.layers.%d.output" % self.layer

    @property
    def hidden_states_index(self) -> int:
        """Index into HF ``output_hidden_states``: ``L + 1``."""
        return self.layer + 1

    @property
    def vllm_aux_layer_id(self) -> int:
        """vLLM ``eagle_aux_hidden_state_layer_ids`` entry: ``L + 1`` (the input of layer L + 1)."""
        return self.layer + 1


def _resolve(model: torch.nn.Module, dotted: str):
    obj = model
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def find_decoder_layer(model: torch.nn.Module, layer: int) -> torch.nn.Module:
    """The decoder layer ``layer`` of an HF-style model (``model.layers``, ``transformer.h``, ...):
    attach a :class:`~saeguard_attach.GuardHook` to it to read ``ResidPost(layer)``."""
    for dotted in _LAYER_LISTS:
        layers = _resolve(model, dotted)
        if isinstance(layers, (torch.nn.ModuleList, list, tuple)) and len(layers) > 0:
            if not 0 <= layer < len(layers):
                raise IndexError("layer %d out of range: %s has %d layers" % (layer, dotted, len(layers)))
            return layers[layer]
    raise LookupError("no decoder layer list found (tried %s); pass the module to GuardHook.attach yourself"
                      % ", ".join(_LAYER_LISTS))
