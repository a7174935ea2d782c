"""`cnncalc explain`: the seed article's exercises read back from the worked text.

Expected numbers are the article's (../shared/SEED-NOTES.md) or follow from PyTorch's
formulas by hand; the substituted formulas are written out here, not copied from cnncalc.
"""

from __future__ import annotations

import itertools
import re

import pytest

from cnncalc.analysis import analyze
from cnncalc.cli import main
from cnncalc.explain import explain, render
from cnncalc.spec import parse_text


def text_of(spec: str, shape: tuple[int, ...] | None = None, **kw) -> str:
    return render(explain(parse_text(spec), shape, **kw))


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["explain", *args])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- seed exercises


def test_example1_conv_3x5_kernel():
    # X (4, 2, 3, 5), Conv2d(2, 3, (3, 5), padding=(1, 2)) -> (4, 3, 3, 5); weight 3·2·3·5, bias 3
    t = text_of("Conv2d(2, 3, (3, 5), stride=1, padding=(1, 2))", (2, 3, 5), batch=4)
    assert "H_out = ⌊(3 + 2·1 − 1·(3−1) − 1) / 1⌋ + 1 = 3" in t
    assert "W_out = ⌊(5 + 2·2 − 1·(5−1) − 1) / 1⌋ + 1 = 5" in t
    assert "C_out = out_channels = 3" in t
    assert "3·(2/1)·3·5 + 3 = 93" in t  # 90 weights + 3 biases
    assert "2×3×5 → 3×3×5" in t
    # MACs for the batch: 4 · (3·3·5 outputs) · (2·3·5 per output)
    assert f"= {4 * 45 * 30:,}" in t


def test_example2_maxpool_asymmetric_stride():
    # arange(32).view(1, 2, 4, 4), MaxPool2d(3, padding=1, stride=(2, 1)) -> (1, 2, 2, 4)
    t = text_of("maxpool2d(3, padding=1, stride=(2, 1))", (2, 4, 4))
    assert "H_out = ⌊(4 + 2·1 − 1·(3−1) − 1) / 2⌋ + 1 = 2" in t
    assert "W_out = ⌊(4 + 2·1 − 1·(3−1) − 1) / 1⌋ + 1 = 4" in t
    assert "2×4×4 → 2×2×4" in t
    assert "params =" not in t  # pooling has no parameters


def test_example4_params_280():
    t = text_of("conv2d(3, 10, 3)", (3, 32, 32))
    assert "params = out·(in/groups)·k_H·k_W + out = 10·(3/1)·3·3 + 10 = 280" in t


def test_example5_article_conv_102(capsys):
    code, out, err = cli(capsys, "examples/article_conv.yaml")
    assert code == 0, err
    assert "H_out = ⌊(100 + 2·2 − 1·(3−1) − 1) / 1⌋ + 1 = 102" in out
    assert "W_out = ⌊(100 + 2·2 − 1·(3−1) − 1) / 1⌋ + 1 = 102" in out
    assert "4·(3/1)·3·3 + 4 = 112" in out
    assert "3×100×100 → 4×102×102" in out
    # dense equivalent: 30000 inputs to 41616 outputs, one bias per output
    assert f"= 30000·41616 + 41616 = {30000 * 41616 + 41616:,}" in out
    # receptive field of a 3×3 conv padded by 2: r = 3, j = 1, start = −2
    assert "H: r = 1 + (3−1)·1 = 3, j = 1·1 = 1, start = 0 − 2·1 = −2" in out
    assert err == ""


def test_example10_pool_20_by_10():
    t = text_of("maxpool2d(10, stride=10)", (1, 20, 20))
    assert "H_out = ⌊(20 + 2·0 − 1·(10−1) − 1) / 10⌋ + 1 = 2" in t
    assert "1×20×20 → 1×2×2" in t


