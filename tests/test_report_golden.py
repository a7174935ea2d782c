"""Golden files for what users read: the piped (plain) table of ``cnncalc shapes`` and
``cnncalc params`` on the shipped LeNet-5 examples, compared byte for byte.

To regenerate after an intended change, run::

    CNNCALC_REGEN_GOLDEN=1 python -m pytest tests/test_report_golden.py

then review the diff of ``tests/golden/*.txt`` (the numbers in it were checked by hand once:
LeNet-5 has 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706 parameters; the 1998 version 60,000
trainable plus 840 fixed RBF centres). Without the variable a missing golden file fails.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cnncalc.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("CNNCALC_REGEN_GOLDEN") == "1"


def _spec(example: str) -> list[str]:
    path = ROOT / "examples" / f"{example}.yaml"
    assert path.exists(), f"examples/{example}.yaml is missing (renamed?)"
    return [str(path.relative_to(ROOT))]


def render(capsys, monkeypatch, command: str, example: str) -> str:
    monkeypatch.chdir(ROOT)  # relative spec path: stable output wherever the tests run
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    code = main([command, *_spec(example)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    return out


@pytest.mark.parametrize("example", ["lenet5", "lenet5_1998"])
@pytest.mark.parametrize("command", ["shapes", "params"])
def test_golden_table(capsys, monkeypatch, command, example):
    out = render(capsys, monkeypatch, command, example)
    assert "\x1b[" not in out
    path = GOLDEN / f"{example}_{command}.txt"
    if REGEN:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(out, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with CNNCALC_REGEN_GOLDEN=1 and review it"
    expected = path.read_text(encoding="utf-8")
    assert out == expected, f"table output drifted from {path.name}; regenerate if intended"


# --------------------------------------------------------------------------- totals


def _cells(out: str) -> tuple[list[str], list[list[str]], list[str]]:
    """(header cells, body rows, total row) of a Rich table in plain text."""
    lines = [line for line in out.splitlines() if line.startswith(("┃", "│", "|"))]
    split = [[c.strip() for c in re.split(r"[┃│|]", line)[1:-1]] for line in lines]
    header, *body = split
    total = next(r for r in body if "total" in r)
    body = [r for r in body if r is not total]
    return header, body, total


def _int(text: str) -> int:
    return int(text.replace(",", "")) if text.replace(",", "").isdigit() else 0


@pytest.mark.parametrize("example", ["lenet5", "lenet5_1998"])
def test_table_total_row_is_sum_of_rows(capsys, monkeypatch, example):
    out = render(capsys, monkeypatch, "shapes", example)
    header, body, total = _cells(out)
    for column in ("params", "MACs"):
        i = header.index(column)
        assert sum(_int(r[i]) for r in body) == _int(total[i]), column
    assert total[header.index("output")] == body[-1][header.index("output")]
    out = render(capsys, monkeypatch, "params", example)
    header, body, total = _cells(out)
    for column in ("trainable", "fixed", "dense-eq."):
        i = header.index(column)
        assert sum(_int(r[i]) for r in body) == _int(total[i]), column


def test_lenet_table_numbers(capsys, monkeypatch):
    out = render(capsys, monkeypatch, "shapes", "lenet5")
    header, body, total = _cells(out)
    i = header.index("params")
    assert [_int(r[i]) for r in body if _int(r[i])] == [156, 2416, 48120, 10164, 850]
    assert total[i] == "61,706"


@pytest.mark.parametrize("command", ["shapes", "params"])
@pytest.mark.parametrize("example", ["lenet5", "lenet5_1998"])
def test_default_tables_fit_80_columns(capsys, monkeypatch, command, example):
    out = render(capsys, monkeypatch, command, example)
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "--wide" in out  # and say how to get the wide form
