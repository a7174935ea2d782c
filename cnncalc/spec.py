"""Reading a spec: YAML/JSON text, a file, stdin or the inline syntax, into validated models.

Validation happens here, once; every error becomes one :class:`SpecError` line that names the
layer (index and name), the field, the value and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cnncalc.errors import SpecError, UsageError, closest, printable, show
from cnncalc.layers import (
    BY_KEY,
    FIELD_ALIASES,
    MERGE_CLASSES,
    Layer,
    model,
    type_key,
)

Shape = tuple[int, ...]

# Bounds on what a small spec may make cnncalc do (each refusal is one line, exit 1).
MAX_SPEC_CHARS = 16 * 1024 * 1024  # a spec file, stdin or inline text
MAX_NESTING = 256  # YAML/JSON collections inside one another
MAX_ALIAS_NODES = 100_000  # nodes that YAML aliases (*a) may add when expanded
MAX_DIGITS = 100  # digits of an integer written in a spec
MAX_LAYERS = 100_000  # layers once templates and repeats are expanded
MAX_BLOCK_DEPTH = 100  # blocks, branches and template uses inside one another


@dataclass(frozen=True)
class LayerNode:
    """One layer, with the place it was written (for error messages)."""

    layer: Layer
    where: str
    key: str  # its name, or its index in the enclosing list (nn.Sequential style)
    place: str = ""  # where it is written: ``layer 3`` or ``layers[4].residual[2]``


@dataclass(frozen=True)
class Block:
    """A named group of nodes run in sequence (nn.Sequential); a template use is one too.

    ``source``: the block reads that earlier named output instead of the current value.
    ``side``: a side output (an auxiliary head): it is reported as a network output, and the
    main flow continues with the block's input.
    """

    nodes: tuple[Node, ...]
    where: str
    key: str | None  # None: transparent, children are named as if written in the parent
    template: str | None = None
    source: Ref | None = None
    side: bool = False


@dataclass(frozen=True)
class Ref:
    """A branch that is the output of an earlier named node (U-Net skips, dense links)."""

    target: str
    where: str


@dataclass(frozen=True)
class AutoShortcut:
    """ResNet's shortcut: identity when shapes agree, else 1×1 conv (stride, no bias) + BN."""

    where: str


Branch = Block | Ref | AutoShortcut


@dataclass(frozen=True)
class Merge:
    """Parallel branches from the same input, joined by a merge op (add, concat, mul).

    ``split``: the input is first cut along channels, one part per branch — a chunk count
    (``torch.chunk``) or the part sizes (``torch.split``).
    """

    op: Layer  # a merge model: layers.Add, Concat or Mul
    branches: tuple[Branch, ...]
    where: str
    key: str | None  # None: transparent (a residual inside a block is named by that block)
    place: str = ""  # where it is written, e.g. ``layers[9](up).layers[1]``
    split: int | tuple[int, ...] | None = None


Node = LayerNode | Block | Merge


@dataclass(frozen=True)
class Spec:
    """A validated network: an optional name, an optional input shape and its nodes."""

    nodes: tuple[Node, ...]
    input: Shape | None = None
    name: str | None = None

    @property
    def layers(self) -> tuple[Layer, ...]:
        """Every layer, in the order written (templates and repeats expanded)."""
        return tuple(_leaves(self.nodes))


def _leaves(nodes: tuple[Node, ...]):
    for node in nodes:
        if isinstance(node, LayerNode):
            yield node.layer
        elif isinstance(node, Block):
            yield from _leaves(node.nodes)
        elif isinstance(node, Merge):
            for branch in node.branches:
                if isinstance(branch, Block):
                    yield from _leaves(branch.nodes)


def label(place: str, layer_type: str, name: str | None) -> str:
    """How errors and warnings name a layer: ``layer 3 (conv2d 'c3')``.

    ``place`` is ``layer N`` at the top level and a path such as
    ``layers[4].residual[2]`` inside blocks.
    """
    layer_type = printable(layer_type, 60)
    return f"{place} ({layer_type} '{printable(name, 60)}')" if name else f"{place} ({layer_type})"


# --------------------------------------------------------------------------- shapes


_SHAPE_TEXT = re.compile(r"^\s*\d+(\s*[x×,*]\s*\d+)*\s*$")


