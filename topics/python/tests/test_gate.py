"""check(): the synchronous gate's failure modes (its success path runs in test_end_to_end.py)."""
import socket

import pytest
import torch

from saeguard_attach import CheckError, RecordSource, check


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_sidecar_is_a_check_error_without_status():
    with pytest.raises(CheckError) as caught:
        check("http://127.0.0.1:%d/v1/check" % _closed_port(), RecordSource("m", "h"), "r", torch.randn(2, 8), timeout=2)
    assert caught.value.status == 0


def test_more_tokens_than_one_request_holds_are_refused_before_sending():
    with pytest.raises(ValueError, match="one check request"):
        check("http://127.0.0.1:1/v1/check", RecordSource("m", "h"), "r", torch.zeros(4100, 2048))
