"""Every formula and worked example of the seed article (see ../shared/SEED-NOTES.md).

Each example is checked twice: through the library API (``parse_text`` + ``analyze``) and
through the CLI (``cnncalc shapes|params ... --format json``, parsed). Expected numbers are the
article's, or follow from its formulas by hand; none is read back from cnncalc.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from cnncalc.analysis import analyze
from cnncalc.cli import main
from cnncalc.errors import ShapeError
from cnncalc.spec import load, parse_text

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FAST = settings(max_examples=150, deadline=None)


def run(text: str, shape: tuple[int, ...] | None = None, batch: int = 1):
    return analyze(parse_text(text), shape, batch=batch)


def cli_json(capsys, *args: str) -> dict:
    code = main(["shapes", *args, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "error" not in err
    return json.loads(out)


# --------------------------------------------------------------------------- example 1


EX1 = "Conv2d(2, 3, kernel_size=(3, 5), stride=1, padding=(1, 2))"


def test_example1_api():
    a = run(EX1, (2, 3, 5), batch=4)
    (row,) = a.rows
    assert row.output_shape == (3, 3, 5)  # (4, 3, 3, 5) with the batch of 4
    assert row.weights == 3 * 2 * 3 * 5  # weight (3, 2, 3, 5)
    assert row.bias == 3  # bias (3,)
    assert row.params == 93
    # activations are for the whole batch (4, 3, 3, 5) of float32
    assert row.activation_bytes == 4 * 3 * 3 * 5 * 4


def test_example1_cli(capsys):
    data = cli_json(capsys, EX1, "--input", "2x3x5", "--batch", "4")
    layer = data["layers"][0]
    assert data["batch"] == 4
    assert layer["output_shape"] == [3, 3, 5]
    assert layer["params"] == 93
    assert layer["activation_bytes"] == 4 * 3 * 3 * 5 * 4


# --------------------------------------------------------------------------- example 2


EX2 = "maxpool2d(3, padding=1, stride=(2, 1))"


def test_example2_api():
    a = run(EX2, (2, 4, 4))
    assert a.rows[0].output_shape == (2, 2, 4)
    assert a.rows[0].params == 0


def test_example2_cli(capsys):
    data = cli_json(capsys, EX2, "--input", "2x4x4")
    assert data["layers"][0]["output_shape"] == [2, 2, 4]
    assert data["totals"]["params"] == 0


# --------------------------------------------------------------------------- example 3


EX3 = "nn.Flatten() nn.Linear(3 * 256 * 256, 1000)"


def test_example3_api():
    a = run(EX3, (3, 256, 256))
    dense = a.rows[1]
    assert dense.params == 3 * 256 * 256 * 1000 + 1000 == 196_609_000
    # the dense-equivalent of a dense layer is itself
    assert dense.fc_equivalent_params == 196_609_000
    assert a.totals.params == 196_609_000


def test_example3_cli(capsys):
    data = cli_json(capsys, EX3, "--input", "3x256x256")
    assert data["layers"][1]["params"] == 196_609_000
    assert data["totals"]["params"] == 196_609_000


def test_example3_dense_vs_conv_example_file(capsys):
    """The shipped example prints the article's 196,609,000 (a dense layer on the image) next
    to the conv's 280, and the conv's dense equivalent on the same volumes."""
    a = analyze(load(str(EXAMPLES / "dense_vs_conv.yaml")))
    rows = {r.name: r for r in a.rows}
    assert rows["dense.fc"].params == 3 * 256 * 256 * 1000 + 1000 == 196_609_000
    conv = rows["conv"]
    assert conv.params == 10 * 3 * 3 * 3 + 10 == 280
    assert conv.output_shape == (10, 254, 254)
    assert conv.fc_equivalent_params == (3 * 256 * 256) * (10 * 254 * 254) + 10 * 254 * 254
    assert [(o.name, o.shape) for o in a.side_outputs] == [("dense", (1000,))]
    code = main(["shapes", str(EXAMPLES / "dense_vs_conv.yaml"), "--format", "csv"])
    out = capsys.readouterr().out
    assert code == 0
    assert "196609000" in out and ",280," in out


# --------------------------------------------------------------------------- example 4


EX4 = "conv2d(out_channels=10, kernel_size=3)"  # in_channels from the input


def test_example4_api():
    a = run(EX4, (3, 32, 32))
    assert a.rows[0].params == 10 * 3 * 3 * 3 + 10 == 280
    # independent of the image size (conv vs dense)
    assert run(EX4, (3, 500, 700)).rows[0].params == 280


def test_example4_cli(capsys):
    data = cli_json(capsys, EX4, "--input", "3x32x32")
    assert data["layers"][0]["params"] == 280
    code = main(["params", EX4, "--input", "3x32x32", "--format", "json"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert json.loads(out)["layers"][0]["trainable_params"] == 280


# --------------------------------------------------------------------------- example 5


EX5 = "Conv2d(3, 4, kernel_size=3, padding=2)"  # the article's line


def test_example5_api():
    a = run(EX5, (3, 100, 100))
    assert a.rows[0].output_shape == (4, 102, 102)
    assert a.rows[0].params == 4 * 3 * 9 + 4


def test_example5_cli(capsys):
    data = cli_json(capsys, "--input", "3x100x100", EX5)
    assert data["layers"][0]["output_shape"] == [4, 102, 102]
    assert data["totals"]["output_shape"] == [4, 102, 102]


def test_example5_shipped_file(capsys):
    path = EXAMPLES / "article_conv.yaml"
    assert analyze(load(str(path))).rows[0].output_shape == (4, 102, 102)
    assert cli_json(capsys, str(path))["layers"][0]["output_shape"] == [4, 102, 102]


# --------------------------------------------------------------------------- example 6


def test_example6_api():
    two = run("conv2d(1, 1, 3) conv2d(1, 1, 3)", (1, 9, 9))
    one = run("conv2d(1, 1, 5)", (1, 9, 9))
    assert two.rows[-1].receptive_field.size == (5, 5)
    assert one.rows[-1].receptive_field.size == (5, 5)
    assert two.rows[-1].output_shape == one.rows[-1].output_shape == (1, 5, 5)
    # on a 5x5 image
    assert run("conv2d(1, 1, 5)", (1, 5, 5)).rows[0].output_shape == (1, 1, 1)
    a = run("conv2d(1, 1, 3) conv2d(1, 1, 3)", (1, 5, 5))
    assert [r.output_shape for r in a.rows] == [(1, 3, 3), (1, 1, 1)]
    assert a.rows[1].receptive_field.size == (5, 5)
    assert a.rows[1].receptive_field.start == (0, 0)


def test_example6_cli(capsys):
    data = cli_json(capsys, "conv2d(1, 1, 3) conv2d(1, 1, 3)", "--input", "1x5x5")
    assert [r["output_shape"] for r in data["layers"]] == [[1, 3, 3], [1, 1, 1]]
    assert data["layers"][1]["receptive_field"]["size"] == [5, 5]
    data = cli_json(capsys, "conv2d(1, 1, 5)", "--input", "1x5x5")
    assert data["layers"][0]["output_shape"] == [1, 1, 1]
    assert data["layers"][0]["receptive_field"]["size"] == [5, 5]


# --------------------------------------------------------------------------- example 7


EX7 = "conv2d(1, 1, 2, name='Y') conv2d(1, 1, 2, name='z')"


def test_example7_api():
    a = run(EX7, (1, 3, 3))
    y, z = a.rows
    assert y.output_shape == (1, 2, 2)
    assert z.output_shape == (1, 1, 1)
    assert y.receptive_field.size == (2, 2)
    # z sees all 9 input elements
    assert z.receptive_field.size == (3, 3)
    assert z.receptive_field.start == (0, 0)
    assert ref.receptive_field_2d([(ref.Win1d(2), ref.Win1d(2))] * 2) == ((3, 3), (1, 1), (0, 0))


def test_example7_cli(capsys):
    data = cli_json(capsys, EX7, "--input", "1x3x3")
    assert data["layers"][1]["name"] == "z"
    assert data["layers"][1]["output_shape"] == [1, 1, 1]
    assert data["layers"][1]["receptive_field"]["size"] == [3, 3]


# --------------------------------------------------------------------------- example 8


def test_example8_api():
    dense = run("flatten linear(1000 * 1000, 1000 * 1000)", (1, 1000, 1000)).rows[1]
    assert dense.weights == 10**12
    assert dense.bias == 10**6
    conv = run("conv2d(1, 100, 10)", (1, 1000, 1000)).rows[0]
    assert conv.weights == 10_000
    assert conv.bias == 100
    assert conv.params == 10_100


def test_example8_cli(capsys):
    data = cli_json(capsys, "flatten linear(1000 * 1000, 1000 * 1000)", "--input", "1x1000x1000")
    assert data["layers"][1]["params"] == 10**12 + 10**6
    assert isinstance(data["layers"][1]["params"], int)
    code = main(["params", "conv2d(1, 100, 10)", "--input", "1x1000x1000", "--format", "json"])
    out, _ = capsys.readouterr()
    assert code == 0
    layer = json.loads(out)["layers"][0]
    assert layer["params"] == 10_100
    assert layer["weights"] == 10_000 and layer["bias"] == 100


# --------------------------------------------------------------------------- example 9


def test_example9_api():
    a = run("conv2d(1, 1, 3, bias=False)", (1, 5, 5))
    assert a.rows[0].output_shape == (1, 3, 3)
    assert a.rows[0].params == 9
    # the reference cross-correlation gives a 3x3 result too
    image = [[5 * i + j for j in range(5)] for i in range(5)]
    result = ref.cross_correlate_2d(image, [[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    assert (len(result), len(result[0])) == (3, 3)
    assert result[0][0] == 0 + 2 + 6 + 10 + 12


def test_example9_cli(capsys):
    data = cli_json(capsys, "conv2d(1, 1, 3, bias=False)", "--input", "1x5x5")
    assert data["layers"][0]["output_shape"] == [1, 3, 3]
    assert data["layers"][0]["params"] == 9


# --------------------------------------------------------------------------- example 10


@pytest.mark.parametrize("pool", ["maxpool2d(10, stride=10)", "avgpool2d(10, 10)", "maxpool2d(10)"])
def test_example10_api(pool):
    a = run(pool, (1, 20, 20))
    assert a.rows[0].output_shape == (1, 2, 2)
    assert a.rows[0].params == 0
    # pooling keeps the channel count
    assert run(pool, (7, 20, 20)).rows[0].output_shape == (7, 2, 2)


def test_example10_cli(capsys):
    data = cli_json(capsys, "avgpool2d(10, stride=10)", "--input", "1x20x20")
    assert data["layers"][0]["output_shape"] == [1, 2, 2]


# --------------------------------------------------------------------------- example 11


def test_example11_api():
    spec = parse_text(EX5)
    small = analyze(spec, (3, 100, 100)).rows[0]
    big = analyze(spec, (3, 256, 256)).rows[0]
    assert big.output_shape == (4, 258, 258)
    assert small.params == big.params
    # padded input 1+2+2 = 5 >= 3: still works
    assert analyze(spec, (3, 1, 1)).rows[0].output_shape == (4, 3, 3)
    # only when the padded input is smaller than the kernel does it fail
    with pytest.raises(ShapeError):
        analyze(parse_text("conv2d(3, 4, 5)"), (3, 4, 4))


def test_example11_cli(capsys):
    small = cli_json(capsys, EX5, "--input", "3x100x100")
    big = cli_json(capsys, EX5, "--input", "3x256x256")
    assert big["layers"][0]["output_shape"] == [4, 258, 258]
    assert small["totals"]["params"] == big["totals"]["params"] == 112
    code = main(["shapes", "conv2d(3, 4, 5)", "--input", "3x4x4"])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("cnncalc: error:")


# --------------------------------------------------------------------------- formulas


def article_out(n: int, k: int, p_total: int, s: int) -> int:
    """The article's form, with p the TOTAL padding: ⌊(n − k + p + s)/s⌋."""
    return (n - k + p_total + s) // s


