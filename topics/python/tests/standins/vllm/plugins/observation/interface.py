"""Mirrors vllm/plugins/observation/interface.py of the open pull request vllm-project/vllm#37002
(@ ce19885a): the same class, field and method names and defaults, and the same merge rule (the
most severe action wins). Loading by entry-point name is left out: the group constant's value
(``vllm.plugins.OBSERVATION_PLUGINS_GROUP``) is not in the source read, so only instances and
classes are loaded here, as the PR's ``load_observation_plugins`` also accepts."""
from __future__ import annotations

import enum
import inspect
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch


class ObservationAction(enum.IntEnum):
    CONTINUE = 0
    ABORT = 1
    PREEMPT = 2


@dataclass
class RequestContext:
    request_id: str
    is_prefill: bool = True
    chunk_idx: int = 0
    num_cached_tokens: int = 0
    batch_offset: int = 0
    num_tokens: int = 0


@dataclass
class ObservationResult:
    action: ObservationAction = ObservationAction.CONTINUE
    metadata: Dict[str, Any] = field(default_factory=dict)


class ObservationPlugin:
    def __init__(self, vllm_config: Any = None) -> None:
        pass

    def get_observation_layers(self) -> List[int]:
        return []

    def observe_decode(self) -> bool:
        return False

    def on_request_start(self, request_id: str, prompt: Optional[str] = None) -> None:
        pass

    def on_step_batch(self, batch_hidden_states: Dict[int, torch.Tensor],
                      request_contexts: List[RequestContext]) -> List[ObservationResult]:
        return [ObservationResult()] * len(request_contexts)

    def on_request_complete(self, request_id: str) -> None:
        pass

    def reload_config(self, config_data: Dict[str, Any]) -> None:
        pass


class PluginManager:
    def __init__(self, plugins: List[ObservationPlugin]) -> None:
        self.plugins = plugins

    def get_observation_layers(self) -> List[int]:
        return sorted({layer for p in self.plugins for layer in p.get_observation_layers()})

    @property
    def observe_decode(self) -> bool:
        return any(p.observe_decode() for p in self.plugins)

    def on_request_start(self, request_id: str, prompt: Optional[str] = None) -> None:
        for p in self.plugins:
            p.on_request_start(request_id, prompt)

    def on_step_batch(self, batch_hidden_states, request_contexts):
        merged = [ObservationResult() for _ in request_contexts]
        for p in self.plugins:
            for i, r in enumerate(p.on_step_batch(batch_hidden_states, request_contexts)):
                if r.action > merged[i].action:
                    merged[i].action = r.action
                merged[i].metadata.update(r.metadata)
        return merged

    def on_request_complete(self, request_id: str) -> None:
        for p in self.plugins:
            p.on_request_complete(request_id)


def load_observation_plugins(plugin_configs, vllm_config) -> PluginManager:
    loaded = []
    for item in plugin_configs or []:
        if isinstance(item, ObservationPlugin):
            loaded.append(item)
        elif inspect.isclass(item) and issubclass(item, ObservationPlugin):
            if "vllm_config" in inspect.signature(item.__init__).parameters:
                loaded.append(item(vllm_config=vllm_config))
            else:
                loaded.append(item())
        else:
            raise TypeError("stand-in loads ObservationPlugin instances and classes only, got %r" % (item,))
    return PluginManager(loaded)
