"""DecisionListener: the latest decision for each request this process serves."""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from .decisions import Action, Decision, DecisionFormatError, parse_decision
from .follower import TopicFollower
from .reply import check_reply_partition

__all__ = ["DecisionListener", "DecisionBook", "ListenerStats"]

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListenerStats:
    """Counters: decisions kept, ignored (request not watched or older seq), malformed, expired."""

    received: int
    kept: int
    ignored: int
    malformed: int
    expired: int
    requests: int


@dataclass
class _Entry:
    decision: Optional[Decision]
    expires_at: float


class DecisionBook:
    """Latest decision per request, with a TTL and a cap; thread-safe.

    * Latest means highest ``seq``; a replayed decision (same seq, after a sidecar restart)
      replaces its twin, an older seq is ignored.
    * ``block`` is terminal: once a request is blocked, later decisions do not unblock it.
    * Only requests registered with :meth:`watch` are kept unless ``watch_all`` is true, so a
      process reading every partition holds state for its own requests only.
    * An entry expires ``ttl_s`` after its last update; at most ``max_requests`` are held (the
      least recently updated go first).
    """

    def __init__(self, ttl_s: float = 600.0, max_requests: int = 100_000, watch_all: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = float(ttl_s)
        self._max = int(max_requests)
        self._watch_all = watch_all
        self._clock = clock
        self._entries: "OrderedDict[str, _Entry]" = OrderedDict()
        self._cond = threading.Condition()
        self._counts = dict(received=0, kept=0, ignored=0, malformed=0, expired=0)

    def watch(self, request_id: str) -> None:
        """Starts keeping decisions for ``request_id``."""
        with self._cond:
            entry = self._entries.get(request_id)
            if entry is None:
                self._entries[request_id] = _Entry(None, self._clock() + self._ttl)
            else:
                entry.expires_at = self._clock() + self._ttl
            self._entries.move_to_end(request_id)
            self._evict()

    def forget(self, request_id: str) -> None:
        """Drops ``request_id`` and its decisions."""
        with self._cond:
            self._entries.pop(request_id, None)

    def offer(self, decision: Decision) -> bool:
        """Records ``decision``; returns whether it became the request's latest."""
        with self._cond:
            self._counts["received"] += 1
            entry = self._live(decision.request_id)
            if entry is None and not self._watch_all:
                self._counts["ignored"] += 1
                return False
            current = None if entry is None else entry.decision
            if current is not None and (current.action is Action.BLOCK or decision.seq < current.seq):
                self._counts["ignored"] += 1
                return False
            self._entries[decision.request_id] = _Entry(decision, self._clock() + self._ttl)
            self._entries.move_to_end(decision.request_id)
            self._counts["kept"] += 1
            self._evict()
            self._cond.notify_all()
            return True

    def count_malformed(self) -> None:
        with self._cond:
            self._counts["malformed"] += 1

    def latest(self, request_id: str) -> Optional[Decision]:
        """The request's latest decision, or None (none yet, not watched, or expired)."""
        with self._cond:
            entry = self._live(request_id)
            return None if entry is None else entry.decision

    def wait_for(self, request_id: str, min_seq: int, timeout: float) -> Optional[Decision]:
        """Waits up to ``timeout`` s for a decision with ``seq >= min_seq`` (or a block) and
        returns the latest decision then, else None."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                entry = self._live(request_id)
                d = None if entry is None else entry.decision
                if d is not None and (d.seq >= min_seq or d.action is Action.BLOCK):
                    return d
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def stats(self) -> ListenerStats:
        with self._cond:
            return ListenerStats(requests=len(self._entries), **self._counts)

    def _live(self, request_id: str) -> Optional[_Entry]:
        entry = self._entries.get(request_id)
        if entry is not None and entry.expires_at <= self._clock():
            del self._entries[request_id]
            self._counts["expired"] += 1
            return None
        return entry

    def _evict(self) -> None:
        now = self._clock()
        while self._entries:
            oldest_id, oldest = next(iter(self._entries.items()))
            if oldest.expires_at > now and len(self._entries) <= self._max:
                return
            del self._entries[oldest_id]
            self._counts["expired"] += 1


class DecisionListener(TopicFollower):
    """Consumes the decisions topic (from its end at :meth:`start`) into a :class:`DecisionBook`:
    every partition, or only ``reply_partition`` when this server's records name one
    (``ActivationPublisher(reply_partition=...)``: the sidecar writes their decisions there).

    Typical use: ``listener = DecisionListener("kafka:9092").start()``; the :class:`GuardHook`
    calls :meth:`watch` when a request starts and :meth:`latest` on every forward pass.
    """

    def __init__(self, bootstrap_servers: str, topic: str = "saeguard.decisions", *, ttl_s: float = 600.0,
                 max_requests: int = 100_000, watch_all: bool = False, reply_partition: Optional[int] = None,
                 consumer_config: Optional[Mapping[str, Any]] = None) -> None:
        check_reply_partition(reply_partition)
        super().__init__(bootstrap_servers, topic, from_beginning=False, consumer_config=consumer_config,
                         name="saeguard-decisions", partitions=None if reply_partition is None else [reply_partition])
        self.book = DecisionBook(ttl_s=ttl_s, max_requests=max_requests, watch_all=watch_all)

    def handle(self, key: Optional[bytes], value: Optional[bytes]) -> None:
        if value is None:
            return
        try:
            decision = parse_decision(value)
        except DecisionFormatError as e:
            self.book.count_malformed()
            LOGGER.warning("malformed decision on %s ignored: %s", self.topic, e)
            return
        self.book.offer(decision)

    def watch(self, request_id: str) -> None:
        self.book.watch(request_id)

    def forget(self, request_id: str) -> None:
        self.book.forget(request_id)

    def latest(self, request_id: str) -> Optional[Decision]:
        return self.book.latest(request_id)

    def wait_for(self, request_id: str, min_seq: int, timeout: float) -> Optional[Decision]:
        return self.book.wait_for(request_id, min_seq, timeout)

    def stats(self) -> ListenerStats:
        return self.book.stats()
