"""The vllm.general_plugins entry point: the GuardHook it installs in a (stand-in) vLLM V1 worker,
what it publishes, and the constraints it enforces."""
import json
import sys

import numpy as np
import pytest
import torch

from fakes import FakeProducer, book_with
from saeguard_attach import ActivationPublisher, Decision, DecisionBook
from saeguard_attach.decisions import Action
from saeguard_attach.vllm_settings import SettingsError, VllmSettings
from vllm_standin import StandinEngine, vllm_config, vllm_standin  # noqa: F401 - the fixture
from wire import read_record

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None

ENV = {"SAEGUARD_BOOTSTRAP": "kafka:9092", "SAEGUARD_MODEL": "tiny", "SAEGUARD_LAYER": "1"}
PROMPTS = {"req-a": [5, 9, 2, 7, 11], "req-b": [3, 3, 8]}


class _Kafka:
    """The publisher and decisions the plugin's factories hand out, and how often they were asked."""

    def __init__(self, book=None):
        self.producer = FakeProducer()
        self.book = book if book is not None else book_with()
        self.publishers = []

    def publisher(self, settings):
        p = ActivationPublisher("unused", settings.model, settings.hook, producer=self.producer,
                                prefer_safetensors_package=False)
        self.publishers.append(p)
        return p

    def decisions(self, settings):
        return self.book

    def records(self, tmp_path):
        for p in self.publishers:
            assert p.flush(5) == 0
        return [read_record(tmp_path, value) for _, _, value in self.producer.records]


def _engine(vllm_standin, kafka, env=ENV, *, tp_rank=0, enforce_eager=True, pad_multiple=8, **engine_args):
    plugin = vllm_standin.import_module("saeguard_attach.vllm_plugin")
    runner_module = vllm_standin.import_module("vllm.v1.worker.gpu_model_runner")
    lm = vllm_standin.import_module("tiny_vllm_lm").TinyVllmLM(seed=3)
    plugin.install(runner_module.GPUModelRunner, VllmSettings.from_env(env), publisher_factory=kafka.publisher,
                   decisions_factory=kafka.decisions, tp_rank=lambda: tp_rank)
    runner = runner_module.GPUModelRunner(vllm_config(lambda: lm, enforce_eager=enforce_eager,
                                                      pad_multiple=pad_multiple))
    runner.load_model()
    # The reference is a twin of the served model (same seed), so computing it runs no hook.
    return StandinEngine(runner, **engine_args), vllm_standin.import_module("tiny_vllm_lm").TinyVllmLM(seed=3)


def test_each_prompt_is_published_as_the_residual_stream_after_the_layer_despite_packing_and_padding(vllm_standin,
                                                                                                  tmp_path):
    # Given the plugin on layer 1, prompts prefilled in chunks of 2 in batches padded to 8 rows
    kafka = _Kafka()
    engine, lm = _engine(vllm_standin, kafka, chunk=2)
    for rid, prompt in PROMPTS.items():
        engine.add(rid, prompt)

    # When both run to their end
    engine.run()

    # Then each request's records hold resid_post of layer 1 (hidden_states + residual) for its
    # prompt tokens, in order from position 0, and nothing of the decode steps or the padding
    records = kafka.records(tmp_path)
    for rid, prompt in PROMPTS.items():
        mine = [r for r in records if r.metadata["request_id"] == rid]
        assert [int(r.metadata["position"]) for r in mine] == list(range(0, len(prompt), 2))
        assert {r.metadata["hook"] for r in mine} == {"blocks.1.hook_resid_post"}
        np.testing.assert_allclose(np.concatenate([r.activations for r in mine]),
                                   lm.resid_post(torch.tensor(prompt), 1).numpy(), rtol=1e-5, atol=1e-5)
    assert engine.finished == {"req-a": "length", "req-b": "length"}


def test_with_generation_phases_every_generated_token_is_published_at_its_position(vllm_standin, tmp_path):
    # Given SAEGUARD_PHASES=prompt,generation
    kafka = _Kafka()
    engine, lm = _engine(vllm_standin, kafka, dict(ENV, SAEGUARD_PHASES="prompt,generation"), max_tokens=3)
    engine.add("req-a", PROMPTS["req-a"])

    # When the request prefills and generates 3 tokens
    engine.run()

    # Then the prompt and the two generated tokens fed back are published, matching resid_post
    records = kafka.records(tmp_path)
    assert [(r.metadata["phase"], r.metadata["position"]) for r in records] == [
        ("prompt", "0"), ("generation", "5"), ("generation", "6")]
    sequence = torch.tensor(PROMPTS["req-a"] + engine.outputs["req-a"][:-1])
    np.testing.assert_allclose(np.concatenate([r.activations for r in records]),
                               lm.resid_post(sequence, 1).numpy(), rtol=1e-5, atol=1e-5)


def test_a_worker_without_enforce_eager_refuses_to_load_and_says_the_fix(vllm_standin):
    with pytest.raises(SettingsError, match="enforce_eager is off.*fix: start vLLM with --enforce-eager"):
        _engine(vllm_standin, _Kafka(), enforce_eager=False)


def test_a_block_decision_neither_raises_in_the_worker_nor_stops_the_request(vllm_standin):
    # Given req-a blocked by the sidecar
    kafka = _Kafka(book_with(Decision(request_id="req-a", seq=1, action=Action.BLOCK, position=0)))
    engine, _ = _engine(vllm_standin, kafka)
    engine.add("req-a", PROMPTS["req-a"])

    # When it runs
    engine.run()

    # Then the engine kept going: blocking is the gateway's (or the observation plugin's) job
    assert engine.finished == {"req-a": "length"}


