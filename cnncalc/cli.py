"""The ``cnncalc`` command: parse the command line, call the library, render, exit.

Each command is a few lines over the library; errors become one line on stderr and an exit
code from :class:`cnncalc.errors.ExitCode`; nothing reaches stdout unless all went well.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, TypeVar

import typer

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer depends on click
    from click import exceptions as click_exc

from cnncalc import __version__
from cnncalc.errors import CnncalcError, ExitCode, SpecError, UsageError
from cnncalc.report import Format, View

app = typer.Typer(
    name="cnncalc",
    help="Size convolutional networks from a layer spec: shapes, parameters, receptive "
    "fields, MACs and memory — exactly as PyTorch computes them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings wrap as paragraphs
    context_settings={"help_option_names": ["-h", "--help"]},
)

T = TypeVar("T")
_state = {"traceback": False}


class DType(str, Enum):
    float32 = "float32"
    float64 = "float64"
    float16 = "float16"
    bfloat16 = "bfloat16"
    int8 = "int8"


SpecArg = Annotated[
    str,
    typer.Argument(
        metavar="SPEC",
        help="A YAML/JSON file, '-' for stdin, or an inline spec such as "
        "\"conv2d(6, 5) relu maxpool2d(2) flatten linear(10)\".",
        show_default=False,
    ),
]
InputOpt = Annotated[
    str | None,
    typer.Option("--input", "-i", metavar="CxHxW",
                 help="Input shape without batch (overrides the spec's), e.g. 3x224x224."),
]
BatchOpt = Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size for MACs and "
                                       "activation memory.")]
BatchesOpt = Annotated[str, typer.Option(
    "--batch", "-b", metavar="N[,N…]", help="Batch size for MACs and activation memory; a list "
    "(1,8,32) or range (1..64:8) gives one summary row per batch.")]
InputsOpt = Annotated[str | None, typer.Option(
    "--input", "-i", metavar="CxHxW", help="Input shape without batch (overrides the spec's), "
    "e.g. 3x224x224. Sweep: per axis a range 224..512 (step: 224..512:32) or a list {224,256}, "
    "e.g. 3x{224,256}x{224,256}: one summary row per input.")]
DTypeOpt = Annotated[DType, typer.Option("--dtype", help="Element type for memory figures.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
class Semantics(str, Enum):
    pytorch = "pytorch"
    tensorflow = "tensorflow"


SemanticsOpt = Annotated[Semantics, typer.Option(
    "--semantics", help="pytorch (default) or tensorflow: Keras/TF rules ('same' = ⌈n/s⌉ "
    "with the extra padding at the end, for any stride; no ceil_mode); layers whose result "
    "differs from PyTorch's are marked ≠.")]
DepthOpt = Annotated[int | None, typer.Option("--depth", "-d", min=1, help="Fold rows nested "
                                              "deeper than N into their block, with subtotals "
                                              "(1: top level only, as torchinfo).")]
# CI assertions (cnncalc/checks.py): the report is printed, then a violation exits 1.
ExpectOpt = Annotated[str | None, typer.Option(
    "--expect-output", metavar="SHAPE", help="Fail (exit 1) unless the output shape is SHAPE, "
    "e.g. 10 or 64x7x7.")]
MaxParamsOpt = Annotated[str | None, typer.Option(
    "--max-params", metavar="N", help="Fail (exit 1) if the parameters exceed N (25M, 1.5k).")]
MaxMacsOpt = Annotated[str | None, typer.Option(
    "--max-macs", metavar="N", help="Fail (exit 1) if the MACs exceed N (4G).")]
MaxMemoryOpt = Annotated[str | None, typer.Option(
    "--max-memory", metavar="BYTES", help="Fail (exit 1) if parameter + activation memory "
    "exceeds BYTES (512MiB, 4G, 2GiB).")]


SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="PATH=VALUE", help="Override a spec value or template argument before "
    "validation: width=64, layers.3.out_channels=128, layers.fc.out_features=10 (repeatable; "
    "32,64 or 16..64:16 sweeps).")]
TrainingOpt = Annotated[bool, typer.Option(
    "--training", help="Add training-memory columns (saved activations, gradients + Adam "
    "state, training peak) and JSON keys; `cnncalc memory` has every option.")]
ShareOpt = Annotated[bool, typer.Option(
    "--share", help="Add each layer's % of the total parameters and MACs.")]
TopOpt = Annotated[int | None, typer.Option(
    "--top", metavar="N", min=1, help="Only the N heaviest layers, heaviest first (by MACs "
    "for shapes, by parameters for params), with their shares.")]


def _guard(body: Callable[[], T]) -> T:
    """Run a command body; library errors become one stderr line and their exit code."""
    try:
        return body()
    except CnncalcError as exc:
        _fail(str(exc), exc.exit_code)
    except typer.Exit:  # a deliberate exit (e.g. a failed run check): not a bug
        raise
    except Exception as exc:  # a bug in cnncalc: one line, or the traceback on request
        if _state["traceback"]:
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (run with --traceback and report "
              "it)", ExitCode.INTERNAL)
    raise AssertionError("unreachable")


def _fail(message: str, code: ExitCode) -> None:
    sys.stderr.write(f"cnncalc: error: {' '.join(message.split())}\n")
    raise typer.Exit(int(code))


def warn(lines: tuple[str, ...] | list[str]) -> None:
    for line in lines:
        sys.stderr.write(f"cnncalc: warning: {line}\n")


def stdout_console():
    """A Rich console for stdout: colour on a terminal; plain and unwrapped when piped."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=int(os.environ.get("COLUMNS", 0)) or 400, no_color=True,
                   highlight=False)


