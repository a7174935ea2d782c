"""Analysis -> what users read: a Rich table, JSON, CSV or Markdown. Pure: returns text/objects.

Columns are data (:class:`Column`), shared by the table, CSV and Markdown renderers, so each
view is a list of column names and a new column is one entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from cnncalc.analysis import Analysis, Row, exact
from cnncalc.errors import printable


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class View(str, Enum):
    shapes = "shapes"
    params = "params"


# --------------------------------------------------------------------------- value formatting


def dims(shape: tuple[int, ...], sep: str = "×") -> str:
    return sep.join(str(d) for d in shape)


def num(value: float | int | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}" if value < 1e6 else f"{value:,.3g}"
    return f"{value:,}"


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_count(n: int) -> str:
    for div, unit in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def _axes(values: tuple, sep: str) -> str:
    out = []
    for v in values:
        v = exact(v)
        out.append(str(v) if isinstance(v, int) else f"{v:.3g}")
    return sep.join(out)


# --------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class Column:
    header: str
    text: Callable[[Row], str]  # for tables and Markdown
    raw: Callable[[Row], Any]  # for CSV
    right: bool = True
    total: Callable[[Analysis], str] | None = None
    short: str | None = None  # header in the default (80-column) table


def _rf(attr: str, sep: str) -> Callable[[Row], str]:
    def get(row: Row) -> str:
        rf = row.receptive_field
        return "—" if rf is None else _axes(getattr(rf, attr), sep)

    return get


COLUMNS: dict[str, Column] = {
    "index": Column("#", lambda r: str(r.index), lambda r: r.index),
    # a name comes from the spec: control characters escaped, on a terminal and in a file
    "name": Column(
        "name", lambda r: printable(r.name or ""), lambda r: printable(r.name or ""), right=False
    ),
    "type": Column(
        "type",
        lambda r: r.type + (" ≠" if r.differs_from_pytorch else ""),
        lambda r: r.type,
        right=False,
        total=lambda a: "total",
    ),
    "output": Column(
        "output",
        lambda r: dims(r.output_shape),
        lambda r: dims(r.output_shape, "x"),
        total=lambda a: dims(a.totals.output_shape),
    ),
    "params": Column(
        "params", lambda r: num(r.params), lambda r: r.params, total=lambda a: num(a.totals.params)
    ),
    "rf": Column("RF", _rf("size", "×"), _rf("size", "x")),
    "jump": Column("jump", _rf("jump", "×"), _rf("jump", "x")),
    "start": Column("start", _rf("start", ","), _rf("start", ",")),
    "macs": Column(
        "MACs", lambda r: num(r.macs), lambda r: r.macs, total=lambda a: num(a.totals.macs)
    ),
    "weights": Column(
        "weights",
        lambda r: num(r.weights),
        lambda r: r.weights,
        total=lambda a: num(sum(r.weights for r in a.rows)),
    ),
    "bias": Column(
        "bias",
        lambda r: num(r.bias),
        lambda r: r.bias,
        total=lambda a: num(sum(r.bias for r in a.rows)),
    ),
    "trainable": Column(
        "trainable",
        lambda r: num(r.trainable_params),
        lambda r: r.trainable_params,
        total=lambda a: num(a.totals.trainable_params),
    ),
    "non_trainable": Column(
        "non-trainable",
        lambda r: num(r.non_trainable_params),
        lambda r: r.non_trainable_params,
        total=lambda a: num(a.totals.non_trainable_params),
        short="fixed",
    ),
    "fc": Column(
        "dense-equiv.",
        lambda r: num(r.fc_equivalent_params),
        lambda r: "" if r.fc_equivalent_params is None else r.fc_equivalent_params,
        total=lambda a: num(a.totals.fc_equivalent_params),
        short="dense-eq.",
    ),
    "sharing": Column(
        "sharing",
        lambda r: "—" if r.sharing_ratio is None else f"{r.sharing_ratio:,.1f}×",
        lambda r: "" if r.sharing_ratio is None else f"{r.sharing_ratio:.6g}",
    ),
    "param_bytes": Column(
        "memory",
        lambda r: human_bytes(r.param_bytes) if r.param_bytes else "0",
        lambda r: r.param_bytes,
        total=lambda a: human_bytes(a.totals.param_bytes),
    ),
}

VIEWS: dict[View, tuple[str, ...]] = {  # every column: CSV, Markdown and --wide tables
    View.shapes: ("index", "name", "type", "output", "params", "rf", "jump", "start", "macs"),
    View.params: (
        "index",
        "name",
        "type",
        "weights",
        "bias",
        "trainable",
        "non_trainable",
        "fc",
        "sharing",
        "param_bytes",
    ),
}
# The default table keeps to 80 columns on the zoo's short names (LeNet, VGG, ...); the
# line under it names what --wide adds.
NARROW: dict[View, tuple[str, ...]] = {
    View.shapes: ("index", "name", "type", "output", "params", "rf", "macs"),
    View.params: ("index", "name", "type", "trainable", "non_trainable", "fc", "param_bytes"),
}
WIDE_HINT: dict[View, str] = {
    View.shapes: "RF: receptive field size; --wide adds its jump and start",
    View.params: "fixed: non-trainable; --wide adds weights, bias and the sharing ratio",
}


# --------------------------------------------------------------------------- JSON contract


def to_json_obj(a: Analysis) -> dict[str, Any]:
    """The documented JSON contract: exact integers, shapes as lists, snake_case keys."""
    t = a.totals
    return {
        "name": a.name,
        "input_shape": list(a.input_shape),
        "batch": a.batch,
        "dtype": a.dtype,
        "semantics": a.semantics,
        "layers": [
            {
                "index": r.index,
                "name": r.name,
                "type": r.type,
                "input_shape": list(r.input_shape),
                "output_shape": list(r.output_shape),
                "params": r.params,
                "weights": r.weights,
                "bias": r.bias,
                "trainable_params": r.trainable_params,
                "non_trainable_params": r.non_trainable_params,
                "buffers": r.buffers,
                "fc_equivalent_params": r.fc_equivalent_params,
                "sharing_ratio": r.sharing_ratio,
                "receptive_field": None
                if r.receptive_field is None
                else r.receptive_field.to_dict(),
                "macs": r.macs,
                "flops": r.flops,
                "activation_bytes": r.activation_bytes,
                "param_bytes": r.param_bytes,
                "warnings": list(r.notes),
                "depth": r.depth,
                "inputs": list(r.inputs),
                "differs_from_pytorch": r.differs_from_pytorch,
                "params_share": _share(r.params, t.params),
                "macs_share": _share(r.macs, t.macs),
            }
            for r in a.rows
        ],
        "totals": {
            "params": t.params,
            "trainable_params": t.trainable_params,
            "non_trainable_params": t.non_trainable_params,
            "buffers": t.buffers,
            "fc_equivalent_params": t.fc_equivalent_params,
            "macs": t.macs,
            "flops": t.flops,
            "param_bytes": t.param_bytes,
            "activation_bytes": t.activation_bytes,
            "output_shape": list(t.output_shape),
        },
        "outputs": [{"name": o.name, "shape": list(o.shape), "row": o.row} for o in a.side_outputs],
        "warnings": list(a.warnings),
    }


def dump_json(obj: Any) -> str:
    """Readable JSON that stays fast for 10,000 layers: the top level indented, each list of
    objects (layers) one object per line, everything else compact on its line (json's C
    encoder; ``indent=`` would switch to the pure-Python one)."""
    compact = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode

    def value(v: Any, pad: str) -> str:
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            inner = pad + "  "
            return "[\n" + ",\n".join(inner + compact(x) for x in v) + "\n" + pad + "]"
        return compact(v)

    if not isinstance(obj, dict):
        return compact(obj)
    items = [f"  {compact(k)}: {value(v, '  ')}" for k, v in obj.items()]
    return "{\n" + ",\n".join(items) + "\n}"


def to_json(a: Analysis) -> str:
    return dump_json(to_json_obj(a))


# --------------------------------------------------------------------------- text renderers


# One home for every command's CSV, Markdown and plain-text tables (shapes, params, run, rf,
# sweeps, solve): each command builds headers and rows, these write them.


def csv_text(headers: list[str] | tuple[str, ...], rows) -> str:
    import csv  # only for --format csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buf.getvalue()


def markdown_text(headers, rows, right: list[bool] | None = None, notes=()) -> str:
    """A Markdown table (``|`` in cells escaped) and, under it, ``notes`` as a list."""
    align = right or [False] * len(headers)
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if r else ":---" for r in align) + "|",
    ]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    return text + ("\n" + "\n".join(f"- {n}" for n in notes) + "\n" if notes else "")


def plain_table(headers, rows, title: str = "") -> str:
    """Aligned columns without borders (numbers to the right), for sweeps and solve."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    lines += [
        "  ".join(c.rjust(w) if c[:1].isdigit() else c.ljust(w) for c, w in zip(r, widths)).rstrip()
        for r in cells
    ]
    return "\n".join(lines) + "\n"


