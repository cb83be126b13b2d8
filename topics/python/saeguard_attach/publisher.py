"""ActivationPublisher: ships a request's activations to Kafka without stalling the model.

``publish`` only snapshots the tensor (a CPU clone, or an asynchronous device-to-host copy into
pinned memory on CUDA) and puts it on a bounded queue; a background thread encodes the records and
hands them to ``confluent_kafka.Producer``. When the queue is full the snapshot is dropped and
counted: a slow or absent broker costs monitoring coverage, never model latency.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch

from .records import WIRE_DTYPES, RecordSource, encode_records

__all__ = ["ActivationPublisher", "PublisherStats", "DEFAULT_MAX_RECORD_BYTES"]

LOGGER = logging.getLogger(__name__)

# Half of the activations topic's max.message.bytes (16 MiB, topics/topics.yaml): room for the
# Kafka record and batch overhead, and for a topic configured smaller.
DEFAULT_MAX_RECORD_BYTES = 8 * 1024 * 1024
_PRODUCER_HEADROOM_BYTES = 1024 * 1024
_STOP = object()


@dataclass(frozen=True)
class PublisherStats:
    """Counters since the publisher started (a snapshot).

    ``dropped``: snapshots refused because the queue was full; ``produced``: records handed to the
    Kafka client; ``delivered`` / ``failed``: records the broker acknowledged / that failed for good;
    ``errors``: snapshots that could not be encoded (bad shape or dtype).
    """

    enqueued: int
    dropped: int
    produced: int
    delivered: int
    failed: int
    errors: int
    queued: int


@dataclass
class _Snapshot:
    request_id: str
    activations: torch.Tensor
    token_ids: Optional[torch.Tensor]
    position: int
    final: bool
    phase: str
    ready: Optional[Any]  # torch.cuda.Event marking the end of the device-to-host copy


def _host_copy(t: torch.Tensor):
    """A private host copy of ``t`` and, on CUDA, the event that marks the copy done."""
    t = t.detach()
    if t.is_cuda:
        host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        host.copy_(t, non_blocking=True)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(t.device))
        return host, event
    return t.clone(), None


class ActivationPublisher:
    """Publishes activation records for one model and hook point to the activations topic.

    Thread-safety: ``publish`` may be called from any thread; ``flush`` and ``close`` from one.
    Use as a context manager, or call :meth:`close`.

    Args:
        bootstrap_servers: Kafka bootstrap, e.g. ``"kafka:9092"``.
        model: model name in every record (routes to an SAE with the sidecar's ``saes[].model``).
        hook: hook point in the SAE's naming, e.g. ``"blocks.12.hook_resid_post"``.
        topic: the activations topic.
        sae: explicit SAE id (``saes[].id``) instead of model + hook routing.
        tenant: optional tenant written to every record.
        reply_partition: the partition of the decisions topic this server reads (written to every
            record as ``reply_partition``; give the :class:`DecisionListener` the same one). None
            (default): decisions keyed by request id, on any partition.
        dtype: wire dtype (float32, float16 or bfloat16); ``None`` keeps the tensor's own dtype
            when it is one of those, else float32.
        max_record_bytes: records are chunked to stay at or under this many bytes.
        queue_size: snapshots waiting for the background thread beyond which ``publish`` drops.
        producer_config: extra ``confluent_kafka`` producer properties (security, ``linger.ms``...).
        producer: an object with ``produce``/``poll``/``flush`` used instead of a new
            ``confluent_kafka.Producer`` (tests, or a producer shared with other code).
        prefer_safetensors_package: write records with the ``safetensors`` package when installed.
    """

    def __init__(self, bootstrap_servers: str, model: str, hook: str, topic: str = "saeguard.activations", *,
                 sae: Optional[str] = None, tenant: Optional[str] = None, reply_partition: Optional[int] = None,
                 dtype: Optional[torch.dtype] = None,
                 max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES, queue_size: int = 1024,
                 producer_config: Optional[Mapping[str, Any]] = None, producer: Any = None,
                 prefer_safetensors_package: bool = True) -> None:
        if dtype is not None and dtype not in WIRE_DTYPES:
            raise ValueError("dtype must be float32, float16 or bfloat16, got %s" % dtype)
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        self.source = RecordSource(model=model, hook=hook, sae=sae, tenant=tenant, reply_partition=reply_partition)
        self.topic = topic
        self._dtype = dtype
        self._max_record_bytes = int(max_record_bytes)
        self._prefer_package = prefer_safetensors_package
        self._queue: "queue.Queue[object]" = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._counts = dict(enqueued=0, dropped=0, produced=0, delivered=0, failed=0, errors=0)
        self._closed = False
        self._owns_producer = producer is None
        self._producer = producer if producer is not None else self._new_producer(bootstrap_servers, producer_config)
        self._thread = threading.Thread(target=self._run, name="saeguard-publisher", daemon=True)
        self._thread.start()

    def _new_producer(self, bootstrap_servers: str, extra: Optional[Mapping[str, Any]]):
        from confluent_kafka import Producer

        config = {
            "bootstrap.servers": bootstrap_servers,
            "client.id": "saeguard-attach",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "message.max.bytes": self._max_record_bytes + _PRODUCER_HEADROOM_BYTES,
        }
        config.update(extra or {})
        return Producer(config)

    # ------------------------------------------------------------------ called by the model thread
    def publish(self, request_id: str, activations: torch.Tensor, position: int = 0, final: bool = False, *,
                phase: str = "prompt", token_ids: Optional[torch.Tensor] = None) -> bool:
        """Queues ``activations`` ``[n_tokens, d_in]`` of ``request_id`` starting at request
        ``position``; never waits for the network. Returns False (and counts a drop) when the
        queue is full or the publisher is closed.
        """
        if activations.dim() != 2 or not activations.dtype.is_floating_point:
            raise ValueError("activations must be a floating [n_tokens, d_in] tensor, got %s %s"
                             % (activations.dtype, list(activations.shape)))
        if self._closed:
            self._count("dropped")
            return False
        host, ready = _host_copy(activations)
        ids = None if token_ids is None else token_ids.detach().to("cpu")
        snapshot = _Snapshot(request_id, host, ids, int(position), bool(final), phase, ready)
        try:
            self._queue.put_nowait(snapshot)
        except queue.Full:
            dropped = self._count("dropped")
            if dropped == 1 or dropped % 1000 == 0:
                LOGGER.warning("activation queue full: dropped %d snapshots so far (topic %s)", dropped, self.topic)
            return False
        self._count("enqueued")
        return True

    # ------------------------------------------------------------------ background thread
    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.05)
            except queue.Empty:
                self._producer.poll(0)
                continue
            try:
                if item is _STOP:
                    return
                self._send(item)
            except Exception as e:  # noqa: BLE001 - one bad snapshot must not stop the thread
                self._count("errors")
                LOGGER.warning("cannot publish activations for a request: %s: %s", type(e).__name__, e)
            finally:
                self._queue.task_done()
            self._producer.poll(0)

    def _send(self, s: _Snapshot) -> None:
        if s.ready is not None:
            s.ready.synchronize()
        acts = s.activations
        wire = self._dtype or (acts.dtype if acts.dtype in WIRE_DTYPES else torch.float32)
        if acts.dtype != wire:
            acts = acts.to(wire)
        key = s.request_id.encode("utf-8")
        for value in encode_records(self.source, s.request_id, acts, position=s.position, final=s.final,
                                    phase=s.phase, token_ids=s.token_ids, max_record_bytes=self._max_record_bytes,
                                    prefer_package=self._prefer_package):
            self._produce(key, value)

    def _produce(self, key: bytes, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, on_delivery=self._on_delivery)
                self._count("produced")
                return
            except BufferError:
                # The client's own buffer is full: wait here, off the model's thread; the bounded
                # queue in front of us then fills and publish() starts dropping.
                self._producer.poll(0.05)

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is None:
            self._count("delivered")
            return
        failed = self._count("failed")
        if failed == 1 or failed % 1000 == 0:
            LOGGER.warning("activation record not delivered (%d so far): %s", failed, err)

    # ------------------------------------------------------------------ lifecycle
    def _count(self, name: str) -> int:
        with self._lock:
            self._counts[name] += 1
            return self._counts[name]

    def stats(self) -> PublisherStats:
        """A snapshot of the counters."""
        with self._lock:
            return PublisherStats(queued=self._queue.qsize(), **self._counts)

    def flush(self, timeout: float = 30.0) -> int:
        """Waits until every queued snapshot is encoded and every record acknowledged, or until
        ``timeout`` seconds passed. Returns how many snapshots and records are still pending
        (0 = all delivered or failed for good)."""
        deadline = time.monotonic() + timeout
        q = self._queue
        with q.all_tasks_done:
            while q.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                q.all_tasks_done.wait(remaining)
            pending = q.unfinished_tasks
        if self._producer is None:  # closed
            return pending
        return pending + self._producer.flush(max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = 30.0) -> int:
        """Flushes, stops the background thread, and returns what was still pending."""
        if self._closed:
            return 0
        pending = self.flush(timeout)
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._owns_producer and not self._thread.is_alive():
            self._producer = None  # lets the client be destroyed now, not when this object is
        return pending

    def __enter__(self) -> "ActivationPublisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
