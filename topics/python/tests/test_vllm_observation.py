"""The observation plugin (vllm-project/vllm#37002) driven by stand-ins of that PR's runner helper:
what it publishes per request, and ABORT for requests the sidecar blocked."""
import numpy as np
import torch

from fakes import FakeProducer, book_with
from saeguard_attach import ActivationPublisher, Decision
from saeguard_attach.decisions import Action
from vllm_standin import StandinEngine, vllm_config, vllm_standin  # noqa: F401 - the fixture
from wire import read_record

ENV = {"SAEGUARD_BOOTSTRAP": "kafka:9092", "SAEGUARD_MODEL": "tiny", "SAEGUARD_LAYER": "1"}
PROMPTS = {"req-a": [5, 9, 2, 7, 11], "req-b": [3, 3, 8]}


def _engine(vllm_standin, plugin, **engine_args):
    lm_module = vllm_standin.import_module("tiny_vllm_lm")
    runner_module = vllm_standin.import_module("vllm.v1.worker.gpu_model_runner")
    lm = lm_module.TinyVllmLM(seed=7)
    runner = runner_module.GPUModelRunner(vllm_config(lambda: lm, observation_plugins=[plugin]))
    runner.load_model()
    # The reference is a twin of the served model (same seed), so computing it runs no hook.
    return StandinEngine(runner, **engine_args), lm_module.TinyVllmLM(seed=7)


def _plugin(vllm_standin, env=ENV, decisions=None, tp_rank=0):
    module = vllm_standin.import_module("saeguard_attach.vllm_observation")
    producer = FakeProducer()
    publisher = ActivationPublisher("unused", env["SAEGUARD_MODEL"], "blocks.%s.hook_resid_post" % env["SAEGUARD_LAYER"],
                                    producer=producer, prefer_safetensors_package=False)
    plugin = module.SaeguardObservationPlugin(env=env, publisher=publisher,
                                              decisions=book_with() if decisions is None else decisions,
                                              tp_rank=lambda: tp_rank)
    return plugin, publisher, producer


def _records(tmp_path, publisher, producer):
    assert publisher.flush(5) == 0
    return [read_record(tmp_path, value) for _, _, value in producer.records]


def test_each_requests_prompt_rows_of_the_observed_layer_are_published_as_activation_records(vllm_standin, tmp_path):
    # Given the plugin on layer 1, prompts prefilled in chunks of 2 tokens, 3 tokens generated each
    plugin, publisher, producer = _plugin(vllm_standin)
    engine, lm = _engine(vllm_standin, plugin, chunk=2)
    for rid, prompt in PROMPTS.items():
        engine.add(rid, prompt)

    # When the engine runs both requests to their end
    engine.run()

    # Then each prompt chunk became one record at its request position, holding exactly what vLLM
    # handed the plugin (layer 1's output[0]); generation steps were not published (prompt only)
    records = _records(tmp_path, publisher, producer)
    assert engine.finished == {"req-a": "length", "req-b": "length"}
    for rid, prompt in PROMPTS.items():
        mine = [r for r in records if r.metadata["request_id"] == rid]
        assert [int(r.metadata["position"]) for r in mine] == list(range(0, len(prompt), 2))
        assert {(r.metadata["phase"], r.metadata["model"], r.metadata["hook"]) for r in mine} == {
            ("prompt", "tiny", "blocks.1.hook_resid_post")}
        expected = lm.block_output(torch.tensor(prompt), 1).numpy()
        np.testing.assert_allclose(np.concatenate([r.activations for r in mine]), expected, rtol=1e-6, atol=1e-6)


def test_the_observed_tensor_is_the_blocks_output_before_the_residual_add_not_resid_post(vllm_standin, tmp_path):
    # Given a vLLM-style decoder whose layers return (hidden_states, residual)
    plugin, publisher, producer = _plugin(vllm_standin)
    engine, lm = _engine(vllm_standin, plugin)
    engine.add("req-a", PROMPTS["req-a"])

    # When the prompt is observed
    engine.run()

    # Then what the observation API gives is output[0], which differs from the residual stream
    (record,) = _records(tmp_path, publisher, producer)
    resid_post = lm.resid_post(torch.tensor(PROMPTS["req-a"]), 1).numpy()
    assert not np.allclose(record.activations, resid_post, atol=1e-3)


def test_a_blocked_request_is_aborted_at_its_prefill_and_not_published(vllm_standin, tmp_path):
    # Given the sidecar already blocked req-b
    book = book_with(Decision(request_id="req-b", seq=1, action=Action.BLOCK, position=0))
    plugin, publisher, producer = _plugin(vllm_standin, decisions=book)
    engine, _ = _engine(vllm_standin, plugin)
    for rid, prompt in PROMPTS.items():
        engine.add(rid, prompt)

    # When both run
    engine.run()

    # Then req-b ends aborted after its prefill step, req-a runs to its length, only req-a is published
    assert engine.finished == {"req-a": "length", "req-b": "abort"}
    assert len(engine.outputs["req-b"]) == 1
    assert {r.metadata["request_id"] for r in _records(tmp_path, publisher, producer)} == {"req-a"}
    assert plugin.aborted == 1


