"""saeguard as a ``vllm.general_plugins`` entry point: a GuardHook in every vLLM worker, no patches to edit.

vLLM calls every function registered in the ``vllm.general_plugins`` entry-point group once per
process it starts (``vllm/plugins/__init__.py``: ``load_general_plugins``; API server, engine core
and each worker). :func:`register` reads the ``SAEGUARD_*`` settings (:mod:`.vllm_settings`) and,
when ``SAEGUARD_BOOTSTRAP`` is set, wraps three methods of vLLM V1's
``vllm.v1.worker.gpu_model_runner.GPUModelRunner`` so that in each worker:

* ``load_model`` attaches a :class:`~saeguard_attach.GuardHook` (``VLLM_RESIDUAL``: the sum of the
  layer's ``(hidden_states, residual)``, i.e. ``resid_post``) to decoder layer ``SAEGUARD_LAYER``;
* ``execute_model(scheduler_output)`` ends the requests in ``scheduler_output.finished_req_ids``;
* ``_model_forward`` binds the packed pass: the requests of ``input_batch.req_ids`` in order, each
  with ``scheduler_output.num_scheduled_tokens[req_id]`` rows, the rest of the rows (padding) unbound.

Constraints (say them to whoever deploys it):

* **Eager mode.** Python forward hooks do not run inside captured CUDA graphs or compiled
  regions: the worker refuses to load unless ``enforce_eager`` is set (``--enforce-eager``).
* **No blocking.** Raising from a vLLM worker's forward would stop the engine, so ``block``
  decisions are not acted on here; ``steer`` and ``clamp`` are. Block at the gateway with
  :func:`saeguard_attach.check`, or use the observation plugin (:mod:`.vllm_observation`) where
  the vLLM build has it.
* **Tensor parallelism.** Every TP rank holds the full residual stream; all ranks apply the same
  steer/clamp, only rank 0 publishes. **Pipeline parallelism:** only the stage holding layer
  ``SAEGUARD_LAYER`` hooks it.
* **Internals.** The wrapped methods are vLLM internals (V1 engine); check them against your
  vLLM version (topics/python/README.md#vllm names what was read).
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Any, List, Mapping, Optional, Tuple

from .decisions import Action, Decision
from .hook import VLLM_RESIDUAL, GuardHook
from .hook_names import find_decoder_layer
from .vllm_settings import SettingsError, VllmSettings

__all__ = ["register", "install", "WorkerGuard"]

LOGGER = logging.getLogger(__name__)
_RUNNER_MODULE = "vllm.v1.worker.gpu_model_runner"
_MARK = "_saeguard_installed"


def register() -> None:
    """The ``vllm.general_plugins`` entry point. Does nothing unless ``SAEGUARD_BOOTSTRAP`` is set;
    raises :class:`~saeguard_attach.vllm_settings.SettingsError` on a malformed setting."""
    if not os.environ.get("SAEGUARD_BOOTSTRAP", "").strip():
        LOGGER.debug("saeguard vLLM plugin: SAEGUARD_BOOTSTRAP not set, not installed")
        return
    settings = VllmSettings.from_env(os.environ)
    import importlib

    install(importlib.import_module(_RUNNER_MODULE).GPUModelRunner, settings)


def install(runner_class: type, settings: VllmSettings, *, publisher_factory: Any = None,
            decisions_factory: Any = None, tp_rank: Any = None) -> None:
    """Wraps ``runner_class``'s ``load_model``, ``execute_model`` and ``_model_forward`` (once).

    The factories (``f(settings)``) and ``tp_rank()`` default to Kafka clients and vLLM's rank;
    tests pass their own.
    """
    if getattr(runner_class, _MARK, False):
        return
    for name in ("load_model", "execute_model", "_model_forward"):
        if not callable(getattr(runner_class, name, None)):
            raise SettingsError("saeguard vLLM plugin: %s.%s is missing in this vLLM version; fix: use a vLLM "
                                "whose V1 GPUModelRunner has load_model, execute_model and _model_forward, or the "
                                "observation plugin" % (runner_class.__name__, name))
    make = functools.partial(WorkerGuard, settings, publisher_factory=publisher_factory,
                             decisions_factory=decisions_factory, tp_rank=tp_rank)
    load_model, execute_model, model_forward = (runner_class.load_model, runner_class.execute_model,
                                                runner_class._model_forward)

    @functools.wraps(load_model)
    def wrapped_load_model(self, *args, **kwargs):
        out = load_model(self, *args, **kwargs)
        self._saeguard = make(self)
        return out

    @functools.wraps(execute_model)
    def wrapped_execute_model(self, scheduler_output, *args, **kwargs):
        guard = getattr(self, "_saeguard", None)
        if guard is not None:
            guard.begin_step(scheduler_output)
        return execute_model(self, scheduler_output, *args, **kwargs)

    @functools.wraps(model_forward)
    def wrapped_model_forward(self, *args, **kwargs):
        guard = getattr(self, "_saeguard", None)
        if guard is not None:
            guard.bind_pass(self, _num_rows(args, kwargs))
        return model_forward(self, *args, **kwargs)

    runner_class.load_model = wrapped_load_model
    runner_class.execute_model = wrapped_execute_model
    runner_class._model_forward = wrapped_model_forward
    setattr(runner_class, _MARK, True)
    LOGGER.info("saeguard vLLM plugin installed: model=%s hook=%s layer=%d", settings.model, settings.hook,
                settings.layer)


def _num_rows(args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> Optional[int]:
    """Rows of this pass: ``positions`` is ``[num_tokens]`` (``[3, num_tokens]`` with M-RoPE)."""
    positions = kwargs.get("positions", args[1] if len(args) > 1 else None)
    if positions is None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        return None if ids is None else int(ids.shape[-1])
    return int(positions.shape[-1])


class _WithoutBlock:
    """The decisions GuardHook may act on inside a vLLM worker: all but ``block`` (see module doc)."""

    def __init__(self, decisions: Any) -> None:
        self._decisions = decisions

    def watch(self, request_id: str) -> None:
        self._decisions.watch(request_id)

    def forget(self, request_id: str) -> None:
        self._decisions.forget(request_id)

    def latest(self, request_id: str) -> Optional[Decision]:
        d = self._decisions.latest(request_id)
        return None if d is None or d.action is Action.BLOCK else d


class WorkerGuard:
    """The hook and its bookkeeping in one vLLM worker (made by the wrapped ``load_model``).

    Threading: every method runs on the worker's model thread, as vLLM calls the runner there.
    """

    def __init__(self, settings: VllmSettings, runner: Any, *, publisher_factory: Any = None,
                 decisions_factory: Any = None, tp_rank: Any = None) -> None:
        if not runner.model_config.enforce_eager:
            raise SettingsError("saeguard vLLM plugin: enforce_eager is off, so the forward hook on layer %d would "
                                "not run inside CUDA graphs; fix: start vLLM with --enforce-eager (LLM(..., "
                                "enforce_eager=True)), or unset SAEGUARD_BOOTSTRAP to turn the plugin off"
                                % settings.layer)
        self.settings = settings
        self.layer = find_decoder_layer(runner.model, settings.layer)
        self.hook: Optional[GuardHook] = None
        self._scheduled: Mapping[str, int] = {}
        if type(self.layer).__name__ == "PPMissingLayer":  # vLLM's placeholder on other pipeline stages
            LOGGER.info("saeguard: layer %d is on another pipeline stage; not hooked here", settings.layer)
            return
        rank = int((tp_rank or _tp_rank)())
        publisher = (publisher_factory or _publisher)(settings) if rank == 0 else None
        decisions = (decisions_factory or _listener)(settings)
        self.hook = GuardHook(publisher, None if decisions is None else _WithoutBlock(decisions),
                              residual=VLLM_RESIDUAL)
        self.hook.attach(self.layer)
        LOGGER.info("saeguard hook attached: layer=%d tp_rank=%d publishing=%s", settings.layer, rank,
                    publisher is not None)

    def begin_step(self, scheduler_output: Any) -> None:
        self._scheduled = dict(scheduler_output.num_scheduled_tokens)
        if self.hook is None:
            return
        for rid in scheduler_output.finished_req_ids:
            self.hook.finish(rid)

    def bind_pass(self, runner: Any, rows: Optional[int]) -> None:
        if self.hook is None:
            return
        segments: List[Tuple[Optional[str], int]] = []
        for rid in runner.input_batch.req_ids:
            n = int(self._scheduled.get(rid, 0))
            segments.append((rid if self._tracks(runner, rid) else None, n))
        total = sum(n for _, n in segments)
        if rows is not None and rows > total:
            segments.append((None, rows - total))  # padding rows vLLM adds to the batch
        self.hook.bind_packed(segments)

    def _tracks(self, runner: Any, rid: Optional[str]) -> bool:
        if rid is None or not self.settings.watches(rid):
            return False
        if self.settings.observe_generation:
            return True
        state = runner.requests.get(rid)
        return state is not None and state.num_computed_tokens < state.num_prompt_tokens


def _tp_rank() -> int:
    from vllm.distributed.parallel_state import get_tensor_model_parallel_rank

    return get_tensor_model_parallel_rank()


def _publisher(settings: VllmSettings):
    from .publisher import ActivationPublisher

    s = settings
    return ActivationPublisher(s.bootstrap, s.model, s.hook, s.activations_topic, sae=s.sae, tenant=s.tenant,
                               dtype=s.dtype, producer_config=s.kafka)


def _listener(settings: VllmSettings):
    from .listener import DecisionListener

    s = settings
    return DecisionListener(s.bootstrap, s.decisions_topic, consumer_config=s.kafka).start()
