"""Reply partitions (issue 19, item 5): a server names the partition of the decisions topic its
decisions go to and reads only that one; without one, decisions stay keyed by request id."""
import uuid

import pytest
import torch

from paths import load_reference
from saeguard_attach import (REPLY_PARTITION_ENV, ActivationPublisher, DecisionListener, RecordSource, encode_records,
                             reply_partition_for, reply_partition_from_env)
from conftest import SAE_IDS

reference = load_reference("safetensors_io")
DECISION_TIMEOUT_S = 60.0


def _metadata(tmp_path, source):
    record = next(encode_records(source, "req-1", torch.ones(2, 4), max_record_bytes=1 << 20, prefer_package=False))
    p = tmp_path / "r.safetensors"
    p.write_bytes(record)
    return reference.SafetensorsFile(str(p)).metadata


def test_a_source_with_a_reply_partition_writes_it_in_every_records_metadata(tmp_path):
    md = _metadata(tmp_path, RecordSource(model="m", hook="h", reply_partition=7))

    assert md["reply_partition"] == "7"


def test_a_source_without_a_reply_partition_leaves_the_key_out(tmp_path):
    md = _metadata(tmp_path, RecordSource(model="m", hook="h"))

    assert "reply_partition" not in md


@pytest.mark.parametrize("bad", [-1, True, 2.0, "3"])
def test_a_reply_partition_that_is_not_an_int_of_at_least_zero_is_refused(bad):
    with pytest.raises(ValueError, match="reply_partition"):
        RecordSource(model="m", hook="h", reply_partition=bad)
    with pytest.raises(ValueError, match="reply_partition"):
        DecisionListener("unused:9092", reply_partition=bad)


def test_the_environment_names_the_partition_and_an_unset_or_empty_variable_names_none():
    assert reply_partition_from_env({REPLY_PARTITION_ENV: "5"}) == 5
    assert reply_partition_from_env({REPLY_PARTITION_ENV: ""}) is None
    assert reply_partition_from_env({}) is None


@pytest.mark.parametrize("bad", ["-2", "five", "1.5"])
def test_a_bad_environment_value_is_refused_naming_the_variable(bad):
    with pytest.raises(ValueError, match=REPLY_PARTITION_ENV):
        reply_partition_from_env({REPLY_PARTITION_ENV: bad})


def test_a_server_id_gives_the_same_partition_every_time_and_one_below_the_count():
    partitions = [reply_partition_for("llm-%d" % i, 12) for i in range(100)]

    assert partitions == [reply_partition_for("llm-%d" % i, 12) for i in range(100)]
    assert all(0 <= p < 12 for p in partitions)
    assert len(set(partitions)) > 6  # spread over the partitions, not all on one
    # CRC-32 (stable across processes and Python versions, unlike hash()): its published check value
    assert reply_partition_for("123456789", 12) == 0xCBF43926 % 12


@pytest.mark.sidecar
def test_two_servers_with_their_own_reply_partitions_each_receive_only_their_own_decisions(world):
    # Given two servers, each publishing with its own reply partition and listening to it alone
    servers = {"a": 2, "b": 9}
    listeners = {s: DecisionListener(world.bootstrap, watch_all=True, reply_partition=p).start() for s, p in servers.items()}
    publishers = {s: ActivationPublisher(world.bootstrap, model="test-model", hook="unused", sae=SAE_IDS["quiet"],
                                         reply_partition=p) for s, p in servers.items()}
    # Three requests each: were the partition ignored, all three would have to hash to it (1 in 12^3).
    requests = {s: ["%s-%s" % (s, uuid.uuid4().hex[:8]) for _ in range(3)] for s in servers}
    try:
        # When each server publishes its requests
        for s, ids in requests.items():
            for rid in ids:
                assert publishers[s].publish(rid, torch.randn(3, 64), final=True)
            assert publishers[s].flush(30) == 0

        # Then each server's listener gets a decision for each of its requests
        for s, ids in requests.items():
            for rid in ids:
                assert listeners[s].wait_for(rid, 0, DECISION_TIMEOUT_S) is not None, "server %s: no decision for %s" % (s, rid)

        # And none of the other server's (its listener keeps every decision it reads: watch_all)
        for s, other in (("a", "b"), ("b", "a")):
            assert [rid for rid in requests[other] if listeners[s].latest(rid) is not None] == []
    finally:
        for s in servers:
            publishers[s].close(10)
            listeners[s].close()
