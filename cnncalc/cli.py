"""The ``cnncalc`` command: parse the command line, call the library, render, exit.

Each command is a few lines over the library; errors become one line on stderr and an exit
code from :class:`cnncalc.errors.ExitCode`; nothing reaches stdout unless all went well.
"""

from __future__ import annotations

import copy
import os
import sys
import warnings
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer depends on click
    from click import exceptions as click_exc

from cnncalc import __version__
from cnncalc.errors import CnncalcError, ExitCode, SpecError, UsageError, printable, shape_text
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


class _Command(TyperCommand):
    """Click's help conventions, whatever typer version is installed: ``SPEC`` (not
    ``{SPEC}``) in usage lines, and N / X / TEXT / the choices instead of ``<int range>`` and
    ``<bool>`` labels (a flag shows none)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            desc = getattr(param, "type_descriptor", None)  # typer >= 0.20; older: click's
            if desc is not None and getattr(param, "param_type_name", "") == "argument":
                param.display_type_rich = lambda ctx: None  # its metavar says it all
            if (
                desc is None
                or getattr(param, "param_type_name", "") != "option"
                or param.metavar is not None
            ):
                continue
            if getattr(param, "is_bool_flag", False) or getattr(param, "is_flag", False):
                param.metavar = ""
            elif desc.is_choice:
                param.metavar = "|".join(str(getattr(c, "value", c)) for c in desc.choices)
            else:
                param.metavar = {int: "N", float: "X"}.get(desc.annotation, "TEXT")

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None and getattr(option, "type_descriptor", None) is not None:
            option.metavar = ""  # a flag: no <bool>
        return option

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [
            p.replace("{", "").replace("}", "").replace("[[", "[").replace("]]", "]")
            for p in pieces
        ]


_typer_command = app.command


def _command(*args: Any, **kwargs: Any):
    kwargs.setdefault("cls", _Command)  # every command gets the conventions above
    return _typer_command(*args, **kwargs)


app.command = _command  # type: ignore[method-assign]

T = TypeVar("T")
_python_showwarning = warnings.showwarning
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
        '"conv2d(1, 6, 5) relu maxpool2d(2) flatten linear(864, 10)" or pasted PyTorch code '
        '("nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), ...)").',
        show_default=False,
    ),
]
InputOpt = Annotated[
    str | None,
    typer.Option(
        "--input",
        "-i",
        metavar="CxHxW",
        help="Input shape without batch (overrides the spec's), e.g. 3x224x224.",
    ),
]
BatchOpt = Annotated[
    str,
    typer.Option("--batch", "-b", metavar="N", help="Batch size for MACs and activation memory."),
]


def one_batch(text: str) -> int:
    """--batch of a command that takes one batch size (sweeps are for shapes/params)."""
    from cnncalc.sweep import parse_batches

    batches = parse_batches(text)
    if len(batches) != 1:
        raise UsageError(
            f"--batch={text}: takes one batch size here (lists and ranges sweep "
            "in `shapes` and `params`)"
        )
    return batches[0]


BatchesOpt = Annotated[
    str,
    typer.Option(
        "--batch",
        "-b",
        metavar="N[,N…]",
        help="Batch size for MACs and activation memory; a list "
        "(1,8,32) or range (1..64:8) gives one summary row per batch.",
    ),
]
InputsOpt = Annotated[
    str | None,
    typer.Option(
        "--input",
        "-i",
        metavar="CxHxW",
        help="Input shape without batch (overrides the spec's), "
        "e.g. 3x224x224. Sweep: per axis a range 224..512 (step: 224..512:32) or a list {224,256}, "
        "e.g. 3x{224,256}x{224,256}: one summary row per input.",
    ),
]
DTypeOpt = Annotated[DType, typer.Option("--dtype", help="Element type for memory figures.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


class Semantics(str, Enum):
    pytorch = "pytorch"
    tensorflow = "tensorflow"


SemanticsOpt = Annotated[
    Semantics,
    typer.Option(
        "--semantics",
        help="pytorch (default) or tensorflow: Keras/TF rules ('same' = ⌈n/s⌉ "
        "with the extra padding at the end, for any stride; no ceil_mode); layers whose result "
        "differs from PyTorch's are marked ≠.",
    ),
]
DepthOpt = Annotated[
    int | None,
    typer.Option(
        "--depth",
        "-d",
        min=1,
        help="Fold rows nested "
        "deeper than N into their block, with subtotals "
        "(1: top level only, as torchinfo).",
    ),
]
WideOpt = Annotated[
    bool,
    typer.Option(
        "--wide", "-w", help="Every column in the table (the default keeps to 80 columns)."
    ),
]
# CI assertions (cnncalc/checks.py): the report is printed, then a violation exits 1.
ExpectOpt = Annotated[
    str | None,
    typer.Option(
        "--expect-output",
        metavar="SHAPE",
        help="Fail (exit 1) unless the output shape is SHAPE, e.g. 10 or 64x7x7.",
    ),
]
MaxParamsOpt = Annotated[
    str | None,
    typer.Option(
        "--max-params", metavar="N", help="Fail (exit 1) if the parameters exceed N (25M, 1.5k)."
    ),
]
MaxMacsOpt = Annotated[
    str | None,
    typer.Option("--max-macs", metavar="N", help="Fail (exit 1) if the MACs exceed N (4G)."),
]
MaxMemoryOpt = Annotated[
    str | None,
    typer.Option(
        "--max-memory",
        metavar="BYTES",
        help="Fail (exit 1) if parameter + activation memory exceeds BYTES (512MiB, 4G, 2GiB).",
    ),
]


QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress display on stderr (warnings and errors still show)."
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Override a spec value or template argument before "
        "validation: width=64, layers.3.out_channels=128, layers.fc.out_features=10 (repeatable; "
        "32,64 or 16..64:16 sweeps).",
    ),
]
TrainingOpt = Annotated[
    bool,
    typer.Option(
        "--training",
        help="Add training-memory columns (saved activations, gradients + Adam "
        "state, training peak) and JSON keys; `cnncalc memory` has every option.",
    ),
]
ShareOpt = Annotated[
    bool, typer.Option("--share", help="Add each layer's % of the total parameters and MACs.")
]
TopOpt = Annotated[
    int | None,
    typer.Option(
        "--top",
        metavar="N",
        min=1,
        help="Only the N heaviest layers, heaviest first (by MACs "
        "for shapes, by parameters for params), with their shares.",
    ),
]


def _guard(body: Callable[[], T]) -> T:
    """Run a command body; library errors become one stderr line and their exit code."""
    try:
        return body()
    except CnncalcError as exc:
        _fail(exc.lines(), exc.exit_code)
    except typer.Exit:  # a deliberate exit (e.g. a failed run check): not a bug
        raise
    except BrokenPipeError:  # `cnncalc ... | head`: handled here, before Click exits 1
        _reader_left()
        raise typer.Exit(0) from None
    except KeyboardInterrupt:  # Ctrl-C: one line, 130 (typer would exit 130 silently)
        _abort()
    except Exception as exc:  # a bug in cnncalc: one line, or the traceback on request
        if _interrupted(exc):  # Ctrl-C that a library (numba's compiler) wrapped
            _abort()
        if _state["traceback"]:
            raise
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (run with --traceback and report it)",
            ExitCode.INTERNAL,
        )
    raise AssertionError("unreachable")


def _interrupted(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _abort() -> None:
    sys.stderr.write("cnncalc: aborted\n")
    raise typer.Exit(130)


def _fail(message: str | list[str], code: ExitCode) -> None:
    for line in [message] if isinstance(message, str) else message:
        sys.stderr.write(f"cnncalc: error: {' '.join(printable(line, 4000).split())}\n")
    raise typer.Exit(int(code))


def warn(lines: tuple[str, ...] | list[str]) -> None:
    for line in lines:
        sys.stderr.write(f"cnncalc: warning: {printable(line, 4000)}\n")


def stdout_console(**options: Any):
    """A Rich console for stdout: colour on a terminal; plain and unwrapped when piped.
    Text such as a layer named ``a:fire:`` is printed as written (no emoji codes).

    A reader that leaves (``| head``) is ours to handle (exit 0), not Rich's (exit 1)."""
    from rich.console import Console

    class _Stdout(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    if options:
        return _Stdout(emoji=False, **options)
    if sys.stdout.isatty():
        return _Stdout(emoji=False)
    return _Stdout(
        width=int(os.environ.get("COLUMNS", 0)) or 400,
        no_color=True,
        highlight=False,
        emoji=False,
    )


def print_table(table, lines: list[str]) -> None:
    """A table and the summary lines under it (see :func:`print_items`)."""
    print_items([table, *lines])


def print_items(items: list) -> None:
    """Rich renderables and plain lines. A table wider than the terminal is printed at its
    natural width (the terminal wraps it) rather than squeezed: digits are never cut."""
    from rich.measure import Measurement
    from rich.table import Table

    console = stdout_console()
    wide = console.options.update(max_width=10_000)
    tables = [t for t in items if isinstance(t, Table)]
    if all(_width_bound(t) <= console.width for t in tables):
        width = 0  # it fits (always so when piped): Rich need not measure every cell twice
    else:
        width = max([Measurement.get(console, wide, t).maximum for t in tables] + [0])
    if width > console.width:
        # height too: with only a width Rich still squeezes a TERM=dumb terminal to 80
        console = stdout_console(
            width=width,
            height=console.height,
            no_color=console.no_color,
            highlight=False,
            force_terminal=console.is_terminal,
        )
    for item in items:
        if isinstance(item, str):
            console.print(item, highlight=False, markup=False)
        else:
            console.print(item)


def _width_bound(table) -> int | float:
    """At least the natural width of a Rich table, from its text alone: every character at
    most 2 columns wide, the padding, one rule per column and the edge (inf when that is not
    sure: a cell that is not plain text or holds a tab, a width set on the table)."""
    if table.width is not None or table.min_width is not None:
        return float("inf")
    _, right, _, left = table.padding
    total = 1
    for column in table.columns:
        texts = [column.header, column.footer, *column.cells]
        if not all(isinstance(t, str) and "\t" not in t for t in texts):
            return float("inf")
        widest = max(2 * max(map(len, texts)), column.width or 0, column.min_width or 0)
        total += widest + left + right + 1
    return total


def load_spec(spec: str, input_shape: str | None, sets: list[str] | None = None):
    """SPEC and --input -> (Spec, shape or None); --input problems are usage errors.
    ``sets``: --set overrides (one value each here; sweeps go through :func:`load_specs`)."""
    specs, shape = load_specs(spec, input_shape, sets)
    if len(specs) > 1:
        raise UsageError(
            "--set with several values sweeps only in shapes and params (and diff compares two)"
        )
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
    stdin_text = spec_mod.read_stdin() if spec == "-" else None
    if sets:
        from cnncalc import overrides

        return overrides.load(spec, sets, stdin_text), shape
    return [("", spec_mod.load(spec, stdin_text=stdin_text, input_shape=shape))], shape


def _sweep(
    spec: str,
    input_shape: str | None,
    shapes,
    batches: list[int],
    dtype: DType,
    fmt: Format,
    limits,
    semantics: Semantics = Semantics.pytorch,
    sets: list[str] | None = None,
    quiet: bool = False,
) -> None:
    """One row per (input, batch): output, params, MACs, memory (cnncalc/sweep.py)."""
    from cnncalc.checks import enforce
    from cnncalc.progress import reporter
    from cnncalc.sweep import check_refusals, render_sweep, summary_warnings, sweep

    parsed, shape = load_spec(spec, input_shape, sets)
    with reporter(quiet) as progress:
        rows, analyses = sweep(
            parsed,
            shapes or [shape or parsed.input],
            batches,
            dtype.value,
            semantics.value,
            progress,
        )
    warn(summary_warnings(rows))
    meta = {"name": parsed.name, "dtype": dtype.value, "semantics": semantics.value}
    sys.stdout.write(render_sweep(rows, fmt.value, meta))
    check_refusals(rows)
    enforce(analyses, limits)


def _set_sweep(
    spec: str,
    input_shape: str | None,
    shapes,
    batches: list[int],
    dtype: DType,
    fmt: Format,
    limits,
    semantics: Semantics,
    sets: list[str],
    quiet: bool = False,
) -> None:
    """One row per (--set values, input, batch) (cnncalc/overrides.py)."""
    from cnncalc.checks import enforce
    from cnncalc.overrides import sweep_rows
    from cnncalc.progress import reporter
    from cnncalc.sweep import check_refusals, summary_warnings

    specs, shape = load_specs(spec, None if shapes else input_shape, sets)
    with reporter(quiet) as progress:
        text, rows, analyses = sweep_rows(
            specs, shapes or [shape], batches, dtype.value, semantics.value, fmt.value, progress
        )
    warn(summary_warnings(rows))
    sys.stdout.write(text)
    check_refusals(rows)
    enforce(analyses, limits)


def _report(
    view: View,
    spec: str,
    input_shape: str | None,
    batch: str,
    dtype: DType,
    fmt: Format,
    depth: int | None = None,
    checks: tuple = (),
    semantics: Semantics = Semantics.pytorch,
    share: bool = False,
    top_n: int | None = None,
    sets: list[str] | None = None,
    training: bool = False,
    wide: bool = False,
    quiet: bool = False,
) -> None:
    from cnncalc.analysis import analyze, collapse
    from cnncalc.report import WIDE_HINT, render_text, share_columns, summary, to_table, top
    from cnncalc.sweep import parse_batches, parse_sweep

    limits = None  # no CI assertion asked for: cnncalc.checks is not needed
    if any(c is not None for c in checks):
        from cnncalc.checks import parse_limits

        limits = parse_limits(*checks)
    shapes, batches = parse_sweep(input_shape), parse_batches(batch)
    if sets:
        from cnncalc.overrides import parse

        if any(len(parse(t).values) > 1 for t in sets):
            return _set_sweep(
                spec, input_shape, shapes, batches, dtype, fmt, limits, semantics, sets, quiet
            )
    if shapes is not None or len(batches) > 1:
        return _sweep(
            spec,
            None if shapes else input_shape,
            shapes,
            batches,
            dtype,
            fmt,
            limits,
            semantics,
            sets,
            quiet,
        )
    parsed, shape = load_spec(spec, input_shape, sets)
    result = analyze(parsed, shape, batch=batches[0], dtype=dtype.value, semantics=semantics.value)
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
        hint = [] if wide or extra else [WIDE_HINT[view]]
        print_table(to_table(shown, view, extra, wide), lines + hint)
    else:
        sys.stdout.write(render_text(shown, view, fmt, extra, figures))
    if limits is not None:
        from cnncalc.checks import enforce

        enforce([result], limits)


@app.command()
def shapes(
    spec: SpecArg,
    input: InputsOpt = None,
    batch: BatchesOpt = "1",
    dtype: DTypeOpt = DType.float32,
    format: FormatOpt = Format.table,
    depth: DepthOpt = None,
    expect_output: ExpectOpt = None,
    max_params: MaxParamsOpt = None,
    max_macs: MaxMacsOpt = None,
    max_memory: MaxMemoryOpt = None,
    semantics: SemanticsOpt = Semantics.pytorch,
    share: ShareOpt = False,
    top: TopOpt = None,
    set: SetOpt = None,
    training: TrainingOpt = False,
    wide: WideOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Per layer: output shape, parameters, receptive field (size, jump, start) and MACs."""
    checks = (expect_output, max_params, max_macs, max_memory)
    _guard(
        lambda: _report(
            View.shapes,
            spec,
            input,
            batch,
            dtype,
            format,
            depth,
            checks,
            semantics,
            share,
            top,
            set,
            training,
            wide,
            quiet,
        )
    )


@app.command()
def params(
    spec: SpecArg,
    input: InputsOpt = None,
    batch: BatchesOpt = "1",
    dtype: DTypeOpt = DType.float32,
    format: FormatOpt = Format.table,
    depth: DepthOpt = None,
    expect_output: ExpectOpt = None,
    max_params: MaxParamsOpt = None,
    max_macs: MaxMacsOpt = None,
    max_memory: MaxMemoryOpt = None,
    semantics: SemanticsOpt = Semantics.pytorch,
    share: ShareOpt = False,
    top: TopOpt = None,
    set: SetOpt = None,
    training: TrainingOpt = False,
    wide: WideOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Per layer: weights, bias, trainable and non-trainable counts, the dense-layer equivalent,
    the sharing ratio and parameter memory."""
    checks = (expect_output, max_params, max_macs, max_memory)
    _guard(
        lambda: _report(
            View.params,
            spec,
            input,
            batch,
            dtype,
            format,
            depth,
            checks,
            semantics,
            share,
            top,
            set,
            training,
            wide,
            quiet,
        )
    )


@app.command()
def run(
    spec: SpecArg,
    input: InputOpt = None,
    batch: BatchOpt = "1",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random input and weights.")] = 0,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            "-t",
            min=1,
            help="Most kernel threads (default: all cores); fewer on cores busy elsewhere.",
        ),
    ] = None,
    dtype: Annotated[str, typer.Option("--dtype", help="float32 or float64.")] = "float32",
    repeat: Annotated[
        int,
        typer.Option("--repeat", "-r", min=1, help="Timed calls per layer (the median is shown)."),
    ] = 1,
    max_memory: Annotated[
        str | None,
        typer.Option(
            "--max-memory",
            metavar="BYTES",
            help="Refuse runs whose peak estimate exceeds this (e.g. 4G; "
            "default: half the available RAM).",
        ),
    ] = None,
    format: FormatOpt = Format.table,
    quiet: QuietOpt = False,
    set: SetOpt = None,
) -> None:
    """Execute SPEC on random input with cnncalc's numba kernels and check every predicted
    shape against the measured one (exit 1 on any mismatch). The first run compiles the
    kernels it needs (cached afterwards, see `cnncalc cache`); progress goes to stderr."""
    _guard(
        lambda: _run(
            spec, input, batch, seed, threads, dtype, repeat, max_memory, format, quiet, set
        )
    )


