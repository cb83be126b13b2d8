"""Publish the hidden states vLLM extracts natively, and delete each file once Kafka has it.

vLLM's ``extract_hidden_states`` speculative method (``vllm/v1/spec_decode/extract_hidden_states.py``)
with the ``ExampleHiddenStatesConnector`` KV connector
(``vllm/distributed/kv_transfer/kv_connector/v1/example_hidden_states_connector.py``) writes, for
each finished request, one safetensors file ``<shared_storage_path>/<request_id>.safetensors``
holding

* ``hidden_states``: ``[num_tokens, num_layers, hidden_size]``, the residual stream at the *input*
  of each layer id in ``eagle_aux_hidden_state_layer_ids`` (in that order; id ``L + 1`` is
  ``blocks.L.hook_resid_post``), in the model's dtype;
* ``token_ids``: ``[num_tokens]``, the prompt's tokens (the prompt and the output but its last
  token when the request set ``kv_transfer_params.include_output_tokens``);

and returns the path as ``kv_transfer_params["hidden_states_path"]``. Newer versions also hold an
exclusive ``flock`` on ``<file>.lock`` while the file is written (``use_synchronization_lock``).

:class:`HiddenStatesFollower` watches that directory: it reads each complete file, publishes the
``SAEGUARD_LAYER`` slice as activation records (phase ``prompt``, final on the last chunk, the
file's token ids attached) and deletes the file and its lock only after the broker acknowledged
every record of it. A file with a failed delivery stays and is retried later. It must own the
directory: a client that also reads the returned path races with the deletion.

Run it beside vLLM (same volume): ``saeguard-vllm-hidden-states`` (see topics/python/README.md#vllm).
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from . import safetensors_io
from .publisher import DEFAULT_MAX_RECORD_BYTES
from .records import WIRE_DTYPES, encode_records
from .vllm_settings import SettingsError, VllmSettings, require

__all__ = ["HiddenStatesSettings", "HiddenStatesFollower", "FollowerStats", "main"]

LOGGER = logging.getLogger(__name__)
_SUFFIX = ".safetensors"
_PRODUCER_HEADROOM_BYTES = 1024 * 1024


@dataclass(frozen=True)
class HiddenStatesSettings:
    """``VllmSettings`` plus ``SAEGUARD_HIDDEN_STATES_DIR`` (the connector's ``shared_storage_path``)
    and ``SAEGUARD_AUX_LAYER_IDS`` (the ``eagle_aux_hidden_state_layer_ids`` vLLM was started with,
    comma-separated, which must contain ``SAEGUARD_LAYER + 1``)."""

    vllm: VllmSettings
    directory: Path
    aux_layer_ids: Tuple[int, ...]
    poll_interval_s: float = 0.2
    retry_after_s: float = 5.0
    settle_s: float = 2.0

    @property
    def layer_index(self) -> int:
        """Where ``SAEGUARD_LAYER`` sits on the files' ``num_layers`` axis."""
        return self.aux_layer_ids.index(self.vllm.layer + 1)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "HiddenStatesSettings":
        vllm = VllmSettings.from_env(env)
        directory = Path(require(env, "SAEGUARD_HIDDEN_STATES_DIR",
                                 "the connector's kv_connector_extra_config.shared_storage_path"))
        raw = require(env, "SAEGUARD_AUX_LAYER_IDS", "vLLM's eagle_aux_hidden_state_layer_ids, e.g. 13,20")
        try:
            ids = tuple(int(x) for x in raw.split(",") if x.strip())
        except ValueError:
            ids = ()
        if not ids:
            raise SettingsError("SAEGUARD_AUX_LAYER_IDS=%r: fix: the comma-separated integers of vLLM's "
                                "eagle_aux_hidden_state_layer_ids, in the same order" % raw)
        if vllm.layer + 1 not in ids:
            raise SettingsError("SAEGUARD_AUX_LAYER_IDS=%r does not contain SAEGUARD_LAYER + 1 = %d (layer id L + 1 is "
                                "the residual stream after layer L); fix: add %d to both it and vLLM's "
                                "eagle_aux_hidden_state_layer_ids, or change SAEGUARD_LAYER"
                                % (raw, vllm.layer + 1, vllm.layer + 1))
        return cls(vllm=vllm, directory=directory, aux_layer_ids=ids)


@dataclass(frozen=True)
class FollowerStats:
    """``published``: files whose every record was acknowledged (and which were deleted);
    ``failed``: delivery failures (the file kept for a retry); ``rejected``: files that are not
    the connector's layout (kept, not retried); ``in_flight``: files awaiting acknowledgements."""

    published: int
    records: int
    failed: int
    rejected: int
    in_flight: int


@dataclass
class _Pending:
    records: int
    failed: bool = False


class HiddenStatesFollower:
    """Publishes the connector's files from ``settings.directory`` (see the module docstring).

    Threading: :meth:`scan` and :meth:`poll` run on one thread (:meth:`run`'s); delivery callbacks
    run inside ``producer.poll``/``flush`` on that same thread, so the bookkeeping needs no lock.

    Args:
        settings: what and where to publish.
        producer: anything with ``produce(topic, value=, key=, on_delivery=)``, ``poll`` and
            ``flush`` (default: a ``confluent_kafka.Producer`` with ``acks=all``).
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(self, settings: HiddenStatesSettings, producer: Any = None, *,
                 max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._source = settings.vllm.source
        self._topic = settings.vllm.activations_topic
        self._max_record_bytes = int(max_record_bytes)
        self._clock = clock
        self._producer = producer if producer is not None else self._new_producer()
        self._pending: Dict[Path, _Pending] = {}
        self._retry_at: Dict[Path, float] = {}
        self._rejected: set = set()
        self._ignored: set = set()
        self._counts = dict(published=0, records=0, failed=0, rejected=0)

    def _new_producer(self):
        from confluent_kafka import Producer

        config = {
            "bootstrap.servers": self.settings.vllm.bootstrap,
            "client.id": "saeguard-vllm-hidden-states",
            "enable.idempotence": True,
            "acks": "all",
            "message.max.bytes": self._max_record_bytes + _PRODUCER_HEADROOM_BYTES,
        }
        config.update(self.settings.vllm.kafka)
        return Producer(config)

    # ------------------------------------------------------------------ one pass over the directory
    def scan(self) -> int:
        """Publishes every complete file not already in flight; returns how many it started."""
        started = 0
        now = self._clock()
        for path in self._candidates():
            if path in self._pending or path in self._rejected or path in self._ignored \
                    or self._retry_at.get(path, 0.0) > now:
                continue
            data = self._read_complete(path)
            if data is not None and self._publish(path, data):
                started += 1
        self._producer.poll(0)
        return started

    def poll(self, timeout: float = 0.0) -> None:
        """Serves delivery callbacks (deleting acknowledged files)."""
        self._producer.poll(timeout)

    def flush(self, timeout: float = 30.0) -> int:
        """Waits for outstanding acknowledgements; returns how many records are still pending."""
        return self._producer.flush(timeout)

    def stats(self) -> FollowerStats:
        return FollowerStats(in_flight=len(self._pending), **self._counts)

    def run(self, stop: threading.Event) -> None:
        """Scans every ``poll_interval_s`` until ``stop`` is set, then flushes."""
        while not stop.is_set():
            self.scan()
            self.poll(self.settings.poll_interval_s)
        remaining = self.flush()
        if remaining:
            LOGGER.warning("stopping with %d hidden-states records unacknowledged; their files stay", remaining)

    def _candidates(self) -> List[Path]:
        try:
            entries = [p for p in self.settings.directory.iterdir() if p.name.endswith(_SUFFIX)]
        except FileNotFoundError:
            return []
        return sorted(entries, key=lambda p: p.name)

    def _read_complete(self, path: Path) -> Optional[bytes]:
        """The file's bytes if its writer is done: the connector's ``.lock`` can be locked shared
        (or, without a lock file, the file has not changed for ``settle_s``)."""
        lock = Path(str(path) + ".lock")
        try:
            if lock.exists():
                with open(lock) as lf:
                    try:
                        fcntl.flock(lf, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    except OSError as e:
                        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                            return None  # still being written
                        raise
                    return path.read_bytes()
            if time.time() - path.stat().st_mtime < self.settings.settle_s:
                return None
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def _decode(self, path: Path, data: bytes) -> Optional[Tuple[torch.Tensor, Optional[torch.Tensor]]]:
        try:
            tensors, _ = safetensors_io.decode(data)
        except safetensors_io.SafetensorsFormatError as e:
            return self._reject(path, "not a safetensors file: %s" % e)
        hs = tensors.get("hidden_states")
        n_layers = len(self.settings.aux_layer_ids)
        if hs is None or hs.dim() != 3 or hs.shape[1] != n_layers:
            return self._reject(path, "expected hidden_states [num_tokens, %d, hidden_size] (SAEGUARD_AUX_LAYER_IDS has "
                                      "%d ids), found %s" % (n_layers, n_layers,
                                                            None if hs is None else list(hs.shape)))
        if hs.shape[0] == 0:
            return self._reject(path, "no tokens (a request given as prompt embeddings only?)")
        ids = tensors.get("token_ids")
        if ids is not None and (ids.dim() != 1 or ids.shape[0] != hs.shape[0]):
            LOGGER.warning("hidden-states file %s: token_ids %s do not match %d tokens; published without them",
                           path.name, list(ids.shape), hs.shape[0])
            ids = None
        return hs[:, self.settings.layer_index, :], ids

    def _reject(self, path: Path, problem: str) -> None:
        self._rejected.add(path)
        self._counts["rejected"] += 1
        LOGGER.warning("hidden-states file %s left in place: %s", path, problem)
        return None

    def _publish(self, path: Path, data: bytes) -> bool:
        request_id = path.name[:-len(_SUFFIX)]
        if not self.settings.vllm.watches(request_id):
            self._ignored.add(path)  # SAEGUARD_REQUESTS: not saeguard's; the file is left to its owner
            return False
        decoded = self._decode(path, data)
        if decoded is None:
            return False
        x, ids = decoded  # x: [num_tokens, hidden_size]
        wire = self.settings.vllm.dtype or (x.dtype if x.dtype in WIRE_DTYPES else torch.float32)
        records = list(encode_records(self._source, request_id, x.to(wire).contiguous(), position=0, final=True,
                                      phase="prompt", token_ids=None if ids is None else ids.to(torch.int64),
                                      max_record_bytes=self._max_record_bytes))
        self._pending[path] = _Pending(records=len(records))
        self._retry_at.pop(path, None)
        key = request_id.encode("utf-8")
        for value in records:
            self._produce(path, key, value)
        return True

    def _produce(self, path: Path, key: bytes, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(self._topic, value=value, key=key,
                                       on_delivery=lambda err, msg, p=path: self._delivered(p, err))
                return
            except BufferError:
                self._producer.poll(0.05)

    def _delivered(self, path: Path, err: Any) -> None:
        pending = self._pending.get(path)
        if pending is None:
            return
        pending.records -= 1
        if err is None:
            self._counts["records"] += 1
        else:
            pending.failed = True
            LOGGER.warning("hidden-states record of %s not delivered: %s; the file stays for a retry", path.name, err)
        if pending.records > 0:
            return
        del self._pending[path]
        if pending.failed:
            self._counts["failed"] += 1
            self._retry_at[path] = self._clock() + self.settings.retry_after_s
        else:
            self._counts["published"] += 1
            self._delete(path)

    @staticmethod
    def _delete(path: Path) -> None:
        # The order of vLLM's own cleanup_hidden_states: the lock, then the file.
        for p in (Path(str(path) + ".lock"), path):
            try:
                p.unlink()
            except FileNotFoundError:
                pass


def main(argv: Optional[Sequence[str]] = None, env: Optional[Mapping[str, str]] = None) -> int:
    """``saeguard-vllm-hidden-states``: follows ``SAEGUARD_HIDDEN_STATES_DIR`` until SIGTERM/SIGINT."""
    logging.basicConfig(level=os.environ.get("SAEGUARD_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = HiddenStatesSettings.from_env(os.environ if env is None else env)
    except SettingsError as e:
        LOGGER.error("%s", e)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    follower = HiddenStatesFollower(settings)
    LOGGER.info("following %s: model=%s hook=%s layer index %d of %s -> %s", settings.directory,
                settings.vllm.model, settings.vllm.hook, settings.layer_index, list(settings.aux_layer_ids),
                settings.vllm.activations_topic)
    follower.run(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
