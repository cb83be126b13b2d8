"""Mirrors vllm/plugins/observation/hook.py of vllm-project/vllm#37002 (@ 458b52db): forward hooks
on the decoder layers, each keeping its layer's ``output[0]`` (a detached clone) under the
*normalized* layer index; ``process_step`` hands them to the plugins and clears them."""
from __future__ import annotations

from typing import Any, Dict, List

import torch
import torch.nn as nn

from .interface import ObservationResult, PluginManager, RequestContext


class ObservationHook:
    def __init__(self, plugin_manager: PluginManager, model: nn.Module) -> None:
        self.plugin_manager = plugin_manager
        self.model = model
        self.observation_layers = plugin_manager.get_observation_layers()
        self._captured_hidden_states: Dict[int, torch.Tensor] = {}
        self._hooks: List[Any] = []

    def install_hooks(self) -> None:
        if not self.observation_layers:
            return
        layers = self._get_model_layers()
        for layer_idx in self.observation_layers:
            norm_idx = layer_idx if layer_idx >= 0 else len(layers) + layer_idx
            if 0 <= norm_idx < len(layers):
                self._hooks.append(layers[norm_idx].register_forward_hook(self._create_hook_fn(norm_idx)))

    def _get_model_layers(self) -> nn.ModuleList:
        if hasattr(self.model, "model") and hasattr(self.model.model, "layers"):
            return self.model.model.layers
        return self.model.layers

    def _create_hook_fn(self, layer_idx: int):
        def hook_fn(module, inputs, output):
            hidden_states = output[0] if isinstance(output, tuple) else output
            self._captured_hidden_states[layer_idx] = hidden_states.detach().clone()

        return hook_fn

    def remove_hooks(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()

    def process_step(self, request_contexts: List[RequestContext]) -> List[ObservationResult]:
        if not self.observation_layers:
            return [ObservationResult()] * len(request_contexts)
        results = self.plugin_manager.on_step_batch(self._captured_hidden_states, request_contexts)
        self._captured_hidden_states.clear()
        return results