def parse_shape(value: Any, where: str = "input") -> Shape:
    """``[3, 32, 32]``, ``(3, 32, 32)``, ``"3x32x32"`` or ``"3,32,32"`` -> ``(3, 32, 32)``."""
    if isinstance(value, str):
        if not _SHAPE_TEXT.match(value):
            raise SpecError(
                "expected a shape such as 3x224x224 (C,H,W), 2x100 (C,L) or 3x16x112x112",
                where=where,
                field=None,
            )
        parts = re.split(r"[x×,*]", value.replace(" ", ""))
        if any(len(v) > MAX_DIGITS for v in parts):
            raise SpecError(f"a size has more than {MAX_DIGITS} digits", where=where)
        dims = tuple(int(v) for v in parts)
    elif isinstance(value, Sequence) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        dims = tuple(value)
    else:
        raise SpecError(
            f"expected a list of integers or text such as 3x32x32, got {show(value)}", where=where
        )
    if not dims:
        raise SpecError("the shape is empty", where=where)
    if len(dims) > 4:
        raise SpecError(
            f"{len(dims)} dimensions given; cnncalc takes C,L / C,H,W / C,D,H,W "
            "without the batch (use --batch for it)",
            where=where,
        )
    if any(d.bit_length() > 256 for d in dims):
        raise SpecError(f"a size has more than {MAX_DIGITS} digits", where=where)
    if any(d < 1 for d in dims):
        raise SpecError(f"every size must be >= 1, got {'x'.join(map(str, dims))}", where=where)
    return dims


# --------------------------------------------------------------------------- layers


def parse_layer(raw: Any, place: str, cache: dict | None = None) -> Layer:
    """Validate one layer mapping; raise a one-line SpecError naming it on any problem.

    With ``cache``, a mapping already validated returns the same (never modified) Layer:
    repeats and templates write the same layer many times."""
    key = None
    if cache is not None and type(raw) is dict:
        try:
            key = _frozen(raw)
            return cache[key]
        except (KeyError, TypeError):
            pass
    layer = _parse_layer(raw, place)
    if key is not None:
        cache[key] = layer
    return layer


def _frozen(value: Any) -> Any:
    """A hashable key for raw data that keeps types apart (1, 1.0 and True differ)."""
    kind = type(value)
    if kind is dict:
        return (dict, tuple([(k, _frozen(v)) for k, v in value.items()]))
    if kind is list or kind is tuple:
        return (kind, tuple([_frozen(v) for v in value]))
    hash(value)  # TypeError for anything unhashable: not cached
    return (kind, value)


def _parse_layer(raw: Any, place: str) -> Layer:
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"expected a mapping such as {{type: conv2d, out_channels: 6, kernel_size: 5}}, "
            f"got {show(raw)}",
            where=place,
        )
    data = dict(raw)
    name = data.get("name")
    name = name if isinstance(name, str) else None
    given = data.get("type")
    if not isinstance(given, str):
        raise SpecError(
            "every layer needs a 'type', e.g. type: conv2d", where=label(place, "?", name)
        )
    kind = BY_KEY.get(type_key(given))
    if kind is None:
        hint = closest(type_key(given), list(BY_KEY))
        suffix = f" (did you mean {BY_KEY[hint[0]]}?)" if hint else ""
        raise SpecError(
            f"unknown layer type{suffix}; `cnncalc types` lists them",
            where=label(place, given, name),
            field="type",
            value=given,
            has_value=True,
        )
    cls = model(kind)
    data["type"] = kind
    # short aliases (k, s, p, d, g) unless the layer has a field of that name (dropout's p)
    data = {
        FIELD_ALIASES.get(k, k) if k not in cls.model_fields else k: _tuples(v)
        for k, v in data.items()
    }
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise _one_line(exc, cls, label(place, kind, name)) from None


def _tuples(value: Any) -> Any:
    """YAML/JSON lists become tuples (sizes are tuples) — except the connection table."""
    if isinstance(value, list) and not any(isinstance(v, list) for v in value):
        return tuple(value)
    return value


def _one_line(exc: ValidationError, cls: type[Layer], where: str) -> SpecError:
    errors = exc.errors()
    # a typo in a required field gives "missing" and "extra_forbidden": the typo explains both
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    if err["type"] == "tuple_type":  # int | tuple given a bool or a string: say integer
        same = [e for e in errors if e["loc"][:1] == err["loc"][:1]]
        err = next((e for e in same if e["type"] == "int_type"), err)
    loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
    field = loc[0] if loc else None
    if err["type"] == "extra_forbidden":
        options = [f for f in cls.model_fields if f != "type"]
        hint = closest(field or "", options)
        reason = (
            f"unknown field (did you mean '{hint[0]}'?)"
            if hint
            else ("unknown field; known fields: " + ", ".join(options))
        )
        return SpecError(reason, where=where, field=field)
    if err["type"] == "missing":
        return SpecError("required field is missing", where=where, field=field)
    msg = err["msg"]
    given = err.get("input")
    if err["type"] in ("int_type", "bool_type", "float_type") and isinstance(given, (bool, str)):
        want = {"int_type": "an integer", "bool_type": "true or false", "float_type": "a number"}[
            err["type"]
        ]
        what = "a boolean" if isinstance(given, bool) else "a string"
        msg = f"must be {want}, not {what}"
    msg = msg.removeprefix("Value error, ")
    msg = msg[0].lower() + msg[1:]
    if field is None:  # a model-level rule (e.g. 'same' with stride 2)
        return SpecError(msg, where=where)
    # union members each report; the first member's message is the most useful one
    return SpecError(msg, where=where, field=field, value=_plain(err.get("input")), has_value=True)


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# --------------------------------------------------------------------------- graphs