def _run(
    spec, input_shape, batch, seed, threads, dtype, repeat, max_memory, fmt, quiet=False, sets=None
) -> None:
    from cnncalc.progress import reporter
    from cnncalc.report import render_run, run_summary, run_table
    from cnncalc.run import run as run_spec
    from cnncalc.units import parse_bytes

    parsed, shape = load_spec(spec, input_shape, sets)
    limit = None if max_memory is None else parse_bytes(max_memory, "--max-memory")
    with reporter(quiet) as progress:
        result = run_spec(
            parsed,
            shape,
            batch=one_batch(batch),
            seed=seed,
            dtype=dtype,
            repeat=repeat,
            threads=threads,
            max_memory=limit,
            progress=progress,
        )
    warn(result.analysis.warnings)
    if fmt is Format.table:
        print_table(run_table(result), run_summary(result))
    else:
        sys.stdout.write(render_run(result, fmt))
    if not result.all_match:
        bad = result.mismatches[0]
        _fail(
            f"{bad.row.where}: measured shape {shape_text(bad.measured_shape)} "
            f"differs from the predicted {shape_text(bad.row.output_shape)} "
            f"({len(result.mismatches)} layer(s) differ)",
            ExitCode.INVALID,
        )


@app.command()
def rf(
    spec: SpecArg,
    input: InputOpt = None,
    empirical: Annotated[
        bool,
        typer.Option(
            "--empirical",
            help="Also measure the field by "
            "back-propagation: theoretical (must equal the formula) and effective "
            "(Luo et al. 2016).",
        ),
    ] = False,
    unit: Annotated[
        str | None,
        typer.Option(
            "--unit",
            metavar="c,y,x",
            help="Output unit of the last spatial layer (default: channel 0 at the centre).",
        ),
    ] = None,
    mass: Annotated[
        float,
        typer.Option(
            "--mass", help="Share of the gradient's absolute mass the effective field holds."
        ),
    ] = 0.95,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random weights and input.")] = 0,
    png: Annotated[
        str | None,
        typer.Option(
            "--png",
            metavar="FILE",
            help="Write the input gradient with the theoretical box as a PNG (needs Pillow).",
        ),
    ] = None,
    format: FormatOpt = Format.table,
    quiet: QuietOpt = False,
    set: SetOpt = None,
) -> None:
    """Receptive field per layer (size, jump, start, centre); with --empirical, measured by
    back-propagating a unit gradient with cnncalc's kernels (exit 1 if it parts from the
    formula; the first use compiles kernels, with progress on stderr)."""
    from cnncalc import rf as lib
    from cnncalc.progress import SILENT, reporter

    measured = empirical or png is not None

    def body():
        parsed, shape = load_spec(spec, input, set)
        chosen = None if unit is None else lib.parse_unit(unit, len(shape or parsed.input) - 1)
        with reporter(quiet) if measured else SILENT as progress:
            return lib.receptive_fields(
                parsed,
                shape,
                empirical=measured,
                unit=chosen,
                mass=mass,
                seed=seed,
                progress=progress,
            )

    result = _guard(body)
    e = result.empirical
    if png is not None:
        _guard(lambda: lib.write_png(e, png))
    warn(result.analysis.warnings)
    if format is Format.table:
        console = stdout_console()
        colour = console.is_terminal and not console.no_color
        print_items(
            lib.tables(result)
            + (
                []
                if e is None
                else [lib.heatmap(e, min(console.width, 160) - 1, colour), *lib.summary_lines(e)]
            )
        )
    else:
        sys.stdout.write(lib.render(result, format.value))
    if e is not None and not e.agrees:
        _fail(
            f"{e.first_disagreement.where}: the measured theoretical receptive field differs "
            "from the analytic one (see the table)",
            ExitCode.INVALID,
        )


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
    optimizer: Annotated[
        Optimizer,
        typer.Option(
            "--optimizer",
            help="Optimizer state as torch.optim stores it: sgd (none), momentum "
            "(one buffer per parameter), adam/adamw (two, plus a step counter per tensor).",
        ),
    ] = Optimizer.adam,
    amp: Annotated[
        Amp | None,
        typer.Option(
            "--amp",
            help="Mixed precision: autocast to float16/bfloat16 over float32 master weights.",
        ),
    ] = None,
    fit: Annotated[
        str | None,
        typer.Option(
            "--fit",
            metavar="BYTES",
            help="Find the largest batch whose training peak fits "
            "(24GiB, 8G) and show the table at that batch.",
        ),
    ] = None,
    format: FormatOpt = Format.table,
    set: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Training memory per layer and in total, counted as PyTorch holds it: parameters,
    buffers, gradients, optimizer state, the activations autograd saves for backward, outputs,
    and the training and inference peaks. --batch 1,8,32 sweeps; --fit finds the largest
    batch."""
    _guard(lambda: _memory(spec, input, batch, dtype, optimizer, amp, fit, format, set, quiet))


def _memory(
    spec, input_shape, batch, dtype, optimizer, amp, fit_text, fmt, sets=None, quiet=False
) -> None:
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
        from cnncalc.progress import reporter

        budget = parse_bytes(fit_text, "--fit")
        with reporter(quiet) as progress:
            found = lib.fit(a, budget, optimizer.value, amp_value, progress)
        a = analyze(parsed, shape, batch=found.batch, dtype=dtype.value)
    elif len(batches) > 1:
        sys.stdout.write(
            render_memory_sweep(lib.sweep(a, batches, optimizer.value, amp_value), fmt)
        )
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
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write here (.svg, .png, .mmd, .dot); without it the text formats go to stdout.",
        ),
    ] = None,
    format: Annotated[
        DrawFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="svg, png (needs Pillow), mermaid or dot; default: from -o's suffix, else svg.",
        ),
    ] = None,
    style: Annotated[
        DrawStyle,
        typer.Option(
            "--style",
            help="maps: feature-map boxes scaled by C×H×W (chains); graph: a layered "
            "graph (branches); auto: maps for chains, graph otherwise.",
        ),
    ] = DrawStyle.auto,
    depth: DepthOpt = None,
    set: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Draw the network: feature maps as boxes scaled by channels × height × width for
    chains (LeNet/AlexNet style), a layered graph for branches; each box names the layer, its
    type and output shape. Mermaid and DOT text for docs."""

    def body() -> None:
        from cnncalc import draw as lib
        from cnncalc.analysis import analyze
        from cnncalc.progress import reporter

        fmt = lib.format_for(output, None if format is None else format.value)
        with reporter(quiet) as progress:
            progress.phase("analysing")
            a = analyze(*load_spec(spec, input, set))
            progress.phase(f"drawing {len(a.rows)} layers")
            text = lib.render(a, fmt, output, style.value, depth)
        if text is not None:
            sys.stdout.write(text)

    _guard(body)


