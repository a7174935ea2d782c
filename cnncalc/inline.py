"""Inline specs: the one-line syntax, and PyTorch code pasted as it is written.

``conv2d(1, 6, 5) relu maxpool2d(2) flatten linear(1176, 10)``: layers are separated by spaces,
newlines, ``,``, ``;``, ``|`` or ``->``; a bare name is a layer without arguments. A call takes
PyTorch's constructor arguments in PyTorch's order, ``in_channels`` / ``in_features`` /
``num_features`` included (the analysis checks them against the layer's input); naming the
other arguments leaves them out (``conv2d(out_channels=6, kernel_size=5)``). ``k s p d g``
abbreviate ``kernel_size stride padding dilation groups``; ``name='c1'`` labels a layer.

Pasted code works as written: ``nn.Conv2d(3, 8, 3)``, ``torch.nn.MaxPool2d(2)``, an
``nn.Sequential(...)`` over several lines (``#`` comments, trailing commas, ``model = `` in
front, an ``OrderedDict`` of named layers). Its rows are named as PyTorch's
``named_modules()`` names them: ``0``, ``1``, … or the ``OrderedDict`` keys, and a nested
``nn.Sequential`` is a block.

The text is parsed with :mod:`ast` and never evaluated. Arguments are literals (numbers,
strings, tuples, lists, ``True``/``False``/``None``) and arithmetic on numbers
(``16 * 5 * 5``); a variable, a call or anything else is refused with one line saying so.
"""

from __future__ import annotations

import ast
import operator
import re
from typing import Any

from cnncalc.errors import SpecError
from cnncalc.layers import BY_KEY, FIELD_ALIASES, Layer, model, type_key

_LAYER_PREFIXES = ((), ("nn",), ("torch", "nn"))
_DICT_PREFIXES = ((), ("collections",))
INFERRED = ("in_channels", "in_features", "num_features")  # checked against the input

# arithmetic on numeric literals, bounded so that no text can ask for a huge computation
_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_MAX_MAGNITUDE = 10**18
_MAX_EXPONENT = 64
_LITERALS = (
    "arguments are literals (numbers, strings, tuples, True/False/None) and "
    "arithmetic on numbers; the text is read, never run"
)


# --------------------------------------------------------------------------- text


def strip_comments(text: str) -> str:
    """Drop Python ``#`` comments (outside string literals)."""
    out, quote, i = [], None, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                out.append(text[i : i + 2])
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        out.append(ch)
        i += 1
    return "".join(out)


_ASSIGNMENT = re.compile(r"^\s*[A-Za-z_][\w.]*\s*=(?!=)")


def clean(text: str) -> str:
    """Comments, non-breaking spaces and a leading ``model =`` removed."""
    text = strip_comments(text).replace("\u00a0", " ")
    return _ASSIGNMENT.sub("", text, count=1)


def split_items(text: str) -> list[str]:
    """Split on separators outside parentheses and string literals."""
    items, depth, current, quote = [], 0, [], None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise SpecError(f"unbalanced '{ch}' at character {i + 1}", where="inline spec")
        if not quote and depth == 0 and (ch in " \t\r\n,;|" or text.startswith("->", i)):
            if current:
                items.append("".join(current))
                current = []
            i += 2 if text.startswith("->", i) else 1
            continue
        current.append(ch)
        i += 1
    if quote:
        raise SpecError("a string is not closed", where="inline spec")
    if depth != 0:
        raise SpecError("unbalanced '(' — a call is not closed", where="inline spec")
    if current:
        items.append("".join(current))
    return items


def parse_inline(text: str) -> list[dict[str, Any]]:
    """Inline text -> raw spec items (layer mappings and ``{name, layers}`` blocks)."""
    items = split_items(clean(text))
    if not items:
        raise SpecError("the spec is empty", where="inline spec")
    readers = [_Item(item, i) for i, item in enumerate(items)]
    if len(readers) == 1 and readers[0].is_sequential():
        # pasted `nn.Sequential(...)`: rows named as PyTorch's named_modules() names them
        return readers[0].sequential(readers[0].node, None, top=True)  # type: ignore[arg-type]
    return [reader.top() for reader in readers]