_CONTAINER_KEYS = ("layers", "residual", *MERGE_CLASSES, "use")
_NODE_EXTRA = {
    "layers": ("name", "repeat", "from", "output"),
    "residual": ("name", "shortcut", "repeat"),
    **{kind: ("name", "repeat", "split") for kind in MERGE_CLASSES},
}


@dataclass(frozen=True)
class Template:
    args: dict[str, Any]  # default values; None means required
    layers: list[Any]


def _names_each_copy(raw: Mapping) -> bool:
    """A repeat without a name, or whose name uses ``$`` (``denselayer${i + 1}``), puts its
    copies straight into the enclosing list; a plain name makes a block holding them."""
    name = raw.get("name")
    return name is None or (isinstance(name, str) and "$" in name)


class _Parser:
    """Raw YAML/JSON data -> node tree; templates and repeats are expanded on the way."""

    def __init__(self, templates: Mapping[str, Template]) -> None:
        self.templates = templates
        self.depth = 0
        self.level = 0  # lists of layers inside one another (blocks, branches, templates)
        self.count = 0  # nodes made so far (layers, blocks, merges)
        self.cache: dict = {}  # validated layers by content (parse_layer)

    def nodes(
        self, items: Any, path: str, scope: Mapping[str, Any], top: bool = False
    ) -> tuple[Node, ...]:
        self.level += 1
        try:
            if self.level > MAX_BLOCK_DEPTH:
                raise SpecError(f"blocks nest more than {MAX_BLOCK_DEPTH} levels deep", where=path)
            return self._nodes(items, path, scope, top)
        finally:
            self.level -= 1

    def _grow(self, place: str) -> None:
        self.count += 1
        if self.count > MAX_LAYERS:
            raise SpecError(
                f"the spec expands to more than {MAX_LAYERS:,} layers and blocks "
                "(repeats and templates multiply)",
                where=place,
            )

    def _nodes(
        self, items: Any, path: str, scope: Mapping[str, Any], top: bool
    ) -> tuple[Node, ...]:
        if not isinstance(items, list):
            raise SpecError("must be a list of layers", where=path)
        out: list[Node] = []
        for i, raw in enumerate(items):
            place = f"{path}[{i}]"
            if isinstance(raw, Mapping) and "repeat" in raw and _names_each_copy(raw):
                out.extend(self._spliced_repeat(raw, place, scope, len(out)))
            else:
                # a top-level layer is simply "layer 3"; deeper places are paths
                leaf = f"layer {i}" if top else None
                out.append(self.node(raw, place, scope, len(out), leaf))
        return tuple(out)

    def _repeat_count(self, raw: Mapping, place: str, scope: Mapping[str, Any]) -> int:
        count = _subst(raw["repeat"], scope, place)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise SpecError(
                "must be a whole number >= 0",
                where=place,
                field="repeat",
                value=count,
                has_value=True,
            )
        if count > MAX_LAYERS:
            raise SpecError(
                f"would make more than {MAX_LAYERS:,} layers",
                where=place,
                field="repeat",
                value=count,
                has_value=True,
            )
        return count

    def _spliced_repeat(
        self, raw: Mapping, place: str, scope: Mapping[str, Any], start: int
    ) -> list[Node]:
        """``{repeat: n, ...}`` without a name: n copies numbered in the enclosing list."""
        count = self._repeat_count(raw, place, scope)
        item = {k: v for k, v in raw.items() if k != "repeat"}
        copies = []
        for k in range(count):
            inner = {**scope, "i": k}
            if "name" in item:  # evaluated per copy, where i is known
                item = {**item, "name": _subst(raw["name"], inner, place)}
            copies.append(self.node(item, f"{place}#{k}", inner, start + k))
        return copies

    def node(
        self, raw: Any, place: str, scope: Mapping[str, Any], index: int, leaf: str | None = None
    ) -> Node:
        self._grow(place)
        if not isinstance(raw, Mapping):
            raise SpecError(
                "expected a layer such as {type: conv2d, out_channels: 6, kernel_size: 5} "
                f"or a block (layers/residual/concat/add/use), got {show(raw)}",
                where=place,
            )
        kinds = [k for k in _CONTAINER_KEYS if k in raw]
        if "repeat" in raw:  # named: a block holding the copies, numbered 0..n-1
            count = self._repeat_count(raw, place, scope)
            inner = {k: v for k, v in raw.items() if k not in ("repeat", "name")}
            name = str(_subst(raw.get("name"), scope, place))
            copies = tuple(
                self.node(inner, f"{place}#{k}", {**scope, "i": k}, k) for k in range(count)
            )
            return Block(copies, f"{place} (repeat '{name}')", name)
        if "type" in raw or not kinds:
            data = _subst(dict(raw), scope, place)
            layer = parse_layer(data, leaf or place, self.cache)
            return LayerNode(
                layer,
                label(leaf or place, layer.kind, layer.name),
                layer.name or str(index),
                leaf or place,
            )
        if len(kinds) > 1:
            raise SpecError(
                f"a block has one of {', '.join(_CONTAINER_KEYS)}; got {' and '.join(kinds)}",
                where=place,
            )
        kind = kinds[0]
        name = _subst(raw.get("name"), scope, place)
        if name is not None and not isinstance(name, str):
            name = str(name)
        where = f"{place} ({kind} '{name}')" if name else f"{place} ({kind})"
        if kind == "use":
            return self._use(raw, place, where, scope, name, index)
        _check_keys(raw, (kind,) + _NODE_EXTRA[kind], where)
        sub = f"{place}.{kind}"
        if kind == "layers":
            source = _subst(raw.get("from"), scope, place)
            if source is not None and not isinstance(source, str):
                raise SpecError(
                    "must name an earlier output",
                    where=where,
                    field="from",
                    value=source,
                    has_value=True,
                )
            side = _subst(raw.get("output", False), scope, place)
            if not isinstance(side, bool):
                raise SpecError(
                    "must be true or false", where=where, field="output", value=side, has_value=True
                )
            # a block that starts at a named output without a name of its own is transparent:
            # its layers are named as if written in the parent (torchvision's LRASPP head)
            key = name or (None if source and not side else str(index))
            return Block(
                self.nodes(raw["layers"], sub, scope),
                where,
                key,
                source=Ref(source, f"{place}.from") if source else None,
                side=side,
            )
        if kind == "residual":
            body = Block(self.nodes(raw["residual"], sub, scope), where, None)
            shortcut = raw.get("shortcut", "identity")
            shortcut = _subst(shortcut, scope, place)
            if shortcut == "auto":
                second: Branch = AutoShortcut(f"{place}.shortcut")
            elif shortcut == "identity":
                second = Block((), f"{place}.shortcut", None)
            elif isinstance(shortcut, list):
                second = Block(
                    self.nodes(shortcut, f"{place}.shortcut", scope),
                    f"{place}.shortcut",
                    "downsample",
                )
            else:
                raise SpecError(
                    "must be identity, auto or a list of layers",
                    where=where,
                    field="shortcut",
                    value=shortcut,
                    has_value=True,
                )
            return Merge(model("add")(), (body, second), where, name, place)
        branches = self._branches(raw[kind], sub, scope, where)
        split = _split(_subst(raw.get("split"), scope, place), len(branches), where)
        return Merge(model(kind)(), branches, where, name, place, split)

    def _branches(
        self, raw: Any, sub: str, scope: Mapping[str, Any], where: str
    ) -> tuple[Branch, ...]:
        if isinstance(raw, Mapping):
            named = list(raw.items())
        elif isinstance(raw, list):
            named = [(None, b) for b in raw]
        else:
            raise SpecError("branches must be a list (or a mapping name -> layers)", where=where)
        if len(named) < 2:
            raise SpecError(f"needs at least 2 branches, got {len(named)}", where=where)
        out: list[Branch] = []
        for i, (key, branch) in enumerate(named):
            place = f"{sub}[{key if key is not None else i}]"
            if isinstance(branch, str):
                target = _subst(branch, scope, place)
                if not isinstance(target, str):
                    raise SpecError(
                        "a branch given as text names an earlier output; this one "
                        f"evaluates to {show(target)}",
                        where=place,
                    )
                out.append(Ref(target, place))
            elif isinstance(branch, list):
                # a named branch is a level of its own; a list branch is transparent: its
                # layers are named as children of the merge (SqueezeNet's expand1x1)
                out.append(
                    Block(
                        self.nodes(branch, place, scope),
                        place,
                        str(key) if key is not None and branch else None,
                    )
                )
            else:
                raise SpecError(
                    "a branch is a list of layers, [] (identity) or the name of "
                    f"an earlier output; got {show(branch)}",
                    where=place,
                )
        return tuple(out)

    def _use(
        self,
        raw: Mapping,
        place: str,
        where: str,
        scope: Mapping[str, Any],
        name: str | None,
        index: int,
    ) -> Block:
        template_name = _subst(raw["use"], scope, place)
        template = self.templates.get(template_name) if isinstance(template_name, str) else None
        if template is None:
            hint = closest(str(template_name), list(self.templates))
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise SpecError(
                f"no such block template{extra}; define it under 'blocks:'",
                where=place,
                field="use",
                value=template_name,
                has_value=True,
            )
        given = {k: _subst(v, scope, place) for k, v in raw.items() if k not in ("use", "name")}
        for key in given:
            if key not in template.args:
                hint = closest(key, list(template.args))
                extra = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise SpecError(
                    f"block '{template_name}' has no such argument{extra}", where=where, field=key
                )
        args = {**template.args, **given}
        missing = [k for k, v in args.items() if v is None]
        if missing:
            raise SpecError(
                f"block '{template_name}' needs this argument", where=where, field=missing[0]
            )
        self.depth += 1
        if self.depth > 32:
            raise SpecError(
                "templates nest more than 32 deep (a template uses itself?)", where=where
            )
        try:
            body = self.nodes(template.layers, f"{place}({template_name}).layers", args)
        finally:
            self.depth -= 1
        return Block(
            body,
            f"{place} ({template_name} '{name}')" if name else f"{place} ({template_name})",
            name or str(index),
            template_name,
        )