@app.command()
def diff(
    spec: SpecArg,
    other: Annotated[
        str | None,
        typer.Argument(
            metavar="[SPEC_B]",
            help="The second design; without it, --set with two values "
            "gives the two (diff net.yaml --set width=32,64).",
            show_default=False,
        ),
    ] = None,
    input: InputOpt = None,
    batch: BatchOpt = "1",
    dtype: DTypeOpt = DType.float32,
    depth: Annotated[
        int,
        typer.Option("--depth", "-d", min=1, help="Compare blocks at this depth (1: top level)."),
    ] = 1,
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
                raise UsageError(
                    "give two specs, or one spec and a --set with two values "
                    "(e.g. --set width=32,64)"
                )
            (la, a), (lb, b) = specs
        else:
            a, shape = load_spec(spec, input, set)
            b, _ = load_spec(other, input, set)
            la, lb = spec, other
        d = compare(
            analyze(a, shape, batch=one_batch(batch), dtype=dtype.value),
            analyze(b, shape, batch=one_batch(batch), dtype=dtype.value),
            la,
            lb,
            depth,
        )
        sys.stdout.write(render(d, format.value))
        return d.equal

    if not _guard(body):
        raise typer.Exit(int(ExitCode.INVALID))


@app.command()
def cache(
    clear: Annotated[bool, typer.Option("--clear", help="Delete every compiled kernel.")] = False,
    format: FormatOpt = Format.table,
) -> None:
    """Where the compiled kernels are cached (CNNCALC_CACHE_DIR moves it), its size and which
    kernels are compiled; --clear empties it (the next `run` compiles again)."""
    from cnncalc import cache as lib
    from cnncalc.report import human_bytes

    found = lib.contents()
    if clear:
        lib.clear()
        sys.stdout.write(f"cleared {found.directory}: {human_bytes(found.bytes)} freed\n")
        return
    if format is Format.json:
        import json

        obj = {
            "directory": str(found.directory),
            "exists": found.exists,
            "bytes": found.bytes,
            "stale_files": found.stale,
            "kernels": [
                {"kernel": e.kernel, "signatures": e.signatures, "bytes": e.bytes}
                for e in found.entries
            ],
        }
        sys.stdout.write(json.dumps(obj, indent=2) + "\n")
        return
    from rich.table import Table

    sigs = sum(e.signatures for e in found.entries)
    lines = [
        f"kernel cache: {found.directory}" + ("" if found.exists else " (empty: not created yet)"),
        f"{human_bytes(found.bytes)}: {len(found.entries)} kernels, {sigs} compiled "
        "signatures" + (f", {found.stale} leftovers of interrupted writes" if found.stale else ""),
    ]
    if not found.entries:
        print_items(lines)
        return
    table = Table("kernel", "signatures", "size", title="compiled kernels")
    for column in table.columns[1:]:
        column.justify = "right"
    for e in found.entries:
        table.add_row(e.kernel, str(e.signatures), human_bytes(e.bytes))
    print_items([*lines, table])


@app.command()
def warmup(
    specs: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[SPEC]...",
            help="Specs to warm up (default: every spec in examples/).",
            show_default=False,
        ),
    ] = None,
    input: InputOpt = None,
    batch: BatchOpt = "1",
    dtype: Annotated[str, typer.Option("--dtype", help="float32 or float64.")] = "float32",
    rf: Annotated[
        bool,
        typer.Option(
            "--rf",
            help="Also compile what `cnncalc rf SPEC --empirical` needs (its backward kernels).",
        ),
    ] = False,
    format: FormatOpt = Format.table,
    quiet: QuietOpt = False,
) -> None:
    """Compile ahead of time the kernels that `cnncalc run` needs for each SPEC: every spec
    is run once as `run` would (its own input unless --input), and what numba compiles goes to
    the kernel cache; with --rf its receptive field is measured too, as `rf --empirical` does.
    Prints per spec the seconds taken and the kernels compiled (0 when the cache was already
    warm); progress goes to stderr."""

    def body() -> str:
        from cnncalc import warmup as lib
        from cnncalc.cache import configure
        from cnncalc.progress import reporter

        if format not in (Format.table, Format.json):
            raise UsageError(f"--format={format.value}: warmup prints table or json")
        names = list(specs) if specs else [str(p) for p in lib.default_specs()]
        loaded = [(name, load_spec(name, input)) for name in names]  # all valid before any run
        shape = loaded[0][1][1] if loaded else None
        with reporter(quiet) as progress:
            rows = lib.warmup(
                [(_short(name), parsed) for name, (parsed, _) in loaded],
                shape,
                batch=one_batch(batch),
                dtype=dtype,
                rf=rf,
                progress=progress,
            )
        where = configure().directory
        return lib.render(rows, format.value, "off" if where is None else str(where))

    sys.stdout.write(_guard(body))


