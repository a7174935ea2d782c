"""--semantics tensorflow: Keras/TF 'same' (⌈n/s⌉, extra padding at the end) and no ceil_mode.

Oracle: TensorFlow's documented SAME rule — output ⌈n/s⌉, total padding
max((out−1)·s + d(k−1) + 1 − n, 0), pad_before = total // 2 — computed here directly.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnncalc.analysis import analyze
from cnncalc.cli import main
from cnncalc.errors import ShapeError
from cnncalc.spec import load


def tf_same(n: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    out = math.ceil(n / s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    return out, total // 2


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 300), k=st.integers(1, 7), s=st.integers(1, 4), d=st.integers(1, 3))
def test_same_matches_tensorflow_rule(n, k, s, d):
    out, before = tf_same(n, k, s, d)
    a = analyze(
        load(f"conv1d(1, 2, {k}, stride={s}, dilation={d}, padding='same')"),
        (1, n),
        semantics="tensorflow",
    )
    row = a.rows[0]
    assert row.output_shape == (2, out)
    assert row.receptive_field.start == (-before,)
    # PyTorch refuses strided 'same'; with stride 1 both agree
    assert row.differs_from_pytorch == (s != 1)


def test_resnet_like_stride2_same_on_even_and_odd_inputs():
    for n, out in ((224, 112), (225, 113), (7, 4)):
        a = analyze(
            load("conv2d(3, 8, 3, stride=2, padding='same')"), (3, n, n), semantics="tensorflow"
        )
        assert a.rows[0].output_shape == (8, out, out)


def test_pytorch_refuses_strided_same():
    with pytest.raises(ShapeError, match="strided"):
        analyze(load("conv2d(3, 8, 3, stride=2, padding='same')"), (3, 32, 32))


def test_ceil_mode_does_not_exist_in_tensorflow():
    with pytest.raises(ShapeError, match="ceil_mode"):
        analyze(load("maxpool2d(2, ceil_mode=True)"), (3, 7, 7), semantics="tensorflow")


def test_unchanged_layers_are_not_marked():
    a = analyze(
        load("conv2d(1, 4, 4, padding='same') maxpool2d(2) flatten linear(64, 3)"),
        (1, 8, 8),
        semantics="tensorflow",
    )
    assert [r.differs_from_pytorch for r in a.rows] == [False] * 4


def test_cli_marks_and_json(capsys):
    code = main(
        [
            "shapes",
            "-i",
            "3x225x225",
            "conv2d(3, 8, 3, stride=2, padding='same') relu",
            "--semantics",
            "tensorflow",
            "-f",
            "json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert data["semantics"] == "tensorflow"
    assert [r["differs_from_pytorch"] for r in data["layers"]] == [True, False]
    assert data["layers"][0]["output_shape"] == [8, 113, 113]
    assert "differs from PyTorch" in err and err.count("\n") == 1

    code = main(
        [
            "shapes",
            "-i",
            "3x225x225",
            "conv2d(3, 8, 3, stride=2, padding='same')",
            "--semantics",
            "tensorflow",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0 and "conv2d ≠" in out


def test_bad_semantics_is_usage_error(capsys):
    code = main(["shapes", "-i", "3x8x8", "relu", "--semantics", "caffe"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and "--semantics" in err
