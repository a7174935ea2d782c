"""Sweeps: `--input` ranges/lists per axis and `--batch` lists; rows equal individual runs."""

from __future__ import annotations

import csv
import io
import json

import pytest

from cnncalc.cli import main
from cnncalc.errors import UsageError
from cnncalc.sweep import parse_batches, parse_sweep

LENET = "examples/lenet5.yaml"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_syntax():
    assert parse_sweep("3x224x224") is None  # a plain shape: no sweep
    assert parse_sweep("3x{224,256}x{224,256}") == [
        (3, 224, 224),
        (3, 224, 256),
        (3, 256, 224),
        (3, 256, 256),
    ]
    assert parse_sweep("3x224..288:32x7") == [(3, 224, 7), (3, 256, 7), (3, 288, 7)]
    assert parse_sweep("1×{8,10..12}") == [(1, 8), (1, 10), (1, 11), (1, 12)]
    assert parse_batches("1,8,32") == [1, 8, 32]
    assert parse_batches("8") == [8]
    assert parse_batches("1..16:5") == [1, 6, 11, 16]


@pytest.mark.parametrize(
    "text", ["3x{224", "3x224..100", "3x{}", "3xabc", "3x0..4", "1x2x3x4x5..6"]
)
def test_bad_syntax(text):
    with pytest.raises(UsageError):
        parse_sweep(text)


def test_rows_equal_individual_runs(capsys):
    code, out, err = run(
        capsys, "shapes", LENET, "-i", "1x{28,32}x32..36:4", "-b", "1,3", "-f", "json"
    )
    assert code == 0, err
    rows = json.loads(out)["runs"]
    assert len(rows) == 2 * 2 * 2
    for r in rows:
        shape = "x".join(map(str, r["input_shape"]))
        code, single, _ = run(
            capsys, "shapes", LENET, "-i", shape, "-b", str(r["batch"]), "-f", "json"
        )
        t = json.loads(single)["totals"]
        assert r["output_shape"] == t["output_shape"]
        assert (r["params"], r["macs"], r["activation_bytes"], r["param_bytes"]) == (
            t["params"],
            t["macs"],
            t["activation_bytes"],
            t["param_bytes"],
        )


def test_lenet_numbers_by_hand(capsys):
    # 1x32x32: 61,706 params, 416,520 MACs per image; batch 8 multiplies MACs only
    code, out, _ = run(capsys, "params", LENET, "-b", "1,8", "-f", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["batch"], r["params"], r["MACs"]) for r in rows] == [
        ("1", "61706", "416520"),
        ("8", "61706", str(8 * 416520)),
    ]


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json"])
def test_every_format(capsys, fmt):
    code, out, err = run(capsys, "shapes", LENET, "-i", "1x{32,36}x32", "-f", fmt)
    assert (code, err) == (0, "")
    assert "61706" in out.replace(",", "")


def test_refused_input_is_a_row_then_fails(capsys):
    # 1x8x8: the 5x5 conv leaves 4x4, pooled to 2x2, and the second 5x5 conv cannot apply
    code, out, err = run(capsys, "shapes", LENET, "-i", "1x{8,32}x{8,32}", "-f", "csv")
    assert code == 1
    assert out.count("\n") == 5 and "refused" in out
    assert err.startswith("cnncalc: error: PyTorch refuses 3 of 4 runs") and err.count("\n") == 1


def test_checks_apply_to_every_run(capsys):
    code, _, err = run(capsys, "shapes", LENET, "-b", "1,2", "--max-macs", "500k", "-f", "csv")
    assert code == 1
    assert "1x32x32, batch 2: MACs 833,040 > --max-macs 500,000" in err


def test_bad_batch_is_usage_error(capsys):
    code, out, err = run(capsys, "shapes", LENET, "-b", "1,x")
    assert (code, out) == (2, "")
    assert err.startswith("cnncalc: error:")


def test_sweep_json_is_shaped_like_shapes_json(capsys):
    from cnncalc.cli import main

    assert main(["shapes", "examples/lenet5.yaml", "-b", "1,2", "-f", "json"]) == 0
    sweep = json.loads(capsys.readouterr().out)
    assert main(["shapes", "examples/lenet5.yaml", "-f", "json"]) == 0
    single = json.loads(capsys.readouterr().out)
    for key in ("name", "dtype", "semantics", "warnings"):
        assert type(sweep[key]) is type(single[key]), key
    assert sweep["name"] == single["name"] == "lenet5"
    run = sweep["runs"][0]
    assert run["warnings"] == [] and run["output_shape"] == single["totals"]["output_shape"]
    assert run["params"] == single["totals"]["params"] == 61_706


# --------------------------------------------------------------------------- progress


def test_sweep_reports_progress_to_stderr_and_leaves_stdout_unchanged(capsys, monkeypatch):
    """With the reporter forced to write at once (no 2 s delay), a sweep names its points
    on a non-terminal stderr; stdout is the same as with --quiet."""
    from cnncalc import progress as P

    args = ["shapes", "conv2d(1, 4, 3) relu", "-i", "1x{8,16}x{8..12:2}", "-f", "csv"]
    assert main([*args, "--quiet"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""

    class Eager(P.LogProgress):
        def changed(self) -> None:
            self.poll()

    monkeypatch.setattr(P, "LogProgress", lambda stream: Eager(stream, delay=0, interval=0))
    assert main(args) == 0
    loud = capsys.readouterr()
    assert loud.out == quiet.out
    lines = loud.err.splitlines()
    assert all(line.startswith("cnncalc: ") for line in lines)
    assert any("analysing input 1/6 1×8×8 batch 1" in line for line in lines)
    assert any("analysing input 6/6 1×16×12 batch 1" in line for line in lines)
    assert "done in" in lines[-1]


def test_memory_fit_reports_the_batches_tried():
    from cnncalc.analysis import analyze
    from cnncalc.memory import fit
    from cnncalc.spec import load
    from tests.test_progress import Recorder

    rec = Recorder()
    a = analyze(load("conv2d(1, 4, 3) relu"), (1, 8, 8))
    found = fit(a, 10**6, progress=rec)
    assert rec.events[0] == ("phase", "fitting batch", 0)
    tried = [int(e[2].split()[1]) for e in rec.events if e[0] == "step"]
    assert tried[:3] == [2, 4, 8] and found.batch in tried and found.batch + 1 in tried