def _short(name: str) -> str:
    """A file's stem, or the inline spec itself."""
    from pathlib import Path

    path = Path(name)
    return path.stem if len(name) < 4096 and path.is_file() else name


@app.command()
def types() -> None:
    """List the layer types a spec may use, with their positional arguments in PyTorch's
    order and defaults. In inline specs in_channels, in_features and num_features are checked
    against the input; name the other arguments to leave them out (conv2d(out_channels=8,
    kernel_size=3))."""
    from cnncalc.inline import signature
    from cnncalc.layers import LAYER_TYPES, canonical_type

    for cls in LAYER_TYPES:
        args = signature(cls).split("(", 1)[1]
        sys.stdout.write(f"{canonical_type(cls)}({args}\n")


@app.command()
def explain(
    spec: SpecArg,
    input: InputOpt = None,
    batch: BatchOpt = "1",
    layer: Annotated[
        int | None,
        typer.Option("--layer", "-l", min=0, help="Only row N (numbered as in `cnncalc shapes`)."),
    ] = None,
    set: SetOpt = None,
) -> None:
    """Per layer, the formulas with the numbers substituted: output size, parameters, dense
    equivalent, MACs, receptive field; and why PyTorch loses data or refuses a layer (a refused
    layer is the one-line error, exit 1)."""
    from cnncalc.explain import explain as run
    from cnncalc.explain import render

    def body() -> None:
        result = run(*load_spec(spec, input, set), batch=one_batch(batch), layer=layer)
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
    spec: Annotated[
        str | None,
        typer.Argument(
            metavar="[SPEC]", help="With a spec: which input sizes pass it (see --sizes)."
        ),
    ] = None,
    input: Annotated[
        str | None,
        typer.Option(
            "--input",
            "-i",
            metavar="N|CxHxW",
            help="Without SPEC: the input size N; with SPEC: the input shape to vary.",
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            "-t",
            help="Wanted output size: same, half (⌈N/2⌉), double (2N) or a number.",
        ),
    ] = None,
    kind: Annotated[LayerKind, typer.Option("--type", help="Layer type.")] = LayerKind.conv2d,
    kernel: Annotated[int | None, _pin("kernel", 1)] = None,
    stride: Annotated[int | None, _pin("stride", 1)] = None,
    padding: Annotated[int | None, _pin("padding", 0)] = None,
    dilation: Annotated[int | None, _pin("dilation", 1)] = None,
    output_padding: Annotated[int | None, _pin("output_padding", 0)] = None,
    ceil_mode: Annotated[bool, typer.Option("--ceil-mode", help="Pooling in ceil mode.")] = False,
    sizes: Annotated[
        str,
        typer.Option(
            "--sizes",
            metavar="RANGE",
            help="With SPEC: sizes to try on every spatial axis: 32..512, 32..512:32 or {224,256}.",
        ),
    ] = "1..1024",
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
            return lib.layer_command(
                input,
                target,
                kind.value,
                format.value,
                limit,
                kernel=kernel,
                stride=stride,
                padding=padding,
                dilation=dilation,
                output_padding=output_padding,
                ceil_mode=ceil_mode,
            )
        return lib.sizes_command(*load_spec(spec, input, set), sizes, format.value)

    sys.stdout.write(_guard(body))