def render_records(headers, rows, fmt: str, objects: Any = None, title: str = "") -> str:
    """``rows`` as a plain table, CSV or Markdown; JSON writes ``objects`` (stable keys)."""
    if fmt == "json":
        return dump_json(objects) + "\n"
    if fmt == "csv":
        return csv_text(headers, rows)
    if fmt == "markdown":
        return markdown_text(headers, rows)
    return plain_table(headers, rows, title)


def to_csv(a: Analysis, view: View, extra: tuple[Column, ...] = ()) -> str:
    cols = [COLUMNS[c] for c in VIEWS[view]] + list(extra)
    return csv_text([c.header for c in cols], ([c.raw(r) for c in cols] for r in a.rows))


def to_markdown(a: Analysis, view: View, extra: tuple[Column, ...] = ()) -> str:
    cols = [COLUMNS[c] for c in VIEWS[view]] + list(extra)
    rows = [[c.text(r) for c in cols] for r in a.rows]
    rows.append([f"**{c.total(a)}**" if c.total else "" for c in cols])
    return markdown_text([c.header for c in cols], rows, [c.right for c in cols], summary(a))


def summary(a: Analysis) -> list[str]:
    """The lines under a table: totals with units, in words."""
    t = a.totals
    batch = f"batch {a.batch}, {a.dtype}"
    marked = sum(r.differs_from_pytorch for r in a.rows)
    semantics = (
        [f"semantics: {a.semantics} — {marked} layer(s) marked ≠ differ from PyTorch"]
        if a.semantics != "pytorch"
        else []
    )
    side = [f"side output {o.name}: {dims(o.shape)} (row {o.row})" for o in a.side_outputs]
    return semantics + [
        f"input {dims(a.input_shape)} → output {dims(t.output_shape)} ({batch})",
        *side,
        f"params {num(t.params)}{_approx(t.params)}: trainable {num(t.trainable_params)}, "
        f"non-trainable {num(t.non_trainable_params)} (buffers {num(t.buffers)})",
        f"parameter memory {human_bytes(t.param_bytes)} (params + buffers, {a.dtype})",
        f"MACs {num(t.macs)}{_approx(t.macs)}, FLOPs {num(t.flops)} (= 2 × MACs)",
        f"activation memory {human_bytes(t.activation_bytes)} (every layer's output, {batch})",
        f"a dense layer in place of every weighted layer would need "
        f"{num(t.fc_equivalent_params)} params",
    ]


