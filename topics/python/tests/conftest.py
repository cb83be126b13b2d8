"""Fixtures shared by the suite: the seed, the report printed at the end, and the sidecar world.

The ``world`` fixture (session scope) starts a Kafka broker and the sidecar from
``sidecar/target/saeguard.jar`` (``$SAEGUARD_JAR``), with a random SAE from make_sae.py and
detectors planted on a feature that fires in the TinyLM's activations. Each run draws a fresh seed
(``$SAEGUARD_TEST_SEED`` repeats one) and prints it.
"""
from __future__ import annotations

import os
import random
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import List

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack  # noqa: E402
import world as world_mod  # noqa: E402
from saeguard_attach import DecisionListener, SteeringRegistry  # noqa: E402
from tiny_lm import TinyLM  # noqa: E402

SEED = int(os.environ.get("SAEGUARD_TEST_SEED") or random.SystemRandom().randrange(1, 2 ** 31))
REPORT: List[str] = []
SAE_IDS = {"steer": "sae-steer", "clamp": "sae-clamp", "block": "sae-block", "quiet": "sae-quiet"}
STEER_COEFFICIENT = -6.0
CLAMP_VALUE = 0.75  # the sidecar sends 0.75 x the record's mean activation norm

torch.set_num_threads(1)


def pytest_report_header(config):
    return "saeguard seed: %d (SAEGUARD_TEST_SEED=%d repeats it)" % (SEED, SEED)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line("saeguard seed: %d" % SEED)
    for line in REPORT:
        terminalreporter.write_line(line)


@dataclass
class World:
    bootstrap: str
    http_port: int
    sae: world_mod.ReferenceSae
    model: TinyLM
    plan: world_mod.Plan
    listener: DecisionListener
    registry: SteeringRegistry
    workdir: Path

    def vector_id(self, scenario: str) -> str:
        return "%s/%d" % (SAE_IDS[scenario], self.plan.feature)


def _detector(scenario: str, feature: int, threshold: float) -> str:
    band = {"steer": "action: steer\n      tier: low\n      coefficient: %r" % STEER_COEFFICIENT,
            "clamp": "action: clamp\n      value: %r" % CLAMP_VALUE,
            "block": "action: block"}[scenario]
    return """id: planted-%s
sae: %s
rule:
  kind: features
  match: any
  features:
    - id: %d
      threshold: %r
      label: planted concept
aggregate: token
policy:
  alert_at: 1.0
  bands:
    - min: 1.0
      %s
""" % (scenario, SAE_IDS[scenario], feature, threshold, band)


def _config(workdir: Path, bootstrap: str, port: int, sae_path: Path, plan: world_mod.Plan) -> Path:
    detectors = []
    for scenario in ("steer", "clamp", "block"):
        f = workdir / ("planted-%s.yaml" % scenario)
        f.write_text(_detector(scenario, plan.feature, plan.threshold))
        detectors.append(f)
    saes = "".join("  - id: %s\n    path: %s\n" % (sid, sae_path) for sid in SAE_IDS.values())
    config = workdir / "saeguard.yaml"
    config.write_text("""kafka:
  bootstrap: %s
  group: attach-test-%s
  consumer:
    session.timeout.ms: "10000"
    heartbeat.interval.ms: "1000"
saes:
%sdetectors:
%s
engine:
  device: cpu
  threads: 1
batching:
  max_delay_ms: 1
http:
  host: 127.0.0.1
  port: %d
shutdown:
  drain_timeout_ms: 3000
""" % (bootstrap, uuid.uuid4().hex[:8], saes, "".join("  - %s\n" % d for d in detectors).rstrip("\n"), port))
    return config


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("world")
    started = time.monotonic()
    broker = stack.start_broker(workdir)
    sidecar = listener = registry = None
    try:
        model = TinyLM(SEED)
        sae = world_mod.ReferenceSae.generate(workdir / "sae-case", SEED, d_in=64)
        plan = world_mod.plan(model, sae, SEED)
        bootstrap = broker.wait_ready(90).group(1)
        port = stack.free_port()
        config = _config(workdir, bootstrap, port, sae.path, plan)
        sidecar = stack.JavaProcess(["run", "--config", str(config)], workdir / "sidecar.log", workdir)
        stack.wait_http_ready(sidecar, port, 120)
        listener = DecisionListener(bootstrap).start()
        registry = SteeringRegistry(bootstrap).start()
        w = World(bootstrap, port, sae, model, plan, listener, registry, workdir)
        for scenario in ("steer", "clamp"):
            assert registry.wait_for(w.vector_id(scenario), 30) is not None, "vector %s never arrived" % w.vector_id(scenario)
        REPORT.append("stack ready in %.1f s: broker %s, sidecar :%d, planted feature %d (threshold %.4f) "
                      "firing first at pass %d" % (time.monotonic() - started, bootstrap, port, plan.feature,
                                                   plan.threshold, plan.trigger_pass))
        yield w
    finally:
        for follower in (listener, registry):
            if follower is not None:
                follower.close()
        if sidecar is not None:
            sidecar.stop()
        broker.stop()
