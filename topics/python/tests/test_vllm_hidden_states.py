"""The follower of vLLM's hidden-states files: what it publishes, when it reads a file, and that a
file is deleted only after Kafka acknowledged every record of it."""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fakes import FakeProducer
from saeguard_attach.vllm_hidden_states import HiddenStatesFollower, HiddenStatesSettings, main
from saeguard_attach.vllm_settings import SettingsError
from wire import read_record, reference

sys.path.insert(0, str(Path(__file__).resolve().parent / "standins"))
from hidden_states_connector import ConnectorWriter  # noqa: E402

D = 32


def _env(tmp_path, **extra):
    env = {"SAEGUARD_BOOTSTRAP": "kafka:9092", "SAEGUARD_MODEL": "tiny", "SAEGUARD_LAYER": "3",
           "SAEGUARD_HIDDEN_STATES_DIR": str(tmp_path / "hs"), "SAEGUARD_AUX_LAYER_IDS": "2,4"}
    env.update(extra)
    return env


class FailingProducer(FakeProducer):
    """Acknowledges on poll like FakeProducer, but reports the first ``failures`` deliveries failed."""

    def __init__(self, failures):
        super().__init__()
        self.failures = failures

    def poll(self, timeout=0):
        with self._lock:
            callbacks, self._pending = self._pending, []
        for cb in callbacks:
            if self.failures > 0:
                self.failures -= 1
                cb("KafkaError{code=MSG_SIZE_TOO_LARGE}", None)
            else:
                cb(None, None)
        return len(callbacks)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _hidden(n, seed=0):
    # [num_tokens, num_layers = 2 (aux ids 2 and 4), hidden_size]
    return np.random.default_rng(seed).standard_normal((n, 2, D)).astype(np.float32)


def _follower(tmp_path, producer, clock=None, max_record_bytes=8 << 20, **env):
    settings = HiddenStatesSettings.from_env(_env(tmp_path, **env))
    return HiddenStatesFollower(settings, producer, max_record_bytes=max_record_bytes,
                                clock=clock or Clock()), ConnectorWriter(settings.directory)


def test_a_finished_requests_file_is_published_as_the_configured_layer_and_then_deleted(tmp_path):
    # Given a file of 120 tokens for aux layer ids [2, 4] and SAEGUARD_LAYER=3 (= aux id 4), and records
    # small enough that it takes several
    producer = FakeProducer()
    follower, writer = _follower(tmp_path, producer, max_record_bytes=4096)
    hs, ids = _hidden(120), np.arange(100, 220)
    path = writer.write("cmpl-1-0", hs, ids)

    # When the follower scans and Kafka acknowledges
    assert follower.scan() == 1
    follower.flush()

    # Then the records hold the second layer slice (BF16 as written), token ids, positions from 0,
    # final on the last one only; the file and its lock are gone
    records = [read_record(tmp_path, v) for _, _, v in producer.records]
    assert len(records) > 1
    assert {(r.metadata["request_id"], r.metadata["hook"], r.metadata["phase"]) for r in records} == {
        ("cmpl-1-0", "blocks.3.hook_resid_post", "prompt")}
    assert [r.metadata["final"] for r in records] == ["false"] * (len(records) - 1) + ["true"]
    positions = np.cumsum([0] + [len(r.activations) for r in records])[:-1]
    assert [int(r.metadata["position"]) for r in records] == list(positions)
    written = reference.round_to_dtype(hs[:, 1, :], "BF16")  # the connector wrote the model's BF16
    np.testing.assert_array_equal(np.concatenate([r.activations for r in records]), written)
    np.testing.assert_array_equal(np.concatenate([r.token_ids for r in records]), ids)
    assert not path.exists() and not Path(str(path) + ".lock").exists()
    assert follower.stats().published == 1


def test_a_file_whose_writer_holds_the_lock_is_not_read_until_it_is_released(tmp_path):
    # Given the connector has locked and written the file but not yet released the lock
    producer = FakeProducer()
    follower, writer = _follower(tmp_path, producer)
    fd = writer.lock("cmpl-2-0")
    writer.save("cmpl-2-0", _hidden(5), np.arange(5))

    # When the follower scans before and after the release
    before = follower.scan()
    os.close(fd)
    after = follower.scan()

    # Then
    assert (before, after) == (0, 1)


def test_a_failed_delivery_keeps_the_file_and_it_is_published_again_after_the_retry_delay(tmp_path):
    # Given a broker that fails the first delivery
    producer, clock = FailingProducer(failures=1), Clock()
    follower, writer = _follower(tmp_path, producer, clock=clock)
    path = writer.write("cmpl-3-0", _hidden(6), np.arange(6))

    # When it is published and the delivery fails
    follower.scan()
    follower.poll()

    # Then the file stays, is not retried at once, and is published and deleted after the delay
    assert path.exists() and follower.stats().failed == 1
    assert follower.scan() == 0
    clock.now += follower.settings.retry_after_s + 0.1
    assert follower.scan() == 1
    follower.poll()
    assert not path.exists() and follower.stats().published == 1


