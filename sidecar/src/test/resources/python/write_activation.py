"""Writes an activation record (docs/architecture.md#the-wire-contract) with numpy alone: an independent producer.

Usage: write_activation.py OUT.safetensors EXPECTED.f32 DTYPE TOKENS D_IN SEED REQUEST_ID

Writes OUT as a safetensors file with tensor `activations` [TOKENS, D_IN] in DTYPE (F32, F16 or
BF16) and `token_ids` [TOKENS] I32, and EXPECTED as the raw little-endian F32 values a reader must
decode (the stored values widened back to F32). This is the "30-line writer" a producer without the
`safetensors` package would use; it shares no code with saeguard's Java codec.
"""
import json
import struct
import sys

import numpy as np

out, expected, dtype, tokens, d_in, seed, request_id = sys.argv[1:8]
tokens, d_in, seed = int(tokens), int(d_in), int(seed)
rng = np.random.default_rng(seed)
x = (rng.standard_normal((tokens, d_in)) * 3.0).astype(np.float32)

if dtype == "F32":
    data = x.astype("<f4").tobytes()
    widened = x
elif dtype == "F16":
    h = x.astype("<f2")
    data = h.tobytes()
    widened = h.astype(np.float32)
elif dtype == "BF16":
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
    data = rounded.astype("<u2").tobytes()
    widened = (rounded.astype(np.uint32) << 16).view(np.float32)
else:
    raise SystemExit("unknown dtype " + dtype)

ids = np.arange(tokens, dtype="<i4") + 1000
header = {
    "__metadata__": {"request_id": request_id, "model": "gemma-2-2b", "hook": "blocks.12.hook_resid_post",
                     "position": "7", "phase": "generation", "final": "true"},
    "activations": {"dtype": dtype, "shape": [tokens, d_in], "data_offsets": [0, len(data)]},
    "token_ids": {"dtype": "I32", "shape": [tokens], "data_offsets": [len(data), len(data) + ids.nbytes]},
}
h = json.dumps(header).encode("utf-8")
h += b" " * (-len(h) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    f.write(data)
    f.write(ids.tobytes())
with open(expected, "wb") as f:
    f.write(widened.astype("<f4").tobytes())
