"""Reads produced activation records back with the independent reference reader and checks each
against the wire contract (docs/architecture.md#the-wire-contract)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from paths import load_reference

reference = load_reference("safetensors_io")
_REQUIRED = {"request_id", "model", "hook", "position", "phase", "final"}
_counter = itertools.count()


@dataclass(frozen=True)
class Record:
    metadata: Dict[str, str]
    activations: np.ndarray  # [n_tokens, d_in], float32
    token_ids: Optional[np.ndarray]


def read_record(tmp_path: Path, data: bytes) -> Record:
    """One record, checked: the required metadata, ``activations [n > 0, d > 0]`` in a wire dtype,
    ``token_ids [n]`` integers when present, phase and final in their enums, position >= 0."""
    p = tmp_path / ("record-%d.safetensors" % next(_counter))
    p.write_bytes(data)
    f = reference.SafetensorsFile(str(p))
    md = f.metadata
    assert _REQUIRED <= md.keys(), "missing metadata %s" % (_REQUIRED - md.keys())
    assert md["phase"] in ("prompt", "generation") and md["final"] in ("true", "false")
    assert int(md["position"]) >= 0 and md["request_id"]
    shape = f.shapes["activations"]
    assert len(shape) == 2 and shape[0] > 0 and shape[1] > 0
    assert f.dtypes["activations"] in ("F32", "F16", "BF16")
    ids = None
    if "token_ids" in f.names():
        assert tuple(f.shapes["token_ids"]) == (shape[0],) and f.dtypes["token_ids"] in ("I32", "I64")
        ids = np.asarray(f.get("token_ids"))
    return Record(md, np.asarray(f.get("activations"), dtype=np.float32), ids)
