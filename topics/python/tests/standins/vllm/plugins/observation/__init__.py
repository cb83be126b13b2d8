"""Mirrors vllm/plugins/observation/__init__.py of vllm-project/vllm#37002 (@ 82e0455b)."""
from .interface import (ObservationAction, ObservationPlugin, ObservationResult, PluginManager, RequestContext,
                        load_observation_plugins)

__all__ = ["ObservationAction", "ObservationPlugin", "ObservationResult", "PluginManager", "RequestContext",
           "load_observation_plugins"]