def _approx(n: int) -> str:
    return f" ({human_count(n)})" if n >= 1000 else ""


def to_table(a: Analysis, view: View, extra: tuple[Column, ...] = (), wide: bool = False):
    from rich.table import Table  # -> rich.table.Table (rich imported lazily)

    cols = [COLUMNS[c] for c in (VIEWS if wide else NARROW)[view]] + list(extra)
    title = f"{a.name} — {view.value}" if a.name else view.value
    table = Table(title=title, show_footer=True, header_style="bold", footer_style="bold")
    for c in cols:
        header = c.header if wide else (c.short or c.header)
        table.add_column(
            header,
            footer=c.total(a) if c.total else "",
            justify="right" if c.right else "left",
            no_wrap=True,
        )
    for row in a.rows:
        table.add_row(*(c.text(row) for c in cols))
    return table


def render_text(
    a: Analysis, view: View, fmt: Format, extra: tuple[Column, ...] = (), training=None
) -> str:
    """Every format except the Rich table, as text ready for stdout. ``training``: the
    ``--training`` figures (:func:`training_figures`), added to the JSON."""
    if fmt is Format.json:
        if training is None:
            return to_json(a) + "\n"
        obj = to_json_obj(a)
        per_row, m = training
        for layer in obj["layers"]:
            layer.update(per_row[layer["index"]])
        obj["totals"].update({k: getattr(m.totals, k) for k in MEMORY_KEYS})
        obj.update(optimizer=m.optimizer, amp=m.amp)
        return dump_json(obj) + "\n"
    if fmt is Format.csv:
        return to_csv(a, view, extra)
    if fmt is Format.markdown:
        return to_markdown(a, view, extra)
    raise ValueError(f"{fmt} is rendered by to_table")


