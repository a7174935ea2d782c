"""One registered entry per layer type and per merge: the parts every type must declare.

A part is one concern of a type — its spec model, its arithmetic (shape, parameters, MACs and
receptive-field windows), its exact unit span, its worked explanation, its forward/backward
kernel binding. Each part lives in the module that owns the concern (pure arithmetic stays
apart from kernels and text) and is registered there with :func:`rule` under the *type names*
it serves (``"conv2d"``, or a family tuple such as ``layers.CONV_ND``), so registering builds
no model class. Lookups match the exact class: a type without a rule for a part is an error
naming the type and the part, never a fall-through to "the other kind" (a subclass of
``Conv2d`` is not a ``conv2d``). ``tests/test_registry.py`` walks :data:`ALL_TYPES` ×
:data:`PARTS` and fails on any gap.

Adding a layer type: its model in ``layers.py`` (and in ``LAYER_CLASSES``), then one ``rule``
per part in the module listed in :data:`PARTS`, then its tests.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from cnncalc.layers import LAYER_CLASSES, MERGE_CLASSES, Layer, canonical_type, model

# part -> the module that registers it (imported on first lookup: numba only when running)
PARTS: dict[str, str] = {
    "infer": "cnncalc.arithmetic",  # output shape, params, buffers, MACs, RF windows
    "span": "cnncalc.arithmetic",  # exact input positions a unit reads
    "explain": "cnncalc.explain",  # the formulas with numbers substituted
    "step": "cnncalc.execute",  # forward and backward kernel binding
    "torch": "cnncalc.export_torch",  # how it is written as PyTorch (module or expression)
    "onnx": "cnncalc.onnx_export",  # how it is emitted as ONNX nodes and initializers
    "saved": "cnncalc.memory",  # what autograd keeps for backward (training memory)
}

# every type name: the layer types, then the merges
ALL_TYPES: tuple[str, ...] = (*LAYER_CLASSES, *MERGE_CLASSES)

_RULES: dict[str, dict[str, Callable[..., Any]]] = {part: {} for part in PARTS}
# part -> model class -> rule: what lookup has resolved (and checked to be exact) before
_RESOLVED: dict[str, dict[type[Layer], Callable[..., Any]]] = {part: {} for part in PARTS}


class MissingRule(LookupError):
    """A type lacks a part: a bug in cnncalc, caught by the registry test."""


def _class_name(kind: str) -> str:
    return LAYER_CLASSES.get(kind) or MERGE_CLASSES[kind]


def rule(part: str, *kinds: str) -> Callable[[Callable], Callable]:
    """Register the decorated function as ``part`` of each of the types named ``kinds``."""
    table = _RULES[part]
    for kind in kinds:
        if kind not in LAYER_CLASSES and kind not in MERGE_CLASSES:
            raise MissingRule(f"'{kind}' is not a layer type or merge (a '{part}' rule)")

    def register(fn: Callable) -> Callable:
        for kind in kinds:
            if kind in table:
                raise MissingRule(f"{_class_name(kind)} has two '{part}' rules")
            table[kind] = fn
        return fn

    return register


def lookup(part: str, cls: type[Layer]) -> Callable[..., Any]:
    """The ``part`` rule of model class ``cls``; loads the owning module on first use."""
    try:
        return _RESOLVED[part][cls]
    except KeyError:
        pass
    kind = canonical_type(cls) if "type" in cls.model_fields else None
    if kind not in ALL_TYPES or model(kind) is not cls:  # a subclass, or not a layer at all
        raise MissingRule(f"{cls.__name__} has no '{part}' rule")
    table = _RULES[part]
    if kind not in table:
        importlib.import_module(PARTS[part])
    try:
        fn = _RESOLVED[part][cls] = table[kind]
    except KeyError:
        raise MissingRule(f"{cls.__name__} has no '{part}' rule") from None
    return fn


def missing() -> list[tuple[str, str]]:
    """Every (type, part) without a rule — empty when the registry is complete."""
    for module in set(PARTS.values()):
        importlib.import_module(module)
    return [(kind, part) for kind in ALL_TYPES for part in PARTS if kind not in _RULES[part]]


def is_merge(cls: type[Layer]) -> bool:
    return canonical_type(cls) in MERGE_CLASSES
