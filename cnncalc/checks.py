"""Assertions for CI and scripts: ``--expect-output``, ``--max-params``, ``--max-macs``,
``--max-memory``.

The report is printed as usual; then, if any limit is violated, the command fails with exit
code 1 and one line on stderr naming every violation. Limits take human suffixes: counts
``1.5k`` = 1,500, ``25M``, ``4G``, ``1T`` (powers of 1000); bytes also ``KiB``/``MiB``/``GiB``/
``TiB`` (powers of 1024), ``kB``/``MB``/``GB`` (powers of 1000) and a plain ``B``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnncalc.errors import CnncalcError, ExitCode, UsageError, shape_text
from cnncalc.units import parse_bytes, parse_count

Shape = tuple[int, ...]


class CheckFailed(CnncalcError):
    """A CI assertion does not hold (exit 1, like an invalid spec): one short line per
    violation, at most :data:`SHOWN` of them, then how many more."""

    exit_code = ExitCode.INVALID
    SHOWN = 5

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"check failed: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )

    def lines(self) -> list[str]:
        shown = [f"check failed: {p}" for p in self.problems[: self.SHOWN]]
        rest = len(self.problems) - self.SHOWN
        return shown + ([f"check failed: … and {rest} more"] if rest > 0 else [])


@dataclass(frozen=True)
class Limits:
    expect_output: Shape | None = None
    max_params: int | None = None
    max_macs: int | None = None
    max_memory: int | None = None  # parameter memory + activation memory, bytes

    @property
    def any(self) -> bool:
        return any(
            v is not None
            for v in (self.expect_output, self.max_params, self.max_macs, self.max_memory)
        )


def parse_limits(
    expect_output: str | None = None,
    max_params: str | None = None,
    max_macs: str | None = None,
    max_memory: str | None = None,
) -> Limits:
    """The CLI's option texts -> :class:`Limits`; malformed text raises :class:`UsageError`."""
    from cnncalc.errors import SpecError
    from cnncalc.spec import parse_shape

    shape = None
    if expect_output is not None:
        try:
            shape = parse_shape(expect_output, where="--expect-output")
        except SpecError as exc:
            raise UsageError(str(exc)) from None
    return Limits(
        expect_output=shape,
        max_params=None if max_params is None else parse_count(max_params, "--max-params"),
        max_macs=None if max_macs is None else parse_count(max_macs, "--max-macs"),
        max_memory=None if max_memory is None else parse_bytes(max_memory, "--max-memory"),
    )


def memory(analysis) -> int:
    """What ``--max-memory`` bounds: parameter (and buffer) bytes + every layer's output bytes
    for the batch, in the chosen dtype — the two memory lines of the report, added."""
    return analysis.totals.param_bytes + analysis.totals.activation_bytes


def violations(analysis, limits: Limits) -> list[str]:
    """Human-readable reasons, one per violated limit (empty: all hold)."""
    t = analysis.totals
    out = []
    if limits.expect_output is not None and tuple(t.output_shape) != limits.expect_output:
        out.append(f"output {_x(t.output_shape)} is not the expected {_x(limits.expect_output)}")
    if limits.max_params is not None and t.params > limits.max_params:
        out.append(f"params {t.params:,} > --max-params {limits.max_params:,}")
    if limits.max_macs is not None and t.macs > limits.max_macs:
        out.append(f"MACs {t.macs:,} > --max-macs {limits.max_macs:,}")
    if limits.max_memory is not None and memory(analysis) > limits.max_memory:
        out.append(
            f"memory {memory(analysis):,} B (params {t.param_bytes:,} + activations "
            f"{t.activation_bytes:,}) > --max-memory {limits.max_memory:,} B"
        )
    return out


def enforce(analyses, limits: Limits | None) -> None:
    """Raise :class:`CheckFailed` (one line) if any analysis violates a limit (None: none)."""
    if limits is None:
        return
    problems = []
    for a in analyses:
        where = f"{_x(a.input_shape)}, batch {a.batch}: " if len(analyses) > 1 else ""
        problems += [where + v for v in violations(a, limits)]
    if problems:
        raise CheckFailed(problems)


_x = shape_text