# --------------------------------------------------------------------------- cnncalc run


def run_json_obj(result) -> dict[str, Any]:
    """The analysis contract plus, per layer, predicted/measured shape, match and ms."""
    obj = to_json_obj(result.analysis)
    for layer, rr in zip(obj["layers"], result.rows):
        layer.update(
            predicted_shape=list(rr.row.output_shape),
            measured_shape=list(rr.measured_shape),
            match=rr.match,
            ms=rr.ms,
            gflops=rr.gflops,
        )
    obj["totals"].update(
        all_match=result.all_match, ms=result.ms, peak_bytes_estimate=result.peak_bytes
    )
    obj.update(seed=result.seed, threads=result.threads, threads_asked=result.threads_asked)
    return obj


def _run_cells(rr) -> list[str]:
    r = rr.row
    return [
        str(r.index),
        printable(r.name or ""),
        r.type,
        dims(r.output_shape),
        dims(rr.measured_shape),
        "✓" if rr.match else "✗",
        f"{rr.ms:.3f}",
        "" if rr.gflops is None else f"{rr.gflops:.1f}",
    ]


RUN_HEADERS = ("#", "name", "type", "predicted", "measured", "ok", "ms", "GFLOP/s")


def render_run(result, fmt: Format) -> str:
    if fmt is Format.json:
        return dump_json(run_json_obj(result)) + "\n"
    if fmt is Format.csv:

        def raw(rr) -> list[str]:
            cells = _run_cells(rr)
            cells[3], cells[4] = dims(rr.row.output_shape, "x"), dims(rr.measured_shape, "x")
            return cells

        return csv_text(RUN_HEADERS, (raw(rr) for rr in result.rows))
    if fmt is Format.markdown:
        return markdown_text(
            RUN_HEADERS,
            [_run_cells(rr) for rr in result.rows],
            [True, False, False, True, True, False, True, True],
            run_summary(result),
        )
    raise ValueError(f"{fmt} is rendered by run_table")


def _threads(result) -> str:
    used, asked = result.threads, result.threads_asked
    if used >= asked:
        return f"{used} thread(s)"
    return f"{used} thread(s) of {asked}: the other cores were busy with other processes"


def run_summary(result) -> list[str]:
    a = result.analysis
    ok = sum(rr.match for rr in result.rows)
    return [
        f"{ok}/{len(result.rows)} shapes as predicted; input {dims(a.input_shape)}, "
        f"batch {a.batch}, {a.dtype}, seed {result.seed}, {_threads(result)}",
        f"total {result.ms:.2f} ms for {num(a.totals.flops)} FLOPs; "
        f"peak memory estimate {human_bytes(result.peak_bytes)}",
    ]


def run_table(result):
    from rich.table import Table

    a = result.analysis
    title = f"{a.name} — run" if a.name else "run"
    table = Table(title=title, header_style="bold")
    for h in RUN_HEADERS:
        table.add_column(h, justify="left" if h in ("name", "type") else "right", no_wrap=True)
    for rr in result.rows:
        cells = _run_cells(rr)
        cells[5] = "[green]✓[/]" if rr.match else "[bold red]✗[/]"
        table.add_row(*cells)
    return table


# --------------------------------------------------------------------------- cnncalc memory


MEMORY_KEYS = (
    "parameter_bytes",
    "buffer_bytes",
    "gradient_bytes",
    "optimizer_bytes",
    "saved_activation_bytes",
    "output_bytes",
    "peak_bytes",
    "inference_peak_bytes",
)
MEMORY_HEADERS = (
    "#",
    "name",
    "type",
    "output",
    "params",
    "buffers",
    "grads",
    "optimizer",
    "saved",
    "out",
    "peak",
)