@FAST
@given(n=st.integers(1, 60), k=st.integers(1, 9), pp=st.integers(0, 5), s=st.integers(1, 5))
def test_article_formula_symmetric(n, k, pp, s):
    """PyTorch's per-side padding pp is the article's total padding 2·pp."""
    if n + 2 * pp < k:
        return
    a = run(f"conv2d(1, 2, {k}, stride={s}, padding={pp})", (1, n, n))
    expected = article_out(n, k, 2 * pp, s)
    assert expected == ref.conv_out(n, k, s, pp)
    assert a.rows[0].output_shape == (2, expected, expected)


@FAST
@given(
    n=st.integers(1, 40),
    k=st.integers(1, 7),
    pl=st.integers(0, 4),
    pr=st.integers(0, 4),
    s=st.integers(1, 4),
)
def test_article_formula_any_total_padding(n, k, pl, pr, s):
    """An odd total padding via an asymmetric zeropad2d before the conv."""
    if n + pl + pr < k:
        return
    a = run(f"zeropad2d(({pl}, {pr}, 0, 0)) conv2d(1, 1, ({1}, {k}), stride={s})", (1, 1, n))
    assert a.rows[-1].output_shape == (1, 1, article_out(n, k, pl + pr, s))


@FAST
@given(n=st.integers(1, 50), m=st.integers(0, 5))
def test_odd_kernel_same_size(n, m):
    k = 2 * m + 1
    a = run(f"conv2d(2, 3, {k}, padding={m})", (2, n, n + 1))
    assert a.rows[0].output_shape == (3, n, n + 1)


