"""Mirrors the parts of vllm/v1/worker/gpu_model_runner.py (V1 engine) that saeguard relies on:

* ``load_model()`` sets ``self.model`` (decoder layers at ``model.model.layers``);
* ``execute_model(scheduler_output, intermediate_tensors=None)`` first updates ``self.requests``
  (req_id -> CachedRequestState with ``num_computed_tokens``/``num_prompt_tokens``) and
  ``self.input_batch.req_ids``, then lays the scheduled tokens out packed, request after request
  in ``input_batch.req_ids`` order (``tokens = [num_scheduled_tokens[i] for i in req_ids]``),
  possibly padded, and calls ``self._model_forward(input_ids=..., positions=...)``;
* ``self.model_config.enforce_eager``.

The forward here is a tiny fused-residual model (tests/standins/tiny_vllm_lm.py) on CPU and the
"sampler" is greedy. With the PR's observation plugins configured, ``__init__`` calls its
``init_observation`` as vllm-project/vllm#37002 does."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch

from vllm.plugins.observation.model_runner_helper import init_observation


@dataclass
class CachedRequestState:
    req_id: str
    prompt_token_ids: List[int]
    output_token_ids: List[int] = field(default_factory=list)
    num_computed_tokens: int = 0

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)


@dataclass
class InputBatch:
    req_ids: List[str] = field(default_factory=list)


@dataclass
class ModelRunnerOutput:
    req_ids: List[str]
    req_id_to_index: Dict[str, int]
    sampled_token_ids: List[List[int]]
    aborted_req_ids: Optional[List[str]] = None


class GPUModelRunner:
    def __init__(self, vllm_config: Any, device: str = "cpu") -> None:
        self.vllm_config = vllm_config
        self.model_config = vllm_config.model_config
        self.device = device
        self.requests: Dict[str, CachedRequestState] = {}
        self.input_batch = InputBatch()
        self.model: Optional[torch.nn.Module] = None
        init_observation(self, vllm_config)

    def load_model(self) -> None:
        self.model = self.model_config.build_model()

    def _update_states(self, so) -> None:
        for rid in so.finished_req_ids:
            self.requests.pop(rid, None)
        for new in so.scheduled_new_reqs:
            self.requests[new.req_id] = CachedRequestState(new.req_id, list(new.prompt_token_ids))
        for rid, n in zip(so.scheduled_cached_reqs.req_ids, so.scheduled_cached_reqs.num_computed_tokens):
            self.requests[rid].num_computed_tokens = n
        kept = [r for r in self.input_batch.req_ids if r in self.requests and r in so.num_scheduled_tokens]
        kept += [n.req_id for n in so.scheduled_new_reqs if n.req_id not in kept]
        self.input_batch.req_ids = kept

    def execute_model(self, scheduler_output, intermediate_tensors=None) -> ModelRunnerOutput:
        so = scheduler_output
        self._update_states(so)
        if not so.total_num_scheduled_tokens:  # vLLM returns EMPTY_MODEL_RUNNER_OUTPUT here
            return ModelRunnerOutput([], {}, [], aborted_req_ids=[])
        ids: List[int] = []
        positions: List[int] = []
        last_rows: Dict[str, int] = {}
        for rid in self.input_batch.req_ids:
            st = self.requests[rid]
            n = so.num_scheduled_tokens[rid]
            tokens = st.prompt_token_ids + st.output_token_ids
            start = st.num_computed_tokens
            ids += tokens[start:start + n]
            positions += list(range(start, start + n))
            if start + n >= len(tokens):
                last_rows[rid] = len(ids) - 1
        pad = (-len(ids)) % getattr(self.model_config, "pad_multiple", 1)
        ids += [0] * pad
        positions += [0] * pad
        hidden = self._model_forward(input_ids=torch.tensor(ids), positions=torch.tensor(positions))
        sampled = []
        for rid in self.input_batch.req_ids:
            if rid in last_rows:
                token = int(self.model.logits(hidden[last_rows[rid]]).argmax())
                self.requests[rid].output_token_ids.append(token)
                sampled.append([token])
            else:
                sampled.append([])
        req_ids = list(self.input_batch.req_ids)
        return ModelRunnerOutput(req_ids, {r: i for i, r in enumerate(req_ids)}, sampled, aborted_req_ids=[])

    def _model_forward(self, input_ids=None, positions=None, intermediate_tensors=None, inputs_embeds=None,
                       **model_kwargs):
        return self.model(input_ids, positions)