def memory_json_obj(m, fit=None) -> dict[str, Any]:
    """The analysis contract plus, per layer and in the totals, the training-memory keys."""
    obj = to_json_obj(m.analysis)
    for layer, mr in zip(obj["layers"], m.rows):
        layer.update({k: getattr(mr, k) for k in MEMORY_KEYS}, output_dtype=mr.output_dtype)
    obj["totals"].update(
        {k: getattr(m.totals, k) for k in MEMORY_KEYS}, input_bytes=m.totals.input_bytes
    )
    obj.update(batch=m.batch, optimizer=m.optimizer, amp=m.amp)
    if fit is not None:
        obj["fit"] = {
            "budget_bytes": fit.budget,
            "batch": fit.batch,
            "peak_bytes": fit.memory.totals.peak_bytes,
            "next_batch_peak_bytes": fit.next_peak,
        }
    return obj


def _memory_cells(mr, text: bool = True) -> list[Any]:
    r = mr.row
    b = human_bytes if text else (lambda n: n)
    return [
        str(r.index) if text else r.index,
        printable(r.name or ""),
        r.type,
        dims(r.output_shape) if text else dims(r.output_shape, "x"),
        b(mr.parameter_bytes),
        b(mr.buffer_bytes),
        b(mr.gradient_bytes),
        b(mr.optimizer_bytes),
        b(mr.saved_activation_bytes),
        b(mr.output_bytes),
        b(mr.peak_bytes),
    ]


def memory_summary(m, fit=None) -> list[str]:
    t, a = m.totals, m.analysis
    precision = f"autocast {m.amp} over float32 master weights" if m.amp else m.dtype
    lines = [
        f"input {dims(a.input_shape)} → output {dims(a.totals.output_shape)} (batch {m.batch}, "
        f"{precision}, optimizer {m.optimizer})",
        f"training step: parameters {human_bytes(t.parameter_bytes)} + buffers "
        f"{human_bytes(t.buffer_bytes)} + gradients {human_bytes(t.gradient_bytes)} + "
        f"optimizer state {human_bytes(t.optimizer_bytes)} + saved activations "
        f"{human_bytes(t.saved_activation_bytes)}",
        f"training peak {human_bytes(t.peak_bytes)} ({t.peak_bytes:,} bytes: the tensors "
        "alive at the busiest moment of forward or backward; allocator caching and kernel "
        "workspace come on top)",
        f"inference peak {human_bytes(t.inference_peak_bytes)} (no autograd: weights and the "
        "activations alive at once)",
    ]
    if fit is not None:
        lines.append(
            f"--fit {human_bytes(fit.budget)} ({fit.budget:,} bytes): the largest "
            f"batch is {fit.batch} (peak {fit.memory.totals.peak_bytes:,} bytes); "
            f"batch {fit.batch + 1} would need {fit.next_peak:,}"
        )
    return lines


def memory_table(m):
    from rich.table import Table

    a = m.analysis
    table = Table(
        title=f"{a.name} — memory" if a.name else "memory",
        header_style="bold",
        show_footer=True,
        footer_style="bold",
    )
    t = m.totals
    foot = ["", "", "total", dims(a.totals.output_shape)] + [
        human_bytes(v)
        for v in (
            t.parameter_bytes,
            t.buffer_bytes,
            t.gradient_bytes,
            t.optimizer_bytes,
            t.saved_activation_bytes,
            t.output_bytes,
            t.peak_bytes,
        )
    ]
    for h, f in zip(MEMORY_HEADERS, foot):
        table.add_column(
            h, footer=f, justify="left" if h in ("name", "type") else "right", no_wrap=True
        )
    for mr in m.rows:
        table.add_row(*_memory_cells(mr))
    return table


def render_memory(m, fmt: Format, fit=None) -> str:
    """Every format except the Rich table (:func:`memory_table`)."""
    if fmt is Format.json:
        return dump_json(memory_json_obj(m, fit)) + "\n"
    if fmt is Format.csv:
        return csv_text(MEMORY_HEADERS, (_memory_cells(mr, text=False) for mr in m.rows))
    if fmt is Format.markdown:
        right = [True, False, False] + [True] * (len(MEMORY_HEADERS) - 3)
        return markdown_text(
            MEMORY_HEADERS, [_memory_cells(mr) for mr in m.rows], right, memory_summary(m, fit)
        )
    raise ValueError(f"{fmt} is rendered by memory_table")


SWEEP_MEMORY_KEYS = (
    "batch",
    "saved_activation_bytes",
    "gradient_bytes",
    "optimizer_bytes",
    "peak_bytes",
    "inference_peak_bytes",
)


