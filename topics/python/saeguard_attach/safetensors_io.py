"""The safetensors container, written and read without the ``safetensors`` package.

Layout (https://github.com/huggingface/safetensors): ``u64`` little-endian header length ``N``,
``N`` bytes of UTF-8 JSON padded with spaces to a multiple of 8, then the raw little-endian tensor
bytes. The header maps each tensor name to ``{"dtype", "shape", "data_offsets"}`` (offsets relative
to the first byte after the header) and ``__metadata__`` to a ``str -> str`` map.

:func:`encode` uses ``safetensors.torch.save`` when that package is installed and
``prefer_package`` is true, else the small writer here; both produce valid files that saeguard's
Java codec reads. :func:`decode` is always the built-in reader (steering vectors, and the
hidden-states files vLLM's ``ExampleHiddenStatesConnector`` writes).
"""
from __future__ import annotations

import json
import struct
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import torch

try:  # optional: the reference implementation, when installed
    import safetensors.torch as _st_torch
except ImportError:  # pragma: no cover - depends on the environment
    _st_torch = None

__all__ = ["SafetensorsFormatError", "encode", "decode", "dtype_name", "HAVE_SAFETENSORS_PACKAGE"]

HAVE_SAFETENSORS_PACKAGE = _st_torch is not None

_TORCH_TO_NAME = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
}
_NAME_TO_TORCH = {v: k for k, v in _TORCH_TO_NAME.items()}
# numpy has no bfloat16: BF16 travels as its 16-bit pattern.
_NAME_TO_NUMPY = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<i2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
}
_MAX_HEADER_BYTES = 100 * 1024 * 1024


class SafetensorsFormatError(ValueError):
    """A byte string is not a safetensors file this reader understands; the message says where."""


def dtype_name(dtype: torch.dtype) -> str:
    """The safetensors dtype name (``F32``, ``BF16``, ...) of a torch dtype; ValueError if unsupported."""
    try:
        return _TORCH_TO_NAME[dtype]
    except KeyError:
        raise ValueError("dtype %s has no safetensors name here (supported: %s)"
                         % (dtype, ", ".join(str(d) for d in _TORCH_TO_NAME))) from None


def _le_bytes(t: torch.Tensor) -> bytes:
    """The tensor's values as contiguous little-endian bytes."""
    t = t.detach().to("cpu").contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    a = t.numpy()
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()


def _encode_builtin(tensors: Mapping[str, torch.Tensor], metadata: Optional[Mapping[str, str]]) -> bytes:
    header: Dict[str, object] = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' is not a tensor name")
        data = _le_bytes(t)
        header[name] = {"dtype": dtype_name(t.dtype), "shape": [int(d) for d in t.shape],
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    return b"".join([struct.pack("<Q", len(h)), h] + blobs)


def encode(tensors: Mapping[str, torch.Tensor], metadata: Optional[Mapping[str, str]] = None,
           prefer_package: bool = True) -> bytes:
    """Serialises ``tensors`` (in the given order) and ``metadata`` as one safetensors file.

    Tensors are copied to the CPU; every dtype of :func:`dtype_name` is supported. With
    ``prefer_package`` and the ``safetensors`` package installed, that package writes the bytes.
    """
    if prefer_package and _st_torch is not None:
        cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        md = None if metadata is None else {str(k): str(v) for k, v in metadata.items()}
        return _st_torch.save(cpu, metadata=md)
    return _encode_builtin(tensors, metadata)


def _parse_header(data: bytes) -> Tuple[dict, int]:
    if len(data) < 8:
        raise SafetensorsFormatError("truncated header: %d bytes, need at least 8" % len(data))
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER_BYTES or 8 + n > len(data):
        raise SafetensorsFormatError("header length %d runs past the end (%d bytes)" % (n, len(data)))
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsFormatError("malformed header JSON: %s" % e) from None
    if not isinstance(header, dict):
        raise SafetensorsFormatError("header is not a JSON object")
    return header, 8 + n


def _tensor_from(name: str, info: object, body: memoryview) -> torch.Tensor:
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
        raise SafetensorsFormatError("tensor %r: header entry needs dtype, shape and data_offsets" % name)
    dt = info["dtype"]
    if dt not in _NAME_TO_NUMPY:
        raise SafetensorsFormatError("tensor %r: unsupported dtype %r" % (name, dt))
    shape = [int(d) for d in info["shape"]]
    begin, end = (int(x) for x in info["data_offsets"])
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if not 0 <= begin <= end <= len(body) or end - begin != count * _NAME_TO_NUMPY[dt].itemsize:
        raise SafetensorsFormatError("tensor %r: data_offsets [%d, %d] do not fit %s %s in %d data bytes"
                                     % (name, begin, end, dt, shape, len(body)))
    a = np.frombuffer(body[begin:end], dtype=_NAME_TO_NUMPY[dt]).astype(_NAME_TO_NUMPY[dt].newbyteorder("="))
    t = torch.from_numpy(a.copy()).reshape(shape)
    return t.view(torch.bfloat16) if dt == "BF16" else t


def decode(data: bytes) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Parses a safetensors file: ``(name -> CPU tensor, __metadata__)``.

    Raises :class:`SafetensorsFormatError` naming the problem (truncated header, bad JSON, offsets
    that do not fit, an unsupported dtype).
    """
    header, start = _parse_header(data)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise SafetensorsFormatError("__metadata__ is not an object")
    body = memoryview(data)[start:]
    tensors = {name: _tensor_from(name, info, body) for name, info in header.items()}
    return tensors, {str(k): str(v) for k, v in metadata.items()}
