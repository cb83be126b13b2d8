"""The built-in safetensors writer and reader against the independent numpy reader of the Java tests."""
import struct

import numpy as np
import pytest
import torch

from paths import load_reference
from saeguard_attach import safetensors_io

reference = load_reference("safetensors_io")


def _roundtrip_through_reference(tmp_path, tensors, metadata):
    data = safetensors_io.encode(tensors, metadata, prefer_package=False)
    path = tmp_path / "x.safetensors"
    path.write_bytes(data)
    return data, reference.SafetensorsFile(str(path))


@pytest.mark.parametrize("dtype,name", [(torch.float32, "F32"), (torch.float16, "F16"), (torch.bfloat16, "BF16")])
def test_writer_output_reads_back_exactly_with_the_reference_reader(tmp_path, dtype, name):
    # Given activations in a wire dtype, token ids and metadata
    x = (torch.randn(5, 7, generator=torch.Generator().manual_seed(1)) * 3).to(dtype)
    ids = torch.arange(5, dtype=torch.int32) + 100
    md = {"request_id": "r-1", "position": "12", "final": "true"}

    # When written by the built-in writer and read by the reference reader
    data, f = _roundtrip_through_reference(tmp_path, {"activations": x, "token_ids": ids}, md)

    # Then dtype, shape, values (widened exactly to F32) and metadata match, and the header is 8-aligned
    assert f.dtypes == {"activations": name, "token_ids": "I32"}
    assert f.shapes["activations"] == (5, 7)
    np.testing.assert_array_equal(f.get("activations"), x.to(torch.float32).numpy())
    np.testing.assert_array_equal(f.get("token_ids"), ids.numpy())
    assert f.metadata == md
    assert struct.unpack("<Q", data[:8])[0] % 8 == 0


def test_reader_decodes_what_the_reference_writer_wrote(tmp_path):
    # Given a file from the reference writer with a BF16 and an F32 tensor
    v = np.linspace(-2, 2, 9, dtype=np.float32)
    path = tmp_path / "v.safetensors"
    reference.write_safetensors(str(path), [("vector", v, "F32"), ("half", v, "BF16")], {"id": "sae/3"})

    # When decoded here
    tensors, md = safetensors_io.decode(path.read_bytes())

    # Then the values are the stored ones
    assert md == {"id": "sae/3"}
    assert torch.equal(tensors["vector"], torch.from_numpy(v))
    np.testing.assert_array_equal(tensors["half"].to(torch.float32).numpy(), reference.round_to_dtype(v, "BF16"))


@pytest.mark.parametrize("mangle,message", [
    (lambda b: b[:5], "truncated header"),
    (lambda b: struct.pack("<Q", 10 ** 6) + b[8:], "past the end"),
    (lambda b: b[:8] + b"x" + b[9:], "malformed header"),
    (lambda b: b[:-4], "do not fit"),
])
def test_reader_names_what_is_wrong_with_a_broken_file(mangle, message):
    good = safetensors_io.encode({"vector": torch.ones(4)}, {"id": "a"}, prefer_package=False)
    with pytest.raises(safetensors_io.SafetensorsFormatError, match=message):
        safetensors_io.decode(mangle(good))