class Target(str, Enum):
    pytorch = "pytorch"
    onnx = "onnx"


class Weights(str, Enum):
    random = "random"
    zeros = "zeros"


OutputOpt = Annotated[
    str | None,
    typer.Option("--output", "-o", metavar="FILE", help="Write to FILE (default: stdout)."),
]


@app.command("import")
def import_(
    model: Annotated[
        str, typer.Argument(metavar="MODEL.onnx", help="An ONNX model file.", show_default=False)
    ],
    output: OutputOpt = None,
    input: InputOpt = None,
) -> None:
    """Write the spec of an ONNX model as YAML: layers named from the exporter's scopes
    (`layer1.0.conv1`), joins as add/concat/mul merges. `cnncalc shapes model.onnx` analyses
    the model directly. Needs the onnx extra."""
    from pathlib import Path

    def body() -> str:
        from cnncalc.onnx_import import import_onnx, to_yaml
        from cnncalc.spec import parse_shape, spec_from_data

        if not Path(model).is_file():
            raise UsageError(f"no such file: {model}")
        shape = None if input is None else parse_shape(input, where="--input")
        data = import_onnx(model, shape)
        spec_from_data(data)  # every layer valid, or the one-line error
        return to_yaml(data, Path(model).name)

    _write(_guard(body), output)


