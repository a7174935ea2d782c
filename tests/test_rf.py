"""cnncalc.rf: the analytic receptive field per layer, the measured theoretical field (which
must equal it) and the effective field; and the ``cnncalc rf`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnncalc import rf
from cnncalc.analysis import analyze
from cnncalc.cli import main
from cnncalc.spec import load

ROOT = Path(__file__).resolve().parent.parent

GRAPH = """\
name: tiny_graph
input: [2, 24, 24]
layers:
  - {type: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - {type: relu}
  - residual:
      - {type: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
      - {type: batchnorm2d}
      - {type: relu}
      - {type: conv2d, out_channels: 4, kernel_size: 3, stride: 2, padding: 1}
    shortcut: auto
  - concat:
      a:
        - {type: conv2d, out_channels: 3, kernel_size: 1}
      b:
        - {type: maxpool2d, kernel_size: 3, stride: 1, padding: 1, ceil_mode: true}
        - {type: conv2d, out_channels: 2, kernel_size: 3, padding: 2, dilation: 2}
  - {type: avgpool2d, kernel_size: 2}
  - {type: adaptive_avgpool2d, output_size: 1}
  - {type: flatten}
  - {type: linear, out_features: 5}
"""


def measure(text: str, shape=None, **kw) -> rf.Empirical:
    return rf.receptive_fields(load(text), shape, empirical=True, **kw).empirical


# ------------------------------------------------------------ analytic
def test_article_two_stacked_3x3_convs_see_5x5():
    result = rf.receptive_fields(load("conv2d(1, 1, 3) conv2d(1, 1, 3)"), (1, 5, 5))
    last = result.layers[-1]
    assert last.field.size == (5, 5) and last.centre == (2, 2)
    e = measure("conv2d(1, 1, 3) conv2d(1, 1, 3)", (1, 5, 5))
    assert e.theoretical == rf.Box((0, 0), (4, 4)) and e.agrees


def test_centre_is_start_plus_half_size():
    a = analyze(load(str(ROOT / "examples/vgg16.yaml")))
    for lf in rf.analytic(a):
        if lf.field is not None:
            assert lf.centre == tuple(
                s + (z - 1) / 2 for s, z in zip(lf.field.start, lf.field.size)
            )


# ------------------------------------------------------------ theoretical = analytic
@pytest.mark.parametrize(
    "spec",
    [
        "conv2d(2, 2, 3, padding=1) relu maxpool2d(2) conv2d(2, 3, 3, stride=2) avgpool2d(3, 2, 1)",
        "conv2d(2, 2, (3, 5), dilation=(2, 1), padding=(1, 0)) maxpool2d(3, 2, 1, 2, ceil_mode=True)",
        "conv2d(2, 4, 5, stride=3) conv2d(4, 4, 1, stride=2) maxpool2d(2, ceil_mode=True) relu6",
        "zeropad2d((1, 2, 0, 3)) conv2d(2, 2, 3, groups=1) leaky_relu conv2d(2, 2, 3, groups=2) gelu",
        "conv2d(2, 3, 3, padding_mode='reflect', padding=1) maxpool2d(2) conv2d(3, 3, 3)",
    ],
)
def test_theoretical_field_equals_the_formula(spec):
    e = measure(spec, (2, 23, 21))
    assert e.agrees, e
    assert e.theoretical.lo == tuple(max(0, v) for v in e.analytic_lo)


def test_graph_spec_add_and_concat():
    e = measure(GRAPH)
    assert e.row.type == "avgpool2d"  # steps back over the trailing global pool
    assert e.agrees and not any(e.clipped)
    assert e.theoretical.size == tuple(int(v) for v in e.analytic_size)


def test_one_dimensional_spec():
    e = measure("conv1d(2, 4, 5, padding=2) relu maxpool1d(2) conv1d(4, 4, 3, dilation=3)", (2, 40))
    assert e.agrees and len(e.theoretical.lo) == 1
    assert e.gradient.ndim == 1


def test_clipped_field_is_enlarged_and_said_so():
    e = measure("conv2d(1, 2, 7, padding=3) " + "conv2d(2, 2, 7, padding=3) " * 2, (1, 12, 12))
    assert e.enlarged_from == (1, 12, 12)
    assert e.input_shape[1] >= 19 and not any(e.clipped)
    assert any("enlarged" in n for n in e.notes) and e.agrees


def test_explicit_unit_may_be_clipped():
    e = measure(
        "conv2d(1, 2, 5, padding=2) conv2d(2, 2, 5, padding=2)", (1, 10, 10), unit=(1, 0, 9)
    )
    assert e.enlarged_from is None and e.clipped == (True, True)
    assert e.theoretical == rf.Box((0, 5), (4, 9)) and e.agrees
    assert any("clipped" in n for n in e.notes)


def test_fractional_jump_units_agree_exactly():
    """After a stride-2 transposed conv, unit 7 reads input unit 3 only, whose field starts
    at 5: the recurrence's start + 7·jump (= 6) is off by half a step for odd units, so the
    comparison uses the exact per-unit field (analysis.unit_field) — measured 5, exact 5."""
    e = measure(
        "conv2d(1, 1, 3, padding=1) maxpool2d(2) conv_transpose2d(1, 1, 2, stride=2)", (1, 16, 16)
    )
    assert e.unit[1:] == (7, 7)
    assert e.analytic_lo == (5, 5)
    assert e.theoretical.lo == (5, 5)
    assert e.agrees and e.first_disagreement is None


SPEC3 = "conv2d(1, 1, 3, padding=1) maxpool2d(2) conv2d(1, 1, 3, padding=1)"


def _off_by_one_from_row(monkeypatch, first_bad: int):
    """A deliberately wrong analytic field from row ``first_bad`` on: the measurement must
    notice and the bisection must name that row."""
    real = rf.unit_field

    def wrong(nodes, target, pos):
        lo, hi = real(nodes, target, pos)
        if target >= first_bad:
            return tuple(v + 1 for v in lo), tuple(v + 1 for v in hi)
        return lo, hi

    monkeypatch.setattr(rf, "unit_field", wrong)


def test_disagreement_names_the_first_layer(monkeypatch):
    _off_by_one_from_row(monkeypatch, 1)
    e = measure(SPEC3, (1, 16, 16))
    assert not e.agrees and e.first_disagreement.index == 1
    assert e.first_disagreement.type == "maxpool2d"


# ------------------------------------------------------------ effective
def test_effective_field_is_centred_inside_the_theoretical_one():
    e = measure("conv2d(out_channels=8, kernel_size=3, padding=1) relu " * 6, (1, 33, 33), mass=0.9)
    t, f = e.theoretical, e.effective
    assert all(tl <= fl and fh <= th for tl, fl, fh, th in zip(t.lo, f.lo, f.hi, t.hi))
    assert e.mass_in_box >= 0.9 and all(r <= 1 for r in e.ratio)
    assert e.effective.size < e.theoretical.size  # Luo et al.: smaller than the theory
    assert np.isclose(e.gradient.sum() > 0, True)


def test_measurement_is_reproducible():
    a = measure("conv2d(1, 4, 3) relu maxpool2d(2) conv2d(4, 4, 3)", (1, 16, 16), seed=3)
    b = measure("conv2d(1, 4, 3) relu maxpool2d(2) conv2d(4, 4, 3)", (1, 16, 16), seed=3)
    np.testing.assert_array_equal(a.gradient, b.gradient)
    assert a.unit == b.unit


# ------------------------------------------------------------ CLI
def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_analytic_json(capsys):
    code, out, err = run_cli(
        capsys, "rf", "conv2d(1, 2, 3) maxpool2d(2)", "-i", "1x8x8", "-f", "json"
    )
    assert code == 0
    obj = json.loads(out)
    assert obj["empirical"] is None
    assert obj["layers"][1]["receptive_field"] == {
        "size": [4, 4],
        "jump": [2, 2],
        "start": [0, 0],
        "centre": [1.5, 1.5],
    }


def test_cli_empirical_json_and_table(capsys, tmp_path):
    spec = tmp_path / "g.yaml"
    spec.write_text(GRAPH)
    code, out, err = run_cli(capsys, "rf", str(spec), "--empirical", "-f", "json")
    assert code == 0, err
    e = json.loads(out)["empirical"]
    assert e["theoretical"]["agrees"] is True
    assert e["theoretical"]["size"] == e["analytic"]["size"]
    assert isinstance(e["theoretical"]["size"][0], int)
    code, out, err = run_cli(capsys, "rf", str(spec), "--empirical")
    assert code == 0 and "theoretical field" in out and "+" in out  # ASCII heatmap when piped
    code, out, err = run_cli(capsys, "rf", str(spec), "--empirical", "-f", "csv")
    assert out.splitlines()[0].startswith("axis,") and len(out.splitlines()) == 3


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--unit", "0,1"], 2),
        (["--unit", "a,b,c"], 2),
        (["--unit", "0,99,0"], 2),
        (["--mass", "0"], 2),
        (["--mass", "1.5"], 2),
    ],
)
def test_cli_usage_errors(capsys, args, code):
    got, out, err = run_cli(capsys, "rf", "conv2d(1, 2, 3)", "-i", "1x8x8", "--empirical", *args)
    assert got == code and out == ""
    assert err.startswith("cnncalc: error:") and len(err.splitlines()) == 1


def test_cli_disagreement_is_exit_1(capsys, monkeypatch):
    _off_by_one_from_row(monkeypatch, 2)
    code, out, err = run_cli(capsys, "rf", SPEC3, "-i", "1x16x16", "--empirical", "-f", "json")
    assert code == 1
    assert err.startswith("cnncalc: error:") and "layer 2 (conv2d)" in err
    assert err.count("\n") == 1
    assert json.loads(out)["empirical"]["theoretical"]["first_disagreement"]["index"] == 2


def test_cli_png(capsys, tmp_path):
    target = tmp_path / "rf.png"
    code, out, err = run_cli(
        capsys,
        "rf",
        "conv2d(1, 2, 3) relu conv2d(2, 2, 3)",
        "-i",
        "1x12x12",
        "--png",
        str(target),
        "-f",
        "json",
    )
    try:
        import PIL  # noqa: F401
    except ImportError:
        assert code == 2 and out == ""
        assert "pip install 'cnncalc[png]'" in err and len(err.splitlines()) == 1
        return
    assert code == 0 and target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
