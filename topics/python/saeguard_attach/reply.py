"""Which partition of the decisions topic this LLM server reads (issue 19, item 5).

By default every applier reads every partition of ``saeguard.decisions`` and keeps the decisions of
its own requests, so N servers read N times the traffic. A server that stamps ``reply_partition``
on its records (``ActivationPublisher(reply_partition=...)``) gets its decisions on that partition
only, and its :class:`~saeguard_attach.DecisionListener` (same ``reply_partition``) reads only it.
Give every server its own partition: two servers sharing one read each other's decisions (and
ignore them, as today), one server per partition reads only its own.
"""
from __future__ import annotations

import os
import zlib
from typing import Mapping, Optional

__all__ = ["REPLY_PARTITION_ENV", "check_reply_partition", "reply_partition_for", "reply_partition_from_env"]

REPLY_PARTITION_ENV = "SAEGUARD_REPLY_PARTITION"


def check_reply_partition(partition: Optional[int]) -> Optional[int]:
    """Returns ``partition`` when it is None or an int >= 0; raises ValueError otherwise."""
    if partition is None:
        return None
    if isinstance(partition, bool) or not isinstance(partition, int) or partition < 0:
        raise ValueError("reply_partition must be a partition number of the decisions topic (an int >= 0), got %r"
                         % (partition,))
    return partition


def reply_partition_from_env(environ: Optional[Mapping[str, str]] = None) -> Optional[int]:
    """The partition in ``$SAEGUARD_REPLY_PARTITION``, or None when it is unset or empty (decisions
    keyed by request id, read from every partition).

    Raises ValueError naming the variable when it is not an integer >= 0.
    """
    value = (os.environ if environ is None else environ).get(REPLY_PARTITION_ENV, "").strip()
    if not value:
        return None
    try:
        partition = int(value)
    except ValueError:
        partition = -1
    if partition < 0:
        raise ValueError("%s=%r: expected a partition number of the decisions topic (an integer >= 0); "
                         "unset it to read every partition" % (REPLY_PARTITION_ENV, value))
    return partition


def reply_partition_for(server_id: str, partitions: int) -> int:
    """A partition derived from a stable server id (a pod name, a hostname): CRC-32 of its UTF-8
    bytes modulo ``partitions`` (the decisions topic's count, 12 by default). The same id gives the
    same partition in every process and Python version; distinct ids may still collide, so assign
    partitions explicitly (``SAEGUARD_REPLY_PARTITION``) when each server must read only its own.
    """
    if not server_id:
        raise ValueError("server_id must be a non-empty string")
    if partitions < 1:
        raise ValueError("partitions must be >= 1, got %d" % partitions)
    return zlib.crc32(server_id.encode("utf-8")) % partitions
