"""The project's exceptions and exit codes — the one place that maps failures to codes."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the ``cnncalc`` command (Click's convention: 2 = usage)."""

    OK = 0
    INVALID = 1  # invalid spec, impossible shape, failed check
    USAGE = 2  # bad command line: unknown option, malformed --input, missing file
    INTERNAL = 70  # a bug in cnncalc (EX_SOFTWARE); --traceback shows it


class CnncalcError(Exception):
    """Base of every error the library raises on purpose; ``str(e)`` is one line for users."""

    exit_code: ExitCode = ExitCode.INVALID

    def lines(self) -> list[str]:
        """What the CLI prints, one ``cnncalc: error:`` line each (usually one)."""
        return [str(self)]


class UsageError(CnncalcError):
    """The command line itself is wrong (bad --input text, a SPEC path that does not exist)."""

    exit_code = ExitCode.USAGE


def bad_option(option: str, value: object, reason: str) -> UsageError:
    """``--batch=0: must be at least 1`` — an option value the library refuses."""
    return UsageError(f"{option}={_show(value)}: {reason}")


class SpecError(CnncalcError):
    """The spec is malformed or a field has an invalid value.

    ``where`` names the place (``layer 3 (conv2d 'c3')`` or ``input``), ``field`` the
    offending field, ``value`` what was given and ``reason`` why it is refused.
    """

    def __init__(
        self,
        reason: str,
        *,
        where: str | None = None,
        field: str | None = None,
        value: object = None,
        has_value: bool = False,
    ) -> None:
        self.where, self.field, self.value, self.reason = where, field, value, reason
        parts = []
        if field is not None:
            parts.append(f"{field}={_show(value)}" if has_value else field)
        parts.append(reason)
        text = ": ".join(parts)
        super().__init__(f"{where}: {text}" if where else text)


class ShapeError(SpecError):
    """The spec is well-formed but a layer cannot be applied to its input shape."""


def _show(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)