def test_example6_receptive_field_two_3x3_is_5x5():
    t = text_of("conv2d(1, 1, 3) conv2d(1, 1, 3)", (1, 5, 5))
    assert "H: r = 3 + (3−1)·1 = 5" in t
    assert "1×3×3 → 1×1×1" in t


# --------------------------------------------------------------------------- data loss, refusal


def test_floor_mode_names_unread_rows():
    # 32 with k3 s2: ⌊(32 − 3)/2⌋ + 1 = 15 windows, the last ends at 14·2 + 3 = 31: row 31 unread
    t = text_of("conv2d(3, 8, 3, stride=2)", (3, 32, 32))
    assert "H_out = ⌊(32 + 2·0 − 1·(3−1) − 1) / 2⌋ + 1 = 15" in t
    assert "the last window ends at (15−1)·2 + 3 − 0 = 31 of 32" in t
    assert "input row 31 never reaches" in t
    assert "input column 31 never reaches" in t


def test_ceil_mode_dropped_window():
    # 7 padded by 1, k2 s2 ceil: ⌈7/2⌉ + 1 = 5, but window 4 starts at 8 ≥ 7 + 1: dropped -> 4
    t = text_of("maxpool2d(2, padding=1, ceil_mode=True)", (1, 7, 7))
    assert "H_out = ⌈(7 + 2·1 − 1·(2−1) − 1) / 2⌉ + 1 = 5" in t
    assert "(5−1)·2 = 8 ≥ 7 + 1 = 8" in t
    assert "H_out = 5 − 1 = 4" in t
    assert "1×7×7 → 1×4×4" in t


def test_refused_layer_is_one_error_line_and_no_stdout(capsys):
    code, out, err = cli(capsys, "conv2d(3, 4, 3) conv2d(4, 2, 50)", "-i", "3x10x10")
    assert code == 1
    assert out == ""  # never partial output on stdout
    assert err.startswith("cnncalc: error: layer 1 (conv2d)")
    assert "kernel 50x50 is larger than the padded input 8x8" in err
    assert err.count("\n") == 1


def test_refused_layer_is_explained_by_the_library():
    from cnncalc.explain import explain, render
    from cnncalc.spec import load

    result = explain(load("conv2d(3, 4, 3) conv2d(4, 2, 50)"), (3, 10, 10))
    text = render(result)
    assert result.error is not None
    assert "3×10×10 → 4×8×8" in text  # the accepted layer
    assert "H_out = ⌊(8 + 2·0 − 1·(50−1) − 1) / 1⌋ + 1 = −41" in text
    assert "padded input 8 + 0 + 0 = 8 is smaller than the kernel 1·(50−1) + 1 = 50" in text


def test_transposed_and_adaptive():
    # (4−1)·2 − 2·1 + 1·(3−1) + 1 + 1 = 8; adaptive 8 -> 3 bins [0,3) [2,6) [5,8)
    t = text_of(
        "conv_transpose2d(4, 2, 3, stride=2, padding=1, output_padding=1) adaptive_avgpool2d(3)",
        (4, 4, 4),
    )
    assert "H_out = (4 − 1)·2 − 2·1 + 1·(3 − 1) + 1 + 1 = 8" in t
    assert "4·(2/1)·3·3 + 2 = 74" in t
    assert "[0,3), [2,6), [5,8)" in t


def test_same_padding_split():
    # k=4: total 3, PyTorch puts 1 left and 2 right
    t = text_of("conv2d(1, 2, 4, padding='same')", (1, 9, 9))
    assert "1+2" in t
    assert "H_out = ⌊(9 + 1 + 2 − 1·(4−1) − 1) / 1⌋ + 1 = 9" in t


def test_bad_layer_number_is_usage_error(capsys):
    code, out, err = cli(capsys, "examples/article_conv.yaml", "--layer", "5")
    assert (code, out) == (2, "")
    assert err.startswith("cnncalc: error:") and err.count("\n") == 1