@app.command()
def export(
    spec: SpecArg,
    to: Annotated[
        Target,
        typer.Option(
            "--to",
            help="pytorch: a standalone .py file with an "
            "nn.Module; onnx: an ONNX graph (needs -o).",
        ),
    ],
    output: OutputOpt = None,
    input: InputOpt = None,
    weights: Annotated[
        Weights, typer.Option("--weights", help="ONNX weights: seeded random or zeros.")
    ] = Weights.random,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random ONNX weights.")] = 0,
) -> None:
    """Write SPEC as PyTorch code (`build()` returns the nn.Module; its named_parameters() are
    the rows of `cnncalc shapes`) or as an ONNX graph that opens in Netron and runs in
    onnxruntime."""
    if to is Target.onnx and output is None:
        _fail("export --to onnx needs -o FILE (ONNX is binary)", ExitCode.USAGE)

    def body() -> str | None:
        parsed, shape = load_spec(spec, input)
        if to is Target.pytorch:
            from cnncalc.export_torch import export_pytorch

            return export_pytorch(parsed, shape, origin=spec if len(spec) < 80 else "")
        from cnncalc.onnx_export import export_onnx, save_onnx

        save_onnx(export_onnx(parsed, shape, weights=weights.value, seed=seed), output)
        return None

    text = _guard(body)
    if text is not None:
        _write(text, output)


