"""GuardHook: a PyTorch forward hook that publishes a layer's residual stream and obeys decisions.

Per forward pass, for every batch row (or packed segment) bound to a request:

1. if the request's latest decision is ``block``, raise :class:`Blocked` before anything else;
2. publish the row's activations *as the model computed them* (before any edit), so a clamp does
   not erase the very signal that justified it and make the next decision flip back to allow;
3. apply the latest ``steer`` (``x + c·v``) or ``clamp`` (component along ``v`` set to ``value``)
   decision to the row's tokens and return the edited output.

Decisions arrive asynchronously: one made on the activations of pass ``t`` applies from the first
pass after it arrived, at the earliest pass ``t + 1``. See the package README for the caveats.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from . import interventions
from .decisions import Action, Decision

__all__ = ["GuardHook", "Blocked", "HookStats", "ResidualStream", "HF_RESIDUAL", "VLLM_RESIDUAL"]

LOGGER = logging.getLogger(__name__)


class Blocked(RuntimeError):
    """Raised from the forward pass when the sidecar decided to block a request.

    ``decisions`` maps each blocked request id to its block decision. The pass is abandoned for
    the whole batch: drop the blocked rows (``GuardHook.finish``), re-``bind`` the rest and go on.
    """

    def __init__(self, decisions: Mapping[str, Decision]) -> None:
        self.decisions: Dict[str, Decision] = dict(decisions)
        super().__init__("saeguard blocked request(s): %s" % ", ".join(sorted(self.decisions)))

    @property
    def request_ids(self) -> List[str]:
        return sorted(self.decisions)


class ResidualStream:
    """Where a module's output keeps the residual stream, and how to put an edited one back."""

    def read(self, output: Any) -> torch.Tensor:
        raise NotImplementedError

    def write(self, output: Any, stream: torch.Tensor) -> Any:
        raise NotImplementedError


class _HFResidual(ResidualStream):
    """HF decoder layers return the hidden state, or a tuple whose first element is it."""

    def read(self, output: Any) -> torch.Tensor:
        return output[0] if isinstance(output, tuple) else output

    def write(self, output: Any, stream: torch.Tensor) -> Any:
        return (stream,) + tuple(output[1:]) if isinstance(output, tuple) else stream


class _VLLMResidual(ResidualStream):
    """vLLM decoder layers with fused add+RMSNorm return ``(hidden_states, residual)``; the
    residual stream after the layer is their sum. Edits go onto ``hidden_states``."""

    def read(self, output: Any) -> torch.Tensor:
        hidden, residual = output[0], output[1]
        return hidden if residual is None else hidden + residual

    def write(self, output: Any, stream: torch.Tensor) -> Any:
        return (output[0] + (stream - self.read(output)),) + tuple(output[1:])


HF_RESIDUAL: ResidualStream = _HFResidual()
VLLM_RESIDUAL: ResidualStream = _VLLMResidual()


@dataclass
class HookStats:
    """Counters since the hook was made."""

    passes: int = 0
    tokens_published: int = 0
    records_dropped: int = 0
    steered: int = 0
    clamped: int = 0
    blocked: int = 0
    missing_vector: int = 0


@dataclass
class _Request:
    position: int = 0  # request position of the next token this hook sees
    passes: int = 0
    pending: List[Tuple[torch.Tensor, Optional[torch.Tensor]]] = field(default_factory=list)
    pending_start: int = 0
    pending_tokens: int = 0


@dataclass(frozen=True)
class _Segment:
    request_id: str
    start: int  # rows of the flattened [tokens, d] stream
    stop: int
    token_ids: Optional[torch.Tensor]


