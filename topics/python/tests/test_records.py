"""Activation records: metadata per docs/architecture.md#the-wire-contract and chunking under the size limit."""
import numpy as np
import pytest
import torch

from paths import load_reference
from saeguard_attach import RecordSource, encode_records, rows_per_record

reference = load_reference("safetensors_io")
SOURCE = RecordSource(model="test-model", hook="blocks.3.hook_resid_post", sae="test-sae", tenant="t1")


def _read(tmp_path, i, data):
    p = tmp_path / ("r%d.safetensors" % i)
    p.write_bytes(data)
    return reference.SafetensorsFile(str(p))


def test_a_long_request_is_chunked_under_the_limit_and_reassembles_exactly(tmp_path):
    # Given 300 tokens of d_in 64 in F16 and a limit that fits only part of them
    x = torch.randn(300, 64).to(torch.float16)
    ids = torch.arange(300, dtype=torch.int64)
    limit = 16 * 1024

    # When encoded from request position 40 as the request's final tokens
    records = list(encode_records(SOURCE, "req-9", x, position=40, final=True, phase="generation",
                                  token_ids=ids, max_record_bytes=limit, prefer_package=False))
    files = [_read(tmp_path, i, r) for i, r in enumerate(records)]

    # Then every record fits, positions are contiguous, only the last is final, and nothing is lost
    assert len(records) > 1
    assert all(len(r) <= limit for r in records)
    position = 40
    for i, f in enumerate(files):
        md = f.metadata
        assert md["request_id"] == "req-9" and md["model"] == "test-model" and md["sae"] == "test-sae"
        assert md["hook"] == "blocks.3.hook_resid_post" and md["tenant"] == "t1" and md["phase"] == "generation"
        assert md["position"] == str(position)
        assert md["final"] == ("true" if i == len(files) - 1 else "false")
        position += f.shapes["activations"][0]
    assert position == 340
    np.testing.assert_array_equal(np.concatenate([f.get("activations") for f in files]), x.float().numpy())
    np.testing.assert_array_equal(np.concatenate([f.get("token_ids") for f in files]), ids.numpy())


def test_rows_per_record_uses_the_space_and_refuses_a_token_that_cannot_fit():
    assert rows_per_record(d_in=1024, itemsize=2, token_id_itemsize=0, max_record_bytes=1024 * 1024) == 511
    with pytest.raises(ValueError, match="does not fit"):
        rows_per_record(d_in=4096, itemsize=4, token_id_itemsize=0, max_record_bytes=8192)


@pytest.mark.parametrize("bad", [torch.zeros(0, 4), torch.zeros(4), torch.zeros(2, 4, dtype=torch.float64)])
def test_empty_or_misshapen_or_non_wire_dtype_activations_are_refused(bad):
    with pytest.raises(ValueError):
        list(encode_records(SOURCE, "r", bad, max_record_bytes=1 << 20))
