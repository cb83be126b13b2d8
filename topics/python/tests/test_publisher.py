"""ActivationPublisher: bounded, non-blocking hand-off; every record keyed by request id."""
import socket
import time

import pytest
import torch

from fakes import FakeProducer
from paths import load_reference
from saeguard_attach import ActivationPublisher

reference = load_reference("safetensors_io")


def _publisher(producer, **kw):
    return ActivationPublisher("unused:9092", "m", "blocks.3.hook_resid_post", topic="acts", producer=producer,
                               prefer_safetensors_package=False, **kw)


def test_records_are_keyed_by_request_id_and_carry_the_activations(tmp_path):
    # Given a publisher on a recording producer
    producer = FakeProducer()
    x = torch.randn(3, 8)
    with _publisher(producer) as pub:
        # When one request's tokens are published and flushed
        assert pub.publish("req-1", x, position=5, final=True, phase="generation")
        assert pub.flush(5) == 0
        stats = pub.stats()

    # Then one record on the topic, keyed by the request id, with the tokens and metadata
    assert stats.produced == stats.delivered == 1 and stats.dropped == 0
    (topic, key, value), = producer.records
    assert topic == "acts" and key == b"req-1"
    path = tmp_path / "r.safetensors"
    path.write_bytes(value)
    f = reference.SafetensorsFile(str(path))
    assert torch.equal(torch.from_numpy(f.get("activations")), x)
    assert f.metadata["position"] == "5" and f.metadata["final"] == "true" and f.metadata["phase"] == "generation"


def test_a_stuck_producer_fills_the_bounded_queue_then_publish_drops_without_waiting():
    # Given a producer whose first produce() hangs, and a queue of 3
    gate = __import__("threading").Event()
    producer = FakeProducer(gate)
    pub = _publisher(producer, queue_size=3)
    x = torch.randn(1, 16)
    assert pub.publish("r", x)
    assert producer.entered.wait(5), "background thread never reached produce()"

    # When 10 more snapshots are published
    started = time.perf_counter()
    accepted = [pub.publish("r", x, position=i + 1) for i in range(10)]
    elapsed = time.perf_counter() - started

    # Then 3 are queued, 7 dropped and counted, and publishing never waited
    assert accepted == [True] * 3 + [False] * 7
    assert pub.stats().dropped == 7
    assert elapsed < 0.5, "publish() waited %.3f s" % elapsed

    # And once the producer frees up, the queued ones go out
    gate.set()
    assert pub.close(10) == 0
    assert len(producer.records) == 4


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_with_no_broker_publish_stays_fast_and_undelivered_records_are_counted_as_failed():
    # Given a real Kafka producer pointed at a port nobody listens on, giving up after 1.5 s
    pub = ActivationPublisher("127.0.0.1:%d" % _closed_port(), "m", "h", producer_config={
        "message.timeout.ms": 1500, "reconnect.backoff.max.ms": 200, "log_level": 0})
    x = torch.randn(4, 256)

    # When 100 snapshots are published
    durations = []
    for i in range(100):
        t0 = time.perf_counter()
        pub.publish("r", x, position=4 * i)
        durations.append(time.perf_counter() - t0)
    pending = pub.close(10)

    # Then no call waited on the network, and every record is counted as failed, none delivered
    assert max(durations) < 0.05, "slowest publish() took %.3f s" % max(durations)
    stats = pub.stats()
    assert pending == 0
    assert stats.delivered == 0 and stats.failed == stats.produced == 100


def test_a_tensor_that_is_not_tokens_by_features_is_refused_at_once():
    with _publisher(FakeProducer()) as pub, pytest.raises(ValueError, match="n_tokens, d_in"):
        pub.publish("r", torch.randn(2, 3, 4))

