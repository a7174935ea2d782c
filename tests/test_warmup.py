"""`cnncalc warmup` (cnncalc/warmup.py): compiles what `cnncalc run` needs into the kernel
cache, then finds nothing left to compile. Cold behaviour runs in a subprocess with a
temporary CNNCALC_CACHE_DIR, as in tests/test_cache.py."""

from __future__ import annotations

import json
from pathlib import Path

from cnncalc import cache
from cnncalc.cli import main
from cnncalc.warmup import Warmed, default_specs, render
from tests.test_cache import SPEC, cnncalc


def test_first_warmup_compiles_into_the_cache_then_the_second_compiles_nothing(tmp_path):
    first = cnncalc(["warmup", SPEC, "-i", "1x8x8", "-f", "json"], tmp_path)
    assert first.returncode == 0, first.stderr
    obj = json.loads(first.stdout)
    assert obj["cache"] == str(tmp_path / "kernels")
    [row] = obj["specs"]
    assert row["spec"] == SPEC
    # max pooling and relu: the two kernels of the spec, each compiled once
    assert row["kernels"] == 2 and obj["total"]["kernels"] == 2
    assert sorted(row["compiled"]) == ["element-wise kernel relu", "pooling kernel max_pool2d"]
    found = cache.contents(tmp_path / "kernels")
    assert {e.kernel for e in found.entries} >= {"pool.max_pool2d", "elementwise.relu"}

    second = cnncalc(["warmup", SPEC, "-i", "1x8x8"], tmp_path)
    assert second.returncode == 0, second.stderr
    lines = second.stdout.splitlines()
    assert lines[0].split()[-4:] == ["s", "0", "kernels", "compiled"]
    assert lines[1].startswith("total") and lines[1].split()[-3] == "0"
    assert lines[2] == f"kernel cache: {tmp_path / 'kernels'}"


def test_bad_spec_is_one_line_exit_1_nothing_on_stdout(capsys):
    assert main(["warmup", "relu", "conv2d(1, 2, 3", "-q"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith("cnncalc: error: ") and "'('" in captured.err


def test_unsupported_format_is_refused(capsys):
    assert main(["warmup", "relu", "-f", "csv", "-q"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "--format=csv" in captured.err


def test_default_is_every_example_spec():
    specs = default_specs()
    examples = Path(__file__).resolve().parent.parent / "examples"
    assert specs == sorted(examples.glob("*.yaml"))
    assert len(specs) >= 30


def test_render_table_and_total():
    rows = [Warmed("lenet5", 1.25, ("a", "b")), Warmed("alexnet", 10.0, ("c",))]
    text = render(rows, "table", "/c/kernels")
    assert text.splitlines() == [
        "lenet5       1.2 s    2 kernels compiled",
        "alexnet     10.0 s    1 kernels compiled",
        "total       11.2 s    3 kernels compiled",
        "kernel cache: /c/kernels",
    ]


def test_rf_option_compiles_what_rf_empirical_needs_so_it_then_compiles_nothing(tmp_path):
    def compiled_signatures() -> dict[str, int]:
        return {e.kernel: e.signatures for e in cache.contents(tmp_path / "kernels").entries}

    warmed = cnncalc(["warmup", SPEC, "-i", "1x8x8", "--rf", "-f", "json"], tmp_path)
    assert warmed.returncode == 0, warmed.stderr
    [row] = json.loads(warmed.stdout)["specs"]
    # run's two kernels, then the backward ones (max pooling's, float32 and float64)
    assert {"element-wise kernel relu", "pooling kernel max_pool2d"} < set(row["compiled"])
    assert any("backward" in name for name in row["compiled"])
    before = compiled_signatures()
    assert before["pool.max_pool2d"] >= 1 and any("backward" in k for k in before)

    measured = cnncalc(["rf", SPEC, "-i", "1x8x8", "--empirical", "-f", "json"], tmp_path)
    assert measured.returncode == 0, measured.stderr
    assert json.loads(measured.stdout)["empirical"]["theoretical"]["agrees"] is True
    assert compiled_signatures() == before  # nothing new: every kernel came from the cache


def test_rf_option_on_a_spec_without_a_field_names_the_spec_exit_1_nothing_on_stdout(capsys):
    assert main(["warmup", "relu", "-i", "4", "--rf", "-q"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "cnncalc: error: relu: input: the empirical field is measured on 1-D, 2-D and 3-D "
        "inputs only (--rf)\n"
    )
