"""Block templates: ``$arg`` / ``${expression}`` substitution in raw spec data.

A template is declared once under ``blocks:`` with its arguments and defaults, and used as
``{use: bottleneck, planes: 64, stride: 2}``. Substitution works on the raw YAML/JSON data,
before validation, so a template body is validated like any other layers list.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Mapping
from typing import Any

_WHOLE = re.compile(r"^\$(\w+)$|^\$\{([^{}]+)\}$")
_INNER = re.compile(r"\$\{([^{}]+)\}|\$(\w+)")

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


class TemplateError(ValueError):
    """A substitution that cannot be done; the parser adds where."""


def evaluate(expr: str, scope: Mapping[str, Any]) -> Any:
    """Arithmetic on numbers and template arguments: ``planes * 4``, ``i + 1``, ``c // 2``."""
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        raise TemplateError(f"cannot parse expression '{expr}'") from None

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in scope:
                known = ", ".join(sorted(scope)) or "none"
                raise TemplateError(f"unknown argument '{node.id}' (known: {known})")
            return scope[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, (ast.Tuple, ast.List)):
            return tuple(ev(e) for e in node.elts)
        raise TemplateError(f"only arithmetic on numbers and arguments is allowed in '{expr}'")

    value = ev(tree)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value


def substitute(value: Any, scope: Mapping[str, Any]) -> Any:
    """Replace ``$name`` and ``${expr}`` everywhere in ``value`` (recursively)."""
    if not scope:
        return value
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:  # keeps the type: "$planes" -> 64, not "64"
            name, expr = whole.groups()
            return evaluate(name or expr, scope)
        return _INNER.sub(lambda m: str(evaluate(m.group(1) or m.group(2), scope)), value)
    if isinstance(value, list):
        return [substitute(v, scope) for v in value]
    if isinstance(value, Mapping):
        return {k: substitute(v, scope) for k, v in value.items()}
    return value