def render_memory_sweep(ms: list, fmt: Format) -> str:
    """One row per batch size: what grows with it, and the peaks."""
    rows = [
        {"batch": m.batch, **{k: getattr(m.totals, k) for k in SWEEP_MEMORY_KEYS[1:]}} for m in ms
    ]
    if fmt is Format.json:
        return (
            dump_json(
                {
                    "name": ms[0].analysis.name,
                    "optimizer": ms[0].optimizer,
                    "amp": ms[0].amp,
                    "dtype": ms[0].dtype,
                    "rows": rows,
                }
            )
            + "\n"
        )
    if fmt is Format.csv:
        return csv_text(SWEEP_MEMORY_KEYS, ([row[k] for k in SWEEP_MEMORY_KEYS] for row in rows))
    headers = (
        "batch",
        "saved activations",
        "gradients",
        "optimizer",
        "training peak",
        "inference peak",
    )
    cells = [
        [str(row["batch"])] + [human_bytes(row[k]) for k in SWEEP_MEMORY_KEYS[1:]] for row in rows
    ]
    if fmt is Format.markdown:
        return markdown_text(headers, cells, [True] * len(headers))
    return plain_table(headers, cells)


# --------------------------------------------------------------------------- --share, --top


def _share(part: int, whole: int) -> float:
    """A row's fraction of a total (0 when the total is 0)."""
    return part / whole if whole else 0.0


def share_columns(a: Analysis) -> tuple[Column, ...]:
    """Each row's % of the network's parameters and MACs (``--share``)."""
    t = a.totals

    def pct(value: float) -> str:
        return f"{100 * value:.1f}%"

    return (
        Column(
            "params %",
            lambda r: pct(_share(r.params, t.params)),
            lambda r: f"{100 * _share(r.params, t.params):.4f}",
            total=lambda a: "100%",
        ),
        Column(
            "MACs %",
            lambda r: pct(_share(r.macs, t.macs)),
            lambda r: f"{100 * _share(r.macs, t.macs):.4f}",
            total=lambda a: "100%",
        ),
    )


def top(a: Analysis, n: int, view: View) -> Analysis:
    """The ``n`` heaviest rows, heaviest first: by MACs for ``shapes``, by parameters for
    ``params`` (ties keep table order). Totals stay those of the whole network."""
    from dataclasses import replace

    from cnncalc.errors import bad_option

    if n < 1:
        raise bad_option("--top", n, "must be at least 1")
    key = (lambda r: r.macs) if view is View.shapes else (lambda r: r.params)
    rows = sorted(a.rows, key=lambda r: -key(r))[:n]
    return replace(a, rows=tuple(rows))


# --------------------------------------------------------------------------- --training


def training_figures(m, shown: Analysis):
    """Per shown row (a layer, or a block folded by --depth: the sum over its layers), the
    training-memory keys of ``m`` (computed on the unfolded analysis); and ``m`` itself."""
    by_index = {mr.row.index: mr for mr in m.rows}
    starts = [r.index for r in shown.rows]
    ends = sorted(starts)[1:] + [len(m.rows)]
    per_row = {}
    for start in starts:
        end = min(e for e in ends if e > start)
        members = [by_index[i] for i in range(start, end) if i in by_index]
        per_row[start] = {
            k: (max if k.endswith("peak_bytes") else sum)(getattr(mr, k) for mr in members)
            for k in MEMORY_KEYS
        }
    return per_row, m


def training_columns(figures) -> tuple[Column, ...]:
    """``--training``: saved activations, gradients + optimizer state, and the training peak
    while the row runs."""
    per_row, m = figures
    t = m.totals

    def col(header: str, get, total: int) -> Column:
        return Column(
            header,
            lambda r: human_bytes(get(per_row[r.index])),
            lambda r: get(per_row[r.index]),
            total=lambda a: human_bytes(total),
        )

    return (
        col("saved", lambda f: f["saved_activation_bytes"], t.saved_activation_bytes),
        col(
            "grads + optim",
            lambda f: f["gradient_bytes"] + f["optimizer_bytes"],
            t.gradient_bytes + t.optimizer_bytes,
        ),
        col("train peak", lambda f: f["peak_bytes"], t.peak_bytes),
    )
