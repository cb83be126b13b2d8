"""Mirrors the fields of vllm/v1/core/sched/output.py (V1 engine) that the runner and the saeguard
wrappers read: ``scheduled_new_reqs[i].req_id``, ``scheduled_cached_reqs`` (``req_ids``,
``num_computed_tokens``), ``num_scheduled_tokens`` (req_id -> tokens this step),
``total_num_scheduled_tokens`` and ``finished_req_ids``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set


@dataclass
class NewRequestData:
    req_id: str
    prompt_token_ids: List[int]
    sampling_params: Optional[Any] = None


@dataclass
class CachedRequestData:
    req_ids: List[str] = field(default_factory=list)
    num_computed_tokens: List[int] = field(default_factory=list)


@dataclass
class SchedulerOutput:
    scheduled_new_reqs: List[NewRequestData]
    scheduled_cached_reqs: CachedRequestData
    num_scheduled_tokens: Dict[str, int]
    total_num_scheduled_tokens: int
    finished_req_ids: Set[str]
