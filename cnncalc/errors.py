"""The project's exceptions and exit codes — the one place that maps failures to codes."""

from __future__ import annotations

from enum import IntEnum

MAX_SHOWN = 120  # characters of a user's value echoed in a message
MAX_MESSAGE = 2000  # characters of a whole message line


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
            name = printable(field, MAX_SHOWN)
            parts.append(f"{name}={_show(value)}" if has_value else name)
        parts.append(reason)
        text = ": ".join(parts)
        # a place may hold a user's text (an inline item, a long path): bounded apart from
        # the reason, so the reason is never cut off
        super().__init__(f"{printable(where, 1000)}: {text}" if where else text)

    def __str__(self) -> str:
        return printable(super().__str__(), MAX_MESSAGE)


class ShapeError(SpecError):
    """The spec is well-formed but a layer cannot be applied to its input shape."""


def printable(text: str, limit: int | None = None) -> str:
    """``text`` safe to show on a terminal: control and format characters (escape sequences,
    newlines, bidi overrides) written as ``\\x1b``, ``\\n``, ``\\u202e``; cut to ``limit``
    characters with the full length noted. Use it wherever a user's string enters a message."""
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}… ({len(text):,} characters)"
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or c == " " else c.encode("unicode_escape", "replace").decode("ascii")
        for c in text
    )


def show(value: object, limit: int = MAX_SHOWN) -> str:
    """A user's value as it appears in a message: strings quoted, tuples in parentheses, every
    part escaped (:func:`printable`) and bounded to about ``limit`` characters."""
    if isinstance(value, str):
        if len(value) > limit:
            return repr(value[:limit]) + f"… ({len(value):,} characters)"
        return repr(value)  # repr escapes control characters
    if isinstance(value, (list, tuple)):
        items = [show(v, limit) for v in value[:8]]
        more = [f"… {len(value) - 8:,} more"] if len(value) > 8 else []
        text = "(" + ", ".join(items + more) + ("," if len(value) == 1 else "") + ")"
        return printable(text, limit)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of {value.bit_length():,} bits"
    return printable(str(value), limit)


_show = show


def closest(word: str, options) -> list[str]:
    """The option closest to a misspelt ``word`` (difflib), as a one-item list or empty: the
    one "did you mean" of every message. Absurdly long words are not compared."""
    import difflib

    return difflib.get_close_matches(word, list(options), n=1) if len(word) <= 100 else []


def shape_text(shape) -> str:
    """A shape in a message: ``3x224x224``, as ``--input`` takes it back (tables and
    explanations set shapes with ``×``; messages, which users copy, with ``x``)."""
    return "x".join(map(str, shape))