class _Estimate:
    """How many nodes :class:`_Parser` would make, found without making them: repeats multiply
    and equal template uses are counted once (memoised), so 2**30 copies written in a few
    hundred bytes are refused in milliseconds instead of after MAX_LAYERS nodes. It never counts
    more than the parser makes; anything it cannot evaluate counts as one node (the parser
    then reports it)."""

    def __init__(self, templates: Mapping[str, Template]) -> None:
        self.templates = templates
        self.memo: dict[Any, int] = {}
        self.dollar: dict[int, bool] = {}
        self.active: set[str] = set()  # templates being counted (a template using itself)
        self.keep: list[Any] = []

    def items(self, items: Any, scope: Mapping[str, Any]) -> int:
        total = 0
        for raw in items if isinstance(items, list) else ():
            total += self.item(raw, scope)
            if total > MAX_LAYERS:
                break
        return total

    def _uses_dollar(self, raw: Any) -> bool:
        """Whether ``raw`` holds a ``$`` (its count may then depend on the scope)."""
        if isinstance(raw, str):
            return "$" in raw
        if not isinstance(raw, (Mapping, list)):
            return False
        key = id(raw)
        if key not in self.dollar:
            values = list(raw.values()) + list(raw) if isinstance(raw, Mapping) else raw
            self.dollar[key] = any(self._uses_dollar(v) for v in values)
        return self.dollar[key]

    def item(self, raw: Any, scope: Mapping[str, Any]) -> int:
        if not isinstance(raw, Mapping):
            return 1
        try:
            key: Any = (id(raw), _frozen(dict(scope)) if self._uses_dollar(raw) else None)
        except TypeError:
            key = None
        if key is not None and key in self.memo:
            return self.memo[key]
        try:
            count = self._item(raw, scope)
        except Exception:  # noqa: BLE001 - an estimate: the parser reports the problem
            count = 1
        if key is not None:
            self.memo[key] = count
        return count

    def _item(self, raw: Mapping, scope: Mapping[str, Any]) -> int:
        if "repeat" in raw:
            n = _subst(raw["repeat"], scope, "")
            if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_LAYERS:
                return 1
            spliced = _names_each_copy(raw)
            body = {k: v for k, v in raw.items() if k != "repeat" and (spliced or k != "name")}
            self.keep.append(body)  # alive, so that its id is not reused by the memos
            total = 0 if spliced else 1
            if not self._uses_dollar(body):
                return total + n * self.item(body, {})
            for k in range(n):
                total += self.item(body, {**scope, "i": k})
                if total > MAX_LAYERS:
                    break
            return total
        if "type" in raw:
            return 1
        if "layers" in raw:
            return 1 + self.items(raw["layers"], scope)
        if "residual" in raw:
            shortcut = raw.get("shortcut")
            return 1 + self.items(raw["residual"], scope) + self.items(shortcut, scope)
        for kind in ("concat", "add"):
            if kind in raw:
                branches = raw[kind]
                branches = branches.values() if isinstance(branches, Mapping) else branches
                return 1 + sum(self.items(b, scope) for b in branches)
        if "use" in raw:
            name = _subst(raw["use"], scope, "")
            template = self.templates.get(name) if isinstance(name, str) else None
            if template is None or name in self.active:
                return 1
            given = {k: _subst(v, scope, "") for k, v in raw.items() if k not in ("use", "name")}
            self.active.add(name)
            try:
                return 1 + self.items(template.layers, {**template.args, **given})
            finally:
                self.active.discard(name)
        return 1