def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror}", ExitCode.USAGE)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"cnncalc {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the Python traceback of an internal error.")
    ] = False,
) -> None:
    _state["traceback"] = traceback


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """cnncalc's own warnings (e.g. an unusable kernel cache) as one ``cnncalc: warning:``
    line; others as Python prints them."""
    from cnncalc.cache import CacheWarning

    if issubclass(category, CacheWarning):
        warn([str(message)])
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: Click usage errors become one line and exit code 2."""
    _ascii_fallback()
    warnings.showwarning = _show_warning
    if argv is None:  # the `cnncalc` process: numba need not load scipy (cnncalc/kernels),
        os.environ.setdefault("CNNCALC_NUMBA_BLAS", "0")
        # and pydantic need not scan every installed distribution for validation plugins
        # (observability hooks such as logfire's) before building its first validator
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        code = _app_for(sys.argv[1:] if argv is None else argv)(
            args=argv, prog_name="cnncalc", standalone_mode=False
        )
        sys.stdout.flush()  # inside the try: a reader that left is seen here, not at exit
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
    except BrokenPipeError:  # the reader left while the result was flushed
        _reader_left()
        return 0
    return code if isinstance(code, int) else 0


def _app_for(args: list[str]) -> typer.Typer:
    """The app that runs ``args``: when they name a command (after the global --traceback),
    an app of that command alone — Typer builds the command object of every command it holds
    on every run, ~1 ms each; the whole app otherwise (--help, --version, a misspelt name)."""
    from typer.main import get_command_name

    for arg in args:
        if arg == "--traceback":
            continue
        if arg.startswith("-"):
            return app
        named = [
            c
            for c in app.registered_commands
            if (c.name or get_command_name(c.callback.__name__)) == arg  # type: ignore[union-attr]
        ]
        if not named:
            return app
        one = copy.copy(app)  # same settings and global options (the callback)
        one.registered_commands = named
        return one
    return app


def _reader_left() -> None:
    """`cnncalc ... | head`: the reader left; not an error of ours. Later writes (and the
    flush at exit) go nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


