"""saeguard as a vLLM observation plugin: publish the observed hidden states, ABORT blocked requests.

vLLM's observation plugin API (``vllm/plugins/observation/interface.py``: ``ObservationPlugin``,
``ObservationResult``, ``ObservationAction``, ``RequestContext``) is **not in any vLLM release**: it
is the open pull request vllm-project/vllm#37002 (RFC vllm-project/vllm#36998), read at commits
``ce19885a`` (interface.py), ``458b52db`` (hook.py) and ``0424f461`` (model_runner_helper.py).
This module follows that source; it imports only when a vLLM carrying the PR is installed.

How vLLM drives it (model_runner_helper.py, in every GPU worker process):

* ``on_request_start(request_id)`` for each newly scheduled request;
* ``on_step_batch(batch_hidden_states, request_contexts)`` after each forward step that contains a
  prefill: ``batch_hidden_states[layer]`` is the packed ``[num_tokens, d]`` output of decoder
  layer ``layer`` (keyed by the *normalized*, non-negative index), request ``i`` owning rows
  ``[ctx.batch_offset, ctx.batch_offset + ctx.num_tokens)``; an ``ABORT`` result ends the request;
* ``on_request_complete(request_id)`` when the scheduler reports it finished.

Constraints, all from that source: only prefill steps are observed (``observe_decode`` True only
logs a warning there); the captured tensor is the decoder layer's ``output[0]``, which for vLLM
layers that return ``(hidden_states, residual)`` (Llama, Qwen2, Mistral, Gemma) is the block's
output *before* the residual add, not ``resid_post`` (see topics/python/README.md#vllm); the
plugin runs on every tensor-parallel rank: all ranks answer ABORT, only rank 0 publishes.

Use it with ``LLM(..., observation_plugins=[SaeguardObservationPlugin])`` (a class is accepted by
``load_observation_plugins``), configured by the ``SAEGUARD_*`` variables of
:mod:`saeguard_attach.vllm_settings`.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Dict, List, Mapping, Optional

import torch
from vllm.plugins.observation import ObservationAction, ObservationPlugin, ObservationResult

from .decisions import Action
from .vllm_settings import VllmSettings

__all__ = ["SaeguardObservationPlugin", "plugin_qualname"]

LOGGER = logging.getLogger(__name__)


def plugin_qualname() -> str:
    """An observation-plugin entry point's function: returns the class's qualified name, which
    ``load_observation_plugins`` resolves with ``resolve_obj_by_qualname``."""
    return SaeguardObservationPlugin.__module__ + "." + SaeguardObservationPlugin.__qualname__


def _tp_rank() -> int:
    from vllm.distributed.parallel_state import get_tensor_model_parallel_rank

    return get_tensor_model_parallel_rank()


class SaeguardObservationPlugin(ObservationPlugin):
    """Publishes layer ``SAEGUARD_LAYER``'s observed rows of each watched request as activation
    records and answers ``ABORT`` for requests whose latest decision is ``block``.

    Threading: vLLM calls every method on its worker's model thread; the publisher ships records
    from its own thread and the decision listener reads on its own, so no call here waits on Kafka.

    Args (besides ``vllm_config``, which vLLM passes and this plugin does not need):
        env: the environment to read ``SAEGUARD_*`` from (default ``os.environ``).
        publisher: anything with ``publish(request_id, x, position, final, *, phase)``; default an
            :class:`~saeguard_attach.ActivationPublisher` from the settings.
        decisions: anything with ``watch``/``forget``/``latest``; default a started
            :class:`~saeguard_attach.DecisionListener` (none when ``SAEGUARD_ABORT_BLOCKED=false``).
        tp_rank: returns this worker's tensor-parallel rank (default: vLLM's).
    """

    def __init__(self, vllm_config: Any = None, *, env: Optional[Mapping[str, str]] = None, publisher: Any = None,
                 decisions: Any = None, tp_rank: Optional[Callable[[], int]] = None) -> None:
        super().__init__(vllm_config=vllm_config)
        self.settings = VllmSettings.from_env(os.environ if env is None else env)
        self._publisher = publisher if publisher is not None else self._new_publisher()
        self._decisions = decisions
        if decisions is None and self.settings.abort_blocked:
            self._decisions = self._new_listener()
        self._tp_rank = tp_rank or _tp_rank
        self._rank: Optional[int] = None
        self._watched: Dict[str, bool] = {}
        self.aborted = 0
        self.published_tokens = 0
        LOGGER.info("saeguard observation plugin: model=%s hook=%s layer=%d topic=%s", self.settings.model,
                    self.settings.hook, self.settings.layer, self.settings.activations_topic)

    def _new_publisher(self):
        from .publisher import ActivationPublisher

        s = self.settings
        return ActivationPublisher(s.bootstrap, s.model, s.hook, s.activations_topic, sae=s.sae, tenant=s.tenant,
                                   dtype=s.dtype, producer_config=s.kafka)

    def _new_listener(self):
        from .listener import DecisionListener

        s = self.settings
        return DecisionListener(s.bootstrap, s.decisions_topic, consumer_config=s.kafka).start()

    # ------------------------------------------------------------------ ObservationPlugin
    def get_observation_layers(self) -> List[int]:
        return [self.settings.layer]

    def observe_decode(self) -> bool:
        return self.settings.observe_generation

    def on_request_start(self, request_id: str, prompt: Optional[str] = None) -> None:
        watched = self.settings.watches(request_id)
        self._watched[request_id] = watched
        if watched and self._decisions is not None:
            self._decisions.watch(request_id)

    def on_step_batch(self, batch_hidden_states: Dict[int, torch.Tensor],
                      request_contexts: List[Any]) -> List[ObservationResult]:
        hidden = batch_hidden_states.get(self.settings.layer)  # [num_tokens, d]
        results = []
        for ctx in request_contexts:
            results.append(self._observe(ctx, hidden))
        return results

    def on_request_complete(self, request_id: str) -> None:
        self._watched.pop(request_id, None)
        if self._decisions is not None:
            self._decisions.forget(request_id)

    # ------------------------------------------------------------------ per request
    def _observe(self, ctx: Any, hidden: Optional[torch.Tensor]) -> ObservationResult:
        rid = ctx.request_id
        if not self._watched.get(rid, False):
            return ObservationResult()
        if self._blocked(rid):
            self.aborted += 1
            return ObservationResult(action=ObservationAction.ABORT,
                                     metadata={"message": "saeguard: request blocked by the sidecar"})
        if hidden is not None and ctx.num_tokens > 0 and (ctx.is_prefill or self.settings.observe_generation):
            self._publish(ctx, hidden[ctx.batch_offset:ctx.batch_offset + ctx.num_tokens])
        return ObservationResult()

    def _blocked(self, request_id: str) -> bool:
        if self._decisions is None or not self.settings.abort_blocked:
            return False
        d = self._decisions.latest(request_id)
        return d is not None and d.action is Action.BLOCK

    def _publish(self, ctx: Any, rows: torch.Tensor) -> None:
        if self._rank is None:
            self._rank = int(self._tp_rank())
        if self._rank != 0:  # every TP rank holds the same full hidden state; one copy is enough
            return
        phase = "prompt" if ctx.is_prefill else "generation"
        if self._publisher.publish(ctx.request_id, rows, ctx.num_cached_tokens, False, phase=phase):
            self.published_tokens += rows.shape[0]
