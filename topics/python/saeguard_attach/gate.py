"""A synchronous gate: ``POST /v1/check`` on the sidecar (usually the one in the same pod).

Unlike the Kafka path, the caller waits for the verdict, so it can refuse a prompt before the first
token is generated. It costs a round trip and an SAE encode on the request's critical path; use it
for the prompt and leave generation to the asynchronous GuardHook.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import List, Optional

import torch

from .decisions import Decision, parse_decision
from .records import RecordSource, encode_records

__all__ = ["CheckResult", "CheckError", "check"]

# The sidecar's body limit for /v1/* requests.
MAX_CHECK_BYTES = 32 * 1024 * 1024


class CheckError(RuntimeError):
    """The sidecar refused or failed the check; ``status`` is the HTTP status (0: no answer) and
    ``retry_after`` the seconds it asked to wait (503, engine queue full)."""

    def __init__(self, message: str, status: int = 0, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class CheckResult:
    """The decision for the checked activations and the alerts raised (alert JSON objects)."""

    decision: Decision
    alerts: List[dict]


def check(url: str, source: RecordSource, request_id: str, activations: torch.Tensor, *, position: int = 0,
          phase: str = "prompt", token_ids: Optional[torch.Tensor] = None, timeout: float = 2.0,
          token: Optional[str] = None) -> CheckResult:
    """Sends ``activations`` ``[n_tokens, d_in]`` as one activation record to ``url`` (e.g.
    ``http://127.0.0.1:8080/v1/check``) and returns the sidecar's verdict.

    The check updates the request's detector state like a Kafka record would, so use the request's
    real id and positions. ``token``: the sidecar's bearer token with scope ``read`` when its API
    requires one (``http.auth.tokens``; e.g. from ``SAEGUARD_CHECK_TOKEN``). Raises :class:`CheckError`
    on an HTTP error (401/403 for a missing, wrong or under-scoped token) or no answer in ``timeout``.
    """
    records = list(encode_records(source, request_id, activations.detach().to("cpu"), position=position,
                                  phase=phase, token_ids=token_ids, max_record_bytes=MAX_CHECK_BYTES))
    if len(records) != 1:
        raise ValueError("%d tokens do not fit one check request; check fewer at a time" % activations.shape[0])
    headers = {"Content-Type": "application/octet-stream"}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=records[0], method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        retry = e.headers.get("Retry-After") if e.headers else None
        raise CheckError("POST %s: HTTP %d: %s" % (url, e.code, e.read()[:300].decode("utf-8", "replace")), e.code,
                         float(retry) if retry else None) from None
    except (urllib.error.URLError, OSError) as e:
        raise CheckError("POST %s: %s" % (url, e)) from None
    return CheckResult(parse_decision(body["decision"]), list(body.get("alerts", [])))
