"""Mirrors ``get_tensor_model_parallel_rank`` of vllm/distributed/parallel_state.py; tests set ``TP_RANK``."""
TP_RANK = 0


def get_tensor_model_parallel_rank() -> int:
    return TP_RANK
