"""GuardHook on a TinyLM against the real sidecar and a real Kafka broker.

The feature planted in conftest fires first on the record of pass ``j`` (plan.trigger_pass); the
detector's decision on it comes back and pass ``j + 1``'s layer output changes by exactly the
steer / clamp arithmetic, computed here from the SAE's own decoder row; blocking stops pass j + 1.
"""
import json
import uuid

import jsonschema
import pytest
import torch

import guarded_run
from conftest import CLAMP_VALUE, SAE_IDS, STEER_COEFFICIENT
from kafka_read import read_key
from paths import REPO
from world import PROMPT_TOKENS, record_activation, reference_io

pytestmark = pytest.mark.sidecar

SCHEMAS = {name: json.loads((REPO / "topics" / "schemas" / ("%s.schema.json" % name)).read_text())
           for name in ("decision", "alert")}
ATOL = 2e-5


def _first_position(k):
    return 0 if k == 0 else PROMPT_TOKENS + k - 1


@pytest.fixture(scope="module")
def steered(world):
    return guarded_run.run(world, SAE_IDS["steer"], "steer-" + uuid.uuid4().hex[:8])


@pytest.fixture(scope="module")
def clamped(world):
    return guarded_run.run(world, SAE_IDS["clamp"], "clamp-" + uuid.uuid4().hex[:8])


@pytest.fixture(scope="module")
def blocked(world):
    return guarded_run.run(world, SAE_IDS["block"], "block-" + uuid.uuid4().hex[:8])


def _decisions(world, trace, count):
    raw = read_key(world.bootstrap, "saeguard.decisions", trace.request_id, count)
    return [json.loads(v) for v, _ in raw]


def _fires(world, x, first):
    """(fires, clear): whether the planted feature reaches the threshold on a record, per the
    float64 reference; ``clear`` is False when any counted token is within 1e-3 of a cut."""
    feats, pre = world.sae.codes(x)
    f, thr, theta = world.plan.feature, world.plan.threshold, world.sae.theta(world.plan.feature)
    a = record_activation(feats[:, f], first)
    counted = slice(1 if first == 0 else 0, None)
    clear = bool(((a[counted] / thr - 1).abs() > 1e-3).all() and ((pre[counted, f] - theta).abs() > 1e-3).all())
    return bool((a >= thr).any()), clear, float(a.max())


def test_activations_arrive_on_the_topic_exactly_as_the_layer_computed_them(world, steered):
    # Given the steered run's passes, When its records are read back from the activations topic
    records = read_key(world.bootstrap, "saeguard.activations", steered.request_id, len(steered.pre))
    files = []
    for i, (value, _) in enumerate(records):
        path = world.workdir / ("%s-%d.safetensors" % (steered.request_id, i))
        path.write_bytes(value)
        files.append(reference_io.SafetensorsFile(str(path)))

    # Then one record per pass, in order, with the layer's pre-edit output, positions and phases
    assert len(files) == len(steered.pre) == guarded_run.STEPS + 1
    for k, f in enumerate(files):
        md = f.metadata
        assert (md["request_id"], md["sae"], md["model"]) == (steered.request_id, SAE_IDS["steer"], "test-model")
        assert md["hook"] == "blocks.3.hook_resid_post"
        assert md["position"] == str(_first_position(k)) and md["phase"] == ("prompt" if k == 0 else "generation")
        assert torch.equal(torch.from_numpy(f.get("activations")), steered.pre[k])
    assert steered.publisher_stats.dropped == 0 and steered.publisher_stats.delivered == len(files)


def test_the_planted_feature_fires_and_every_decision_matches_the_reference_codes(world, steered):
    # Given one decision per record on the decisions topic
    decisions = _decisions(world, steered, len(steered.pre))
    assert [d["seq"] for d in decisions] == list(range(len(steered.pre)))
    checked = 0
    for k, d in enumerate(decisions):
        fires, clear, strongest = _fires(world, steered.pre[k], _first_position(k))
        assert d["position"] == _first_position(k)
        if not clear:
            continue
        checked += 1
        # Then each decision is steer exactly when the reference says the feature fires
        assert d["action"] == ("steer" if fires else "allow"), "pass %d: %s" % (k, d)
        if fires:
            assert d["vector"] == {"id": world.vector_id("steer"), "coefficient": STEER_COEFFICIENT}
            top = [x for x in d["features"] if x["id"] == world.plan.feature]
            assert top and top[0]["value"] == pytest.approx(strongest, rel=1e-4)
    # And the planted pass is the first that fires
    j = world.plan.trigger_pass
    assert [d["action"] for d in decisions[:j]] == ["allow"] * j and decisions[j]["action"] == "steer"
    assert checked >= j + 1