# --------------------------------------------------------------------------- one item


def _dotted(node: ast.expr) -> tuple[str, ...] | None:
    """``torch.nn.Conv2d`` -> ("torch", "nn", "Conv2d"); None when not a plain name chain."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return tuple(reversed(parts))


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Item:
    """One top-level item of the inline text, parsed with ast; converts it to spec items."""

    def __init__(self, text: str, index: int) -> None:
        self.text, self.index = text.strip(), index
        try:
            self.node: ast.expr | None = ast.parse(self.text, mode="eval").body
        except SyntaxError:
            self.node = None

    def src(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or ast.unparse(node)

    def where(self, node: ast.AST, path: str | None) -> str:
        return f"layer {path or self.index} (inline '{_short(self.src(node))}')"

    def is_sequential(self) -> bool:
        return isinstance(self.node, ast.Call) and self._kind(self.node, None) == "sequential"

    def top(self) -> dict[str, Any]:
        node = self.node
        if node is None:
            raise SpecError(
                "not a layer call such as conv2d(3, 6, 5) or nn.ReLU()",
                where=f"layer {self.index} (inline '{_short(self.text)}')",
            )
        return self.module(node, None, str(self.index))

    # ---- modules

    def _kind(self, call: ast.Call, path: str | None) -> str:
        """'sequential', 'ordered_dict' or 'layer' — or a SpecError for any other call."""
        parts = _dotted(call.func)
        if parts is None:
            raise SpecError(
                "not a layer call such as conv2d(3, 6, 5) or nn.ReLU()",
                where=self.where(call, path),
            )
        prefix, name = parts[:-1], parts[-1]
        if name == "OrderedDict" and prefix in _DICT_PREFIXES:
            return "ordered_dict"
        if prefix not in _LAYER_PREFIXES:
            raise SpecError(
                f"'{'.'.join(parts)}' is not a torch.nn layer: layers are written "
                "Conv2d(...), nn.Conv2d(...) or torch.nn.Conv2d(...)",
                where=self.where(call, path),
            )
        return "sequential" if name == "Sequential" else "layer"

    def module(self, node: ast.expr, path: str | None, label: str) -> dict[str, Any]:
        """A layer or a nested nn.Sequential (a block named ``label``)."""
        if not isinstance(node, ast.Call):
            parts = _dotted(node)
            if parts is None or parts[:-1] not in _LAYER_PREFIXES:
                raise SpecError(
                    "not a layer call such as conv2d(3, 6, 5) or nn.ReLU()",
                    where=self.where(node, path),
                )
            return {"type": parts[-1]}  # a bare name: the layer with its defaults
        kind = self._kind(node, path)
        if kind == "sequential":
            return {"name": label, "layers": self.sequential(node, path, top=False)}
        if kind == "ordered_dict":
            raise SpecError(
                "an OrderedDict of layers goes inside nn.Sequential(...)",
                where=self.where(node, path),
            )
        return self.layer(node, path)

    def sequential(self, call: ast.Call, path: str | None, top: bool) -> list[dict[str, Any]]:
        if call.keywords or any(isinstance(a, ast.Starred) for a in call.args):
            raise SpecError(
                "nn.Sequential takes layers, or one OrderedDict of named layers",
                where=self.where(call, path),
            )
        named = (
            len(call.args) == 1
            and isinstance(call.args[0], ast.Call)
            and self._kind(call.args[0], path) == "ordered_dict"
        )
        entries = (
            self._entries(call.args[0], path)
            if named
            else [(str(j), arg) for j, arg in enumerate(call.args)]
        )
        out = []
        for key, node in entries:
            child = f"{path}.{key}" if path else key
            item = self.module(node, child, key)
            if named or top:  # inside a block an unnamed layer is named by its index anyway
                item.setdefault("name", key)
            out.append(item)
        return out

    def _entries(self, call: ast.Call, path: str | None) -> list[tuple[str, ast.expr]]:
        """The (key, layer) pairs of ``OrderedDict([('conv1', ...), ...])``, of
        ``OrderedDict(conv1=...)`` or of ``OrderedDict({'conv1': ...})``."""
        where = self.where(call, path)
        pairs: list[tuple[ast.expr | None, ast.expr]] = []
        if len(call.args) > 1 or any(kw.arg is None for kw in call.keywords):
            raise SpecError("OrderedDict takes one list of (name, layer) pairs", where=where)
        if call.args:
            arg = call.args[0]
            if isinstance(arg, ast.Dict):
                pairs += list(zip(arg.keys, arg.values))  # type: ignore[arg-type]
            elif isinstance(arg, (ast.List, ast.Tuple)):
                for elt in arg.elts:
                    if not (isinstance(elt, ast.Tuple) and len(elt.elts) == 2):
                        raise SpecError(
                            f"'{_short(self.src(elt))}' is not a (name, layer) pair", where=where
                        )
                    pairs.append((elt.elts[0], elt.elts[1]))
            else:
                raise SpecError("OrderedDict takes one list of (name, layer) pairs", where=where)
        out: list[tuple[str, ast.expr]] = []
        for key_node, value in pairs:
            key = key_node.value if isinstance(key_node, ast.Constant) else None
            if not isinstance(key, str):
                shown = _short(self.src(key_node)) if key_node is not None else "**"
                raise SpecError(f"the name {shown} is not a string literal", where=where)
            out.append((key, value))
        out += [(kw.arg, kw.value) for kw in call.keywords]  # type: ignore[misc]
        seen: set[str] = set()
        for key, _ in out:
            if not key or "." in key:
                raise SpecError(
                    f"module name {key!r} must be non-empty and contain no '.'", where=where
                )
            if key in seen:
                raise SpecError(f"module name {key!r} is given twice", where=where)
            seen.add(key)
        return out

    # ---- one layer

    def layer(self, call: ast.Call, path: str | None) -> dict[str, Any]:
        where = self.where(call, path)
        func = self.src(call.func)
        kind = _dotted(call.func)[-1]  # type: ignore[index]
        if any(isinstance(a, ast.Starred) for a in call.args):
            raise SpecError("*args are not accepted", where=where)
        if any(kw.arg is None for kw in call.keywords):
            raise SpecError("**kwargs are not accepted", where=where)
        args = [self.value(a, where) for a in call.args]
        known = BY_KEY.get(type_key(kind))
        cls = None if known is None else model(known)
        data: dict[str, Any] = {"type": kind}
        kwargs: dict[str, Any] = {}
        for kw in call.keywords:
            field = kw.arg
            if cls is not None and field not in cls.model_fields:  # k s p d g
                field = FIELD_ALIASES.get(field, field)  # type: ignore[arg-type]
            if field in kwargs:
                raise SpecError("given twice", where=where, field=field)
            kwargs[field] = self.value(kw.value, where)  # type: ignore[index]
        if cls is None:  # unknown type: parse_layer reports it first
            if args:
                data["_positional"] = args
            data.update(kwargs)
            return data
        names = cls.positional
        if len(args) > len(names):
            raise SpecError(
                f"{len(args)} positional arguments given, {cls.__name__} takes "
                f"{len(names)}: {signature(cls, defaults=False)}",
                where=where,
            )
        for field, value in zip(names, args):
            if field in kwargs:
                raise SpecError("given both positionally and by name", where=where, field=field)
            data[field] = value
        data.update(kwargs)
        missing = [
            f
            for f, info in cls.model_fields.items()
            if info.is_required() and f not in data and info.alias not in data
        ]
        if missing and args:
            raise SpecError(self._missing_hint(call, cls, func), where=where, field=missing[0])
        return data

    def _missing_hint(self, call: ast.Call, cls: type[Layer], func: str) -> str:
        """Old inline texts left the input size out of the positional arguments."""
        names = cls.positional
        reads = ", ".join(f"{f}={self.src(a)}" for f, a in zip(names, call.args))
        text = (
            f"required field is missing — positional arguments follow PyTorch: "
            f"{signature(cls, defaults=False, limit=3)}, so this reads {reads}"
        )
        if names[0] in INFERRED and len(call.args) < len(names):
            named = [f"{f}={self.src(a)}" for f, a in zip(names[1:], call.args)]
            named += [f"{kw.arg}={self.src(kw.value)}" for kw in call.keywords]
            text += f"; to leave {names[0]} out, name the others: {func}({', '.join(named)})"
        return text

    # ---- values

    def value(self, node: ast.expr, where: str) -> Any:
        """A literal, a tuple/list of them, or arithmetic on numeric literals."""
        if isinstance(node, ast.Constant):
            v = node.value
            if v is None or isinstance(v, (bool, str)):
                return v
            if isinstance(v, (int, float)):
                return self._bounded(v, node, where)
        elif isinstance(node, ast.Tuple):
            return tuple(self.value(e, where) for e in node.elts)
        elif isinstance(node, ast.List):
            return [self.value(e, where) for e in node.elts]
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = self._number(node.operand, where)
            return -v if isinstance(node.op, ast.USub) else v
        elif isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            a, b = self._number(node.left, where), self._number(node.right, where)
            if isinstance(node.op, ast.Pow) and abs(b) > _MAX_EXPONENT:
                raise SpecError(
                    f"'{self.src(node)}': exponents above {_MAX_EXPONENT} are not accepted",
                    where=where,
                )
            try:
                result = _OPS[type(node.op)](a, b)
            except ZeroDivisionError:
                raise SpecError(f"'{self.src(node)}' divides by zero", where=where) from None
            except OverflowError:
                result = float("inf")
            if isinstance(result, complex):
                raise SpecError(f"'{self.src(node)}' is not a real number", where=where)
            return self._bounded(result, node, where)
        raise SpecError(
            f"'{_short(self.src(node), 40)}' is {_what(node)}: {_LITERALS}", where=where
        )

    def _number(self, node: ast.expr, where: str) -> int | float:
        v = self.value(node, where)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SpecError(
                f"'{_short(self.src(node), 40)}': arithmetic is on numbers only", where=where
            )
        return v

    def _bounded(self, v: int | float, node: ast.expr, where: str) -> int | float:
        if not abs(v) <= _MAX_MAGNITUDE:  # also NaN
            raise SpecError(f"'{_short(self.src(node), 40)}' is beyond ±10**18", where=where)
        return v


def _what(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return "a variable"
    if isinstance(node, ast.Call):
        return "a call"
    if isinstance(node, ast.Attribute):
        return "an attribute"
    return "not a literal"


# --------------------------------------------------------------------------- signatures


def signature(cls: type[Layer], defaults: bool = True, limit: int | None = None) -> str:
    """PyTorch's constructor line: ``Conv2d(in_channels, out_channels, kernel_size, stride=1,
    …)``; without defaults only the names; ``limit`` shows the first few and ``…``."""
    names = list(cls.positional)
    shown = names if limit is None or len(names) <= limit else names[:limit] + ["…"]
    parts = []
    for name in shown:
        info = cls.model_fields.get(name)
        if not defaults or info is None or info.is_required() or name in INFERRED:
            parts.append(name)
        else:
            parts.append(f"{name}={info.default!r}")
    return f"{cls.__name__}({', '.join(parts)})"
