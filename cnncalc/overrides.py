"""``--set PATH=VALUE``: change a spec value or a template argument from the command line.

Overrides are applied to the raw YAML/JSON data, before validation, so the result is checked
like any spec. A PATH is

- a dotted path into the document: ``layers.3.out_channels`` (list items by index, or by
  the ``name`` of an item: ``layers.fc.out_features``; a path starting with an index starts
  in ``layers``), ``input``, ``blocks.basic.args.planes``;
- a bare argument name (``width``): the default of that argument in every template that
  declares it (``blocks.<t>.args.width``; a use that passes its own value keeps it), unless
  the document has a top-level key of that name.

VALUE is read as YAML: ``64`` is a number, ``[3, 3]`` a list, ``same`` a string, ``true`` a
bool. A comma list or range (``width=32,64``, ``width=16..64:16``) makes a sweep, as
``--input`` does; several ``--set`` options sweep over every combination.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnncalc.errors import SpecError, UsageError
from cnncalc.progress import SILENT, Progress

Assignment = tuple[tuple[str, Any], ...]  # (path, value) pairs, one per --set
_RANGE = re.compile(r"^\d+\.\.\d+(:\d+)?$")


@dataclass(frozen=True)
class Override:
    path: str
    values: tuple[Any, ...]  # one value, or several for a sweep


def parse(text: str) -> Override:
    """``width=64``, ``layers.3.out_channels=128``, ``width=32,64``, ``k=[3, 3]``."""
    import yaml

    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not path or not raw.strip():
        raise UsageError(
            f"--set {text!r}: expected PATH=VALUE, e.g. width=64 or layers.3.out_channels=128"
        )
    raw = raw.strip()
    if _RANGE.match(raw):
        from cnncalc.sweep import parse_items

        return Override(path, tuple(parse_items(raw, "--set")))
    if "," in raw and not raw.startswith(("[", "{", "(", "'", '"')):
        parts = [p.strip() for p in raw.split(",")]
    else:
        parts = [raw]
    values = []
    for part in parts:
        try:
            value = yaml.safe_load(part)
        except yaml.YAMLError:
            raise UsageError(f"--set {text!r}: cannot read {part!r} as a value") from None
        values.append(value)
    return Override(path, tuple(values))


def assignments(overrides: list[Override]) -> list[Assignment]:
    """Every combination of the overrides' values (one when none sweeps)."""
    if not overrides:
        return [()]
    return [
        tuple(zip((o.path for o in overrides), combo))
        for combo in itertools.product(*(o.values for o in overrides))
    ]


def label(assignment: Assignment) -> str:
    return " ".join(f"{p}={_show(v)}" for p, v in assignment)


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def apply(data: Any, assignment: Assignment) -> Any:
    """A copy of the raw spec ``data`` with every (path, value) of ``assignment`` set."""
    data = copy.deepcopy({"layers": data} if isinstance(data, list) else data)
    for path, value in assignment:
        _set(data, path, value)
    return data


def _set(data: Any, path: str, value: Any) -> None:
    where = f"--set {path}"
    if not isinstance(data, dict):
        raise SpecError("the spec is not a mapping", where=where)
    keys = path.split(".")
    if re.fullmatch(r"-?\d+", keys[0]) and "layers" in data:
        keys = ["layers", *keys]  # 3.out_channels: the top-level layers list
    if len(keys) == 1 and keys[0] not in data:
        templates = data.get("blocks") or {}
        hits = [
            t
            for t in templates.values()
            if isinstance(t, Mapping)
            and isinstance(t.get("args"), Mapping)
            and keys[0] in t["args"]
        ]
        if not hits:
            known = sorted(
                {
                    a
                    for t in templates.values()
                    if isinstance(t, Mapping) and isinstance(t.get("args"), Mapping)
                    for a in t["args"]
                }
            )
            extra = f"; template arguments: {', '.join(known)}" if known else ""
            raise SpecError(
                f"no top-level key or template argument of that name{extra}", where=where
            )
        for t in hits:
            t["args"][keys[0]] = value
        return
    node = data
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        here = ".".join(keys[: depth + 1])
        if isinstance(node, list):
            index = _index(node, key, here)
            if last:
                node[index] = value
                return
            node = node[index]
        elif isinstance(node, dict):
            if last:
                node[key] = value
                return
            if key not in node:
                hint = ", ".join(map(str, node)) or "none"
                raise SpecError(f"'{key}' not found (keys here: {hint})", where=f"--set {path}")
            node = node[key]
        else:
            raise SpecError(f"'{here}' is a value, not a mapping or a list", where=f"--set {path}")