@FAST
@given(n=st.integers(1, 50), k=st.integers(1, 8), s=st.integers(1, 6))
def test_total_padding_k_minus_1(n, k, s):
    """Total padding k−1 gives ⌊(n+s−1)/s⌋, i.e. n/s when s divides n."""
    left = (k - 1) // 2
    right = k - 1 - left
    a = run(
        f"zeropad2d(({left}, {right}, {left}, {right})) conv2d(1, 1, {k}, stride={s})", (1, n, n)
    )
    expected = (n + s - 1) // s
    assert a.rows[-1].output_shape == (1, expected, expected)
    if n % s == 0:
        assert expected == n // s


def test_total_padding_k_minus_1_cli(capsys):
    data = cli_json(
        capsys, "zeropad2d((1, 1, 1, 1)) conv2d(1, 1, 3, stride=4)", "--input", "1x12x12"
    )
    assert data["layers"][-1]["output_shape"] == [1, 3, 3]


@FAST
@given(
    ci=st.integers(1, 8),
    co=st.integers(1, 8),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    h=st.integers(5, 30),
    w=st.integers(5, 30),
)
def test_conv_vs_dense_counts(ci, co, kh, kw, h, w):
    row = run(f"conv2d({ci}, {co}, ({kh}, {kw}))", (ci, h, w)).rows[0]
    assert row.weights == ci * co * kh * kw  # independent of h, w
    assert row.bias == co
    h2, w2 = h - kh + 1, w - kw + 1
    assert row.output_shape == (co, h2, w2)
    # a dense layer from (ci, h, w) to (co, h2, w2): c1·c2·h1·w1·h2·w2 weights + one bias each
    assert row.fc_equivalent_params == ci * co * h * w * h2 * w2 + co * h2 * w2
    assert row.sharing_ratio == pytest.approx(row.fc_equivalent_params / row.params)