def test_the_file_stays_while_any_of_its_records_is_unacknowledged(tmp_path):
    # Given a file that takes several records
    producer = FakeProducer()
    follower, writer = _follower(tmp_path, producer, max_record_bytes=4096)
    path = writer.write("cmpl-4-0", _hidden(120), np.arange(120))

    # When the records are produced but not yet acknowledged
    producer.poll = lambda timeout=0: 0  # the broker has not answered
    follower.scan()

    # Then the file is still there
    assert path.exists() and follower.stats().in_flight == 1


def test_a_file_not_in_the_connectors_layout_is_kept_and_not_retried(tmp_path):
    # Given a hidden_states tensor with 3 layers where SAEGUARD_AUX_LAYER_IDS names 2
    producer = FakeProducer()
    follower, writer = _follower(tmp_path, producer)
    path = writer.write("cmpl-5-0", np.zeros((4, 3, D), dtype=np.float32), np.arange(4))

    # When scanned twice
    follower.scan()
    follower.scan()

    # Then nothing was produced, the file is left, and it was rejected once
    assert producer.records == [] and path.exists() and follower.stats().rejected == 1


def test_without_a_lock_file_a_file_is_read_once_it_has_not_changed_for_the_settle_time(tmp_path):
    # Given a connector run with use_synchronization_lock=false: no .lock beside the file
    producer = FakeProducer()
    follower, writer = _follower(tmp_path, producer)
    path = writer.save("cmpl-6-0", _hidden(3), np.arange(3))

    # When scanned while fresh, then after its mtime is older than settle_s
    fresh = follower.scan()
    old = time.time() - follower.settings.settle_s - 1
    os.utime(path, (old, old))
    settled = follower.scan()

    # Then
    assert (fresh, settled) == (0, 1)


def test_files_of_requests_outside_saeguard_requests_are_left_to_their_owner(tmp_path):
    producer = FakeProducer()
    follower, writer = _follower(tmp_path, producer, SAEGUARD_REQUESTS="chatcmpl-.*")
    path = writer.write("cmpl-7-0", _hidden(3), np.arange(3))
    assert follower.scan() == 0 and path.exists() and producer.records == []


def test_the_aux_layer_ids_must_contain_the_layer_after_which_the_sae_reads(tmp_path):
    with pytest.raises(SettingsError, match="does not contain SAEGUARD_LAYER \\+ 1 = 4.*fix"):
        HiddenStatesSettings.from_env(_env(tmp_path, SAEGUARD_AUX_LAYER_IDS="1,2,3"))


def test_the_command_exits_2_with_the_settings_error_and_no_kafka_client(tmp_path, caplog):
    assert main(env=_env(tmp_path, SAEGUARD_AUX_LAYER_IDS="x")) == 2
    assert "SAEGUARD_AUX_LAYER_IDS='x'" in caplog.text


@pytest.mark.sidecar
def test_with_a_real_broker_and_sidecar_every_record_is_decided_and_the_file_goes_after_the_acks(world, tmp_path):
    # Given a connector file of 60 tokens for an SAE the sidecar serves (d_in 64), and the follower's
    # own Kafka producer (acks=all) with records small enough that the file takes several
    import uuid

    from conftest import SAE_IDS
    from kafka_read import read_key

    rid = "cmpl-%s-0" % uuid.uuid4().hex[:12]
    env = _env(tmp_path, SAEGUARD_BOOTSTRAP=world.bootstrap, SAEGUARD_SAE=SAE_IDS["quiet"],
               SAEGUARD_AUX_LAYER_IDS="4", SAEGUARD_DTYPE="float32")
    follower = HiddenStatesFollower(HiddenStatesSettings.from_env(env), max_record_bytes=4096)
    hs = np.random.default_rng(5).standard_normal((60, 1, 64)).astype(np.float32)
    path = ConnectorWriter(tmp_path / "hs").write(rid, hs, np.arange(60), dtype="F32")

    # When it scans and waits for the broker's acknowledgements
    follower.scan()
    assert follower.flush(30) == 0
    follower.poll()

    # Then the file is gone, and the sidecar made one decision per record of the request
    records = follower.stats().records
    assert records > 1 and not path.exists() and follower.stats().published == 1
    decisions = [json.loads(v) for v, _ in read_key(world.bootstrap, "saeguard.decisions", rid, records, 60)]
    assert len(decisions) == records and {d["action"] for d in decisions} == {"allow"}
