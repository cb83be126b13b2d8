"""Writes files the way vLLM's ExampleHiddenStatesConnector does
(vllm/distributed/kv_transfer/kv_connector/v1/example_hidden_states_connector.py, vllm-project/vllm
@ 015a95c8): ``<shared_storage_path>/<req_id>.safetensors`` with ``hidden_states``
``[num_tokens, num_layers, hidden_size]`` and ``token_ids`` ``[num_tokens]``, no ``__metadata__``;
``wait_for_save`` first creates ``<file>.lock`` and holds ``LOCK_EX`` on it, the writer thread
releases it (closes the fd) once ``save_file`` returned. The tensor bytes are written with the
independent reference writer of sae/src/test/resources/python."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

import numpy as np

from paths import load_reference

_reference = load_reference("safetensors_io")


class ConnectorWriter:
    def __init__(self, storage: Path) -> None:
        self.storage = storage

    def path(self, req_id: str) -> Path:
        return self.storage / ("%s.safetensors" % req_id)

    def lock(self, req_id: str) -> int:
        """``wait_for_save``: the lock file exists, exclusively locked, before the file does."""
        lock_path = str(self.path(req_id)) + ".lock"
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        fd = os.open(lock_path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def save(self, req_id: str, hidden_states: np.ndarray, token_ids: np.ndarray, dtype: str = "BF16") -> Path:
        """``save_file({"hidden_states": ..., "token_ids": ...}, filename)``."""
        path = self.path(req_id)
        os.makedirs(self.storage, exist_ok=True)
        _reference.write_safetensors(str(path), [("hidden_states", hidden_states, dtype),
                                                 ("token_ids", token_ids, "I64")])
        return path

    def write(self, req_id: str, hidden_states: np.ndarray, token_ids: np.ndarray, dtype: str = "BF16") -> Path:
        """The whole sequence: lock, save, release."""
        fd = self.lock(req_id)
        try:
            return self.save(req_id, hidden_states, token_ids, dtype)
        finally:
            os.close(fd)
