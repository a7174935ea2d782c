"""Human quantities on the command line: ``25M`` parameters, ``4G`` or ``512MiB`` bytes."""

from __future__ import annotations

import re

from cnncalc.errors import UsageError

_SI = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_BINARY = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40, "pi": 2**50}
_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]i?)?\s*(b)?\s*$", re.IGNORECASE)


def parse_quantity(text: str, option: str, *, bytes_: bool = False) -> int:
    """``1.5k`` -> 1500, ``25M`` -> 25,000,000; with bytes, ``4GiB`` -> 4·2^30 too.

    SI suffixes are powers of 1000 (as for parameter counts); ``Ki``/``Mi``/``Gi`` are
    powers of 1024. A trailing ``B`` is accepted for byte quantities.
    """
    m = _TEXT.match(str(text))
    if not m or (m.group(3) and not bytes_):
        unit = "bytes such as 4G, 512MiB or 1073741824" if bytes_ else "a count such as 25M"
        raise UsageError(f"{option}: expected {unit}, got {text!r}")
    number, suffix = m.group(1), (m.group(2) or "").lower()
    scale = _BINARY.get(suffix) or _SI[suffix]
    value = float(number) * scale
    if not value.is_integer() and "." in number:
        value = round(value)
    return int(value)


def parse_bytes(text: str, option: str) -> int:
    return parse_quantity(text, option, bytes_=True)


def parse_count(text: str, option: str) -> int:
    return parse_quantity(text, option)
