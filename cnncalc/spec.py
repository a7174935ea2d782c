"""Reading a spec: YAML/JSON text, a file, stdin or the inline syntax, into validated models.

Validation happens here, once; every error becomes one :class:`SpecError` line that names the
layer (index and name), the field, the value and the reason.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cnncalc.errors import SpecError, UsageError
from cnncalc.layers import (
    BY_KEY,
    FIELD_ALIASES,
    MERGE_BY_KIND,
    Add,
    Layer,
    canonical_type,
    type_key,
)

Shape = tuple[int, ...]


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
    return f"{place} ({layer_type} '{name}')" if name else f"{place} ({layer_type})"


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
        dims = tuple(int(v) for v in re.split(r"[x×,*]", value.replace(" ", "")))
    elif isinstance(value, Sequence) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        dims = tuple(value)
    else:
        raise SpecError(f"expected a list of integers or text such as 3x32x32, got {value!r}",
                        where=where)
    if not dims:
        raise SpecError("the shape is empty", where=where)
    if any(d < 1 for d in dims):
        raise SpecError(f"every size must be >= 1, got {'x'.join(map(str, dims))}", where=where)
    if len(dims) > 4:
        raise SpecError(
            f"{len(dims)} dimensions given; cnncalc takes C,L / C,H,W / C,D,H,W "
            "without the batch (use --batch for it)",
            where=where,
        )
    return dims


# --------------------------------------------------------------------------- layers


def parse_layer(raw: Any, place: str) -> Layer:
    """Validate one layer mapping; raise a one-line SpecError naming it on any problem."""
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"expected a mapping such as {{type: conv2d, out_channels: 6, kernel_size: 5}}, "
            f"got {raw!r}",
            where=place,
        )
    data = dict(raw)
    name = data.get("name")
    name = name if isinstance(name, str) else None
    given = data.get("type")
    if not isinstance(given, str):
        raise SpecError("every layer needs a 'type', e.g. type: conv2d",
                        where=label(place, "?", name))
    cls = BY_KEY.get(type_key(given))
    if cls is None:
        hint = difflib.get_close_matches(type_key(given), list(BY_KEY), n=1)
        suffix = f" (did you mean {canonical_type(BY_KEY[hint[0]])}?)" if hint else ""
        raise SpecError(
            f"unknown layer type{suffix}; `cnncalc types` lists them",
            where=label(place, given, name),
            field="type",
            value=given,
            has_value=True,
        )
    kind = canonical_type(cls)
    data["type"] = kind
    # short aliases (k, s, p, d, g) unless the layer has a field of that name (dropout's p)
    data = {FIELD_ALIASES.get(k, k) if k not in cls.model_fields else k: _tuples(v)
            for k, v in data.items()}
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
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
    field = loc[0] if loc else None
    if err["type"] == "extra_forbidden":
        options = [f for f in cls.model_fields if f != "type"]
        hint = difflib.get_close_matches(field or "", options, n=1)
        reason = f"unknown field (did you mean '{hint[0]}'?)" if hint else (
            "unknown field; known fields: " + ", ".join(options))
        return SpecError(reason, where=where, field=field)
    if err["type"] == "missing":
        return SpecError("required field is missing", where=where, field=field)
    msg = err["msg"]
    msg = msg.removeprefix("Value error, ")
    msg = msg[0].lower() + msg[1:]
    if field is None:  # a model-level rule (e.g. 'same' with stride 2)
        return SpecError(msg, where=where)
    # union members each report; the first member's message is the most useful one
    return SpecError(msg, where=where, field=field, value=_plain(err.get("input")), has_value=True)


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# --------------------------------------------------------------------------- graphs


_CONTAINER_KEYS = ("layers", "residual", *MERGE_BY_KIND, "use")
_NODE_EXTRA = {
    "layers": ("name", "repeat", "from", "output"),
    "residual": ("name", "shortcut", "repeat"),
    **{kind: ("name", "repeat", "split") for kind in MERGE_BY_KIND},
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

    def nodes(self, items: Any, path: str, scope: Mapping[str, Any], top: bool = False
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
            raise SpecError("must be a whole number >= 0", where=place, field="repeat",
                            value=count, has_value=True)
        return count

    def _spliced_repeat(self, raw: Mapping, place: str, scope: Mapping[str, Any],
                        start: int) -> list[Node]:
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

    def node(self, raw: Any, place: str, scope: Mapping[str, Any], index: int,
             leaf: str | None = None) -> Node:
        if not isinstance(raw, Mapping):
            raise SpecError(
                "expected a layer such as {type: conv2d, out_channels: 6, kernel_size: 5} "
                f"or a block (layers/residual/concat/add/use), got {raw!r}", where=place)
        kinds = [k for k in _CONTAINER_KEYS if k in raw]
        if "repeat" in raw:  # named: a block holding the copies, numbered 0..n-1
            count = self._repeat_count(raw, place, scope)
            inner = {k: v for k, v in raw.items() if k not in ("repeat", "name")}
            name = str(_subst(raw.get("name"), scope, place))
            copies = tuple(self.node(inner, f"{place}#{k}", {**scope, "i": k}, k)
                           for k in range(count))
            return Block(copies, f"{place} (repeat '{name}')", name)
        if "type" in raw or not kinds:
            data = _subst(dict(raw), scope, place)
            layer = parse_layer(data, leaf or place)
            return LayerNode(layer, label(leaf or place, layer.kind, layer.name),
                             layer.name or str(index), leaf or place)
        if len(kinds) > 1:
            raise SpecError(f"a block has one of {', '.join(_CONTAINER_KEYS)}; got "
                            f"{' and '.join(kinds)}", where=place)
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
                raise SpecError("must name an earlier output", where=where, field="from",
                                value=source, has_value=True)
            side = _subst(raw.get("output", False), scope, place)
            if not isinstance(side, bool):
                raise SpecError("must be true or false", where=where, field="output",
                                value=side, has_value=True)
            # a block that starts at a named output without a name of its own is transparent:
            # its layers are named as if written in the parent (torchvision's LRASPP head)
            key = name or (None if source and not side else str(index))
            return Block(self.nodes(raw["layers"], sub, scope), where, key,
                         source=Ref(source, f"{place}.from") if source else None, side=side)
        if kind == "residual":
            body = Block(self.nodes(raw["residual"], sub, scope), where, None)
            shortcut = raw.get("shortcut", "identity")
            shortcut = _subst(shortcut, scope, place)
            if shortcut == "auto":
                second: Branch = AutoShortcut(f"{place}.shortcut")
            elif shortcut == "identity":
                second = Block((), f"{place}.shortcut", None)
            elif isinstance(shortcut, list):
                second = Block(self.nodes(shortcut, f"{place}.shortcut", scope),
                               f"{place}.shortcut", "downsample")
            else:
                raise SpecError("must be identity, auto or a list of layers", where=where,
                                field="shortcut", value=shortcut, has_value=True)
            return Merge(Add(), (body, second), where, name, place)
        branches = self._branches(raw[kind], sub, scope, where)
        split = _split(_subst(raw.get("split"), scope, place), len(branches), where)
        return Merge(MERGE_BY_KIND[kind](), branches, where, name, place, split)

    def _branches(self, raw: Any, sub: str, scope: Mapping[str, Any], where: str
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
                out.append(Ref(_subst(branch, scope, place), place))
            elif isinstance(branch, list):
                # a named branch is a level of its own; a list branch is transparent: its
                # layers are named as children of the merge (SqueezeNet's expand1x1)
                out.append(Block(self.nodes(branch, place, scope), place,
                                 str(key) if key is not None and branch else None))
            else:
                raise SpecError("a branch is a list of layers, [] (identity) or the name of "
                                f"an earlier output; got {branch!r}", where=place)
        return tuple(out)

    def _use(self, raw: Mapping, place: str, where: str, scope: Mapping[str, Any],
             name: str | None, index: int) -> Block:
        template_name = _subst(raw["use"], scope, place)
        template = self.templates.get(template_name) if isinstance(template_name, str) else None
        if template is None:
            hint = difflib.get_close_matches(str(template_name), list(self.templates), n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise SpecError(f"no such block template{extra}; define it under 'blocks:'",
                            where=place, field="use", value=template_name, has_value=True)
        given = {k: _subst(v, scope, place) for k, v in raw.items() if k not in ("use", "name")}
        for key in given:
            if key not in template.args:
                hint = difflib.get_close_matches(key, list(template.args), n=1)
                extra = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise SpecError(f"block '{template_name}' has no such argument{extra}",
                                where=where, field=key)
        args = {**template.args, **given}
        missing = [k for k, v in args.items() if v is None]
        if missing:
            raise SpecError(f"block '{template_name}' needs this argument", where=where,
                            field=missing[0])
        self.depth += 1
        if self.depth > 32:
            raise SpecError("templates nest more than 32 deep (a template uses itself?)",
                            where=where)
        try:
            body = self.nodes(template.layers, f"{place}({template_name}).layers", args)
        finally:
            self.depth -= 1
        return Block(body, f"{place} ({template_name} '{name}')" if name else
                     f"{place} ({template_name})", name or str(index), template_name)


def _subst(value: Any, scope: Mapping[str, Any], place: str) -> Any:
    from cnncalc.templates import TemplateError, substitute

    try:
        return substitute(value, scope)
    except TemplateError as exc:
        raise SpecError(str(exc), where=place) from None
    except (TypeError, ZeroDivisionError) as exc:
        raise SpecError(f"cannot evaluate: {exc}", where=place) from None


def _split(value: Any, branches: int, where: str) -> int | tuple[int, ...] | None:
    """``split: 2`` (torch.chunk) or ``split: [58, 58]`` (torch.split sizes): one part per
    branch."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        parts = value
    elif isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                         and v >= 1 for v in value):
        parts = len(value)
        value = tuple(value)
    else:
        raise SpecError("must be a chunk count or a list of channel counts", where=where,
                        field="split", value=value, has_value=True)
    if parts != branches:
        raise SpecError(f"gives {parts} parts for {branches} branches", where=where,
                        field="split", value=value, has_value=True)
    return value