class GuardHook:
    """Forward hook for one module (the decoder layer whose output is the hooked residual stream).

    Args:
        publisher: an :class:`~saeguard_attach.ActivationPublisher` for this module's hook point, or
            None to apply decisions only.
        decisions: a started :class:`~saeguard_attach.DecisionListener` (or anything with
            ``watch``/``forget``/``latest``), or None to publish only.
        vectors: a started :class:`~saeguard_attach.SteeringRegistry` (or anything with ``get``).
        residual: :data:`HF_RESIDUAL` (default) or :data:`VLLM_RESIDUAL`.
        flush_every_tokens: generation tokens buffered per request before a record is published
            (prompt passes are always published at once). 1 = lowest decision latency.
        on_intervention: called as ``f(request_id, decision)`` for each row a decision edits.

    The hook is called on the model's thread; ``bind``, ``bind_packed`` and ``finish`` must be
    called on that thread too. Use one GuardHook per hooked module.
    """

    def __init__(self, publisher: Any = None, decisions: Any = None, vectors: Any = None, *,
                 residual: ResidualStream = HF_RESIDUAL, flush_every_tokens: int = 1,
                 on_intervention: Optional[Callable[[str, Decision], None]] = None) -> None:
        if flush_every_tokens < 1:
            raise ValueError("flush_every_tokens must be >= 1")
        self._publisher = publisher
        self._decisions = decisions
        self._vectors = vectors
        self._residual = residual
        self._flush_every = flush_every_tokens
        self._on_intervention = on_intervention
        self._requests: Dict[str, _Request] = {}
        self._rows: Optional[List[Optional[str]]] = None
        self._packed: Optional[List[Tuple[Optional[str], int]]] = None
        self._left_padding: Optional[List[int]] = None
        self._token_ids: Optional[torch.Tensor] = None
        self._device_vectors: Dict[Tuple[str, torch.device], Tuple[torch.Tensor, torch.Tensor]] = {}
        self._warned_missing: set = set()
        self.stats = HookStats()

    # ------------------------------------------------------------------ set-up by the caller
    def attach(self, module: torch.nn.Module):
        """Registers the hook; returns the handle (``handle.remove()`` detaches it)."""
        return module.register_forward_hook(self)

    def bind(self, request_ids: Sequence[Optional[str]], *, left_padding: Optional[Sequence[int]] = None,
             token_ids: Optional[torch.Tensor] = None) -> None:
        """Declares the requests of the batch rows of the coming passes (output ``[batch, seq, d]``);
        None marks a row that is not tracked. A new id starts a request at position 0.

        ``left_padding[i]`` pad tokens at the start of row ``i`` are skipped in the *next* pass
        only (a left-padded prefill). ``token_ids`` ``[batch, seq]`` are published with the next
        pass's activations (needed for detectors with ``special_tokens.ids``).
        """
        if left_padding is not None and len(left_padding) != len(request_ids):
            raise ValueError("left_padding has %d entries for %d rows" % (len(left_padding), len(request_ids)))
        self._rows, self._packed = list(request_ids), None
        self._left_padding = None if left_padding is None else [int(p) for p in left_padding]
        self._token_ids = token_ids
        self._start_requests(request_ids)

    def bind_packed(self, segments: Sequence[Tuple[Optional[str], int]], *,
                    token_ids: Optional[torch.Tensor] = None) -> None:
        """Declares a packed pass (output ``[n_tokens, d]``, requests one after another, as in
        vLLM): ``segments`` lists ``(request_id or None, n_tokens)`` in order. Call before every pass."""
        self._packed, self._rows = [(rid, int(n)) for rid, n in segments], None
        self._left_padding, self._token_ids = None, token_ids
        self._start_requests([rid for rid, _ in segments])

    def finish(self, request_id: str) -> None:
        """Ends a request: publishes its buffered tokens (marked ``final``), forgets its state and
        its decisions. With nothing buffered no final record is sent (records are never empty);
        the sidecar then drops the request's state after its ``state.request_ttl_ms``."""
        req = self._requests.pop(request_id, None)
        if req is not None:
            self._flush(request_id, req, final=True)
        if self._decisions is not None:
            self._decisions.forget(request_id)

    def position(self, request_id: str) -> int:
        """The request position of the next token the hook will see for ``request_id``."""
        req = self._requests.get(request_id)
        return 0 if req is None else req.position

    def _start_requests(self, request_ids: Sequence[Optional[str]]) -> None:
        for rid in request_ids:
            if rid is not None and rid not in self._requests:
                self._requests[rid] = _Request()
                if self._decisions is not None:
                    self._decisions.watch(rid)

    # ------------------------------------------------------------------ the hook
    def __call__(self, module: torch.nn.Module, inputs: Any, output: Any) -> Any:
        stream = self._residual.read(output)
        segments = self._segments(stream)
        if not segments:
            return None
        self.stats.passes += 1
        self._raise_if_blocked(segments)
        flat = stream.reshape(-1, stream.shape[-1])  # [tokens, d]
        for seg in segments:
            self._record(seg, flat[seg.start:seg.stop])
        plans = [(seg, d) for seg in segments for d in [self._intervention(seg.request_id)] if d is not None]
        if not plans:
            return None
        edited = flat.clone()
        for seg, decision in plans:
            edited[seg.start:seg.stop] = self._apply(seg.request_id, decision, flat[seg.start:seg.stop])
        return self._residual.write(output, edited.view(stream.shape))

    def _segments(self, stream: torch.Tensor) -> List[_Segment]:
        pad, ids = self._left_padding, self._token_ids
        self._left_padding, self._token_ids = None, None  # one-shot: the next pass only
        if self._rows is not None:
            return self._batch_segments(stream, pad, ids)
        if self._packed is not None:
            return self._packed_segments(stream, ids)
        return []

    def _batch_segments(self, stream: torch.Tensor, pad: Optional[List[int]], ids: Optional[torch.Tensor]):
        if stream.dim() != 3 or stream.shape[0] != len(self._rows):
            raise ValueError("GuardHook: bound %d rows but the layer output has shape %s; call bind() "
                             "for each batch" % (len(self._rows), list(stream.shape)))
        seq = stream.shape[1]
        out = []
        for i, rid in enumerate(self._rows):
            skip = 0 if pad is None else min(pad[i], seq)
            if rid is not None and skip < seq:
                row_ids = None if ids is None else ids[i, skip:]
                out.append(_Segment(rid, i * seq + skip, (i + 1) * seq, row_ids))
        return out

    def _packed_segments(self, stream: torch.Tensor, ids: Optional[torch.Tensor]):
        total = sum(n for _, n in self._packed)
        if stream.dim() != 2 or stream.shape[0] != total:
            raise ValueError("GuardHook: bound segments of %d tokens but the layer output has shape %s"
                             % (total, list(stream.shape)))
        out, start = [], 0
        for rid, n in self._packed:
            if rid is not None and n > 0:
                out.append(_Segment(rid, start, start + n, None if ids is None else ids[start:start + n]))
            start += n
        return out

    def _raise_if_blocked(self, segments: List[_Segment]) -> None:
        if self._decisions is None:
            return
        blocked = {}
        for seg in segments:
            d = self._decisions.latest(seg.request_id)
            if d is not None and d.action is Action.BLOCK:
                blocked[seg.request_id] = d
        if blocked:
            self.stats.blocked += len(blocked)
            raise Blocked(blocked)

    # ------------------------------------------------------------------ publishing
    def _record(self, seg: _Segment, x: torch.Tensor) -> None:
        req = self._requests[seg.request_id]
        n = x.shape[0]
        if req.passes == 0 or self._flush_every == 1:
            self._flush(seg.request_id, req, final=False)
            self._publish(seg.request_id, x, seg.token_ids, req.position, "prompt" if req.passes == 0 else "generation")
        else:
            if not req.pending:
                req.pending_start = req.position
            req.pending.append((x.detach().clone(), seg.token_ids))
            req.pending_tokens += n
            if req.pending_tokens >= self._flush_every:
                self._flush(seg.request_id, req, final=False)
        req.position += n
        req.passes += 1

    def _flush(self, request_id: str, req: _Request, final: bool) -> None:
        if not req.pending:
            return
        x = torch.cat([p[0] for p in req.pending])
        ids = None if any(p[1] is None for p in req.pending) else torch.cat([p[1] for p in req.pending])
        self._publish(request_id, x, ids, req.pending_start, "generation", final)
        req.pending, req.pending_tokens = [], 0

    def _publish(self, request_id: str, x: torch.Tensor, ids: Optional[torch.Tensor], position: int, phase: str,
                 final: bool = False) -> None:
        if self._publisher is None:
            return
        if self._publisher.publish(request_id, x, position, final, phase=phase, token_ids=ids):
            self.stats.tokens_published += x.shape[0]
        else:
            self.stats.records_dropped += 1

    # ------------------------------------------------------------------ interventions
    def _intervention(self, request_id: str) -> Optional[Decision]:
        if self._decisions is None:
            return None
        d = self._decisions.latest(request_id)
        return d if d is not None and d.action in (Action.STEER, Action.CLAMP) else None

    def _vector(self, vector_id: str, device: torch.device) -> Optional[torch.Tensor]:
        host = None if self._vectors is None else self._vectors.get(vector_id)
        if host is None:
            return None
        cached = self._device_vectors.get((vector_id, device))
        if cached is None or cached[0] is not host:
            cached = (host, host.to(device))
            self._device_vectors[(vector_id, device)] = cached
        return cached[1]

    def _apply(self, request_id: str, d: Decision, x: torch.Tensor) -> torch.Tensor:
        v = self._vector(d.vector.id, x.device)
        if v is None:
            self.stats.missing_vector += 1
            if d.vector.id not in self._warned_missing:
                self._warned_missing.add(d.vector.id)
                LOGGER.warning("steering vector %r not in the registry (yet): %s not applied", d.vector.id, d.action.value)
            return x
        if d.action is Action.STEER:
            out = interventions.steer(x, v, d.vector.coefficient)
            self.stats.steered += 1
        else:
            out = interventions.clamp(x, v, d.vector.value)
            self.stats.clamped += 1
        if self._on_intervention is not None:
            self._on_intervention(request_id, d)
        return out
