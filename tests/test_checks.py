"""CI assertions on `shapes`/`params`: each passes and fails; limits take human suffixes.

LeNet-5 (examples/lenet5.yaml) by hand: params 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706;
MACs 117,600 + 240,000 + 48,000 + 10,080 + 840 = 416,520; float32 memory = 4 · 61,706 param
bytes + 4 · 15,002 output elements = 246,824 + 60,008 = 306,832 bytes at batch 1.
"""

from __future__ import annotations

import pytest

from cnncalc.cli import main
from cnncalc.errors import UsageError
from cnncalc.units import parse_bytes, parse_count

LENET = "examples/lenet5.yaml"
PARAMS, MACS, MEMORY = 61_706, 416_520, 246_824 + 60_008


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("61706", 61706),
        ("61,706", 61706),
        ("1.5k", 1500),
        ("25M", 25_000_000),
        ("4G", 4_000_000_000),
        ("0.5T", 500_000_000_000),
        ("2K", 2000),
    ],
)
def test_counts(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4096", 4096),
        ("1.5k", 1500),
        ("2KiB", 2048),
        ("512MiB", 512 * 2**20),
        ("4G", 4 * 10**9),
        ("4GB", 4 * 10**9),
        ("2GiB", 2 * 2**30),
        ("100B", 100),
        ("1.5 MiB", 1572864),
    ],
)
def test_bytes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1.5", "12Q", "-3", "1.2345k", "5MiB"])
def test_bad_counts(text):
    with pytest.raises(UsageError):
        parse_count(text)


@pytest.mark.parametrize(
    ("option", "limit_ok", "limit_bad"),
    [
        ("--max-params", str(PARAMS), str(PARAMS - 1)),
        ("--max-params", "62k", "61.7k"),
        ("--max-macs", str(MACS), str(MACS - 1)),
        ("--max-macs", "0.5M", "0.4M"),
        ("--max-memory", str(MEMORY), str(MEMORY - 1)),
        ("--max-memory", "300KiB", "299KiB"),  # 307,200 and 306,176 bytes
        ("--expect-output", "10", "1x10"),
    ],
)
@pytest.mark.parametrize("command", ["shapes", "params"])
def test_limit_holds_and_fails(capsys, command, option, limit_ok, limit_bad):
    code, out, err = run(capsys, command, LENET, option, limit_ok, "-f", "csv")
    assert (code, err) == (0, "")
    assert out.startswith("#,name,type")
    code, out2, err = run(capsys, command, LENET, option, limit_bad, "-f", "csv")
    assert code == 1
    assert out2 == out  # the report is still printed, then the check fails
    assert err.startswith("cnncalc: error: check failed: ") and err.count("\n") == 1


def test_reason_names_the_numbers(capsys):
    code, _, err = run(
        capsys,
        "shapes",
        LENET,
        "--max-params",
        "50k",
        "--max-macs",
        "400k",
        "--expect-output",
        "84",
    )
    assert code == 1
    assert "params 61,706 > --max-params 50,000" in err
    assert "MACs 416,520 > --max-macs 400,000" in err
    assert "output 10 is not the expected 84" in err
    assert err.count("\n") == 3  # one short line per violation


def test_a_sweep_of_violations_is_a_few_short_lines(capsys):
    code, _, err = run(
        capsys, "shapes", LENET, "-b", "1..64", "--max-memory", "100KiB", "-f", "csv"
    )
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 6 and all(len(line) < 160 for line in lines)
    # batch 1 is over already: 61,706 parameters × 4 B = 246,824 B > 100 KiB = 102,400 B
    assert lines[0].startswith("cnncalc: error: check failed: 1x32x32, batch 1: memory ")
    assert lines[-1] == "cnncalc: error: check failed: … and 59 more"


def test_batch_scales_macs_and_memory(capsys):
    # batch 2 doubles MACs and activations, not parameters
    code, _, err = run(
        capsys,
        "shapes",
        LENET,
        "-b",
        "2",
        "--max-macs",
        str(2 * MACS),
        "--max-memory",
        str(246_824 + 2 * 60_008),
    )
    assert (code, err) == (0, "")
    code, _, err = run(capsys, "shapes", LENET, "-b", "2", "--max-macs", str(2 * MACS - 1))
    assert code == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--max-params", "lots"),
        ("--max-macs", "1.5"),
        ("--max-memory", "4X"),
        ("--expect-output", "10xx"),
    ],
)
def test_malformed_limit_is_usage_error(capsys, option, value):
    code, out, err = run(capsys, "shapes", LENET, option, value)
    assert (code, out) == (2, "")
    assert err.startswith("cnncalc: error:") and err.count("\n") == 1
