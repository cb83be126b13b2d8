"""Activation records (docs/architecture.md#the-wire-contract) and the chunking that keeps each under a size limit.

A record is one safetensors file: tensor ``activations`` ``[n_tokens, d_in]`` (F32, F16 or BF16),
optional ``token_ids`` ``[n_tokens]`` (I32/I64), and ``__metadata__`` with ``request_id``, ``model``,
``hook``, ``position`` (the request position of the chunk's first token), ``phase``
(``prompt``/``generation``), ``final`` (``true`` on the request's last chunk) and optionally
``tenant``, ``sae`` and ``reply_partition`` (the partition of the decisions topic the request's
decisions go to). One record never has zero tokens (the sidecar dead-letters those).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

import torch

from . import safetensors_io
from .reply import check_reply_partition

__all__ = ["RecordSource", "PHASES", "WIRE_DTYPES", "rows_per_record", "encode_records"]

PHASES = ("prompt", "generation")
WIRE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# JSON header: the tensor entries, the fixed metadata keys and the 8-byte padding, generously.
_HEADER_BASE_BYTES = 1024


@dataclass(frozen=True)
class RecordSource:
    """Where a request's activations come from; every record of a publisher carries it.

    ``model`` and ``hook`` route records to an SAE in the sidecar config (``saes[].model``,
    ``saes[].hook``); ``sae`` names one explicitly instead. ``hook`` uses the SAE's naming, e.g.
    ``blocks.12.hook_resid_post`` (see :mod:`saeguard_attach.hook_names`). ``reply_partition``
    asks for the decisions on that partition of the decisions topic (see :mod:`saeguard_attach.reply`);
    None keeps them on the request id's partition.
    """

    model: str
    hook: str
    sae: Optional[str] = None
    tenant: Optional[str] = None
    reply_partition: Optional[int] = None

    def __post_init__(self) -> None:
        check_reply_partition(self.reply_partition)

    def metadata(self, request_id: str, position: int, phase: str, final: bool) -> dict:
        """The ``__metadata__`` of one record."""
        md = {"request_id": request_id, "model": self.model, "hook": self.hook,
              "position": str(position), "phase": phase, "final": "true" if final else "false"}
        if self.tenant:
            md["tenant"] = self.tenant
        if self.sae:
            md["sae"] = self.sae
        if self.reply_partition is not None:
            md["reply_partition"] = str(self.reply_partition)
        return md


def _header_bytes(source: RecordSource, request_id: str) -> int:
    strings = [request_id, source.model, source.hook, source.sae or "", source.tenant or "", str(source.reply_partition)]
    return _HEADER_BASE_BYTES + sum(len(s.encode("utf-8")) for s in strings)


def rows_per_record(d_in: int, itemsize: int, token_id_itemsize: int, max_record_bytes: int,
                    header_bytes: int = _HEADER_BASE_BYTES) -> int:
    """The most tokens one record can hold without exceeding ``max_record_bytes``.

    Raises ValueError when not even one token fits.
    """
    per_row = d_in * itemsize + token_id_itemsize
    rows = (max_record_bytes - 8 - header_bytes) // per_row
    if rows < 1:
        raise ValueError("one token of d_in=%d (%d bytes) does not fit in max_record_bytes=%d"
                         % (d_in, per_row, max_record_bytes))
    return int(rows)


def _check(activations: torch.Tensor, token_ids: Optional[torch.Tensor], position: int, phase: str) -> None:
    if activations.dim() != 2 or activations.shape[0] == 0 or activations.shape[1] == 0:
        raise ValueError("activations must be [n_tokens > 0, d_in > 0], got shape %s" % list(activations.shape))
    if activations.dtype not in WIRE_DTYPES:
        raise ValueError("activations must be float32, float16 or bfloat16, got %s" % activations.dtype)
    if token_ids is not None and (token_ids.dim() != 1 or token_ids.shape[0] != activations.shape[0]
                                  or token_ids.dtype not in (torch.int32, torch.int64)):
        raise ValueError("token_ids must be int32/int64 of shape [%d], got %s %s"
                         % (activations.shape[0], token_ids.dtype, list(token_ids.shape)))
    if position < 0:
        raise ValueError("position must be >= 0, got %d" % position)
    if phase not in PHASES:
        raise ValueError("phase must be one of %s, got %r" % (PHASES, phase))


def encode_records(source: RecordSource, request_id: str, activations: torch.Tensor, *, position: int = 0,
                   final: bool = False, phase: str = "prompt", token_ids: Optional[torch.Tensor] = None,
                   max_record_bytes: int, prefer_package: bool = True) -> Iterator[bytes]:
    """Encodes ``activations`` ``[n_tokens, d_in]`` of one request as records of at most
    ``max_record_bytes`` each, in order: chunk ``i`` starts at request position
    ``position + i * rows``; only the last chunk carries ``final`` when ``final`` is true.
    """
    if not request_id:
        raise ValueError("request_id must be a non-empty string")
    _check(activations, token_ids, position, phase)
    n, d_in = activations.shape
    tid_size = 0 if token_ids is None else token_ids.element_size()
    rows = rows_per_record(d_in, activations.element_size(), tid_size, max_record_bytes,
                           _header_bytes(source, request_id))
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        tensors = {"activations": activations[start:stop]}
        if token_ids is not None:
            tensors["token_ids"] = token_ids[start:stop]
        md = source.metadata(request_id, position + start, phase, final and stop == n)
        yield safetensors_io.encode(tensors, md, prefer_package=prefer_package)