def print_table(table, lines: list[str]) -> None:
    """A table and the summary lines under it (see :func:`print_items`)."""
    print_items([table, *lines])


def print_items(items: list) -> None:
    """Rich renderables and plain lines. A table wider than the terminal is printed at its
    natural width (the terminal wraps it) rather than squeezed: digits are never cut."""
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    console = stdout_console()
    wide = console.options.update(max_width=10_000)
    width = max([Measurement.get(console, wide, t).maximum for t in items
                 if isinstance(t, Table)] + [0])
    if width > console.width:
        console = Console(width=width, no_color=console.no_color, highlight=False,
                          force_terminal=console.is_terminal)
    for item in items:
        if isinstance(item, str):
            console.print(item, highlight=False, markup=False)
        else:
            console.print(item)


def load_spec(spec: str, input_shape: str | None, sets: list[str] | None = None):
    """SPEC and --input -> (Spec, shape or None); --input problems are usage errors.
    ``sets``: --set overrides (one value each here; sweeps go through :func:`load_specs`)."""
    specs, shape = load_specs(spec, input_shape, sets)
    if len(specs) > 1:
        raise UsageError("--set with several values sweeps only in shapes and params (and "
                         "diff compares two)")
    return specs[0][1], shape


def load_specs(spec: str, input_shape: str | None, sets: list[str] | None = None):
    """Like :func:`load_spec`, with a (label, Spec) per combination of --set values."""
    from cnncalc import spec as spec_mod

    shape = None
    if input_shape is not None:
        try:
            shape = spec_mod.parse_shape(input_shape, where="--input")
        except SpecError as exc:
            raise UsageError(str(exc)) from None
    stdin_text = sys.stdin.read() if spec == "-" else None
    if sets:
        from cnncalc import overrides

        return overrides.load(spec, sets, stdin_text), shape
    return [("", spec_mod.load(spec, stdin_text=stdin_text))], shape


def _sweep(spec: str, input_shape: str | None, shapes, batches: list[int], dtype: DType,
           fmt: Format, limits, semantics: Semantics = Semantics.pytorch,
           sets: list[str] | None = None) -> None:
    """One row per (input, batch): output, params, MACs, memory (cnncalc/sweep.py)."""
    from cnncalc.checks import enforce
    from cnncalc.sweep import check_refusals, render_sweep, summary_warnings, sweep

    parsed, shape = load_spec(spec, input_shape, sets)
    rows, analyses = sweep(parsed, shapes or [shape or parsed.input], batches, dtype.value,
                           semantics.value)
    warn(summary_warnings(rows))
    sys.stdout.write(render_sweep(rows, fmt.value))
    check_refusals(rows)
    enforce(analyses, limits)


