"""Input-size and batch sweeps: one summary row per (input shape, batch).

``--input`` takes, on each axis (axes separated by ``x`` or ``×``):

- ``224``            one size;
- ``224..512``       every size from 224 to 512 inclusive;
- ``224..512:32``    every 32nd size: 224, 256, …, 512;
- ``{224,256,320}``  a list, whose items may be ranges too: ``{224,300..310:5}``.

All combinations are taken (``3x{224,256}x{224,256}`` is four inputs); ``--batch 1,8,32``
lists batch sizes. Each row gives the output shape, total parameters, total MACs, parameter and
activation memory — or why PyTorch refuses that input. Nothing here prints.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnncalc.errors import CnncalcError, ExitCode, ShapeError, UsageError, show

if TYPE_CHECKING:  # parsing --input / --batch (every shapes run) needs no progress display
    from cnncalc.progress import Progress

Shape = tuple[int, ...]
MAX_SHAPES = 100_000

_PLAIN = re.compile(r"^\s*\d+(\s*[x×,*]\s*\d+)*\s*$")
_RANGE = re.compile(r"^([0-9]{1,30})\.\.([0-9]{1,30})(?::([0-9]{1,30}))?$")
SYNTAX = "sizes such as 224, 224..512, 224..512:32 or {224,256,320} on each axis"


def parse_items(text: str, where: str = "--input", limit: int = MAX_SHAPES) -> list[int]:
    """One axis: ``224``, ``224..512``, ``224..512:32`` or ``{a,b,c..d:s}`` -> sizes.

    At most ``limit`` sizes: a range is measured before it is listed."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        parts = [p.strip() for p in text[1:-1].split(",")]
        if not all(parts):
            raise UsageError(f"{where}: empty item in {show(text)}; expected {SYNTAX}")
        out: dict[int, None] = {}  # ordered, without repeats
        for part in parts:
            out.update(dict.fromkeys(parse_items(part, where, limit)))
            if len(out) > limit:
                raise UsageError(f"{where}: {show(text)} names more than {limit:,} values")
        return list(out)
    if text.isascii() and text.isdigit() and len(text) <= 30:
        values = [int(text)]
    elif m := _RANGE.match(text):
        lo, hi, step = int(m[1]), int(m[2]), int(m[3] or 1)
        if step < 1 or hi < lo:
            raise UsageError(f"{where}: {show(text)} is empty (needs low <= high and step >= 1)")
        span = range(lo, hi + 1, step)
        if len(span) > limit:
            raise UsageError(f"{where}: {show(text)} names {len(span):,} values; at most {limit:,}")
        values = list(span)
    else:
        raise UsageError(f"{where}: cannot read {show(text)}; expected {SYNTAX}")
    if any(v < 1 for v in values):
        raise UsageError(f"{where}: every size must be >= 1, got {show(text)}")
    return values


def _split_axes(text: str, where: str) -> list[str]:
    axes, depth, current = [], 0, ""
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise UsageError(f"{where}: unbalanced '}}' in {show(text)}")
        if depth == 0 and ch in "x×":
            axes.append(current)
            current = ""
        else:
            current += ch
    if depth:
        raise UsageError(f"{where}: unbalanced '{{' in {show(text)}")
    return axes + [current]


def parse_sweep(text: str | None, where: str = "--input") -> list[Shape] | None:
    """Every input shape ``text`` names, or None when it is a plain shape such as 3x224x224."""
    if text is None or _PLAIN.match(text):
        return None
    axes = [parse_items(a, where) for a in _split_axes(text.replace(" ", ""), where)]
    if len(axes) > 4:
        raise UsageError(f"{where}: {len(axes)} axes; cnncalc takes C,L / C,H,W / C,D,H,W")
    count = 1
    for a in axes:
        count *= len(a)
    if count > MAX_SHAPES:
        raise UsageError(f"{where}: {count:,} input shapes; at most {MAX_SHAPES:,}")
    return [tuple(s) for s in itertools.product(*axes)]


def parse_batches(text: str | int, where: str = "--batch") -> list[int]:
    """``8``, ``1,8,32``, ``1..64`` or ``{1,8}`` -> batch sizes."""
    text = str(text).strip()
    if "," in text and not text.startswith("{"):
        text = "{" + text + "}"
    return parse_items(text, where)


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class SweepRow:
    input_shape: Shape
    batch: int
    output_shape: Shape | None  # None: PyTorch refuses this input
    params: int | None = None
    macs: int | None = None
    param_bytes: int | None = None
    activation_bytes: int | None = None
    warnings: tuple[str, ...] = ()
    error: str | None = None


