"""The ``cnncalc`` command: parse the command line, call the library, render, exit.

Each command is a few lines over the library; errors become one line on stderr and an exit
code from :class:`cnncalc.errors.ExitCode`; nothing reaches stdout unless all went well.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from enum import Enum
from typing import Annotated, TypeVar

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
DTypeOpt = Annotated[DType, typer.Option("--dtype", help="Element type for memory figures.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
DepthOpt = Annotated[int | None, typer.Option("--depth", "-d", min=0, help="Fold rows nested "
                                              "deeper than N into their block (0: top level).")]


def _guard(body: Callable[[], T]) -> T:
    """Run a command body; library errors become one stderr line and their exit code."""
    try:
        return body()
    except CnncalcError as exc:
        _fail(str(exc), exc.exit_code)
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


def load_spec(spec: str, input_shape: str | None):
    """SPEC and --input -> (Spec, shape or None); --input problems are usage errors."""
    from cnncalc import spec as spec_mod

    shape = None
    if input_shape is not None:
        try:
            shape = spec_mod.parse_shape(input_shape, where="--input")
        except SpecError as exc:
            raise UsageError(str(exc)) from None
    stdin_text = sys.stdin.read() if spec == "-" else None
    return spec_mod.load(spec, stdin_text=stdin_text), shape


def _report(view: View, spec: str, input_shape: str | None, batch: int, dtype: DType,
            fmt: Format, depth: int | None = None) -> None:
    from cnncalc.analysis import analyze, collapse
    from cnncalc.report import render_text, summary, to_table

    parsed, shape = load_spec(spec, input_shape)
    result = analyze(parsed, shape, batch=batch, dtype=dtype.value)
    if depth is not None:
        result = collapse(result, depth)
    warn(result.warnings)
    if fmt is Format.table:
        console = stdout_console()
        console.print(to_table(result, view))
        for line in summary(result):
            console.print(line, highlight=False, markup=False)
    else:
        sys.stdout.write(render_text(result, view, fmt))


@app.command()
def shapes(spec: SpecArg, input: InputOpt = None, batch: BatchOpt = 1,
           dtype: DTypeOpt = DType.float32, format: FormatOpt = Format.table,
           depth: DepthOpt = None) -> None:
    """Per layer: output shape, parameters, receptive field (size, jump, start) and MACs."""
    _guard(lambda: _report(View.shapes, spec, input, batch, dtype, format, depth))


@app.command()
def params(spec: SpecArg, input: InputOpt = None, batch: BatchOpt = 1,
           dtype: DTypeOpt = DType.float32, format: FormatOpt = Format.table,
           depth: DepthOpt = None) -> None:
    """Per layer: weights, bias, trainable and non-trainable counts, the dense-layer equivalent,
    the sharing ratio and parameter memory."""
    _guard(lambda: _report(View.params, spec, input, batch, dtype, format, depth))


@app.command()
def types() -> None:
    """List the layer types a spec may use, with their positional arguments."""
    from cnncalc.layers import LAYER_TYPES, canonical_type

    for cls in LAYER_TYPES:
        args = ", ".join(cls.positional)
        sys.stdout.write(f"{canonical_type(cls)}({args})\n")


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
    except click_exc.Abort:
        sys.stderr.write("cnncalc: aborted\n")
        return 130
    return code if isinstance(code, int) else 0
