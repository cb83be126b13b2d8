"""What the GuardHook costs a forward pass, measured with and without it in the same run."""
import statistics
import time
import uuid

import pytest
import torch

from conftest import REPORT, SAE_IDS
from saeguard_attach import ActivationPublisher, GuardHook, ResidPost, find_decoder_layer
from world import HOOK_LAYER

pytestmark = pytest.mark.sidecar

ROUNDS = 8
DECODE_PASSES = 40


@torch.no_grad()
def _decode_pass_times(model, prompt):
    """Seconds per decode pass (one token, KV cache) of a greedy run."""
    logits, past = model(prompt)
    ids = logits[:, -1:].argmax(-1)
    times = []
    for _ in range(DECODE_PASSES):
        t0 = time.perf_counter()
        logits, past = model(ids, past)
        times.append(time.perf_counter() - t0)
        ids = logits[:, -1:].argmax(-1)
    return times


def test_the_hook_adds_little_to_a_forward_pass_and_never_waits_for_kafka(world):
    # Given a publisher to the real broker (an SAE without detectors) and the hook, attached every other run
    layer = find_decoder_layer(world.model, HOOK_LAYER)
    publisher = ActivationPublisher(world.bootstrap, "test-model", ResidPost(HOOK_LAYER).saelens, sae=SAE_IDS["quiet"])
    guard = GuardHook(publisher, world.listener, world.registry)
    without, with_hook, in_hook = [], [], []

    def timed_guard(module, inputs, output):
        t0 = time.perf_counter()
        result = guard(module, inputs, output)
        in_hook.append(time.perf_counter() - t0)
        return result

    # When runs with and without the hook alternate (order swapped each round against drift)
    for r in range(ROUNDS):
        for hooked in ((False, True) if r % 2 == 0 else (True, False)):
            if not hooked:
                without.extend(_decode_pass_times(world.model, world.plan.prompt))
                continue
            rid = "overhead-%s" % uuid.uuid4().hex[:8]
            handle = layer.register_forward_hook(timed_guard)
            guard.bind([rid])
            try:
                with_hook.extend(_decode_pass_times(world.model, world.plan.prompt))
            finally:
                handle.remove()
                guard.finish(rid)
    pending = publisher.close(30)

    # Then every pass was published and delivered, and the hook's own time on the model thread is small
    stats = publisher.stats()
    base, hooked, inside = statistics.median(without), statistics.median(with_hook), statistics.median(in_hook)
    p90 = lambda xs: statistics.quantiles(xs, n=10)[-1] * 1e6  # noqa: E731
    REPORT.append("hook overhead per decode pass (TinyLM d=64, 6 layers, CPU, 1 torch thread; %d passes each way): "
                  "inside the hook median %.1f us (p90 %.1f); whole pass median %.1f us without, %.1f us with: "
                  "+%.1f us, ratio %.3f (p90 %.1f vs %.1f us; includes the publisher thread's share of the GIL and "
                  "the broker + sidecar JVMs on the same cores); records delivered %d, dropped %d"
                  % (len(without), inside * 1e6, p90(in_hook), base * 1e6, hooked * 1e6, (hooked - base) * 1e6,
                     hooked / base, p90(without), p90(with_hook), stats.delivered, stats.dropped))
    assert pending == 0 and stats.dropped == 0 and stats.delivered == ROUNDS * (DECODE_PASSES + 1)
    assert guard.stats.passes == len(in_hook) == ROUNDS * (DECODE_PASSES + 1)
    # No bound on the times themselves: tests do not assert timings (shared, noisy machines); the figures are
    # reported in pytest's summary and in the issue notes. That the hook never waits on Kafka is tested
    # structurally in test_hook.py / test_publisher.py (a full queue drops and counts instead of blocking).
