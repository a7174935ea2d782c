"""``cnncalc diff A B``: two designs side by side — totals, blocks at a depth, differing rows.

Rows are aligned by their type sequence with :class:`difflib.SequenceMatcher` (names are
often positions, ``features.3``, which an inserted layer shifts), so an inserted or removed
layer shows as one added/removed row rather than shifting every row after it. Two aligned
rows differ when their output shape, parameters or MACs differ. Nothing here prints.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from cnncalc.analysis import Analysis, Row, collapse
from cnncalc.report import dims, human_bytes, num

TOTALS = ("params", "trainable_params", "buffers", "macs", "param_bytes", "activation_bytes")


@dataclass(frozen=True)
class Pair:
    """Aligned rows (either may be None: the row exists on one side only)."""

    a: Row | None
    b: Row | None

    @property
    def name(self) -> str:
        def one(r: Row) -> str:
            return r.name or r.type

        if self.a is not None and self.b is not None and one(self.a) != one(self.b):
            return f"{one(self.a)} → {one(self.b)}"
        return one(self.a or self.b)

    @property
    def changes(self) -> tuple[str, ...]:
        if self.a is None:
            return ("added",)
        if self.b is None:
            return ("removed",)
        out = []
        if self.a.type != self.b.type:
            out.append("type")
        if self.a.output_shape != self.b.output_shape:
            out.append("shape")
        if self.a.params != self.b.params:
            out.append("params")
        if self.a.macs != self.b.macs:
            out.append("macs")
        return tuple(out)


@dataclass(frozen=True)
class Diff:
    a: Analysis
    b: Analysis
    label_a: str
    label_b: str
    blocks: tuple[Pair, ...]  # at --depth
    rows: tuple[Pair, ...]  # every differing row, full depth
    depth: int

    @property
    def equal(self) -> bool:
        return (
            not self.rows
            and _totals(self.a) == _totals(self.b)
            and self.a.totals.output_shape == self.b.totals.output_shape
        )


def _totals(a: Analysis) -> dict[str, int]:
    return {k: getattr(a.totals, k) for k in TOTALS}


def align(a_rows: tuple[Row, ...], b_rows: tuple[Row, ...]) -> list[Pair]:
    key = [r.type for r in a_rows], [r.type for r in b_rows]
    pairs: list[Pair] = []
    matcher = difflib.SequenceMatcher(None, key[0], key[1], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal" or (op == "replace" and i2 - i1 == j2 - j1):
            pairs += [Pair(x, y) for x, y in zip(a_rows[i1:i2], b_rows[j1:j2])]
        else:
            pairs += [Pair(x, None) for x in a_rows[i1:i2]]
            pairs += [Pair(None, y) for y in b_rows[j1:j2]]
    return pairs


def diff(a: Analysis, b: Analysis, label_a: str = "A", label_b: str = "B", depth: int = 1) -> Diff:
    blocks = tuple(align(collapse(a, depth).rows, collapse(b, depth).rows))
    rows = tuple(p for p in align(a.rows, b.rows) if p.changes)
    return Diff(a, b, label_a, label_b, blocks, rows, depth)


# --------------------------------------------------------------------------- rendering


def _delta(x: int, y: int, money=num) -> str:
    if x == y:
        return "="
    sign = "+" if y > x else "−"
    ratio = f" ({y / x:.2f}×)" if x else ""
    return f"{sign}{money(abs(y - x))}{ratio}"


def to_json_obj(d: Diff) -> dict[str, Any]:
    def side(r: Row | None) -> dict[str, Any] | None:
        if r is None:
            return None
        return {
            "index": r.index,
            "name": r.name,
            "type": r.type,
            "output_shape": list(r.output_shape),
            "params": r.params,
            "macs": r.macs,
        }

    return {
        "equal": d.equal,
        "a": {
            "label": d.label_a,
            "name": d.a.name,
            **_totals(d.a),
            "output_shape": list(d.a.totals.output_shape),
        },
        "b": {
            "label": d.label_b,
            "name": d.b.name,
            **_totals(d.b),
            "output_shape": list(d.b.totals.output_shape),
        },
        "depth": d.depth,
        "blocks": [
            {"name": p.name, "a": side(p.a), "b": side(p.b), "changes": list(p.changes)}
            for p in d.blocks
        ],
        "rows": [
            {"name": p.name, "a": side(p.a), "b": side(p.b), "changes": list(p.changes)}
            for p in d.rows
        ],
    }


def _cell(r: Row | None, what: str) -> str:
    if r is None:
        return "—"
    return {"shape": dims(r.output_shape), "params": num(r.params), "macs": num(r.macs)}[what]


def tables(d: Diff) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) for the totals, the blocks at ``depth`` and the differing rows."""
    A, B = "A", "B"
    ta, tb = d.a.totals, d.b.totals
    totals = [
        [
            "output",
            dims(ta.output_shape),
            dims(tb.output_shape),
            "=" if ta.output_shape == tb.output_shape else "≠",
        ]
    ]
    for key, title, money in (
        ("params", "params", num),
        ("trainable_params", "trainable", num),
        ("macs", "MACs", num),
        ("param_bytes", "parameter memory", human_bytes),
        ("activation_bytes", "activation memory", human_bytes),
    ):
        x, y = getattr(ta, key), getattr(tb, key)
        totals.append([title, money(x), money(y), _delta(x, y, money)])
    blocks = [
        [
            p.name,
            _cell(p.a, "shape"),
            _cell(p.b, "shape"),
            _cell(p.a, "params"),
            _cell(p.b, "params"),
            _cell(p.a, "macs"),
            _cell(p.b, "macs"),
            ", ".join(p.changes) or "=",
        ]
        for p in d.blocks
    ]
    rows = [
        [
            p.name,
            _cell(p.a, "shape"),
            _cell(p.b, "shape"),
            _cell(p.a, "params"),
            _cell(p.b, "params"),
            _cell(p.a, "macs"),
            _cell(p.b, "macs"),
            ", ".join(p.changes),
        ]
        for p in d.rows
    ]
    wide = [
        "name",
        f"output {A}",
        f"output {B}",
        f"params {A}",
        f"params {B}",
        f"MACs {A}",
        f"MACs {B}",
        "differs",
    ]
    return [
        ("totals", ["", A, B, "Δ"], totals),
        (f"blocks at depth {d.depth}", wide, blocks),
        (f"rows that differ ({len(d.rows)})", wide, rows),
    ]


