"""The ``vllm_standin`` fixture and a tiny engine loop that drives the stand-in GPUModelRunner.

The fixture puts tests/standins (a package named ``vllm``, see its README) on ``sys.path`` for one
test and removes it, with every module imported from it, afterwards, so class patches made by the
saeguard plugin do not leak into the next test.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional, Sequence

import pytest

STANDINS = Path(__file__).resolve().parent / "standins"
_OURS = ("vllm", "tiny_vllm_lm", "saeguard_attach.vllm_observation", "saeguard_attach.vllm_plugin")


def _purge() -> None:
    for name in list(sys.modules):
        if any(name == p or name.startswith(p + ".") for p in _OURS):
            del sys.modules[name]


@pytest.fixture
def vllm_standin():
    _purge()
    sys.path.insert(0, str(STANDINS))
    try:
        yield SimpleNamespace(import_module=importlib.import_module)
    finally:
        sys.path.remove(str(STANDINS))
        _purge()


def vllm_config(build_model: Callable[[], Any], *, enforce_eager: bool = True, pad_multiple: int = 1,
                observation_plugins: Optional[list] = None) -> SimpleNamespace:
    """The attributes of ``VllmConfig`` the runner, the PR's helper and the plugins read."""
    model_config = SimpleNamespace(enforce_eager=enforce_eager, build_model=build_model, pad_multiple=pad_multiple)
    return SimpleNamespace(model_config=model_config, observation_plugins=observation_plugins)


@dataclass
class _Req:
    prompt: List[int]
    computed: int = 0
    outputs: List[int] = field(default_factory=list)
    started: bool = False


class StandinEngine:
    """Schedules like vLLM V1 in miniature: a request's prompt in chunks of ``chunk`` tokens
    (one step per chunk), then one token per step until ``max_tokens``; finished and aborted
    requests are reported to the runner in the next step's ``finished_req_ids``."""

    def __init__(self, runner: Any, *, max_tokens: int = 3, chunk: int = 1_000) -> None:
        from vllm.v1.core.sched.output import CachedRequestData, NewRequestData, SchedulerOutput

        self._types = (CachedRequestData, NewRequestData, SchedulerOutput)
        self.runner = runner
        self.max_tokens = max_tokens
        self.chunk = chunk
        self.running: Dict[str, _Req] = {}
        self.finished: Dict[str, str] = {}  # req_id -> "length" | "abort"
        self.outputs: Dict[str, List[int]] = {}
        self._to_report: set = set()

    def add(self, req_id: str, prompt: Sequence[int]) -> None:
        self.running[req_id] = _Req(list(prompt))

    def step(self) -> None:
        CachedRequestData, NewRequestData, SchedulerOutput = self._types
        new, cached, scheduled = [], CachedRequestData(), {}
        for rid, r in self.running.items():
            remaining = len(r.prompt) - r.computed
            scheduled[rid] = min(self.chunk, remaining) if remaining > 0 else 1
            if r.started:
                cached.req_ids.append(rid)
                cached.num_computed_tokens.append(r.computed)
            else:
                new.append(NewRequestData(rid, r.prompt))
                r.started = True
        so = SchedulerOutput(new, cached, scheduled, sum(scheduled.values()), set(self._to_report))
        self._to_report.clear()
        out = self.runner.execute_model(so)
        for rid, n in scheduled.items():
            self.running[rid].computed += n
        for rid, tokens in zip(out.req_ids, out.sampled_token_ids):
            self.running[rid].outputs += tokens
        for rid in out.aborted_req_ids or []:
            self._finish(rid, "abort")
        for rid in [r for r, q in self.running.items() if len(q.outputs) >= self.max_tokens]:
            self._finish(rid, "length")

    def _finish(self, rid: str, reason: str) -> None:
        r = self.running.pop(rid, None)
        if r is not None:
            self.finished[rid] = reason
            self.outputs[rid] = r.outputs
            self._to_report.add(rid)

    def run(self, max_steps: int = 100) -> None:
        for _ in range(max_steps):
            if not self.running:
                break
            self.step()
        if self._to_report:  # vLLM reports the last finishes with a step that schedules no tokens
            CachedRequestData, _, SchedulerOutput = self._types
            so = SchedulerOutput([], CachedRequestData(), {}, 0, set(self._to_report))
            self._to_report.clear()
            self.runner.execute_model(so)
