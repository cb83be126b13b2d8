"""A small, dependency-free (numpy only) safetensors writer and reader.

There is no `safetensors` Python package on the test machines, so the SAE reference generator
(make_sae.py) writes the files itself. The layout follows the safetensors specification:

    u64 little-endian N | N bytes of UTF-8 JSON header, padded with spaces to a multiple of 8 |
    raw little-endian tensor bytes, in the order the tensors were given

Header: {"__metadata__": {str: str}, name: {"dtype": D, "shape": [...], "data_offsets": [b, e]}}
where the offsets are relative to the first byte after the header. Supported dtypes: F32, F16,
BF16, I32, F64. BF16 is the upper 16 bits of the float32 pattern, rounded to nearest-even.

This module shares no code with saeguard's Java safetensors codec.
"""
import json
import struct

import numpy as np

_NUMPY_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
    "BF16": np.dtype("<u2"),  # raw bit patterns
}


def f32_to_bf16_bits(x):
    """float32 (or anything castable) -> uint16 BF16 bit patterns, round-to-nearest-even.

    Inputs are first rounded to float32. NaN is kept a (quiet) NaN; no value here ever is one.
    """
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


def bf16_bits_to_f32(bits):
    """uint16 BF16 bit patterns -> float32 (exact widening)."""
    bits = np.ascontiguousarray(np.asarray(bits, dtype=np.uint16))
    return (bits.astype(np.uint32) << 16).view(np.float32)


def round_to_dtype(x, dtype):
    """The value a tensor has once stored in `dtype`, widened back to float32 (F32, BF16, F16)."""
    x = np.asarray(x)
    if dtype == "F32":
        return x.astype(np.float32)
    if dtype == "BF16":
        return bf16_bits_to_f32(f32_to_bf16_bits(x)).reshape(x.shape)
    if dtype == "F16":
        return x.astype(np.float16).astype(np.float32)
    raise ValueError("unsupported float dtype " + dtype)


def _encode(array, dtype):
    array = np.asarray(array)
    if dtype == "BF16":
        if array.dtype == np.uint16:
            raw = array
        else:
            raw = f32_to_bf16_bits(array).reshape(array.shape)
        return np.ascontiguousarray(raw.astype("<u2")).tobytes()
    if dtype not in _NUMPY_DTYPES:
        raise ValueError("unsupported dtype " + dtype)
    return np.ascontiguousarray(array.astype(_NUMPY_DTYPES[dtype])).tobytes()


def write_safetensors(path, tensors, metadata=None):
    """Write `tensors`, a list of (name, array, dtype) in file order.

    For BF16 the array may be float (rounded to nearest-even here) or uint16 bit patterns.
    `metadata` (str -> str) goes into `__metadata__`; None writes no `__metadata__` key at all.
    Shape [] (a 0-d array) is written as a scalar tensor.
    """
    header = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, array, dtype in tensors:
        if name == "__metadata__" or name in header:
            raise ValueError("bad or duplicate tensor name " + name)
        data = _encode(array, dtype)
        shape = [int(d) for d in np.shape(array)]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class SafetensorsFile:
    """A parsed safetensors file: .metadata (dict or None), .dtypes, .shapes, .order, get(name)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            raw = f.read()
        if len(raw) < 8:
            raise ValueError(path + ": shorter than 8 bytes")
        (n,) = struct.unpack("<Q", raw[:8])
        if 8 + n > len(raw):
            raise ValueError(path + ": header length %d past end of file" % n)
        header = json.loads(raw[8:8 + n].decode("utf-8"))
        self.path = path
        self.header_len = n
        self.metadata = header.pop("__metadata__", None)
        self.dtypes = {}
        self.shapes = {}
        self._data = raw[8 + n:]
        spans = []
        for name, info in header.items():
            self.dtypes[name] = info["dtype"]
            self.shapes[name] = tuple(info["shape"])
            b, e = info["data_offsets"]
            count = int(np.prod(info["shape"], dtype=np.int64)) if info["shape"] else 1
            width = _NUMPY_DTYPES[info["dtype"]].itemsize
            if e - b != count * width:
                raise ValueError("%s: tensor %s has %d bytes, expected %d" % (path, name, e - b, count * width))
            spans.append((b, e, name))
        spans.sort()
        self.order = [s[2] for s in spans]
        pos = 0
        for b, e, name in spans:
            if b != pos:
                raise ValueError("%s: gap or overlap before tensor %s" % (path, name))
            pos = e
        if pos != len(self._data):
            raise ValueError("%s: %d trailing bytes" % (path, len(self._data) - pos))
        self._spans = {s[2]: (s[0], s[1]) for s in spans}

    def names(self):
        return list(self.order)

    def raw(self, name):
        b, e = self._spans[name]
        dt = _NUMPY_DTYPES[self.dtypes[name]]
        return np.frombuffer(self._data[b:e], dtype=dt).reshape(self.shapes[name])

    def get(self, name):
        """The tensor as a numpy array; float dtypes are widened exactly to float32 (F64 stays F64)."""
        a = self.raw(name)
        dtype = self.dtypes[name]
        if dtype == "BF16":
            return bf16_bits_to_f32(a).reshape(self.shapes[name])
        if dtype == "F16":
            return a.astype(np.float32)
        return a.copy()


def read_safetensors(path):
    """name -> numpy array (floats widened to float32), plus the file's __metadata__."""
    f = SafetensorsFile(path)
    return {n: f.get(n) for n in f.names()}, f.metadata