def _set_sweep(spec: str, input_shape: str | None, shapes, batches: list[int], dtype: DType,
               fmt: Format, limits, semantics: Semantics, sets: list[str]) -> None:
    """One row per (--set values, input, batch) (cnncalc/overrides.py)."""
    from cnncalc.checks import enforce
    from cnncalc.overrides import sweep_rows
    from cnncalc.sweep import check_refusals, summary_warnings

    specs, shape = load_specs(spec, None if shapes else input_shape, sets)
    text, rows, analyses = sweep_rows(specs, shapes or [shape], batches, dtype.value,
                                      semantics.value, fmt.value)
    warn(summary_warnings(rows))
    sys.stdout.write(text)
    check_refusals(rows)
    enforce(analyses, limits)


def _report(view: View, spec: str, input_shape: str | None, batch: str, dtype: DType,
            fmt: Format, depth: int | None = None, checks: tuple = (),
            semantics: Semantics = Semantics.pytorch, share: bool = False,
            top_n: int | None = None, sets: list[str] | None = None,
            training: bool = False) -> None:
    from cnncalc.analysis import analyze, collapse
    from cnncalc.checks import enforce, parse_limits
    from cnncalc.report import render_text, share_columns, summary, to_table, top
    from cnncalc.sweep import parse_batches, parse_sweep

    limits = parse_limits(*checks)
    shapes, batches = parse_sweep(input_shape), parse_batches(batch)
    if sets:
        from cnncalc.overrides import parse

        if any(len(parse(t).values) > 1 for t in sets):
            return _set_sweep(spec, input_shape, shapes, batches, dtype, fmt, limits,
                              semantics, sets)
    if shapes is not None or len(batches) > 1:
        return _sweep(spec, None if shapes else input_shape, shapes, batches, dtype, fmt, limits,
                      semantics, sets)
    parsed, shape = load_spec(spec, input_shape, sets)
    result = analyze(parsed, shape, batch=batches[0], dtype=dtype.value,
                     semantics=semantics.value)
    full = result
    if depth is not None:
        result = collapse(result, depth)
    warn(result.warnings)
    extra = share_columns(result) if share or top_n is not None else ()
    shown = result if top_n is None else top(result, top_n, view)
    figures, lines = None, summary(result)
    if training:
        from cnncalc.memory import memory
        from cnncalc.report import memory_summary, training_columns, training_figures

        m = memory(full)
        figures = training_figures(m, result)
        extra += training_columns(figures)
        lines += memory_summary(m)[1:]
    if fmt is Format.table:
        print_table(to_table(shown, view, extra), lines)
    else:
        sys.stdout.write(render_text(shown, view, fmt, extra, figures))
    enforce([result], limits)


@app.command()
def shapes(spec: SpecArg, input: InputsOpt = None, batch: BatchesOpt = "1",
           dtype: DTypeOpt = DType.float32, format: FormatOpt = Format.table,
           depth: DepthOpt = None, expect_output: ExpectOpt = None,
           max_params: MaxParamsOpt = None, max_macs: MaxMacsOpt = None,
           max_memory: MaxMemoryOpt = None, semantics: SemanticsOpt = Semantics.pytorch,
           share: ShareOpt = False, top: TopOpt = None, set: SetOpt = None,
           training: TrainingOpt = False) -> None:
    """Per layer: output shape, parameters, receptive field (size, jump, start) and MACs."""
    checks = (expect_output, max_params, max_macs, max_memory)
    _guard(lambda: _report(View.shapes, spec, input, batch, dtype, format, depth, checks,
                           semantics, share, top, set, training))