def _subst(value: Any, scope: Mapping[str, Any], place: str) -> Any:
    if not scope:  # outside templates and repeats: nothing to substitute
        return value
    from cnncalc.templates import TemplateError, substitute

    try:
        return substitute(value, scope)
    except TemplateError as exc:
        raise SpecError(str(exc), where=place) from None
    except (TypeError, ZeroDivisionError, OverflowError, ValueError) as exc:
        raise SpecError(f"cannot evaluate: {exc}", where=place) from None


def _split(value: Any, branches: int, where: str) -> int | tuple[int, ...] | None:
    """``split: 2`` (torch.chunk) or ``split: [58, 58]`` (torch.split sizes): one part per
    branch."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        parts = value
    elif isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
    ):
        parts = len(value)
        value = tuple(value)
    else:
        raise SpecError(
            "must be a chunk count or a list of channel counts",
            where=where,
            field="split",
            value=value,
            has_value=True,
        )
    if parts != branches:
        raise SpecError(
            f"gives {parts} parts for {branches} branches",
            where=where,
            field="split",
            value=value,
            has_value=True,
        )
    return value


def _check_keys(raw: Mapping, allowed: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in allowed:
            hint = closest(str(key), allowed)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise SpecError(f"unknown field{extra}", where=where, field=str(key))


def _templates(raw: Any) -> dict[str, Template]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SpecError(
            "must map template names to {args: ..., layers: [...]}", where="spec", field="blocks"
        )
    out = {}
    for name, body in raw.items():
        where = f"blocks.{name}"
        if isinstance(body, list):
            body = {"layers": body}
        if not isinstance(body, Mapping) or "layers" not in body:
            raise SpecError("a template is {args: {name: default}, layers: [...]}", where=where)
        _check_keys(body, ("args", "layers"), where)
        args = body.get("args") or {}
        if isinstance(args, list):  # [planes, stride]: all required
            args = dict.fromkeys(args)
        if not isinstance(args, Mapping):
            raise SpecError(
                "must map argument names to defaults (null: required)", where=where, field="args"
            )
        out[str(name)] = Template(dict(args), body["layers"])
    return out


# --------------------------------------------------------------------------- documents


_TOP_FIELDS = ("name", "input", "blocks", "layers")


def spec_from_data(data: Any) -> Spec:
    """Build a Spec from parsed YAML/JSON: a mapping with ``layers``, or a bare list of layers."""
    if isinstance(data, list):
        data = {"layers": data}
    if not isinstance(data, Mapping):
        raise SpecError(
            "a spec is a mapping with 'layers' (and optionally 'input', 'name', 'blocks')"
        )
    for key in data:
        if key not in _TOP_FIELDS:
            hint = closest(str(key), _TOP_FIELDS)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise SpecError(f"unknown top-level field{extra}", where="spec", field=str(key))
    layers = data.get("layers")
    if layers is None or (isinstance(layers, list) and not layers):
        raise SpecError("the spec has no layers", where="spec", field="layers")
    if not isinstance(layers, list):
        raise SpecError("'layers' must be a list", where="spec", field="layers")
    shape = data.get("input")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        name = str(name)
    parser = _Parser(_templates(data.get("blocks")))
    estimate = _Estimate(parser.templates)
    total = 0
    for i, item in enumerate(layers):
        total += estimate.item(item, {})
        if total > MAX_LAYERS:
            raise SpecError(
                f"the spec expands to more than {MAX_LAYERS:,} layers and blocks "
                f"by layers[{i}] (repeats and templates multiply)",
                where="spec",
            )
    return Spec(
        nodes=parser.nodes(layers, "layers", {}, top=True),
        input=None if shape is None else parse_shape(shape),
        name=name,
    )


def parse_text(text: str, origin: str = "spec", inline: bool = True) -> Spec:
    """YAML or JSON (JSON is YAML) text, or else (when allowed) the inline syntax."""
    import yaml  # deferred: only when text is parsed

    if len(text) > MAX_SPEC_CHARS:
        raise SpecError(
            f"the spec is {len(text):,} characters; at most {MAX_SPEC_CHARS:,} are read",
            where=origin,
        )
    stripped = text.strip()
    if not stripped:
        raise SpecError("the spec is empty", where=origin)
    if inline and _looks_inline(stripped):
        from cnncalc.inline import parse_inline

        return spec_from_data(parse_inline(stripped))
    try:
        data = yaml.load(text, Loader=_loader())
    except _Refused as exc:
        mark = exc.problem_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SpecError(f"{exc.problem}{at}", where=origin) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"malformed YAML/JSON{at}: {problem}", where=origin) from None
    if data is None:
        raise SpecError("the spec is empty (only comments or blank lines)", where=origin)
    return spec_from_data(data)


_YAML_LINE = re.compile(r"^\s*(?:[\w-]+\s*:|-(?:\s|$)|---|\.\.\.|%)")


# --------------------------------------------------------------------------- YAML 1.2


# YAML 1.2 core schema (yaml.org/spec/1.2.2, 10.3.2): `010` is ten, not eight; `yes`, `on`,
# `1:30` and `1_000` are strings, not a boolean and numbers as YAML 1.1 (PyYAML) reads them.
_CORE_RESOLVERS = [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
]


class _Refused(Exception):
    """A document cnncalc will not read (duplicate key, alias bomb, …), at a position."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


