"""saeguard_attach: connect a PyTorch LLM server to the saeguard sidecar.

* :class:`ActivationPublisher` sends a hook point's activations to ``saeguard.activations``
  (safetensors records, chunked, from a background thread; drops rather than blocks).
* :class:`DecisionListener` follows ``saeguard.decisions``: the latest decision per request, TTL.
* :class:`SteeringRegistry` caches the directions of ``saeguard.steering``.
* :class:`GuardHook` is the forward hook that publishes and applies steer / clamp / block.
* :func:`check` asks the sidecar's ``POST /v1/check`` for a synchronous verdict.
* :class:`ResidPost` names a hook point in every numbering scheme.
* :func:`reply_partition_from_env` / :func:`reply_partition_for` pick the one partition of the
  decisions topic a server reads (``reply_partition`` on the publisher and the listener).

vLLM, without patches (topics/python/README.md#vllm; imported on their own, not from here):
:mod:`.vllm_plugin` (the ``vllm.general_plugins`` entry point), :mod:`.vllm_hidden_states` (the
follower of vLLM's ``extract_hidden_states`` files) and :mod:`.vllm_observation` (a plugin for the
observation-plugin API of vllm-project/vllm#37002), configured by :mod:`.vllm_settings`.

See README.md for the HF ``generate`` recipe and the vLLM integrations' caveats.
"""
from .decisions import Action, Decision, DecisionFormatError, FeatureRef, Tier, VectorRef, parse_decision
from .gate import CheckError, CheckResult, check
from .hook import HF_RESIDUAL, VLLM_RESIDUAL, Blocked, GuardHook, HookStats, ResidualStream
from .hook_names import ResidPost, find_decoder_layer
from .interventions import clamp, steer
from .listener import DecisionBook, DecisionListener, ListenerStats
from .publisher import DEFAULT_MAX_RECORD_BYTES, ActivationPublisher, PublisherStats
from .records import RecordSource, encode_records, rows_per_record
from .reply import REPLY_PARTITION_ENV, reply_partition_for, reply_partition_from_env
from .steering import SteeringFormatError, SteeringRegistry, parse_vector

__version__ = "0.1.0"

__all__ = [
    "Action", "ActivationPublisher", "Blocked", "CheckError", "CheckResult", "check", "DEFAULT_MAX_RECORD_BYTES", "Decision", "DecisionBook",
    "DecisionFormatError", "DecisionListener", "FeatureRef", "GuardHook", "HF_RESIDUAL", "HookStats",
    "ListenerStats", "PublisherStats", "RecordSource", "REPLY_PARTITION_ENV", "ResidPost", "ResidualStream", "SteeringFormatError",
    "SteeringRegistry", "Tier", "VLLM_RESIDUAL", "VectorRef", "clamp", "encode_records", "find_decoder_layer",
    "parse_decision", "parse_vector", "reply_partition_for", "reply_partition_from_env", "rows_per_record", "steer",
]
