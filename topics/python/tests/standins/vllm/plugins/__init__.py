"""Mirrors vllm/plugins/__init__.py (vllm-project/vllm @ a27dcf13): the ``vllm.general_plugins``
group, read with importlib.metadata entry points, each function called once per process."""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Callable, Dict

DEFAULT_PLUGINS_GROUP = "vllm.general_plugins"

plugins_loaded = False


def load_plugins_by_group(group: str) -> Dict[str, Callable[[], Any]]:
    plugins: Dict[str, Callable[[], Any]] = {}
    for ep in entry_points(group=group):
        plugins[ep.name] = ep.load()
    return plugins


def load_general_plugins() -> None:
    global plugins_loaded
    if plugins_loaded:
        return
    plugins_loaded = True
    for func in load_plugins_by_group(group=DEFAULT_PLUGINS_GROUP).values():
        func()