@FAST
@given(ci=st.integers(1, 16), co=st.integers(1, 16), h=st.integers(1, 12), w=st.integers(1, 12))
def test_one_by_one_conv_is_per_pixel_dense(ci, co, h, w):
    conv = run(f"conv2d({ci}, {co}, 1)", (ci, h, w)).rows[0]
    dense = run(f"linear({ci}, {co})", (ci,)).rows[0]
    assert conv.output_shape == (co, h, w)  # only the channels change
    assert conv.params == dense.params == ci * co + co
    assert conv.macs == h * w * dense.macs == h * w * ci * co


def test_one_by_one_conv_cli(capsys):
    conv = cli_json(capsys, "conv2d(3, 5, 1)", "--input", "3x7x7")
    dense = cli_json(capsys, "linear(3, 5)", "--input", "3")
    assert conv["layers"][0]["output_shape"] == [5, 7, 7]
    assert conv["totals"]["params"] == dense["totals"]["params"] == 20


def test_pooling_has_no_params_and_keeps_channels(capsys):
    a = run("maxpool2d(2) avgpool2d(3, stride=1, padding=1)", (6, 8, 8))
    assert [r.output_shape for r in a.rows] == [(6, 4, 4), (6, 4, 4)]
    assert a.totals.params == 0 and a.totals.macs == 0
    data = cli_json(capsys, "maxpool2d(2) avgpool2d(3, stride=1, padding=1)", "--input", "6x8x8")
    assert data["totals"]["params"] == 0


def test_lenet_shapes_and_params(capsys):
    """Modern LeNet-5: 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706 parameters."""
    text = (
        "conv2d(1, 6, 5) relu maxpool2d(2) conv2d(6, 16, 5) relu maxpool2d(2) flatten "
        "linear(16 * 5 * 5, 120) relu linear(120, 84) relu linear(84, 10)"
    )
    a = run(text, (1, 32, 32))
    weighted = [r.params for r in a.rows if r.params]
    assert weighted == [156, 2416, 48120, 10164, 850]
    assert a.totals.params == 61_706
    assert a.rows[5].output_shape == (16, 5, 5)
    data = cli_json(capsys, text, "--input", "1x32x32")
    assert data["totals"]["params"] == 61_706


def test_lenet_1998_matches_the_paper():
    """LeNet-5 (1998): C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164: 60,000 trainable;
    the RBF output's 84·10 = 840 fixed centres are not trained."""
    path = EXAMPLES / "lenet5_1998.yaml"
    a = analyze(load(str(path)))
    by_name = {r.name: r for r in a.rows if r.name}
    assert by_name["C1"].params == 156
    assert by_name["S2"].params == 12
    assert by_name["C3"].params == 1516
    assert by_name["S4"].params == 32
    assert by_name["C5"].params == 48_120
    assert by_name["F6"].params == 10_164
    assert a.totals.trainable_params == 60_000
    assert by_name["output"].trainable_params == 0
    assert by_name["output"].non_trainable_params == 840
