"""Decisions as decision.schema.json defines them, and the latest-per-request book."""
import json
import threading

import pytest

from paths import REPO
from saeguard_attach import Action, DecisionBook, DecisionFormatError, Tier, parse_decision

SCHEMA = json.loads((REPO / "topics" / "schemas" / "decision.schema.json").read_text())


def _decision(seq, action="allow", request_id="r", **extra):
    d = {"request_id": request_id, "seq": seq, "action": action, "position": seq}
    if action in ("steer", "clamp"):
        d["vector"] = {"id": "sae/1", "coefficient": 2.0} | ({"value": 3.0} if action == "clamp" else {})
    d.update(extra)
    return parse_decision(json.dumps(d))


@pytest.mark.parametrize("example", SCHEMA["examples"], ids=lambda e: e["action"])
def test_the_schema_examples_parse_with_every_field(example):
    d = parse_decision(json.dumps(example).encode())
    assert d.request_id == example["request_id"] and d.seq == example["seq"]
    assert d.action is Action(example["action"]) and d.position == example["position"]
    assert [(f.sae, f.id, f.value) for f in d.features] == [(f["sae"], f["id"], f["value"]) for f in example["features"]]
    if "vector" in example:
        assert (d.vector.id, d.vector.coefficient) == (example["vector"]["id"], example["vector"]["coefficient"])
        assert d.tier is Tier(example["tier"]) and d.latency_ms == example["latency_ms"] and d.ts == example["ts"]


def test_the_parser_knows_every_field_the_schema_defines():
    from saeguard_attach.decisions import Decision
    assert set(SCHEMA["properties"]) == set(Decision.__dataclass_fields__)
    assert set(SCHEMA["properties"]["vector"]["properties"]) == {"id", "coefficient", "value"}
    assert [a.value for a in Action] == SCHEMA["properties"]["action"]["enum"]


@pytest.mark.parametrize("mutation,field", [
    ({"seq": -1}, "seq"), ({"seq": True}, "seq"), ({"action": "explode"}, "action"), ({"request_id": ""}, "request_id"),
    ({"position": None}, "position"), ({"tier": "extreme"}, "tier"), ({"score": "high"}, "score"),
    ({"features": [{"sae": "s", "id": -3, "value": 1.0}]}, "features[0].id"),
    ({"action": "steer"}, "vector"), ({"action": "clamp", "vector": {"id": "v", "coefficient": 0}}, "vector.value"),
])
def test_a_decision_off_the_schema_is_refused_naming_the_field(mutation, field):
    raw = {"request_id": "r", "seq": 0, "action": "allow", "position": 0}
    raw.update(mutation)
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(DecisionFormatError, match=r"'%s'" % field.replace("[", r"\[").replace("]", r"\]")):
        parse_decision(json.dumps(raw))


def test_unknown_keys_from_a_newer_sidecar_are_ignored():
    assert parse_decision('{"request_id":"r","seq":1,"action":"flag","position":3,"new_field":1}').action is Action.FLAG


def test_the_book_keeps_the_highest_seq_and_ignores_older_and_unwatched_decisions():
    book = DecisionBook()
    book.watch("r")
    assert book.offer(_decision(2, "steer"))
    assert not book.offer(_decision(1, "clamp"))
    assert not book.offer(_decision(5, "block", request_id="someone-else"))
    assert book.latest("r").seq == 2 and book.latest("someone-else") is None
    assert book.offer(_decision(3, "allow"))
    assert book.latest("r").action is Action.ALLOW


def test_block_is_terminal_for_the_request():
    book = DecisionBook(watch_all=True)
    book.offer(_decision(4, "block"))
    assert not book.offer(_decision(5, "allow"))
    assert book.latest("r").action is Action.BLOCK


def test_entries_expire_after_the_ttl_and_the_cap_evicts_the_least_recently_updated():
    now = [100.0]
    book = DecisionBook(ttl_s=10, max_requests=2, clock=lambda: now[0])
    for rid in ("a", "b"):
        book.watch(rid)
        book.offer(_decision(0, request_id=rid))
    now[0] += 5
    book.offer(_decision(1, request_id="a"))
    book.watch("c")  # cap 2: "b" (least recently updated) goes
    assert book.latest("b") is None and book.latest("a").seq == 1
    now[0] += 9.9
    assert book.latest("a") is not None
    now[0] += 0.2
    assert book.latest("a") is None
    assert book.stats().expired == 2


def test_wait_for_returns_as_soon_as_the_awaited_seq_arrives():
    book = DecisionBook()
    book.watch("r")
    book.offer(_decision(0))
    timer = threading.Timer(0.05, lambda: book.offer(_decision(1, "flag")))
    timer.start()
    d = book.wait_for("r", 1, timeout=5)
    assert d is not None and d.seq == 1
    assert book.wait_for("r", 2, timeout=0.01) is None