def test_a_steer_decision_changes_what_the_worker_generates(vllm_standin):
    # Given a steer decision for req-a along a strong direction
    from saeguard_attach.decisions import VectorRef

    steer = Decision(request_id="req-a", seq=1, action=Action.STEER, position=0,
                     vector=VectorRef(id="v", coefficient=50.0))
    engine, twin = _engine(vllm_standin, _Kafka(book_with(steer)), max_tokens=4)

    class Vectors:
        def get(self, vector_id):
            return torch.randn(16, generator=torch.Generator().manual_seed(1))

    engine.runner._saeguard.hook._vectors = Vectors()
    engine.add("req-a", PROMPTS["req-a"])

    # When it runs
    engine.run()

    # Then the edit was applied and the first token differs from the unsteered greedy one
    sequence = torch.tensor(PROMPTS["req-a"])
    unsteered = int(twin.logits(twin(sequence, torch.arange(len(sequence)))[-1]).argmax())
    assert engine.runner._saeguard.hook.stats.steered == 1
    assert engine.outputs["req-a"][0] != unsteered


def test_only_tensor_parallel_rank_zero_makes_a_publisher(vllm_standin, tmp_path):
    kafka = _Kafka()
    engine, _ = _engine(vllm_standin, kafka, tp_rank=1)
    engine.add("req-a", PROMPTS["req-a"])
    engine.run()
    assert kafka.publishers == [] and engine.finished == {"req-a": "length"}


def test_finished_requests_are_ended_and_their_decisions_forgotten(vllm_standin):
    # Given a book that keeps only watched requests
    kafka = _Kafka(DecisionBook())
    engine, _ = _engine(vllm_standin, kafka)
    engine.add("req-a", PROMPTS["req-a"])

    # When the request runs and vLLM reports it finished
    engine.step()
    watched = kafka.book.stats().requests
    engine.run()

    # Then
    assert watched == 1 and kafka.book.stats().requests == 0


def test_register_installs_nothing_without_a_bootstrap_and_wraps_the_runner_once_with_one(vllm_standin, monkeypatch):
    plugin = vllm_standin.import_module("saeguard_attach.vllm_plugin")
    runner = vllm_standin.import_module("vllm.v1.worker.gpu_model_runner").GPUModelRunner
    original = runner.execute_model
    monkeypatch.delenv("SAEGUARD_BOOTSTRAP", raising=False)
    plugin.register()
    assert runner.execute_model is original

    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    plugin.register()
    wrapped = runner.execute_model
    plugin.register()  # vLLM may load general plugins more than once per process
    assert wrapped is not original and runner.execute_model is wrapped


def test_register_refuses_a_malformed_setting(vllm_standin, monkeypatch):
    plugin = vllm_standin.import_module("saeguard_attach.vllm_plugin")
    for k, v in dict(ENV, SAEGUARD_LAYER="x").items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError, match="SAEGUARD_LAYER"):
        plugin.register()


@pytest.mark.skipif(tomllib is None, reason="tomllib needs Python 3.11")
def test_pyproject_registers_the_general_plugin_and_the_hidden_states_follower():
    from paths import REPO

    project = tomllib.loads((REPO / "topics" / "python" / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["vllm.general_plugins"] == {"saeguard": "saeguard_attach.vllm_plugin:register"}
    assert project["scripts"]["saeguard-vllm-hidden-states"] == "saeguard_attach.vllm_hidden_states:main"


@pytest.mark.sidecar
def test_with_a_real_broker_and_sidecar_each_published_prompt_is_decided(vllm_standin, world):
    # Given the plugin installed with its own Kafka publisher, for an SAE the sidecar serves (d_in 64)
    import uuid

    from conftest import SAE_IDS
    from kafka_read import read_key

    plugin = vllm_standin.import_module("saeguard_attach.vllm_plugin")
    runner_module = vllm_standin.import_module("vllm.v1.worker.gpu_model_runner")
    lm = vllm_standin.import_module("tiny_vllm_lm").TinyVllmLM(d=64, seed=3)
    settings = VllmSettings.from_env(dict(ENV, SAEGUARD_BOOTSTRAP=world.bootstrap, SAEGUARD_SAE=SAE_IDS["quiet"]))
    plugin.install(runner_module.GPUModelRunner, settings, decisions_factory=lambda s: book_with(), tp_rank=lambda: 0)
    runner = runner_module.GPUModelRunner(vllm_config(lambda: lm, pad_multiple=8))
    runner.load_model()
    engine = StandinEngine(runner)
    ids = {"cmpl-%s-0" % uuid.uuid4().hex[:12]: prompt for prompt in PROMPTS.values()}
    for rid, prompt in ids.items():
        engine.add(rid, prompt)

    # When both requests run and the publisher has delivered
    engine.run()
    publisher = runner._saeguard.hook._publisher
    assert publisher.close(30) == 0

    # Then the sidecar decided each request's prompt record
    for rid in ids:
        decisions = [json.loads(v) for v, _ in read_key(world.bootstrap, "saeguard.decisions", rid, 1, 60)]
        assert [(d["request_id"], d["action"]) for d in decisions] == [(rid, "allow")]
