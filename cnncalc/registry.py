"""One registered entry per layer type and per merge: the parts every type must declare.

A part is one concern of a type — its spec model, its arithmetic (shape, parameters, MACs and
receptive-field windows), its exact unit span, its worked explanation, its forward/backward
kernel binding. Each part lives in the module that owns the concern (pure arithmetic stays
apart from kernels and text) and is registered there with :func:`rule` against the *concrete*
model classes it serves. Lookups match the exact class: a type without a rule for a part is an
error naming the type and the part, never a fall-through to "the other kind".
``tests/test_registry.py`` walks :data:`ALL_TYPES` × :data:`PARTS` and fails on any gap.

Adding a layer type: its model in ``layers.py`` (and in ``LAYER_TYPES``), then one ``rule``
per part in the module listed in :data:`PARTS`, then its tests.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from cnncalc.layers import LAYER_TYPES, MERGE_TYPES, Layer

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

ALL_TYPES: tuple[type[Layer], ...] = LAYER_TYPES + MERGE_TYPES

_RULES: dict[str, dict[type[Layer], Callable[..., Any]]] = {part: {} for part in PARTS}


class MissingRule(LookupError):
    """A type lacks a part: a bug in cnncalc, caught by the registry test."""


def rule(part: str, *models: type[Layer]) -> Callable[[Callable], Callable]:
    """Register the decorated function as ``part`` of each of ``models`` (exact classes)."""
    table = _RULES[part]

    def register(fn: Callable) -> Callable:
        for model in models:
            if model in table:
                raise MissingRule(f"{model.__name__} has two '{part}' rules")
            table[model] = fn
        return fn

    return register


def lookup(part: str, model: type[Layer]) -> Callable[..., Any]:
    """The ``part`` rule of ``model``; loads the owning module on first use."""
    table = _RULES[part]
    if model not in table:
        importlib.import_module(PARTS[part])
    try:
        return table[model]
    except KeyError:
        raise MissingRule(f"{model.__name__} has no '{part}' rule") from None


def missing() -> list[tuple[str, str]]:
    """Every (type, part) without a rule — empty when the registry is complete."""
    for module in set(PARTS.values()):
        importlib.import_module(module)
    return [(m.__name__, part) for m in ALL_TYPES for part in PARTS if m not in _RULES[part]]


def is_merge(model: type[Layer]) -> bool:
    return model in MERGE_TYPES
