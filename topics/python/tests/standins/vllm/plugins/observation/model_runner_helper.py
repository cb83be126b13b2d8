"""Mirrors vllm/plugins/observation/model_runner_helper.py of vllm-project/vllm#37002 (@ 0424f461):
the order in which a GPU worker drives the plugins. ``init_observation`` wraps the runner's
``load_model`` (make the ObservationHook), ``_model_forward`` (install the layer hooks for a batch
holding a prefill, remove them after) and ``execute_model`` (``on_request_complete`` for finished,
``on_request_start`` for new requests, run the step, then build one RequestContext per request
of a prefill batch in ``input_batch.req_ids`` order with running ``batch_offset``s, call
``process_step`` and report ABORTed requests in the output's ``aborted_req_ids``)."""
from __future__ import annotations

from typing import Any

from .hook import ObservationHook
from .interface import ObservationAction, RequestContext, load_observation_plugins


def init_observation(runner: Any, vllm_config: Any) -> None:
    configs = getattr(vllm_config, "observation_plugins", None)
    if not configs:
        return
    runner.plugin_manager = load_observation_plugins(configs, vllm_config)

    def is_prefill_batch() -> bool:
        for rid in runner.input_batch.req_ids:
            st = runner.requests.get(rid)
            if st is not None and st.num_computed_tokens < st.num_prompt_tokens:
                return True
        return False

    original_load_model = runner.load_model

    def load_model(*args, **kwargs):
        original_load_model(*args, **kwargs)
        runner.observation_hook = ObservationHook(runner.plugin_manager, runner.model)

    runner.load_model = load_model

    original_forward = runner._model_forward

    def model_forward(*args, **kwargs):
        prefill = is_prefill_batch()
        if prefill:
            runner.observation_hook.install_hooks()
        try:
            return original_forward(*args, **kwargs)
        finally:
            if prefill:
                runner.observation_hook.remove_hooks()

    runner._model_forward = model_forward

    original_execute = runner.execute_model

    def execute_model(scheduler_output):
        for rid in scheduler_output.finished_req_ids:
            runner.plugin_manager.on_request_complete(rid)
        for new in scheduler_output.scheduled_new_reqs:
            runner.plugin_manager.on_request_start(new.req_id, prompt=None)
        output = original_execute(scheduler_output)
        if is_prefill_batch():
            contexts, offset = [], 0
            for rid in runner.input_batch.req_ids:
                n = scheduler_output.num_scheduled_tokens.get(rid, 0)
                st = runner.requests.get(rid)
                if st is None:
                    continue
                contexts.append(RequestContext(request_id=rid, is_prefill=st.num_computed_tokens < st.num_prompt_tokens,
                                               batch_offset=offset, num_tokens=n,
                                               num_cached_tokens=st.num_computed_tokens))
                offset += n
            results = runner.observation_hook.process_step(contexts)
            aborted = [c.request_id for c, r in zip(contexts, results) if r.action == ObservationAction.ABORT]
            output.aborted_req_ids = sorted(set(output.aborted_req_ids or []) | set(aborted))
        return output

    runner.execute_model = execute_model
