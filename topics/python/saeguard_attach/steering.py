"""SteeringRegistry: the steering/clamp directions of the compacted ``saeguard.steering`` topic.

Each record: key = vector id (e.g. ``my-sae/4711``), value = a safetensors file with one F32 tensor
``vector`` ``[d_in]`` and ``__metadata__`` ``id``. The sidecar publishes the unit-normalised decoder
rows its detectors may name when it starts; a null value (tombstone) removes a vector.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, Mapping, Optional

import torch

from . import safetensors_io
from .follower import TopicFollower

__all__ = ["SteeringRegistry", "SteeringFormatError", "parse_vector"]

LOGGER = logging.getLogger(__name__)


class SteeringFormatError(ValueError):
    """A steering record is not a safetensors file with one rank-1 float tensor ``vector``."""


def parse_vector(key: str, value: bytes) -> torch.Tensor:
    """The float32 vector of one steering record; the metadata ``id``, when present, must equal the key."""
    try:
        tensors, metadata = safetensors_io.decode(value)
    except safetensors_io.SafetensorsFormatError as e:
        raise SteeringFormatError("steering record %r: %s" % (key, e)) from None
    v = tensors.get("vector")
    if v is None or v.dim() != 1 or v.shape[0] == 0 or not v.dtype.is_floating_point:
        raise SteeringFormatError("steering record %r: needs a non-empty rank-1 float tensor 'vector'" % key)
    if metadata.get("id", key) != key:
        raise SteeringFormatError("steering record %r: metadata id %r differs from the key" % (key, metadata["id"]))
    v = v.to(torch.float32)
    if not torch.isfinite(v).all():
        raise SteeringFormatError("steering record %r: vector has non-finite values" % key)
    return v


class SteeringRegistry(TopicFollower):
    """Caches every vector of the steering topic, read from its beginning; thread-safe lookups."""

    def __init__(self, bootstrap_servers: str, topic: str = "saeguard.steering", *,
                 consumer_config: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(bootstrap_servers, topic, from_beginning=True, consumer_config=consumer_config,
                         name="saeguard-steering")
        self._vectors: Dict[str, torch.Tensor] = {}
        self._cond = threading.Condition()
        self.malformed = 0

    def handle(self, key: Optional[bytes], value: Optional[bytes]) -> None:
        if key is None:
            return
        vid = key.decode("utf-8", errors="replace")
        if value is None:
            self.remove(vid)
            return
        try:
            self.put(vid, parse_vector(vid, value))
        except SteeringFormatError as e:
            self.malformed += 1
            LOGGER.warning("%s", e)

    def put(self, vector_id: str, vector: torch.Tensor) -> None:
        """Adds or replaces a vector (also for vectors obtained another way)."""
        with self._cond:
            self._vectors[vector_id] = vector.detach().to("cpu", torch.float32)
            self._cond.notify_all()

    def remove(self, vector_id: str) -> None:
        with self._cond:
            self._vectors.pop(vector_id, None)

    def get(self, vector_id: str) -> Optional[torch.Tensor]:
        """The cached float32 CPU vector, or None; never waits."""
        with self._cond:
            return self._vectors.get(vector_id)

    def wait_for(self, vector_id: str, timeout: float) -> Optional[torch.Tensor]:
        """Waits up to ``timeout`` s for ``vector_id`` to arrive."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while vector_id not in self._vectors:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._vectors[vector_id]

    def ids(self):
        with self._cond:
            return sorted(self._vectors)
