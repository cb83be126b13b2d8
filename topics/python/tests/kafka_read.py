"""Reads a topic from the beginning with its own consumer: the test's independent view of Kafka."""
from __future__ import annotations

import time
import uuid
from typing import List, Tuple

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


def read_key(bootstrap: str, topic: str, key: str, count: int, timeout: float = 30.0) -> List[Tuple[bytes, int]]:
    """Values of the records keyed ``key``, in partition order, with their offsets; waits until
    ``count`` arrived (or returns what arrived by ``timeout``)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-reader-" + uuid.uuid4().hex,
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        out: List[Tuple[bytes, int]] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            if msg.key() == key.encode():
                out.append((msg.value(), msg.offset()))
        return out
    finally:
        consumer.close()