def test_single_layer(capsys):
    code, out, _ = cli(capsys, "examples/lenet5.yaml", "--layer", "3")
    assert code == 0
    assert "layer 3 (conv2d 'c3')" in out and "layer 0" not in out
    assert "16·(6/1)·5·5 + 16 = 2,416" in out


def test_graph_spec_rows_without_formulas_are_listed():
    spec = parse_text(
        "input: 4x8x8\nlayers:\n  - residual:\n    - {type: conv2d, "
        "out_channels: 4, kernel_size: 3, padding: 1}\n"
    )
    t = render(explain(spec))
    assert "4·(4/1)·3·3 + 4 = 148" in t
    assert "(add)" in t or "add" in t


# --------------------------------------------------------------------------- agreement


def _results(text: str) -> list[int]:
    return [
        int(m.replace("−", "-").replace(",", ""))
        for m in re.findall(r"^\s*H_out = .*= (−?[\d,]+)$", text, flags=re.M)
    ]


@pytest.mark.parametrize("layer", ["conv2d", "maxpool2d"])
def test_final_sizes_equal_the_analysis(layer):
    """Over a grid, the last H_out of each axis block equals the analysis row's size."""
    for n, k, s, p in itertools.product((7, 8, 13), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2)):
        if p > k // 2 and layer == "maxpool2d":
            continue
        if k > n + 2 * p:
            continue
        for ceil in (False, True) if layer == "maxpool2d" else (False,):
            extra = f", ceil_mode={ceil}" if layer == "maxpool2d" else ""
            first = "1, 2, " if layer == "conv2d" else ""
            spec = parse_text(f"{layer}({first}{k}, stride={s}, padding={p}{extra})")
            row = analyze(spec, (1, n, n)).rows[0]
            t = render(explain(spec, (1, n, n)))
            sizes = _results(t)
            # PyTorch's formulas, by hand
            span = n + 2 * p - (k - 1) - 1
            want = (-(-span // s) if ceil else span // s) + 1
            if ceil and (want - 1) * s >= n + p:
                want -= 1
            assert row.output_shape[1] == want
            assert sizes[-1] == want, t


# --------------------------------------------------------------------------- agrees with shapes


def test_strided_1x1_is_not_a_floor_loss_in_explain_or_shapes():
    # a 1×1 stride-2 downsample skips every other row by design: no "floor drops data"
    spec = "conv2d(4, 8, 1, stride=2)"
    assert analyze(parse_text(spec), (4, 8, 8)).warnings == ()
    assert "floor drops data" not in text_of(spec, (4, 8, 8))
    # a 3×3 stride-2 window on 8 rows leaves row 7 unread: both say so
    spec = "conv2d(4, 8, 3, stride=2)"
    assert analyze(parse_text(spec), (4, 8, 8)).warnings
    assert "floor drops data on H" in text_of(spec, (4, 8, 8))


def test_every_row_is_explained_and_auto_shortcuts_are_named_like_rows():
    t = render(
        explain(
            parse_text("""
input: [8, 8, 8]
layers:
  - name: block
    residual: [{type: conv2d, out_channels: 16, kernel_size: 3, stride: 2, padding: 1}]
    shortcut: auto
  - name: cat
    concat: [[], []]
  - {type: flatten}
  - {type: linear, out_features: 10}
""")
        )
    )
    assert "block.downsample.0 (conv2d) at layers[0].shortcut: 8×8×8 → 16×4×4" in t
    assert "out = element-wise sum of 2 branches (16×4×4 and 16×4×4)" in t
    assert "C_out = 16 + 16 = 32 (concatenated along channels" in t
    # a dense layer's field line names the input's axes, no dangling colon
    # the conv field (3, jump 2) widened over its 4×4 output: 3 + (4−1)·2 = 9
    assert "each output reads every input position: H: r = 9, W: r = 9" in t
    assert not re.search(r":\s*$", t, flags=re.M)