@app.command()
def params(spec: SpecArg, input: InputsOpt = None, batch: BatchesOpt = "1",
           dtype: DTypeOpt = DType.float32, format: FormatOpt = Format.table,
           depth: DepthOpt = None, expect_output: ExpectOpt = None,
           max_params: MaxParamsOpt = None, max_macs: MaxMacsOpt = None,
           max_memory: MaxMemoryOpt = None, semantics: SemanticsOpt = Semantics.pytorch,
           share: ShareOpt = False, top: TopOpt = None, set: SetOpt = None,
           training: TrainingOpt = False) -> None:
    """Per layer: weights, bias, trainable and non-trainable counts, the dense-layer equivalent,
    the sharing ratio and parameter memory."""
    checks = (expect_output, max_params, max_macs, max_memory)
    _guard(lambda: _report(View.params, spec, input, batch, dtype, format, depth, checks,
                           semantics, share, top, set, training))


@app.command()
def run(
    spec: SpecArg,
    input: InputOpt = None,
    batch: BatchOpt = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random input and weights.")] = 0,
    threads: Annotated[int | None, typer.Option(
        "--threads", "-t", min=1, help="Kernel threads (default: all cores).")] = None,
    dtype: Annotated[str, typer.Option("--dtype", help="float32 or float64.")] = "float32",
    repeat: Annotated[int, typer.Option("--repeat", "-r", min=1, help="Timed calls per layer "
                                        "(the median is shown).")] = 1,
    max_memory: Annotated[str | None, typer.Option("--max-memory", metavar="BYTES",
                          help="Refuse runs whose peak estimate exceeds this (e.g. 4G; "
                          "default: half the available RAM).")] = None,
    format: FormatOpt = Format.table,
    set: SetOpt = None,
) -> None:
    """Execute SPEC on random input with cnncalc's numba kernels and check every predicted
    shape against the measured one (exit 1 on any mismatch)."""
    _guard(lambda: _run(spec, input, batch, seed, threads, dtype, repeat, max_memory, format,
                        set))


def _run(spec, input_shape, batch, seed, threads, dtype, repeat, max_memory, fmt,
         sets=None) -> None:
    from cnncalc.report import render_run, run_summary, run_table
    from cnncalc.run import run as run_spec
    from cnncalc.units import parse_bytes

    parsed, shape = load_spec(spec, input_shape, sets)
    limit = None if max_memory is None else parse_bytes(max_memory, "--max-memory")
    with _progress() as step:
        result = run_spec(parsed, shape, batch=batch, seed=seed, dtype=dtype, repeat=repeat,
                          threads=threads, max_memory=limit, progress=step)
    warn(result.analysis.warnings)
    if fmt is Format.table:
        print_table(run_table(result), run_summary(result))
    else:
        sys.stdout.write(render_run(result, fmt))
    if not result.all_match:
        bad = result.mismatches[0]
        _fail(f"{bad.row.where}: measured shape {'×'.join(map(str, bad.measured_shape))} "
              f"differs from the predicted {'×'.join(map(str, bad.row.output_shape))} "
              f"({len(result.mismatches)} layer(s) differ)", ExitCode.INVALID)


class _progress:
    """A Rich status line on stderr while layers run (and compile, on first use)."""

    def __enter__(self):
        if not sys.stderr.isatty():
            return None
        from rich.console import Console

        self.status = Console(stderr=True).status("compiling kernels — first run only")
        self.status.start()

        def step(i: int, n: int, row) -> None:
            self.status.update(f"layer {i + 1}/{n} ({row.type}) — the first run compiles "
                               "kernels; later runs use the cache")

        return step

    def __exit__(self, *exc) -> None:
        if hasattr(self, "status"):
            self.status.stop()