def test_steering_changes_the_next_pass_by_exactly_coefficient_times_the_unit_decoder_row(world, steered):
    j = world.plan.trigger_pass
    v = world.sae.unit_row(world.plan.feature)
    # Before the decision: passes 1..j ran untouched
    for k in range(0, j + 1):
        assert torch.equal(steered.post[k], steered.pre[k]), "pass %d changed before any decision" % k
    # The pass after it: output = pre + c * v, and that is what the next layer received
    expected = steered.pre[j + 1].double() + STEER_COEFFICIENT * v
    assert steered.applied[j + 1].seq == j and steered.applied[j + 1].action.value == "steer"
    assert torch.allclose(steered.post[j + 1].double(), expected, rtol=0, atol=ATOL)
    assert not torch.allclose(steered.post[j + 1], steered.pre[j + 1], atol=0.1)
    assert torch.equal(steered.downstream[j + 1], steered.post[j + 1])
    # Every later pass follows the decision it saw: steered iff that decision was steer
    for k in range(j + 2, len(steered.pre)):
        if steered.awaited[k].action.value == "steer":
            assert torch.allclose(steered.post[k].double(), steered.pre[k].double() + STEER_COEFFICIENT * v, atol=ATOL)
        else:
            assert torch.equal(steered.post[k], steered.pre[k])


def test_clamping_sets_the_component_along_the_vector_in_the_next_pass(world, clamped):
    j = world.plan.trigger_pass
    u = world.sae.unit_row(world.plan.feature)
    decision = clamped.awaited[j + 1]
    # The decision on pass j: clamp to 0.75 x the record's activation norm (one counted token)
    assert decision.seq == j and decision.action.value == "clamp"
    assert decision.vector.id == world.vector_id("clamp")
    assert decision.vector.value == pytest.approx(CLAMP_VALUE * float(clamped.pre[j].double().norm()), rel=1e-5)
    # Pass j + 1: x + (value - x.u) u, so the component along u is exactly value
    x = clamped.pre[j + 1].double()
    expected = x + (decision.vector.value - x @ u).unsqueeze(-1) * u
    assert torch.allclose(clamped.post[j + 1].double(), expected, rtol=0, atol=ATOL)
    assert torch.allclose(clamped.post[j + 1].double() @ u, torch.tensor([decision.vector.value], dtype=torch.float64), atol=ATOL)
    assert all(torch.equal(clamped.post[k], clamped.pre[k]) for k in range(j + 1))


def test_a_block_decision_stops_the_request_at_the_next_pass(world, blocked):
    j = world.plan.trigger_pass
    assert blocked.blocked is not None, "generation ran to the end without Blocked"
    assert blocked.blocked_at == j + 1 and blocked.blocked.request_ids == [blocked.request_id]
    assert blocked.blocked.decisions[blocked.request_id].seq == j
    # Nothing of the blocked pass was published
    assert len(read_key(world.bootstrap, "saeguard.activations", blocked.request_id, j + 2, timeout=3)) == j + 1


def test_the_registry_holds_the_sae_unit_decoder_rows(world):
    for scenario in ("steer", "clamp"):
        v = world.registry.get(world.vector_id(scenario))
        assert torch.allclose(v.double(), world.sae.unit_row(world.plan.feature), rtol=0, atol=1e-6)


def test_the_sidecars_decisions_and_alerts_follow_the_json_schemas(world, steered, clamped, blocked):
    for trace in (steered, clamped, blocked):
        decisions = _decisions(world, trace, len(trace.post))
        for d in decisions:
            jsonschema.validate(d, SCHEMAS["decision"])
        alerts = [json.loads(v) for v, _ in read_key(world.bootstrap, "saeguard.alerts", trace.request_id, 1)]
        assert alerts, "no alert for %s" % trace.request_id
        for a in alerts:
            jsonschema.validate(a, SCHEMAS["alert"])
        assert alerts[0]["seq"] == world.plan.trigger_pass and alerts[0]["detector"].startswith("planted-")


def test_v1_check_answers_synchronously_with_the_detectors_verdict(world, steered):
    # Given the planted token's activations and a fresh request id
    from saeguard_attach import RecordSource, check
    j = world.plan.trigger_pass
    source = RecordSource(model="test-model", hook="blocks.3.hook_resid_post", sae=SAE_IDS["block"])
    url = "http://127.0.0.1:%d/v1/check" % world.http_port

    # When checked over HTTP at a position past BOS
    result = check(url, source, "check-" + uuid.uuid4().hex[:8], steered.pre[j], position=_first_position(j), phase="generation")

    # Then the block detector's verdict and its alert come back in the response
    assert result.decision.action.value == "block" and result.decision.detector == "planted-block"
    assert world.plan.feature in [f.id for f in result.decision.features]
    assert result.alerts and result.alerts[0]["detector"] == "planted-block"
