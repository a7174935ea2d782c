"""Human quantities on the command line: counts ``1.5k``, ``25M``, ``4G``, ``1T`` (powers of
1000); bytes also ``KiB``/``MiB``/``GiB``/``TiB`` (powers of 1024), ``kB``/``MB``/``GB`` and a
plain ``B``. Used by the CI checks and by ``run --max-memory``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from cnncalc.errors import UsageError

_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
_NUMBER = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]+)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")


def _parse(text: str, option: str, units: dict[str, int], what: str) -> int:
    m = _NUMBER.match(text)
    unit = m.group(2).lower() if m else ""
    if m and unit not in units and unit.endswith("b") and unit[:-1] in units:
        unit = unit[:-1]  # 4GB, 512MiB, 100B
    if not m or unit not in units:
        raise UsageError(f"{option} {text!r}: expected {what}")
    try:
        value = Decimal(m.group(1).replace("_", "").replace(",", "")) * units[unit]
    except InvalidOperation:
        raise UsageError(f"{option} {text!r}: expected {what}") from None
    if value != value.to_integral_value():
        raise UsageError(f"{option} {text!r} is not a whole number ({value})")
    return int(value)


def parse_count(text: str, option: str = "--max-params") -> int:
    """``61706``, ``61,706``, ``1.5k``, ``25M``, ``4G``, ``1T`` -> an integer."""
    return _parse(text, option, _DECIMAL, "a count such as 61706, 1.5k, 25M or 4G")


def parse_bytes(text: str, option: str = "--max-memory") -> int:
    """``4096``, ``512MiB``, ``4GB``, ``1.5k``, ``2G`` -> bytes (KiB/MiB/… are powers of 1024)."""
    return _parse(
        text, option, {**_DECIMAL, **_BINARY}, "bytes such as 4096, 1.5k, 512MiB, 4G or 2GiB"
    )
