"""The two residual-stream edits a decision can ask for (docs/architecture.md#the-wire-contract, topics/schemas/decision.schema.json).

Both act on every token row of ``x`` ``[..., d]``. Half-precision inputs are computed in float32
and cast back, so a clamp's projection does not lose the bits a bf16 dot product would.
"""
from __future__ import annotations

import torch

__all__ = ["steer", "clamp"]


def _work(x: torch.Tensor, v: torch.Tensor):
    dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    return x.to(dtype), v.to(device=x.device, dtype=dtype)


def steer(x: torch.Tensor, v: torch.Tensor, coefficient: float) -> torch.Tensor:
    """``x + coefficient * v`` (``v`` as published; the sidecar publishes unit decoder rows)."""
    if v.dim() != 1 or v.shape[0] != x.shape[-1]:
        raise ValueError("steering vector has shape %s, the stream has d=%d" % (list(v.shape), x.shape[-1]))
    xw, vw = _work(x, v)
    return (xw + coefficient * vw).to(x.dtype)


def clamp(x: torch.Tensor, v: torch.Tensor, value: float) -> torch.Tensor:
    """Sets each row's component along ``v`` to ``value``: with ``u = v / ‖v‖``,
    ``x ← x + (value − x·u) u`` (the rest of ``x`` is unchanged)."""
    if v.dim() != 1 or v.shape[0] != x.shape[-1]:
        raise ValueError("clamp vector has shape %s, the stream has d=%d" % (list(v.shape), x.shape[-1]))
    xw, vw = _work(x, v)
    norm = torch.linalg.vector_norm(vw)
    if not torch.isfinite(norm) or norm == 0:
        raise ValueError("clamp vector has norm %s" % float(norm))
    u = vw / norm
    component = xw @ u  # [...]
    return (xw + (value - component).unsqueeze(-1) * u).to(x.dtype)