@app.command()
def rf(
    spec: SpecArg,
    input: InputOpt = None,
    empirical: Annotated[bool, typer.Option("--empirical", help="Also measure the field by "
                         "back-propagation: theoretical (must equal the formula) and effective "
                         "(Luo et al. 2016).")] = False,
    unit: Annotated[str | None, typer.Option("--unit", metavar="c,y,x", help="Output unit of the "
                    "last spatial layer (default: channel 0 at the centre).")] = None,
    mass: Annotated[float, typer.Option("--mass", help="Share of the gradient's absolute mass "
                    "the effective field holds.")] = 0.95,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random weights and input.")] = 0,
    png: Annotated[str | None, typer.Option("--png", metavar="FILE", help="Write the input "
                   "gradient with the theoretical box as a PNG (needs Pillow).")] = None,
    format: FormatOpt = Format.table,
    set: SetOpt = None,
) -> None:
    """Receptive field per layer (size, jump, start, centre); with --empirical, measured by
    back-propagating a unit gradient with cnncalc's kernels (exit 1 if it parts from the
    formula)."""
    from cnncalc import rf as lib

    def body():
        parsed, shape = load_spec(spec, input, set)
        chosen = None if unit is None else lib.parse_unit(unit, len(shape or parsed.input) - 1)
        return lib.receptive_fields(parsed, shape, empirical=empirical or png is not None,
                                    unit=chosen, mass=mass, seed=seed)

    result = _guard(body)
    e = result.empirical
    if png is not None:
        _guard(lambda: lib.write_png(e, png))
    warn(result.analysis.warnings)
    if format is Format.table:
        console = stdout_console()
        colour = console.is_terminal and not console.no_color
        print_items(lib.tables(result) + ([] if e is None else [
            lib.heatmap(e, min(console.width, 160) - 1, colour), *lib.summary_lines(e)]))
    else:
        sys.stdout.write(lib.render(result, format.value))
    if e is not None and not e.agrees:
        _fail(f"{e.first_disagreement.where}: the measured theoretical receptive field differs "
              "from the analytic one (see the table)", ExitCode.INVALID)


class Optimizer(str, Enum):
    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"
    adamw = "adamw"


class Amp(str, Enum):
    float16 = "float16"
    bfloat16 = "bfloat16"


@app.command()
def memory(
    spec: SpecArg,
    input: InputOpt = None,
    batch: BatchesOpt = "1",
    dtype: DTypeOpt = DType.float32,
    optimizer: Annotated[Optimizer, typer.Option(
        "--optimizer", help="Optimizer state as torch.optim stores it: sgd (none), momentum "
        "(one buffer per parameter), adam/adamw (two, plus a step counter per tensor).")
    ] = Optimizer.adam,
    amp: Annotated[Amp | None, typer.Option(
        "--amp", help="Mixed precision: autocast to float16/bfloat16 over float32 master "
        "weights.")] = None,
    fit: Annotated[str | None, typer.Option(
        "--fit", metavar="BYTES", help="Find the largest batch whose training peak fits "
        "(24GiB, 8G) and show the table at that batch.")] = None,
    format: FormatOpt = Format.table,
    set: SetOpt = None,
) -> None:
    """Training memory per layer and in total, counted as PyTorch holds it: parameters,
    buffers, gradients, optimizer state, the activations autograd saves for backward, outputs,
    and the training and inference peaks. --batch 1,8,32 sweeps; --fit finds the largest
    batch."""
    _guard(lambda: _memory(spec, input, batch, dtype, optimizer, amp, fit, format, set))


def _memory(spec, input_shape, batch, dtype, optimizer, amp, fit_text, fmt, sets=None) -> None:
    from cnncalc import memory as lib
    from cnncalc.analysis import analyze
    from cnncalc.report import memory_summary, memory_table, render_memory, render_memory_sweep
    from cnncalc.sweep import parse_batches
    from cnncalc.units import parse_bytes

    batches = parse_batches(batch)
    amp_value = None if amp is None else amp.value
    lib.check_memory_options(optimizer.value, dtype.value, amp_value)
    parsed, shape = load_spec(spec, input_shape, sets)
    a = analyze(parsed, shape, batch=batches[0], dtype=dtype.value)
    warn(a.warnings)
    found = None
    if fit_text is not None:
        found = lib.fit(a, parse_bytes(fit_text, "--fit"), optimizer.value, amp_value)
        a = analyze(parsed, shape, batch=found.batch, dtype=dtype.value)
    elif len(batches) > 1:
        sys.stdout.write(render_memory_sweep(lib.sweep(a, batches, optimizer.value, amp_value),
                                             fmt))
        return
    m = lib.memory(a, optimizer=optimizer.value, amp=amp_value)
    if fmt is Format.table:
        print_table(memory_table(m), memory_summary(m, found))
    else:
        sys.stdout.write(render_memory(m, fmt, found))