def test_a_block_that_arrives_during_decode_is_answered_at_the_next_step_that_holds_a_prefill(vllm_standin):
    # Given req-a past its prefill when the sidecar blocks it (the PR observes prefill batches only)
    book = book_with()
    plugin, _, _ = _plugin(vllm_standin, decisions=book)
    engine, _ = _engine(vllm_standin, plugin, max_tokens=10)
    engine.add("req-a", PROMPTS["req-a"])
    engine.step()
    book.offer(Decision(request_id="req-a", seq=1, action=Action.BLOCK, position=5))

    # When two decode-only steps run, then a new request's prefill joins the batch
    engine.step()
    engine.step()
    still_running = "req-a" in engine.running
    engine.add("req-c", [1, 2])
    engine.step()

    # Then req-a kept generating through the decode-only steps and was aborted with the prefill
    assert still_running
    assert engine.finished.get("req-a") == "abort"


def test_only_tensor_parallel_rank_zero_publishes_but_every_rank_aborts(vllm_standin, tmp_path):
    # Given the plugin on TP rank 1 and req-b blocked
    book = book_with(Decision(request_id="req-b", seq=1, action=Action.BLOCK, position=0))
    plugin, publisher, producer = _plugin(vllm_standin, decisions=book, tp_rank=1)
    engine, _ = _engine(vllm_standin, plugin)
    for rid, prompt in PROMPTS.items():
        engine.add(rid, prompt)

    # When both run
    engine.run()

    # Then nothing is published from this rank and req-b is still aborted
    assert _records(tmp_path, publisher, producer) == []
    assert engine.finished["req-b"] == "abort"


def test_requests_outside_saeguard_requests_are_neither_published_nor_aborted(vllm_standin, tmp_path):
    # Given SAEGUARD_REQUESTS selecting req-a only, and a block for req-b
    book = book_with(Decision(request_id="req-b", seq=1, action=Action.BLOCK, position=0))
    plugin, publisher, producer = _plugin(vllm_standin, env=dict(ENV, SAEGUARD_REQUESTS="req-a"), decisions=book)
    engine, _ = _engine(vllm_standin, plugin)
    for rid, prompt in PROMPTS.items():
        engine.add(rid, prompt)

    # When both run
    engine.run()

    # Then
    assert engine.finished == {"req-a": "length", "req-b": "length"}
    assert {r.metadata["request_id"] for r in _records(tmp_path, publisher, producer)} == {"req-a"}


def test_a_finished_request_is_forgotten_by_the_decision_listener(vllm_standin):
    # Given a book watching only what the plugin tells it to
    from saeguard_attach import DecisionBook

    book = DecisionBook()
    plugin, _, _ = _plugin(vllm_standin, decisions=book)
    engine, _ = _engine(vllm_standin, plugin)
    engine.add("req-a", PROMPTS["req-a"])

    # When the request runs to its end
    engine.step()
    watched_while_running = book.stats().requests
    engine.run()

    # Then it was watched while it ran and is forgotten once vLLM reported it finished
    assert watched_while_running == 1 and book.stats().requests == 0


def test_the_entry_point_function_names_the_plugin_class(vllm_standin):
    module = vllm_standin.import_module("saeguard_attach.vllm_observation")
    assert module.plugin_qualname() == "saeguard_attach.vllm_observation.SaeguardObservationPlugin"
    assert issubclass(module.SaeguardObservationPlugin, vllm_standin.import_module("vllm.plugins.observation").ObservationPlugin)


def test_observe_decode_follows_saeguard_phases_and_generation_rows_are_published_with_their_phase(vllm_standin,
                                                                                                 tmp_path):
    # Given SAEGUARD_PHASES=prompt,generation and a batch where req-a decodes while req-b prefills
    plugin, publisher, producer = _plugin(vllm_standin, env=dict(ENV, SAEGUARD_PHASES="prompt,generation"))
    engine, _ = _engine(vllm_standin, plugin)
    engine.add("req-a", PROMPTS["req-a"])
    engine.step()
    engine.add("req-b", PROMPTS["req-b"])

    # When that mixed step runs
    engine.step()

    # Then req-a's decode row is published as generation at position 5
    assert plugin.observe_decode()
    generation = [r for r in _records(tmp_path, publisher, producer) if r.metadata["phase"] == "generation"]
    assert [(r.metadata["request_id"], r.metadata["position"], len(r.activations)) for r in generation] == [
        ("req-a", "5", 1)]