def _index(items: list, key: str, here: str) -> int:
    if re.fullmatch(r"-?\d+", key):
        i = int(key)
        if not -len(items) <= i < len(items):
            raise SpecError(
                f"index {i} is out of range (the list has {len(items)} items)",
                where=f"--set {here}",
            )
        return i
    named = [
        i for i, item in enumerate(items) if isinstance(item, Mapping) and item.get("name") == key
    ]
    if len(named) != 1:
        what = "no item" if not named else f"{len(named)} items"
        raise SpecError(f"{what} of this list named '{key}'", where=f"--set {here}")
    return named[0]


# --------------------------------------------------------------------------- loading


def raw_data(source: str, stdin_text: str | None = None) -> Any:
    """The spec's raw data as :func:`cnncalc.spec.load` reads it (file, ``-``, inline)."""
    from cnncalc import spec as spec_mod

    if source == "-":
        text, origin, inline = stdin_text or "", "stdin", True
    elif spec_mod._is_file(Path(source)):
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {source}: {exc}") from None
        origin, inline = source, False
    else:
        spec_mod.load(source)  # the usual errors for a missing file or bad inline text
        text, origin, inline = source, "inline spec", True
    stripped = text.strip()
    if inline and stripped and spec_mod._looks_inline(stripped):
        from cnncalc.inline import parse_inline

        return parse_inline(stripped)
    import yaml

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        spec_mod.parse_text(text, origin, inline=False)  # raises the usual one-line error
        raise
    if data is None:
        spec_mod.parse_text(text, origin, inline=False)
    return data


def load(source: str, sets: list[str], stdin_text: str | None = None) -> list[tuple[str, Any]]:
    """(label, Spec) per combination of ``--set`` values."""
    from cnncalc.spec import spec_from_data

    overrides = [parse(s) for s in sets]
    data = raw_data(source, stdin_text)
    return [(label(a), spec_from_data(apply(data, a))) for a in assignments(overrides)]


def sweep_rows(
    specs: list[tuple[str, Any]],
    shapes: list,
    batches: list[int],
    dtype: str,
    semantics: str,
    fmt: str,
    progress: Progress = SILENT,
) -> tuple[str, list, list]:
    """The ``--input``/``--batch`` sweep table with a leading ``set`` column: one row per
    (--set values, input, batch). Returns (text, sweep rows, analyses)."""
    from cnncalc.report import human_bytes, render_records
    from cnncalc.sweep import HEADERS, sweep

    raw = fmt in ("csv", "json")
    sep = "x" if raw else "×"
    mem = (lambda b: b) if raw else human_bytes
    num = (lambda v: v) if raw else (lambda v: f"{v:,}")
    rows, analyses, records, objects = [], [], [], []
    for name, spec in specs:
        got, found = sweep(
            spec,
            [s or spec.input for s in shapes],
            batches,
            dtype,
            semantics,
            progress,
            f"{name}: analysing input" if name else "analysing input",
        )
        rows += got
        analyses += found
        for r in got:
            shape = sep.join(map(str, r.input_shape))
            if r.output_shape is None:
                records.append([name, shape, r.batch, "refused", "", "", "", "", r.error])
            else:
                records.append(
                    [
                        name,
                        shape,
                        r.batch,
                        sep.join(map(str, r.output_shape)),
                        num(r.params),
                        num(r.macs),
                        mem(r.param_bytes),
                        mem(r.activation_bytes),
                        len(r.warnings),
                    ]
                )
            objects.append(
                {
                    "set": name,
                    "input_shape": list(r.input_shape),
                    "batch": r.batch,
                    "output_shape": None if r.output_shape is None else list(r.output_shape),
                    "params": r.params,
                    "macs": r.macs,
                    "param_bytes": r.param_bytes,
                    "activation_bytes": r.activation_bytes,
                    "warnings": list(r.warnings),
                    "error": r.error,
                }
            )
    return render_records(("set", *HEADERS), records, fmt, {"runs": objects}), rows, analyses
