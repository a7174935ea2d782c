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
from cnncalc.layers import BY_KEY, FIELD_ALIASES, Layer, canonical_type, type_key

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Spec:
    """A validated network: an optional name, an optional input shape and its layers."""

    layers: tuple[Layer, ...]
    input: Shape | None = None
    name: str | None = None


def label(index: int, layer_type: str, name: str | None) -> str:
    """How errors and warnings name a layer: ``layer 3 (conv2d 'c3')``."""
    return f"layer {index} ({layer_type} '{name}')" if name else f"layer {index} ({layer_type})"


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


def parse_layer(raw: Any, index: int) -> Layer:
    """Validate one layer mapping; raise a one-line SpecError naming it on any problem."""
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"expected a mapping such as {{type: conv2d, out_channels: 6, kernel_size: 5}}, "
            f"got {raw!r}",
            where=f"layer {index}",
        )
    data = {FIELD_ALIASES.get(k, k) if isinstance(k, str) else k: v for k, v in raw.items()}
    name = data.get("name")
    name = name if isinstance(name, str) else None
    given = data.get("type")
    if not isinstance(given, str):
        raise SpecError("every layer needs a 'type', e.g. type: conv2d",
                        where=label(index, "?", name))
    cls = BY_KEY.get(type_key(given))
    if cls is None:
        hint = difflib.get_close_matches(type_key(given), list(BY_KEY), n=1)
        suffix = f" (did you mean {canonical_type(BY_KEY[hint[0]])}?)" if hint else ""
        raise SpecError(
            f"unknown layer type{suffix}; `cnncalc types` lists them",
            where=label(index, given, name),
            field="type",
            value=given,
            has_value=True,
        )
    kind = canonical_type(cls)
    data["type"] = kind
    data = {k: _tuples(v) for k, v in data.items()}
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise _one_line(exc, cls, label(index, kind, name)) from None


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


# --------------------------------------------------------------------------- documents


_TOP_FIELDS = ("name", "input", "layers")


def spec_from_data(data: Any) -> Spec:
    """Build a Spec from parsed YAML/JSON: a mapping with ``layers``, or a bare list of layers."""
    if isinstance(data, list):
        data = {"layers": data}
    if not isinstance(data, Mapping):
        raise SpecError("a spec is a mapping with 'layers' (and optionally 'input', 'name')")
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
    return Spec(
        layers=tuple(parse_layer(raw, i) for i, raw in enumerate(layers)),
        input=None if shape is None else parse_shape(shape),
        name=name,
    )


def parse_text(text: str, origin: str = "spec") -> Spec:
    """YAML or JSON (JSON is YAML) text, or else the inline syntax."""
    import yaml  # deferred: only when text is parsed

    stripped = text.strip()
    if not stripped:
        raise SpecError("the spec is empty", where=origin)
    if _looks_inline(stripped):
        from cnncalc.inline import parse_inline

        return spec_from_data(parse_inline(stripped))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"malformed YAML/JSON{at}: {problem}", where=origin) from None
    return spec_from_data(data)


def _looks_inline(text: str) -> bool:
    """Inline specs are one line of calls (``conv2d(6, 5) relu``); documents have ':' keys."""
    if "\n" in text or text.startswith(("{", "[")):
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
        return parse_text(text, origin=source)
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