# What a terminal or pipe that cannot encode our typography gets instead (PYTHONIOENCODING=
# ascii, a C locale): readable ASCII, never a UnicodeEncodeError.
_ASCII = {
    "×": "x",
    "→": "->",
    "←": "<-",
    "−": "-",
    "—": "-",
    "–": "-",
    "…": "...",
    "·": "*",
    "⌊": "floor(",
    "⌋": ")",
    "⌈": "ceil(",
    "⌉": ")",
    "≥": ">=",
    "≤": "<=",
    "≠": "!=",
    "⚠": "!",
    "✗": "x",
    "✓": "ok",
    "Σ": "sum",
    "⊙": "*",
    "½": "1/2",
    "┏": "+",
    "┓": "+",
    "┗": "+",
    "┛": "+",
    "┳": "+",
    "┻": "+",
    "╋": "+",
    "┃": "|",
    "━": "-",
    "│": "|",
    "─": "-",
    "┡": "+",
    "┩": "+",
    "╇": "+",
    "├": "+",
    "┤": "+",
    "┼": "+",
    "└": "+",
    "┘": "+",
    "┴": "+",
    "┬": "+",
    "┌": "+",
    "┐": "+",
    "╭": "+",
    "╮": "+",
    "╰": "+",
    "╯": "+",
    "γ": "gamma",
    "β": "beta",
    "█": "#",
    "▓": "#",
    "▒": "+",
    "░": ".",
    "▀": "^",
    "▄": "_",
}


def _ascii_replace(exc: UnicodeError) -> tuple[str, int]:
    text = exc.object[exc.start : exc.end]  # type: ignore[attr-defined]
    return "".join(_ASCII.get(ch, "?") for ch in text), exc.end  # type: ignore[attr-defined]


def _ascii_fallback() -> None:
    import codecs

    codecs.register_error("cnncalc-ascii", _ascii_replace)
    for stream in (sys.stdout, sys.stderr):
        try:
            "×→".encode(stream.encoding or "ascii")
        except (UnicodeEncodeError, LookupError):
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(errors="cnncalc-ascii")