_LOADER: Any = None


def _loader() -> Any:
    """A safe YAML loader (libyaml's C parser when present) with YAML 1.2 core-schema scalars
    that refuses duplicate keys, keys that are not strings, merge keys, nesting deeper than
    MAX_NESTING and aliases that expand to more than MAX_ALIAS_NODES nodes — all checked
    while the document is composed, before anything walks the data."""
    global _LOADER
    if _LOADER is None:
        _LOADER = _make_loader()
    return _LOADER


def _make_loader() -> Any:
    import yaml
    from yaml import events as ev
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    starts = {ev.SequenceStartEvent: SequenceNode, ev.MappingStartEvent: MappingNode}

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc,valid-type]
        yaml_implicit_resolvers: dict = {}

        def get_single_node(self) -> Any:
            self.get_event()  # stream start
            node = None
            if not self.check_event(ev.StreamEndEvent):
                self.get_event()  # document start
                node = self._compose()
                self.get_event()  # document end
            if not self.check_event(ev.StreamEndEvent):
                event = self.get_event()
                raise yaml.composer.ComposerError(
                    "expected a single document in the stream",
                    None,
                    "but found another document",
                    event.start_mark,
                )
            self.get_event()
            return node

        def _compose(self) -> Any:
            """PyYAML's composer made iterative (libyaml's recursive one crashes on deep
            nesting), with the nesting and alias bounds."""
            anchors: dict[str, Any] = {}
            sizes: dict[int, int] = {}  # expanded size of anchored nodes
            open_ids: set[int] = set()
            stack: list[list[Any]] = []  # [node, expanded size, pending key node, anchor]
            extra = 0
            while True:
                event = self.get_event()
                kind = type(event)
                if kind is ev.AliasEvent:
                    node = anchors.get(event.anchor)
                    if node is None:
                        raise _Refused(
                            f"undefined alias *{printable(event.anchor, 60)}", event.start_mark
                        )
                    if id(node) in open_ids:
                        raise _Refused(
                            f"alias *{printable(event.anchor, 60)} is inside the "
                            "collection it names",
                            event.start_mark,
                        )
                    size = sizes[id(node)]
                    extra += size
                    if extra > MAX_ALIAS_NODES:
                        raise _Refused(
                            f"aliases expand to more than {MAX_ALIAS_NODES:,} "
                            "values (use blocks:/repeat: to repeat layers)",
                            event.start_mark,
                        )
                elif kind is ev.ScalarEvent:
                    tag = event.tag
                    if tag is None or tag == "!":
                        tag = self.resolve(ScalarNode, event.value, event.implicit)
                    node = ScalarNode(
                        tag, event.value, event.start_mark, event.end_mark, style=event.style
                    )
                    size = 1
                    if event.anchor is not None:
                        anchors[event.anchor] = node
                        sizes[id(node)] = 1
                elif kind in starts:
                    cls = starts[kind]
                    tag = event.tag
                    if tag is None or tag == "!":
                        tag = self.resolve(cls, None, event.implicit)
                    node = cls(tag, [], event.start_mark, None, flow_style=event.flow_style)
                    if len(stack) >= MAX_NESTING:
                        raise _Refused(
                            f"nested more than {MAX_NESTING} levels deep", event.start_mark
                        )
                    if event.anchor is not None:
                        anchors[event.anchor] = node
                    stack.append([node, 1, None, event.anchor])
                    open_ids.add(id(node))
                    continue
                else:  # the end of a sequence or mapping
                    node, size, _, anchor = stack.pop()
                    node.end_mark = event.end_mark
                    open_ids.discard(id(node))
                    if anchor is not None:
                        sizes[id(node)] = size
                if not stack:
                    return node
                parent = stack[-1]
                parent[1] += size
                if type(parent[0]) is SequenceNode:
                    parent[0].value.append(node)
                elif parent[2] is None:
                    parent[2] = node
                else:
                    parent[0].value.append((parent[2], node))
                    parent[2] = None

        def construct_mapping(self, node: Any, deep: bool = False) -> dict:
            if not isinstance(node, MappingNode):
                raise _Refused(f"expected a mapping, found {node.id}", node.start_mark)
            mapping: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, str):
                    raise _Refused(
                        f"keys should be strings; {show(key)} is not", key_node.start_mark
                    )
                if key == "<<":
                    raise _Refused(
                        "merge keys (<<) are YAML 1.1, not 1.2; use a template "
                        "(blocks:) to share settings",
                        key_node.start_mark,
                    )
                if key in mapping:
                    raise _Refused(f"duplicate key '{printable(key, 60)}'", key_node.start_mark)
                mapping[key] = self.construct_object(value_node, deep=deep)
            return mapping

        def construct_yaml_int(self, node: Any) -> int:
            text = str(self.construct_scalar(node)).replace("_", "") if node.tag else ""
            sign = -1 if text.startswith("-") else 1
            text = text.lstrip("+-")
            if len(text) > MAX_DIGITS:
                raise _Refused(
                    f"an integer of {len(text):,} digits (at most {MAX_DIGITS})", node.start_mark
                )
            try:
                if text[:2] in ("0o", "0x"):
                    return sign * int(text[2:], 8 if text[1] == "o" else 16)
                return sign * int(text, 10)
            except ValueError:
                raise _Refused(f"not an integer: {show(node.value)}", node.start_mark) from None

        def construct_yaml_float(self, node: Any) -> float:
            text = str(self.construct_scalar(node)).lower()
            if text.lstrip("+-") == ".inf":
                return float("-inf" if text.startswith("-") else "inf")
            if text == ".nan":
                return float("nan")
            try:
                return float(text)
            except ValueError:
                raise _Refused(f"not a number: {show(node.value)}", node.start_mark) from None

    for tag, pattern, first in _CORE_RESOLVERS:
        Loader.add_implicit_resolver(tag, re.compile(pattern), first)
    Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
    Loader.add_constructor("tag:yaml.org,2002:float", Loader.construct_yaml_float)
    return Loader


