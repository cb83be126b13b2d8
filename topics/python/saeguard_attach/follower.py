"""A Kafka topic read by a background thread, without a consumer group.

Each LLM server process needs every decision for the requests *it* serves, which may sit on any
partition, so followers ``assign`` all partitions themselves instead of sharing a group; they never
commit offsets. A server whose records name a ``reply_partition`` has its decisions on that one
partition, and its follower assigns only it.
"""
from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, Mapping, Optional, Sequence

__all__ = ["TopicFollower"]

LOGGER = logging.getLogger(__name__)


class TopicFollower:
    """Reads ``topic`` from its current end (``from_beginning=False``) or its beginning on a
    daemon thread and hands each record to :meth:`handle`, which subclasses implement.

    ``partitions`` limits it to those partitions (default: all). :meth:`start` returns once every
    partition is assigned at a concrete offset, so a record produced after ``start`` returns is
    never missed.
    """

    def __init__(self, bootstrap_servers: str, topic: str, *, from_beginning: bool,
                 consumer_config: Optional[Mapping[str, Any]] = None, name: str = "saeguard-follower",
                 partitions: Optional[Sequence[int]] = None) -> None:
        self.topic = topic
        self.partitions = None if partitions is None else sorted(set(int(p) for p in partitions))
        self._bootstrap = bootstrap_servers
        self._from_beginning = from_beginning
        self._extra = dict(consumer_config or {})
        self._name = name
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failure: Optional[BaseException] = None
        self._thread: Optional[threading.Thread] = None

    def handle(self, key: Optional[bytes], value: Optional[bytes]) -> None:
        """Processes one record; runs on the follower's thread."""
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> "TopicFollower":
        """Starts the thread and waits until the partitions are assigned.

        Raises TimeoutError, or the error that prevented the assignment (e.g. an unknown topic).
        """
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, args=(timeout,), name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout + 5):
            raise TimeoutError("%s: partitions of %s not assigned within %.0f s" % (self._name, self.topic, timeout))
        if self._failure is not None:
            raise self._failure
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stops the thread and closes the consumer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _consumer(self):
        from confluent_kafka import Consumer

        config = {
            "bootstrap.servers": self._bootstrap,
            "group.id": "saeguard-attach-" + uuid.uuid4().hex[:12],  # required by the client; never joined
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": False,
        }
        config.update(self._extra)
        return Consumer(config)

    def _assign(self, consumer: Any, timeout: float) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        metadata = consumer.list_topics(self.topic, timeout=timeout)
        info = metadata.topics.get(self.topic)
        if info is None or info.error is not None or not info.partitions:
            raise RuntimeError("topic %s is not available: %s" % (self.topic, None if info is None else info.error))
        chosen = sorted(info.partitions) if self.partitions is None else self.partitions
        missing = [p for p in chosen if p not in info.partitions]
        if missing:
            raise RuntimeError("topic %s has %d partitions (0..%d), not %s: pick a reply partition below %d"
                               % (self.topic, len(info.partitions), len(info.partitions) - 1,
                                  ", ".join(map(str, missing)), len(info.partitions)))
        partitions = []
        for p in chosen:
            if self._from_beginning:
                partitions.append(TopicPartition(self.topic, p, OFFSET_BEGINNING))
            else:
                _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=timeout)
                partitions.append(TopicPartition(self.topic, p, high))
        consumer.assign(partitions)

    def _run(self, timeout: float) -> None:
        try:
            consumer = self._consumer()
            self._assign(consumer, timeout)
        except BaseException as e:  # noqa: BLE001 - reported to start()
            self._failure = e
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                msg = consumer.poll(0.1)
                if msg is None:
                    continue
                if msg.error():
                    LOGGER.warning("%s: consumer error on %s: %s", self._name, self.topic, msg.error())
                    continue
                try:
                    self.handle(msg.key(), msg.value())
                except Exception as e:  # noqa: BLE001 - one bad record must not stop the thread
                    LOGGER.warning("%s: record at %s[%d]@%d not handled: %s: %s", self._name, self.topic,
                                   msg.partition(), msg.offset(), type(e).__name__, e)
        finally:
            consumer.close()
