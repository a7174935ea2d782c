"""Block templates: ``$arg`` / ``${expression}`` substitution in raw spec data.

A template is declared once under ``blocks:`` with its arguments and defaults, and used as
``{use: bottleneck, planes: 64, stride: 2}``. Substitution works on the raw YAML/JSON data,
before validation, so a template body is validated like any other layers list.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Mapping
from typing import Any

from cnncalc.errors import printable

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
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}

# Bounds: an expression is short arithmetic on layer sizes, never a way to make work.
MAX_EXPR_CHARS = 1000
MAX_EXPR_DEPTH = 50  # nested operations in one expression
MAX_INT_BITS = 256  # integers up to about 10**77
MAX_STRING = 10_000  # characters a substitution may build


class TemplateError(ValueError):
    """A substitution that cannot be done; the parser adds where."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _round(x: Any, ndigits: Any = None) -> Any:
    if ndigits is not None and (not isinstance(ndigits, int) or abs(ndigits) > 100):
        raise TemplateError("round's digits must be a whole number between -100 and 100")
    return round(x) if ndigits is None else round(x, ndigits)


# the functions an expression may call: Python 3's, on numbers only
_FUNCTIONS = {"min": min, "max": max, "round": _round, "int": int, "abs": abs}


def _checked(value: Any, expr: str) -> Any:
    """Refuse numbers too big to be a layer size and floats that overflowed."""
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise TemplateError(f"'{expr}' gives a number of more than {MAX_INT_BITS} bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise TemplateError(f"'{expr}' gives {value}, not a finite number")
    if isinstance(value, complex):
        raise TemplateError(f"'{expr}' gives a complex number")
    return value


def _power(base: Any, exp: Any, expr: str) -> Any:
    if isinstance(base, int) and isinstance(exp, int) and exp > 0 and abs(base) > 1:
        if (abs(base).bit_length() - 1) * exp > MAX_INT_BITS:
            raise TemplateError(f"'{expr}' gives a number of more than {MAX_INT_BITS} bits")
    return base**exp


def evaluate(expr: str, scope: Mapping[str, Any]) -> Any:
    """Arithmetic on numbers and template arguments: ``planes * 4``, ``i + 1``, ``c // 2``,
    ``max(8, int(c * 0.75) // 8 * 8)``, ``2 if first else 1``.

    The expression is parsed with :mod:`ast` and walked; nothing is ever ``eval``-ed. Allowed:
    numbers, strings and argument names; ``+ - * / // % **`` on numbers; comparisons,
    ``and``/``or``/``not`` and ``a if cond else b``; ``min max round int abs`` (Python 3's
    semantics: ``round`` rounds half to even); tuples; ``(n := expr)`` names a value for the
    rest of the expression.
    """
    shown = printable(expr.strip(), 80)
    if len(expr) > MAX_EXPR_CHARS:
        raise TemplateError(f"expression of {len(expr):,} characters (at most {MAX_EXPR_CHARS})")
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise TemplateError(f"cannot parse expression '{shown}'") from None
    stack = [(tree, 1)]
    while stack:  # depth first, without recursion
        node, depth = stack.pop()
        if depth > MAX_EXPR_DEPTH:
            raise TemplateError(
                f"expression '{shown}' nests more than {MAX_EXPR_DEPTH} operations deep"
            )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    local: dict[str, Any] = {}

    def refuse() -> TemplateError:
        return TemplateError(f"only arithmetic on numbers and arguments is allowed in '{shown}'")

    def numbers(*values: Any) -> None:
        if not all(_number(v) for v in values):
            raise refuse()

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
            return _checked(node.value, shown)
        if isinstance(node, ast.Name):
            if node.id in local:
                return local[node.id]
            if node.id not in scope:
                known = ", ".join(sorted(scope)) or "none"
                raise TemplateError(
                    f"unknown argument '{printable(node.id, 40)}' (known: {printable(known, 200)})"
                )
            return scope[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = ev(node.left), ev(node.right)
            numbers(left, right)
            if isinstance(node.op, ast.Pow):
                return _checked(_power(left, right, shown), shown)
            return _checked(_BINARY[type(node.op)](left, right), shown)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = ev(node.operand)
            numbers(value)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not ev(node.operand)
        if isinstance(node, ast.BoolOp):
            value = None
            for operand in node.values:  # Python's short-circuit: and/or return an operand
                value = ev(operand)
                if bool(value) == isinstance(node.op, ast.Or):
                    return value
            return value
        if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            left = ev(node.left)
            for op, right_node in zip(node.ops, node.comparators):
                right = ev(right_node)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return ev(node.body) if ev(node.test) else ev(node.orelse)
        if isinstance(node, ast.NamedExpr):
            local[node.target.id] = value = ev(node.value)
            return value
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
        ):
            args = [ev(a) for a in node.args]
            if node.func.id in ("min", "max") and len(args) == 1 and isinstance(args[0], tuple):
                args = list(args[0])
            numbers(*args)
            return _checked(_FUNCTIONS[node.func.id](*args), shown)
        if isinstance(node, (ast.Tuple, ast.List)):
            return tuple(ev(e) for e in node.elts)
        raise refuse()

    try:
        value = ev(tree)
    except TemplateError:
        raise
    except OverflowError:
        raise TemplateError(f"'{shown}' gives a number too large for a float") from None
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise TemplateError(f"cannot evaluate '{shown}': {exc}") from None
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
        return _inner(value, scope)
    if isinstance(value, list):
        return [substitute(v, scope) for v in value]
    if isinstance(value, Mapping):
        return {k: substitute(v, scope) for k, v in value.items()}
    return value


def _inner(text: str, scope: Mapping[str, Any]) -> str:
    """``"layer${i + 1}"`` -> ``"layer3"``; the result may not grow past MAX_STRING characters
    (templates passing strings to templates would otherwise double them at every level)."""
    pieces, size, end = [], 0, 0
    bound = max(len(text), MAX_STRING)
    for m in _INNER.finditer(text):
        piece = str(evaluate(m.group(1) or m.group(2), scope))
        size += m.start() - end + len(piece)
        if size > bound:
            raise TemplateError(f"substitution builds a string of more than {bound:,} characters")
        pieces += [text[end : m.start()], piece]
        end = m.end()
    return "".join(pieces) + text[end:]