def _looks_inline(text: str) -> bool:
    """Inline specs are calls (``conv2d(3, 6, 5) relu``, or pasted ``nn.Sequential(...)`` over
    several lines with ``#`` comments); documents start with '{' or '[', or have ``key:`` or
    ``- item`` lines."""
    from cnncalc.inline import strip_comments

    body = strip_comments(text).strip()
    if not body or body.startswith(("{", "[")):
        return False
    return not any(_YAML_LINE.match(line) for line in body.splitlines())


def load(source: str, stdin_text: str | None = None, input_shape: Shape | None = None) -> Spec:
    """Read SPEC as the CLI takes it: ``-`` (stdin), a file path, or inline text.

    An ONNX model (``.onnx``, or a file starting like one) is imported
    (:mod:`cnncalc.onnx_import`, which needs the ``onnx`` extra); ``input_shape`` gives the
    sizes its graph leaves symbolic."""
    if source == "-":
        return parse_text(read_stdin() if stdin_text is None else stdin_text, origin="stdin")
    path = Path(source)
    if _is_file(path) and _is_onnx(path):
        from cnncalc.onnx_import import load_onnx

        return load_onnx(source, input_shape)
    if _is_file(path):
        return parse_text(read_spec_file(path, source), origin=source, inline=False)
    document = "\n" in source or source.lstrip().startswith(("{", "["))  # text, not a path
    if not document and (
        path.suffix.lower() in {".yaml", ".yml", ".json"} or ("/" in source and "(" not in source)
    ):
        if _is_dir(path):
            raise UsageError(f"{printable(source, 200)}: is a directory, not a spec file")
        raise UsageError(f"{printable(source, 200)}: no such file")
    try:
        return parse_text(source, origin="inline spec")
    except SpecError as exc:
        if " " not in source and "(" not in source and type_key(source) not in BY_KEY:
            raise UsageError(
                f"{printable(source, 200)} is neither a file nor an inline spec ({exc})"
            ) from None
        raise