def sweep(
    spec,
    shapes: Sequence[Shape],
    batches: Sequence[int],
    dtype: str = "float32",
    semantics: str = "pytorch",
    progress: Progress | None = None,
    what: str = "analysing input",
) -> tuple[list[SweepRow], list[Any]]:
    """One row per (shape, batch), and the analyses of the inputs PyTorch accepts;
    ``progress`` (silent when None) hears of each point (phase ``what``)."""
    from cnncalc.analysis import analyze
    from cnncalc.progress import SILENT

    progress = progress or SILENT

    if len(shapes) * len(batches) > MAX_SHAPES:
        raise UsageError(
            f"{len(shapes):,} inputs × {len(batches):,} batch sizes make "
            f"{len(shapes) * len(batches):,} runs; at most {MAX_SHAPES:,}"
        )
    rows, analyses = [], []
    progress.phase(what, len(shapes) * len(batches))
    for k, (shape, batch) in enumerate(itertools.product(shapes, batches)):
        progress.step(k, f"{_x(shape)} batch {batch}")
        try:
            a = analyze(spec, shape, batch=batch, dtype=dtype, semantics=semantics)
        except ShapeError as exc:
            rows.append(SweepRow(shape, batch, None, error=str(exc)))
            continue
        t = a.totals
        analyses.append(a)
        rows.append(
            SweepRow(
                shape,
                batch,
                tuple(t.output_shape),
                t.params,
                t.macs,
                t.param_bytes,
                t.activation_bytes,
                a.warnings,
            )
        )
    progress.step(len(shapes) * len(batches), "")
    return rows, analyses


# --------------------------------------------------------------------------- rendering


HEADERS = (
    "input",
    "batch",
    "output",
    "params",
    "MACs",
    "param memory",
    "activation memory",
    "notes",
)  # notes: how many warnings, or why PyTorch refuses the input


def _x(shape: Shape | None, sep: str = "×") -> str:
    return "—" if shape is None else sep.join(map(str, shape))


def render_sweep(rows: Sequence[SweepRow], fmt: str, meta: dict[str, Any] | None = None) -> str:
    """One line per (input, batch) in ``table``/``csv``/``markdown``/``json``.

    JSON is shaped like ``cnncalc shapes``'s: ``meta`` (name, dtype, semantics) first, the
    runs (each with its ``warnings`` list), then the top-level ``warnings`` list."""
    from cnncalc.report import human_bytes, render_records

    def text(r: SweepRow, raw: bool) -> list[Any]:
        sep = "x" if raw else "×"
        if r.output_shape is None:
            return [_x(r.input_shape, sep), r.batch, "refused", "", "", "", "", r.error]
        mem = (lambda b: b) if raw else human_bytes
        num = (lambda v: v) if raw else (lambda v: f"{v:,}")
        return [
            _x(r.input_shape, sep),
            r.batch,
            _x(r.output_shape, sep),
            num(r.params),
            num(r.macs),
            mem(r.param_bytes),
            mem(r.activation_bytes),
            len(r.warnings),
        ]

    objects = [
        {
            "input_shape": list(r.input_shape),
            "batch": r.batch,
            "output_shape": None if r.output_shape is None else list(r.output_shape),
            "params": r.params,
            "macs": r.macs,
            "flops": None if r.macs is None else 2 * r.macs,
            "param_bytes": r.param_bytes,
            "activation_bytes": r.activation_bytes,
            "warnings": list(r.warnings),
            "error": r.error,
        }
        for r in rows
    ]
    raw = fmt in ("csv", "json")
    document = {**(meta or {}), "runs": objects, "warnings": summary_warnings(rows)}
    return render_records(HEADERS, [text(r, raw) for r in rows], fmt, document)


def summary_warnings(rows: Sequence[SweepRow]) -> list[str]:
    """One warning line for all rows whose analysis warned (details: run that input alone)."""
    warned = [r for r in rows if r.warnings]
    if not warned:
        return []
    first = warned[0]
    return [
        f"{len(warned)} of {len(rows)} runs have warnings, e.g. input "
        f"{_x(first.input_shape, 'x')} (run it without a sweep to see them)"
    ]


def check_refusals(rows: Sequence[SweepRow]) -> None:
    """Raise one :class:`SweepRefused` line when PyTorch refuses any input of the sweep."""
    bad = [r for r in rows if r.output_shape is None]
    if bad:
        raise SweepRefused(
            f"PyTorch refuses {len(bad)} of {len(rows)} runs; first: input "
            f"{_x(bad[0].input_shape, 'x')}: {bad[0].error}"
        )


class SweepRefused(CnncalcError):
    exit_code = ExitCode.INVALID