class DrawFormat(str, Enum):
    svg = "svg"
    png = "png"
    mermaid = "mermaid"
    dot = "dot"


class DrawStyle(str, Enum):
    auto = "auto"
    maps = "maps"
    graph = "graph"


@app.command()
def draw(
    spec: SpecArg,
    input: InputOpt = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", metavar="FILE", help="Write here (.svg, .png, .mmd, .dot); without "
        "it the text formats go to stdout.")] = None,
    format: Annotated[DrawFormat | None, typer.Option(
        "--format", "-f", help="svg, png (needs Pillow), mermaid or dot; default: from "
        "-o's suffix, else svg.")] = None,
    style: Annotated[DrawStyle, typer.Option(
        "--style", help="maps: feature-map boxes scaled by C×H×W (chains); graph: a layered "
        "graph (branches); auto: maps for chains, graph otherwise.")] = DrawStyle.auto,
    depth: DepthOpt = None,
    set: SetOpt = None,
) -> None:
    """Draw the network: feature maps as boxes scaled by channels × height × width for
    chains (LeNet/AlexNet style), a layered graph for branches; each box names the layer, its
    type and output shape. Mermaid and DOT text for docs."""

    def body() -> None:
        from cnncalc import draw as lib
        from cnncalc.analysis import analyze

        fmt = lib.format_for(output, None if format is None else format.value)
        a = analyze(*load_spec(spec, input, set))
        text = lib.render(a, fmt, output, style.value, depth)
        if text is not None:
            sys.stdout.write(text)

    _guard(body)


@app.command()
def diff(
    spec: SpecArg,
    other: Annotated[str | None, typer.Argument(
        metavar="[SPEC_B]", help="The second design; without it, --set with two values "
        "gives the two (diff net.yaml --set width=32,64).", show_default=False)] = None,
    input: InputOpt = None,
    batch: BatchOpt = 1,
    dtype: DTypeOpt = DType.float32,
    depth: Annotated[int, typer.Option("--depth", "-d", min=1, help="Compare blocks at this "
                                       "depth (1: top level).")] = 1,
    format: FormatOpt = Format.table,
    set: SetOpt = None,
) -> None:
    """Compare two specs (or one spec at two --set values): totals, blocks at --depth, and
    the rows whose shape, parameters or MACs differ. Exit 0 only when they are equal, 1 when
    they differ (scriptable)."""

    def body() -> bool:
        from cnncalc.analysis import analyze
        from cnncalc.diff import diff as compare
        from cnncalc.diff import render

        if other is None:
            specs, shape = load_specs(spec, input, set)
            if len(specs) != 2:
                raise UsageError("give two specs, or one spec and a --set with two values "
                                 "(e.g. --set width=32,64)")
            (la, a), (lb, b) = specs
        else:
            a, shape = load_spec(spec, input, set)
            b, _ = load_spec(other, input, set)
            la, lb = spec, other
        d = compare(analyze(a, shape, batch=batch, dtype=dtype.value),
                    analyze(b, shape, batch=batch, dtype=dtype.value), la, lb, depth)
        sys.stdout.write(render(d, format.value))
        return d.equal

    if not _guard(body):
        raise typer.Exit(int(ExitCode.INVALID))


@app.command()
def types() -> None:
    """List the layer types a spec may use, with their positional arguments."""
    from cnncalc.layers import LAYER_TYPES, canonical_type

    for cls in LAYER_TYPES:
        args = ", ".join(cls.positional)
        sys.stdout.write(f"{canonical_type(cls)}({args})\n")


@app.command()
def explain(spec: SpecArg, input: InputOpt = None, batch: BatchOpt = 1,
            layer: Annotated[int | None, typer.Option("--layer", "-l", min=0, help="Only row N "
                                                      "(numbered as in `cnncalc shapes`).")] = None,
            set: SetOpt = None) -> None:
    """Per layer, the formulas with the numbers substituted: output size, parameters, dense
    equivalent, MACs, receptive field; and why PyTorch loses data or refuses a layer (a refused
    layer is the one-line error, exit 1)."""
    from cnncalc.explain import explain as run
    from cnncalc.explain import render

    def body() -> None:
        result = run(*load_spec(spec, input, set), batch=batch, layer=layer)
        if result.error is not None:  # nothing on stdout when the spec is refused
            raise result.error
        sys.stdout.write(render(result))

    _guard(body)