def read_spec_file(path: Path, source: str) -> str:
    """A spec file's text: at most MAX_SPEC_CHARS bytes of UTF-8 without NUL bytes."""
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_CHARS:
            raise SpecError(
                f"the file is {size:,} bytes; a spec is at most {MAX_SPEC_CHARS:,}", where=source
            )
        with path.open("rb") as f:
            data = f.read(MAX_SPEC_CHARS + 1)
    except OSError as exc:
        raise UsageError(
            f"{printable(source, 200)}: cannot read it: {exc.strerror or exc}"
        ) from None
    return decode_spec(data, source)


def read_stdin() -> str:
    """The spec piped on stdin (``cnncalc shapes -``), bounded and checked like a file."""
    import sys

    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text stream (tests replace stdin with StringIO)
        return sys.stdin.read(MAX_SPEC_CHARS + 1)
    return decode_spec(buffer.read(MAX_SPEC_CHARS + 1), "stdin")


def decode_spec(data: bytes, origin: str) -> str:
    """Bytes -> text, refusing binary data in one line (exit 1: an invalid spec)."""
    if len(data) > MAX_SPEC_CHARS:
        raise SpecError(f"more than {MAX_SPEC_CHARS:,} bytes; a spec is at most that", where=origin)
    nul = data.find(b"\0")
    if nul >= 0:
        raise SpecError(
            f"not a YAML/JSON spec: binary data (a NUL byte at offset {nul:,})", where=origin
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"not a YAML/JSON spec: not UTF-8 text (byte 0x{data[exc.start]:02x} "
            f"at offset {exc.start:,})",
            where=origin,
        ) from None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a name too long to be a path: it is inline text
        return False


def _is_onnx(path: Path) -> bool:
    """``.onnx``, or a binary file that starts as an ONNX ModelProto (field 1, a varint)."""
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return True
    if suffix in {".yaml", ".yml", ".json"}:
        return False
    try:
        with path.open("rb") as f:
            return f.read(1) == b"\x08"
    except OSError:
        return False
