"""Stand-ins for the Kafka client and the sidecar's outputs, for tests without a broker."""
from __future__ import annotations

import threading
from typing import Dict, List, Optional, Tuple

import torch

from saeguard_attach import Decision, DecisionBook


class FakeProducer:
    """Records what is produced; acknowledges on poll/flush. ``gate``, when given, makes
    ``produce`` wait until it is set (a stuck broker connection)."""

    def __init__(self, gate: Optional[threading.Event] = None) -> None:
        self.gate = gate
        self.entered = threading.Event()
        self.records: List[Tuple[str, bytes, bytes]] = []
        self._pending = []
        self._lock = threading.Lock()

    def produce(self, topic, value=None, key=None, on_delivery=None):
        self.entered.set()
        if self.gate is not None:
            self.gate.wait()
        with self._lock:
            self.records.append((topic, key, value))
            self._pending.append(on_delivery)

    def poll(self, timeout=0):
        with self._lock:
            callbacks, self._pending = self._pending, []
        for cb in callbacks:
            if cb is not None:
                cb(None, None)
        return len(callbacks)

    def flush(self, timeout=None):
        self.poll(0)
        return 0


class FakePublisher:
    """Captures what GuardHook publishes, as (request_id, tensor copy, position, final, phase, token_ids)."""

    def __init__(self) -> None:
        self.calls = []

    def publish(self, request_id, activations, position=0, final=False, *, phase="prompt", token_ids=None):
        self.calls.append((request_id, activations.detach().clone(), position, final, phase, token_ids))
        return True


class FakeVectors:
    def __init__(self, vectors: Dict[str, torch.Tensor]) -> None:
        self.vectors = vectors

    def get(self, vector_id):
        return self.vectors.get(vector_id)


def book_with(*decisions: Decision) -> DecisionBook:
    """A DecisionBook that watches every request and holds these decisions."""
    book = DecisionBook(watch_all=True)
    for d in decisions:
        book.offer(d)
    return book
