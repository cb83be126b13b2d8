"""Decisions as the sidecar writes them (``topics/schemas/decision.schema.json``).

:func:`parse_decision` checks every field the schema defines (required fields, types, enums,
bounds) and raises :class:`DecisionFormatError` naming the field. Keys the schema does not know are
ignored rather than refused, so a newer sidecar that adds an optional field does not silently turn
the guard off in older clients.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping, Optional, Tuple, Union

__all__ = ["Action", "Tier", "FeatureRef", "VectorRef", "Decision", "DecisionFormatError", "parse_decision"]


class Action(str, Enum):
    """What the applier does with the rest of the request, least to most severe."""

    ALLOW = "allow"
    FLAG = "flag"
    STEER = "steer"
    CLAMP = "clamp"
    BLOCK = "block"


class Tier(str, Enum):
    """Severity band of a steer decision."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class DecisionFormatError(ValueError):
    """A decision record does not follow decision.schema.json; the message names the field."""


@dataclass(frozen=True)
class FeatureRef:
    """An SAE feature behind a decision: SAE id, feature index, activation."""

    sae: str
    id: int
    value: float


@dataclass(frozen=True)
class VectorRef:
    """A direction in the steering registry. Steer adds ``coefficient * v``; clamp sets the
    component along ``v`` to ``value`` (present for clamp only)."""

    id: str
    coefficient: float
    value: Optional[float] = None


@dataclass(frozen=True)
class Decision:
    """One decision about one request (see decision.schema.json for each field's meaning)."""

    request_id: str
    seq: int
    action: Action
    position: int
    detector: Optional[str] = None
    tier: Optional[Tier] = None
    score: Optional[float] = None
    features: Tuple[FeatureRef, ...] = ()
    vector: Optional[VectorRef] = None
    reason: Optional[str] = None
    latency_ms: Optional[float] = None
    ts: Optional[int] = None


def _fail(field: str, problem: str) -> DecisionFormatError:
    return DecisionFormatError("decision field '%s': %s" % (field, problem))


def _string(obj: Mapping[str, Any], key: str, where: str, required: bool = False) -> Optional[str]:
    v = obj.get(key)
    if v is None:
        if required:
            raise _fail(where + key, "missing")
        return None
    if not isinstance(v, str) or not v:
        raise _fail(where + key, "must be a non-empty string, found %r" % (v,))
    return v


def _text(obj: Mapping[str, Any], key: str) -> Optional[str]:
    v = obj.get(key)
    if v is not None and not isinstance(v, str):
        raise _fail(key, "must be a string, found %r" % (v,))
    return v


def _integer(obj: Mapping[str, Any], key: str, where: str, required: bool = False, minimum: int = 0) -> Optional[int]:
    v = obj.get(key)
    if v is None:
        if required:
            raise _fail(where + key, "missing")
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise _fail(where + key, "must be an integer >= %d, found %r" % (minimum, v))
    return v


def _number(obj: Mapping[str, Any], key: str, where: str, required: bool = False) -> Optional[float]:
    v = obj.get(key)
    if v is None:
        if required:
            raise _fail(where + key, "missing")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _fail(where + key, "must be a finite number, found %r" % (v,))
    return float(v)


def _enum(obj: Mapping[str, Any], key: str, kind: type, required: bool = False):
    v = obj.get(key)
    if v is None:
        if required:
            raise _fail(key, "missing")
        return None
    try:
        return kind(v)
    except ValueError:
        raise _fail(key, "must be one of %s, found %r" % ([e.value for e in kind], v)) from None


def _features(obj: Mapping[str, Any]) -> Tuple[FeatureRef, ...]:
    raw = obj.get("features")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail("features", "must be an array")
    out = []
    for i, f in enumerate(raw):
        where = "features[%d]." % i
        if not isinstance(f, dict):
            raise _fail(where[:-1], "must be an object")
        out.append(FeatureRef(sae=_string(f, "sae", where, True), id=_integer(f, "id", where, True),
                              value=_number(f, "value", where, True)))
    return tuple(out)


def _vector(obj: Mapping[str, Any]) -> Optional[VectorRef]:
    raw = obj.get("vector")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _fail("vector", "must be an object")
    return VectorRef(id=_string(raw, "id", "vector.", True), coefficient=_number(raw, "coefficient", "vector.", True),
                     value=_number(raw, "value", "vector."))


def parse_decision(raw: Union[bytes, str, Mapping[str, Any]]) -> Decision:
    """Parses one decision (JSON bytes, text or an already-decoded object).

    Beyond the schema it checks what an applier relies on: a steer or clamp decision names a
    vector, and a clamp decision's vector carries its ``value``.
    """
    if isinstance(raw, (bytes, str)):
        try:
            raw = json.loads(raw)
        except ValueError as e:
            raise DecisionFormatError("decision is not JSON: %s" % e) from None
    if not isinstance(raw, dict):
        raise DecisionFormatError("decision must be a JSON object")
    d = Decision(
        request_id=_string(raw, "request_id", "", True), seq=_integer(raw, "seq", "", True),
        action=_enum(raw, "action", Action, True), position=_integer(raw, "position", "", True),
        detector=_string(raw, "detector", ""), tier=_enum(raw, "tier", Tier), score=_number(raw, "score", ""),
        features=_features(raw), vector=_vector(raw), reason=_text(raw, "reason"), latency_ms=_number(raw, "latency_ms", ""), ts=_integer(raw, "ts", ""))
    if d.action in (Action.STEER, Action.CLAMP) and d.vector is None:
        raise _fail("vector", "a %s decision needs a vector" % d.action.value)
    if d.action is Action.CLAMP and d.vector.value is None:
        raise _fail("vector.value", "a clamp decision needs the value to set the component to")
    if d.latency_ms is not None and d.latency_ms < 0:
        raise _fail("latency_ms", "must be >= 0")
    return d