def _check_keys(raw: Mapping, allowed: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise SpecError(f"unknown field{extra}", where=where, field=str(key))


def _templates(raw: Any) -> dict[str, Template]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SpecError("must map template names to {args: ..., layers: [...]}",
                        where="spec", field="blocks")
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
            raise SpecError("must map argument names to defaults (null: required)",
                            where=where, field="args")
        out[str(name)] = Template(dict(args), body["layers"])
    return out


# --------------------------------------------------------------------------- documents


_TOP_FIELDS = ("name", "input", "blocks", "layers")


def spec_from_data(data: Any) -> Spec:
    """Build a Spec from parsed YAML/JSON: a mapping with ``layers``, or a bare list of layers."""
    if isinstance(data, list):
        data = {"layers": data}
    if not isinstance(data, Mapping):
        raise SpecError("a spec is a mapping with 'layers' (and optionally 'input', 'name', "
                        "'blocks')")
    for key in data:
        if key not in _TOP_FIELDS:
            hint = difflib.get_close_matches(str(key), _TOP_FIELDS, n=1)
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
    return Spec(
        nodes=parser.nodes(layers, "layers", {}, top=True),
        input=None if shape is None else parse_shape(shape),
        name=name,
    )


def parse_text(text: str, origin: str = "spec", inline: bool = True) -> Spec:
    """YAML or JSON (JSON is YAML) text, or else (when allowed) the inline syntax."""
    import yaml  # deferred: only when text is parsed

    stripped = text.strip()
    if not stripped:
        raise SpecError("the spec is empty", where=origin)
    if inline and _looks_inline(stripped):
        from cnncalc.inline import parse_inline

        return spec_from_data(parse_inline(stripped))
    try:
        # libyaml's C loader is ~5x faster on big specs; same safe subset of YAML
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"malformed YAML/JSON{at}: {problem}", where=origin) from None
    if data is None:
        raise SpecError("the spec is empty (only comments or blank lines)", where=origin)
    return spec_from_data(data)


def _looks_inline(text: str) -> bool:
    """Inline specs are one line of calls (``conv2d(6, 5) relu``); documents have ':' keys."""
    if "\n" in text or text.startswith(("{", "[", "#")):
        return False
    return not re.match(r"^\s*[\w-]+\s*:", text)


def load(source: str, stdin_text: str | None = None) -> Spec:
    """Read SPEC as the CLI takes it: ``-`` (stdin), a file path, or inline text."""
    if source == "-":
        return parse_text(stdin_text or "", origin="stdin")
    path = Path(source)
    if _is_file(path):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {source}: {exc}") from None
        return parse_text(text, origin=source, inline=False)
    if path.suffix.lower() in {".yaml", ".yml", ".json"} or "/" in source:
        raise UsageError(f"no such file: {source}")
    try:
        return parse_text(source, origin="inline spec")
    except SpecError as exc:
        if " " not in source and "(" not in source and type_key(source) not in BY_KEY:
            raise UsageError(f"{source} is neither a file nor an inline spec ({exc})") from None
        raise


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a name too long to be a path: it is inline text
        return False
