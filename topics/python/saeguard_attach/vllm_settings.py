"""The ``SAEGUARD_*`` environment variables that configure the three vLLM integrations.

vLLM starts its plugins and workers in processes of its own, so configuration travels by
environment (a ``vllm serve`` container's ``env:``). One parser serves the observation plugin
(:mod:`saeguard_attach.vllm_observation`), the general plugin (:mod:`saeguard_attach.vllm_plugin`)
and the hidden-states follower (:mod:`saeguard_attach.vllm_hidden_states`); each takes the fields it
needs. Every variable is documented in topics/python/README.md#vllm.

Errors name the variable, what is wrong and how to fix it (:class:`SettingsError`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple

import torch

from .hook_names import ResidPost
from .records import PHASES, RecordSource

__all__ = ["SettingsError", "VllmSettings", "KAFKA_PREFIX", "kafka_properties", "require"]

# SAEGUARD_KAFKA_SECURITY_PROTOCOL=SSL -> security.protocol=SSL for every Kafka client made here.
KAFKA_PREFIX = "SAEGUARD_KAFKA_"
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A ``SAEGUARD_*`` variable is missing or malformed; the message says which and the fix."""


@dataclass(frozen=True)
class VllmSettings:
    """What the vLLM integrations read from the environment (see :meth:`from_env`).

    ``layer`` is the 0-based decoder layer whose output is observed; ``hook`` the hook name written
    into records (the SAE's ``hook_name``; default ``blocks.<layer>.hook_resid_post``).
    """

    bootstrap: str
    model: str
    layer: int
    hook: str
    activations_topic: str = "saeguard.activations"
    decisions_topic: str = "saeguard.decisions"
    sae: Optional[str] = None
    tenant: Optional[str] = None
    request_pattern: str = ".*"
    phases: Tuple[str, ...] = ("prompt",)
    abort_blocked: bool = True
    dtype: Optional[torch.dtype] = None
    kafka: Dict[str, str] = field(default_factory=dict)

    @property
    def source(self) -> RecordSource:
        return RecordSource(model=self.model, hook=self.hook, sae=self.sae, tenant=self.tenant)

    @property
    def observe_generation(self) -> bool:
        return "generation" in self.phases

    def watches(self, request_id: str) -> bool:
        """Whether ``request_id`` is one saeguard publishes for (``SAEGUARD_REQUESTS``)."""
        return re.fullmatch(self.request_pattern, request_id) is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "VllmSettings":
        """Reads the settings from ``env`` (``os.environ``).

        Required: ``SAEGUARD_BOOTSTRAP``, ``SAEGUARD_MODEL``, ``SAEGUARD_LAYER``. Optional:
        ``SAEGUARD_HOOK``, ``SAEGUARD_SAE``, ``SAEGUARD_TENANT``, ``SAEGUARD_ACTIVATIONS_TOPIC``,
        ``SAEGUARD_DECISIONS_TOPIC``, ``SAEGUARD_REQUESTS`` (a regular expression the whole vLLM
        request id must match), ``SAEGUARD_PHASES`` (``prompt`` or ``prompt,generation``),
        ``SAEGUARD_ABORT_BLOCKED`` (true/false), ``SAEGUARD_DTYPE`` (float32/float16/bfloat16) and
        ``SAEGUARD_KAFKA_*`` (Kafka client properties).
        """
        bootstrap = require(env, "SAEGUARD_BOOTSTRAP", "the Kafka bootstrap servers, e.g. kafka:9092")
        model = require(env, "SAEGUARD_MODEL", "the model name the sidecar's saes[].model routes on")
        layer = _layer(env)
        hook = env.get("SAEGUARD_HOOK", "").strip() or ResidPost(layer).saelens
        pattern = env.get("SAEGUARD_REQUESTS", "").strip() or ".*"
        try:
            re.compile(pattern)
        except re.error as e:
            raise SettingsError("SAEGUARD_REQUESTS=%r: not a regular expression (%s); fix: e.g. '.*' for every "
                                "request or 'cmpl-.*' for completions only" % (pattern, e)) from e
        return cls(
            bootstrap=bootstrap, model=model, layer=layer, hook=hook,
            activations_topic=env.get("SAEGUARD_ACTIVATIONS_TOPIC", "").strip() or "saeguard.activations",
            decisions_topic=env.get("SAEGUARD_DECISIONS_TOPIC", "").strip() or "saeguard.decisions",
            sae=env.get("SAEGUARD_SAE", "").strip() or None,
            tenant=env.get("SAEGUARD_TENANT", "").strip() or None,
            request_pattern=pattern, phases=_phases(env), abort_blocked=_flag(env, "SAEGUARD_ABORT_BLOCKED", True),
            dtype=_dtype(env), kafka=kafka_properties(env))


def kafka_properties(env: Mapping[str, str]) -> Dict[str, str]:
    """``SAEGUARD_KAFKA_SASL_MECHANISM=PLAIN`` -> ``{"sasl.mechanism": "PLAIN"}``."""
    return {k[len(KAFKA_PREFIX):].lower().replace("_", "."): v for k, v in env.items()
            if k.startswith(KAFKA_PREFIX) and len(k) > len(KAFKA_PREFIX)}


def require(env: Mapping[str, str], name: str, what: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError("%s is not set; fix: set it to %s" % (name, what))
    return value


def _layer(env: Mapping[str, str]) -> int:
    raw = require(env, "SAEGUARD_LAYER", "the 0-based decoder layer the SAE reads (its hook_name's L)")
    try:
        layer = int(raw)
    except ValueError:
        layer = -1
    if layer < 0:
        raise SettingsError("SAEGUARD_LAYER=%r: not a layer index; fix: a non-negative integer, the L of the "
                            "SAE's blocks.L.hook_resid_post" % raw)
    return layer


def _phases(env: Mapping[str, str]) -> Tuple[str, ...]:
    raw = env.get("SAEGUARD_PHASES", "").strip() or "prompt"
    phases = tuple(p.strip() for p in raw.split(",") if p.strip())
    if "prompt" not in phases or any(p not in PHASES for p in phases):
        raise SettingsError("SAEGUARD_PHASES=%r: fix: 'prompt' or 'prompt,generation'" % raw)
    return phases


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError("%s=%r: fix: true or false" % (name, raw))


def _dtype(env: Mapping[str, str]) -> Optional[torch.dtype]:
    raw = env.get("SAEGUARD_DTYPE", "").strip().lower()
    if not raw:
        return None
    if raw not in _DTYPES:
        raise SettingsError("SAEGUARD_DTYPE=%r: fix: one of %s (unset keeps the model's dtype)"
                            % (raw, ", ".join(_DTYPES)))
    return _DTYPES[raw]
