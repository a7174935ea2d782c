"""The one-line spec syntax: ``conv2d(6, 5) relu maxpool2d(2) flatten linear(10)``.

Layers are separated by spaces, ``,``, ``;``, ``|`` or ``->``. Arguments are Python literals;
positional ones follow PyTorch's constructor order with the inferred input size left out
(``conv2d(out_channels, kernel_size, stride, padding, ...)``), and ``k s p d g`` abbreviate
``kernel_size stride padding dilation groups``.
"""

from __future__ import annotations

import ast
from typing import Any

from cnncalc.errors import SpecError
from cnncalc.layers import BY_KEY, type_key


def split_items(text: str) -> list[str]:
    """Split on separators outside parentheses."""
    items, depth, current = [], 0, []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                raise SpecError(f"unbalanced ')' at character {i + 1}", where="inline spec")
        if depth == 0 and (ch in " \t,;|" or text.startswith("->", i)):
            if current:
                items.append("".join(current))
                current = []
            i += 2 if text.startswith("->", i) else 1
            continue
        current.append(ch)
        i += 1
    if depth != 0:
        raise SpecError("unbalanced '(' — a call is not closed", where="inline spec")
    if current:
        items.append("".join(current))
    return items


def parse_item(item: str, index: int) -> dict[str, Any]:
    where = f"layer {index} (inline '{item}')"
    try:
        node = ast.parse(item.strip(), mode="eval").body
    except SyntaxError:
        raise SpecError("not a layer call such as conv2d(6, 5)", where=where) from None
    if isinstance(node, ast.Name):
        return {"type": node.id}
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise SpecError("not a layer call such as conv2d(6, 5)", where=where)
    kind = node.func.id
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    except ValueError:
        raise SpecError("arguments must be literals (numbers, strings, tuples, True/False)",
                        where=where) from None
    if None in kwargs:
        raise SpecError("**kwargs are not accepted", where=where)
    data: dict[str, Any] = {"type": kind}
    cls = BY_KEY.get(type_key(kind))
    if cls is not None and args:
        names = cls.positional
        if len(args) > len(names):
            order = ", ".join(names) or "none"
            raise SpecError(
                f"{len(args)} positional arguments given, {kind} takes {len(names)} ({order})",
                where=where,
            )
        for field, value in zip(names, args):
            if field in kwargs:
                raise SpecError("given both positionally and by name", where=where, field=field)
            data[field] = value
    elif args:
        data["_positional"] = args  # unknown type: parse_layer reports the type first
    data.update(kwargs)
    return data


def parse_inline(text: str) -> list[dict[str, Any]]:
    return [parse_item(item, i) for i, item in enumerate(split_items(text))]