def render(d: Diff, fmt: str) -> str:
    """``json``, ``csv`` (the differing rows), ``markdown`` or plain ``table`` text."""
    from cnncalc.report import csv_text, dump_json, markdown_text, plain_table

    if fmt == "json":
        return dump_json(to_json_obj(d)) + "\n"
    parts = tables(d)
    if fmt == "csv":
        return csv_text(
            ["name", "a_output", "b_output", "a_params", "b_params", "a_macs", "b_macs", "changes"],
            (
                [
                    p.name,
                    *(("" if r is None else dims(r.output_shape, "x")) for r in (p.a, p.b)),
                    *(("" if r is None else r.params) for r in (p.a, p.b)),
                    *(("" if r is None else r.macs) for r in (p.a, p.b)),
                    " ".join(p.changes),
                ]
                for p in d.rows
            ),
        )
    out = [f"A = {d.label_a}", f"B = {d.label_b}", ""]
    for title, headers, rows in parts:
        out.append(f"## {title}" if fmt == "markdown" else title)
        if not rows:
            out += ["(none)", ""]
            continue
        if fmt == "markdown":
            out.append(markdown_text(headers, rows, [i > 0 for i in range(len(headers))]))
        else:
            out.append(plain_table(headers, rows))
        out.append("")
    out.append("equal" if d.equal else "the designs differ")
    return "\n".join(out) + "\n"