@app.command()
def schema() -> None:
    """Print the JSON Schema of a spec (for editors: e.g. a '# yaml-language-server: $schema=…'
    line in the YAML file, or yaml.schemas in VS Code). Layer types are listed by canonical
    name; cnncalc also accepts any capitalisation with '_' and '-' ignored."""
    import json

    from cnncalc.schema import spec_schema

    sys.stdout.write(json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n")


class LayerKind(str, Enum):
    conv2d = "conv2d"
    maxpool2d = "maxpool2d"
    avgpool2d = "avgpool2d"
    conv_transpose2d = "conv_transpose2d"


def _pin(name: str, low: int) -> Any:
    return typer.Option(f"--{name.replace('_', '-')}", min=low, help=f"Pin {name}.")


@app.command()
def solve(
    spec: Annotated[str | None, typer.Argument(metavar="[SPEC]", help="With a spec: which "
                                               "input sizes pass it (see --sizes).")] = None,
    input: Annotated[str | None, typer.Option("--input", "-i", metavar="N|CxHxW", help="Without "
                     "SPEC: the input size N; with SPEC: the input shape to vary.")] = None,
    target: Annotated[str | None, typer.Option("--target", "-t", help="Wanted output size: "
                      "same, half (⌈N/2⌉), double (2N) or a number.")] = None,
    kind: Annotated[LayerKind, typer.Option("--type", help="Layer type.")] = LayerKind.conv2d,
    kernel: Annotated[int | None, _pin("kernel", 1)] = None,
    stride: Annotated[int | None, _pin("stride", 1)] = None,
    padding: Annotated[int | None, _pin("padding", 0)] = None,
    dilation: Annotated[int | None, _pin("dilation", 1)] = None,
    output_padding: Annotated[int | None, _pin("output_padding", 0)] = None,
    ceil_mode: Annotated[bool, typer.Option("--ceil-mode", help="Pooling in ceil mode.")] = False,
    sizes: Annotated[str, typer.Option("--sizes", metavar="RANGE", help="With SPEC: sizes to try "
                     "on every spatial axis: 32..512, 32..512:32 or {224,256}.")] = "1..1024",
    limit: Annotated[int, typer.Option("--limit", min=0, help="Rows shown (0: all).")] = 20,
    format: FormatOpt = Format.table,
    set: SetOpt = None,
) -> None:
    """Inverse questions. Without SPEC: every (kernel, stride, padding, dilation) — or
    output_padding — giving --target from --input, simplest first (kernel <= 11, stride <= 4,
    dilation <= 4, padding <= kernel). With SPEC: which input sizes pass without a refusal and
    without floor mode dropping input, and the smallest."""
    from cnncalc import solve as lib

    def body() -> str:
        if spec is None:
            return lib.layer_command(input, target, kind.value, format.value, limit,
                                     kernel=kernel, stride=stride, padding=padding,
                                     dilation=dilation, output_padding=output_padding,
                                     ceil_mode=ceil_mode)
        return lib.sizes_command(*load_spec(spec, input, set), sizes, format.value)

    sys.stdout.write(_guard(body))


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"cnncalc {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
    traceback: Annotated[bool, typer.Option("--traceback", help="Show the Python traceback of "
                                            "an internal error.")] = False,
) -> None:
    _state["traceback"] = traceback


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: Click usage errors become one line and exit code 2."""
    try:
        code = app(args=argv, prog_name="cnncalc", standalone_mode=False)
    except click_exc.NoArgsIsHelpError as exc:
        sys.stdout.write(exc.ctx.get_help() + "\n")
        return int(ExitCode.USAGE)
    except click_exc.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        sys.stderr.write(f"cnncalc: error: {' '.join(exc.format_message().split())}{hint}\n")
        return int(ExitCode.USAGE)
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("cnncalc: aborted\n")
        return 130
    except BrokenPipeError:  # `cnncalc ... | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return code if isinstance(code, int) else 0
