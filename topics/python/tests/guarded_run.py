"""One guarded generation against the real sidecar, with every pass's layer output recorded.

Observers on the hooked layer see its output before the GuardHook (``pre``), after it (``post``),
and the next layer's input (``downstream``). Before pass k >= 1 the loop waits for the decision on
pass k - 1's record, so pass k applies exactly that decision: the test of the arithmetic is then
deterministic, while the hook itself never waits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch

from saeguard_attach import ActivationPublisher, Blocked, Decision, GuardHook, ResidPost, find_decoder_layer
from tiny_lm import generate
from world import HOOK_LAYER, STEPS

DECISION_TIMEOUT_S = 30.0


@dataclass
class Trace:
    request_id: str
    pre: List[torch.Tensor] = field(default_factory=list)  # per pass, [tokens, d]
    post: List[torch.Tensor] = field(default_factory=list)
    downstream: List[torch.Tensor] = field(default_factory=list)
    applied: Dict[int, Decision] = field(default_factory=dict)  # pass -> decision the hook applied
    awaited: Dict[int, Decision] = field(default_factory=dict)  # pass -> latest decision before it
    blocked: Optional[Blocked] = None
    blocked_at: Optional[int] = None
    publisher_stats: object = None


def run(world, sae_id: str, request_id: str, steps: int = STEPS) -> Trace:
    trace = Trace(request_id)
    current = [0]
    publisher = ActivationPublisher(world.bootstrap, model="test-model", hook=ResidPost(HOOK_LAYER).saelens, sae=sae_id)
    guard = GuardHook(publisher, world.listener, world.registry,
                      on_intervention=lambda rid, d: trace.applied.__setitem__(current[0], d))
    layer = find_decoder_layer(world.model, HOOK_LAYER)
    handles = [
        layer.register_forward_hook(lambda m, i, o: trace.pre.append(o[0][0].detach().clone())),
        guard.attach(layer),
        layer.register_forward_hook(lambda m, i, o: trace.post.append(o[0][0].detach().clone())),
        world.model.model.layers[HOOK_LAYER + 1].register_forward_pre_hook(
            lambda m, i: trace.downstream.append(i[0][0].detach().clone())),
    ]

    def before_pass(k: int) -> None:
        current[0] = k
        if k >= 1:
            d = world.listener.wait_for(request_id, k - 1, DECISION_TIMEOUT_S)
            assert d is not None, "no decision seq %d for %s within %.0f s" % (k - 1, request_id, DECISION_TIMEOUT_S)
            trace.awaited[k] = d

    guard.bind([request_id])
    try:
        generate(world.model, world.plan.prompt, steps, before_pass)
    except Blocked as b:
        trace.blocked, trace.blocked_at = b, current[0]
    finally:
        for h in handles:
            h.remove()
        guard.finish(request_id)
        publisher.close(10)
    trace.publisher_stats = publisher.stats()
    return trace
