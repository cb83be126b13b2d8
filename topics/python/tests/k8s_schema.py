"""An offline schema check for Kubernetes objects, from the models of the official Python client.

``kubernetes.client`` (Debian: python3-kubernetes) has one class per API type with the JSON name
and type of every field (``attribute_map``, ``openapi_types``) and setters that refuse ``None``
for required fields. :func:`validate` walks a manifest against them: unknown fields (a typo such
as ``readinesProbe``), wrong types and missing required fields are reported with their path.
"""
from __future__ import annotations

import functools
import inspect
import re
from typing import Any, Dict, List

from kubernetes import client

KINDS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("batch/v1", "Job"): "V1Job",
}
_PRIMITIVES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "object": (object,),
               "datetime": (str,), "date": (str,)}


@functools.lru_cache(maxsize=None)
def _required(type_name: str) -> frozenset:
    cls = getattr(client, type_name)
    out = set()
    for attr in cls.openapi_types:
        setter = getattr(cls, attr).fset
        if setter is not None and "must not be `None`" in inspect.getsource(setter):
            out.add(cls.attribute_map[attr])
    return frozenset(out)


def _check(value: Any, type_name: str, path: str, errors: List[str]) -> None:
    if value is None:
        return
    m = re.fullmatch(r"list\[(.+)\]", type_name)
    if m:
        if not isinstance(value, list):
            errors.append("%s: expected a list, found %s" % (path, type(value).__name__))
            return
        for i, item in enumerate(value):
            _check(item, m.group(1), "%s[%d]" % (path, i), errors)
        return
    m = re.fullmatch(r"dict\((.+), (.+)\)", type_name)
    if m:
        if not isinstance(value, dict):
            errors.append("%s: expected a mapping, found %s" % (path, type(value).__name__))
            return
        for k, v in value.items():
            _check(v, m.group(2), "%s.%s" % (path, k), errors)
        return
    if type_name in _PRIMITIVES:
        ok = isinstance(value, _PRIMITIVES[type_name]) and not (type_name in ("int", "float") and isinstance(value, bool))
        if not ok:
            errors.append("%s: expected %s, found %r" % (path, type_name, value))
        return
    _check_object(value, type_name, path, errors)


def _check_object(value: Any, type_name: str, path: str, errors: List[str]) -> None:
    cls = getattr(client, type_name)
    if not isinstance(value, dict):
        errors.append("%s: expected a %s mapping, found %r" % (path, type_name, value))
        return
    json_to_attr: Dict[str, str] = {v: k for k, v in cls.attribute_map.items()}
    for key, v in value.items():
        attr = json_to_attr.get(key)
        if attr is None:
            errors.append("%s.%s: unknown field of %s" % (path, key, type_name))
            continue
        _check(v, cls.openapi_types[attr], "%s.%s" % (path, key), errors)
    for key in sorted(_required(type_name) - set(value)):
        errors.append("%s.%s: required field of %s is missing" % (path, key, type_name))


def validate(doc: Dict[str, Any]) -> List[str]:
    """Schema errors of one manifest of a kind in :data:`KINDS` (empty when valid)."""
    type_name = KINDS[(doc.get("apiVersion"), doc.get("kind"))]
    errors: List[str] = []
    _check_object(doc, type_name, doc["kind"], errors)
    return errors


def known(doc: Dict[str, Any]) -> bool:
    return (doc.get("apiVersion"), doc.get("kind")) in KINDS
