# ruff: noqa: E741  (O = number of output channels, as in the formulas)
"""Tests of cnncalc.kernels against the float64 oracle in tests/naive.py."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import cnncalc.kernels as K
from cnncalc.kernels import _conv

try:
    from tests import naive
except ImportError:  # tests/ itself on sys.path
    import naive

FAST = settings(max_examples=60, deadline=None, database=None)
FEW = settings(max_examples=25, deadline=None, database=None)
DTYPES = [np.float64, np.float32]


def rnd(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def check(got, ref, dtype=np.float64):
    """Same shape and dtype, max error relative to the reference's scale."""
    assert got.dtype == np.dtype(dtype), (got.dtype, dtype)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    tol = 1e-10 if np.dtype(dtype) == np.float64 else 1e-4
    scale = max(1.0, float(np.nanmax(np.abs(ref))) if ref.size else 1.0)
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * scale)


# ------------------------------------------------------------ convolution
@st.composite
def conv_cases(draw, nd=2, kind="any", max_size=9):
    """(x, w, b, stride, padding, dilation, groups) for an nd convolution."""
    dtype = draw(st.sampled_from(DTYPES))
    n = draw(st.integers(1, 2))
    if kind == "depthwise":
        groups = draw(st.integers(2, 5))
        cin_g, cout_g = 1, draw(st.integers(1, 2))
    else:
        groups = draw(st.integers(1, 3))
        cin_g, cout_g = draw(st.integers(1, 3)), draw(st.integers(1, 4))
        if kind == "tile" and draw(st.booleans()):
            cout_g = draw(st.integers(9, 20))  # several channel blocks
    if kind == "matmul":
        k = (1,) * nd
    else:
        k = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    size = tuple(draw(st.integers(1, max_size)) for _ in range(nd))
    pmode = draw(st.sampled_from(["int", "tuple", "same", "valid"]))
    if pmode == "same" and any(e != 1 for e in s):
        pmode = "tuple"
    if pmode == "int":
        padding = draw(st.integers(0, 2))
        pads = [(padding, padding)] * nd
    elif pmode == "tuple":
        padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
        pads = [(p, p) for p in padding]
    else:
        padding = pmode
        pads = [(0, 0)] * nd
        if pmode == "same":
            pads = [
                (dd * (kk - 1) // 2, dd * (kk - 1) - dd * (kk - 1) // 2) for kk, dd in zip(k, d)
            ]
    for i in range(nd):
        assume(size[i] + sum(pads[i]) >= d[i] * (k[i] - 1) + 1)
    x = rnd((n, groups * cin_g) + size, dtype, draw(st.integers(0, 99)))
    w = rnd((groups * cout_g, cin_g) + k, dtype, 1)
    b = rnd((groups * cout_g,), dtype, 2) if draw(st.booleans()) else None
    return x, w, b, s, padding, d, groups


def _run_conv(case, nd, path=None, tile=None):
    x, w, b, s, p, d, g = case
    if path is None:
        fn = {1: K.conv1d, 2: K.conv2d, 3: K.conv3d}[nd]
        got = fn(x, w, b, stride=s, padding=p, dilation=d, groups=g)
    else:
        got = _conv._conv_nd(x, w, b, s, p, d, g, nd, path=path, tile=tile)
    check(got, naive.conv(x, w, b, s, p, d, g), x.dtype)


@FAST
@given(
    conv_cases(2, "tile"), st.sampled_from(sorted(_conv.TILE_KERNELS)), st.booleans(),
    st.sampled_from([None, False, True]), st.sampled_from([None, 1, 2]),
)  # fmt: skip
def test_conv2d_tile_path(case, tile, bmajor, flat, chunk):
    """Tile kernel with both work-item orders, row-flattened tiling and taps
    in chunks of 1 or 2 input channels."""
    x, w, b, s, p, d, g = case
    got = _conv._conv_nd(
        x, w, b, s, p, d, g, 2, path="tile", tile=tile, bmajor=bmajor, flat=flat, chunk=chunk
    )
    check(got, naive.conv(x, w, b, s, p, d, g), x.dtype)


@FEW
@given(conv_cases(3, "tile", max_size=5), st.booleans())
def test_conv3d_flat(case, flat):
    x, w, b, s, p, d, g = case
    got = _conv._conv_nd(x, w, b, s, p, d, g, 3, path="tile", flat=flat)
    check(got, naive.conv(x, w, b, s, p, d, g), x.dtype)


@FAST
@given(conv_cases(2))
def test_conv2d_direct_path(case):
    _run_conv(case, 2, "direct")


@FAST
@given(conv_cases(2, "depthwise"))
def test_conv2d_depthwise_path(case):
    _run_conv(case, 2, "depthwise")


@FAST
@given(conv_cases(2, "matmul"))
def test_conv2d_matmul_path(case):
    _run_conv(case, 2, "matmul")


@FAST
@given(st.sampled_from(["any", "depthwise", "matmul"]).flatmap(lambda k: conv_cases(2, k)))
def test_conv2d_auto(case):
    _run_conv(case, 2)


@FAST
@given(conv_cases(1, "tile", max_size=40))
def test_conv1d(case):
    _run_conv(case, 1)


@FAST
@given(conv_cases(1, "depthwise", max_size=40))
def test_conv1d_depthwise(case):
    _run_conv(case, 1)


@FEW
@given(conv_cases(3, max_size=5))
def test_conv3d(case):
    _run_conv(case, 3)


@FEW
@given(conv_cases(3, max_size=5))
def test_conv3d_direct(case):
    _run_conv(case, 3, "direct")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "cfg",
    [
        # (N, C, O, H, W, k, stride, pad, dil, groups)
        (2, 5, 20, 7, 37, 3, 1, 1, 1, 1),  # several channel blocks and column tiles
        (1, 4, 9, 5, 28, 3, 1, 1, 1, 1),  # masked full tile (28 = 16 + 12)
        (1, 4, 16, 4, 32, 3, 1, 1, 1, 1),  # exact tiles, no edge
        (1, 4, 8, 4, 24, 3, 1, 1, 1, 1),  # 16 + exact half tail
        (2, 16, 24, 7, 7, 3, 1, 1, 1, 1),  # 7x7 map: flat tiling chosen automatically
        (1, 3, 17, 9, 40, 7, 2, 3, 1, 1),  # stem-like, stride-2 phase split
        (2, 8, 24, 6, 21, 3, 2, 2, 2, 2),  # grouped, dilated, strided
        (1, 6, 6, 8, 33, 3, 1, 1, 1, 6),  # depthwise
        (1, 6, 12, 8, 19, 5, 2, 2, 1, 6),  # depthwise, multiplier 2, stride 2
        (2, 16, 8, 5, 18, 1, 1, 0, 1, 1),  # 1x1 -> BLAS
        (1, 8, 8, 6, 9, 1, 2, 1, 1, 2),  # grouped strided padded 1x1
    ],
)
def test_conv2d_fixed(cfg, dtype):
    N, C, O, H, W, k, s, p, d, g = cfg
    x = rnd((N, C, H, W), dtype, 3)
    w = rnd((O, C // g, k, k), dtype, 4)
    b = rnd((O,), dtype, 5)
    ref = naive.conv(x, w, b, s, p, d, g)
    check(K.conv2d(x, w, b, s, p, d, g), ref, dtype)
    for path in ("tile", "direct"):
        check(_conv._conv_nd(x, w, b, s, p, d, g, 2, path=path), ref, dtype)
    for bmajor in (False, True):  # both work-item orders of the tile kernel
        check(_conv._conv_nd(x, w, b, s, p, d, g, 2, path="tile", bmajor=bmajor), ref, dtype)
    for flat in (False, True):  # row tiles / row-flattened tiles
        check(_conv._conv_nd(x, w, b, s, p, d, g, 2, path="tile", flat=flat), ref, dtype)


def test_conv_path_selection():
    x5 = np.zeros((1, 8, 1, 5, 5))
    assert _conv._select_path(x5, np.zeros((8, 8, 1, 1, 1)), 1, 2) == "matmul"
    assert _conv._select_path(x5, np.zeros((8, 1, 1, 3, 3)), 8, 2) == "depthwise"
    assert _conv._select_path(x5, np.zeros((8, 1, 1, 3, 3)), 8, 3) == "tile"
    assert _conv._select_path(x5, np.zeros((8, 8, 1, 3, 3)), 1, 2) == "tile"
    # conv3d, depthwise, depth 1 (regression: used to pick the 2-D depthwise path)
    x = rnd((1, 3, 1, 5, 6))
    w = rnd((6, 1, 1, 3, 2))
    check(K.conv3d(x, w, groups=3, padding=1), naive.conv(x, w, padding=1, groups=3))
    assert _conv._tile_cols(56, 16) == (3, 1)
    assert _conv._tile_cols(112, 16) == (7, 0)
    assert _conv._tile_cols(7, 16) == (0, 1)
    assert _conv._tile_cols(28, 16) == (2, 0)
    assert _conv._tile_cols(56, 16, half=False) == (4, 0)
    assert _conv._tile_cols(7, 16, half=False) == (1, 0)


def test_conv_unbatched_and_same_errors():
    x = rnd((3, 8, 8))
    w = rnd((4, 3, 3, 3))
    check(K.conv2d(x, w, padding="same"), naive.conv(x[None], w, padding="same")[0])
    with pytest.raises(ValueError, match="same"):
        K.conv2d(x, w, padding="same", stride=2)
    with pytest.raises(ValueError):
        K.conv2d(x, w, padding="full")
    with pytest.raises(ValueError):
        K.conv2d(x[None], w, groups=2)  # 3 channels, groups 2
    with pytest.raises(ValueError):
        K.conv2d(x[None], rnd((4, 3, 9, 9)))  # kernel larger than input
    with pytest.raises(ValueError):
        K.conv2d(x[None], w, stride=0)
    with pytest.raises(ValueError):
        K.conv2d(x[None], w, padding=-1)
    with pytest.raises(ValueError):
        K.conv2d(x[None].astype(np.int32), w)
    with pytest.raises(ValueError):
        K.conv2d(x[None], w, bias=np.zeros(5))


# ----------------------------------------------------- transposed convolution
@st.composite
def convt_cases(draw, nd):
    dtype = draw(st.sampled_from(DTYPES))
    groups = draw(st.integers(1, 3))
    cin_g, cout_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    p = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    op = tuple(draw(st.integers(0, max(s[i], d[i]) - 1)) for i in range(nd))
    size = tuple(draw(st.integers(1, 6)) for _ in range(nd))
    for i in range(nd):
        assume((size[i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 >= 1)
    x = rnd((draw(st.integers(1, 2)), groups * cin_g) + size, dtype, draw(st.integers(0, 99)))
    w = rnd((groups * cin_g, cout_g) + k, dtype, 7)
    b = rnd((groups * cout_g,), dtype, 8) if draw(st.booleans()) else None
    return x, w, b, s, p, op, groups, d


@FAST
@given(convt_cases(2))
def test_conv_transpose2d(case):
    x, w, b, s, p, op, g, d = case
    got = K.conv_transpose2d(x, w, b, s, p, op, g, d)
    check(got, naive.conv_transpose(x, w, b, s, p, op, g, d), x.dtype)


@FAST
@given(convt_cases(1))
def test_conv_transpose1d(case):
    x, w, b, s, p, op, g, d = case
    got = K.conv_transpose1d(x, w, b, s, p, op, g, d)
    check(got, naive.conv_transpose(x, w, b, s, p, op, g, d), x.dtype)


def test_conv_transpose_errors():
    x, w = rnd((1, 2, 4, 4)), rnd((2, 3, 3, 3))
    with pytest.raises(ValueError, match="output_padding"):
        K.conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError):
        K.conv_transpose2d(x, rnd((3, 3, 3, 3)))


# ---------------------------------------------------------------- LeNet
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_table(dtype):
    conns = [[0, 1, 2], [1, 2, 3], [0, 3], [0, 1, 2, 3], [5, 4]]
    x = rnd((2, 6, 9, 8), dtype, 1)
    w = rnd((5, 4, 3, 3), dtype, 2)
    b = rnd((5,), dtype, 3)
    for s, p in [(1, 0), (2, 1)]:
        got = K.conv2d_table(x, w, b, conns, stride=s, padding=p)
        check(got, naive.conv2d_table(x, w, b, conns, s, p), dtype)
    with pytest.raises(ValueError):
        K.conv2d_table(x, w, b, conns[:3])
    with pytest.raises(ValueError):
        K.conv2d_table(x, w, b, [[0, 9]] * 5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_subsample2d(dtype):
    x = rnd((2, 3, 9, 10), dtype, 1)
    w, b = rnd((3,), dtype, 2), rnd((3,), dtype, 3)
    check(K.subsample2d(x, w, b, 2), naive.subsample2d(x, w, b, 2), dtype)
    check(K.subsample2d(x, w, b, (3, 2), (2, 3)), naive.subsample2d(x, w, b, (3, 2), (2, 3)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rbf(dtype):
    x, w = rnd((4, 7), dtype, 1), rnd((10, 7), dtype, 2)
    check(K.rbf(x, w), naive.rbf(x, w), dtype)
    check(K.rbf(x[0], w), naive.rbf(x[0], w), dtype)


# ---------------------------------------------------------------- pooling
@st.composite
def pool_cases(draw, nd, with_dilation=True):
    dtype = draw(st.sampled_from(DTYPES))
    k = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    s = None if draw(st.booleans()) else tuple(draw(st.integers(1, 3)) for _ in range(nd))
    p = tuple(draw(st.integers(0, k[i] // 2)) for i in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd)) if with_dilation else (1,) * nd
    size = tuple(draw(st.integers(1, 12)) for _ in range(nd))
    ceil = draw(st.booleans())
    for i in range(nd):
        assume(size[i] + 2 * p[i] >= d[i] * (k[i] - 1) + 1)
    x = rnd(
        (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + size, dtype, draw(st.integers(0, 9))
    )
    return x, k, s, p, d, ceil


def _as2d(x, nd):
    return x if nd == 2 else x[:, :, None, :]


def _t(v, nd, fill):
    if v is None:
        return None
    return (fill,) * (2 - nd) + tuple(v)


@pytest.mark.parametrize("nd", [1, 2])
@FAST
@given(data=st.data())
def test_max_pool(nd, data):
    x, k, s, p, d, ceil = data.draw(pool_cases(nd))
    fn = K.max_pool2d if nd == 2 else K.max_pool1d
    rv, ri = naive.max_pool2d(
        _as2d(x, nd), _t(k, nd, 1), _t(s, nd, 1), _t(p, nd, 0), _t(d, nd, 1), ceil
    )
    if nd == 1:
        rv, ri = rv[:, :, 0], ri[:, :, 0]
    check(fn(x, k, s, p, d, ceil), rv, x.dtype)
    v, i = fn(x, k, s, p, d, ceil, return_indices=True)
    check(v, rv, x.dtype)
    assert i.dtype == np.int64
    np.testing.assert_array_equal(i, ri)


@pytest.mark.parametrize("nd", [1, 2])
@FAST
@given(data=st.data())
def test_avg_pool(nd, data):
    x, k, s, p, _, ceil = data.draw(pool_cases(nd, with_dilation=False))
    cip = data.draw(st.booleans())
    div = data.draw(st.sampled_from([None, None, 3, -2]))
    fn = K.avg_pool2d if nd == 2 else K.avg_pool1d
    ref = naive.avg_pool2d(_as2d(x, nd), _t(k, nd, 1), _t(s, nd, 1), _t(p, nd, 0), ceil, cip, div)
    if nd == 1:
        ref = ref[:, :, 0]
    check(fn(x, k, s, p, ceil, cip, div), ref, x.dtype)


def test_pool_fast_configs():
    """The benchmarked configurations on odd sizes, against the oracle."""
    for dtype in DTYPES:
        x = rnd((2, 3, 13, 11), dtype, 4)
        check(K.max_pool2d(x, 3, 2, 1), naive.max_pool2d(x, 3, 2, 1)[0], dtype)
        check(K.avg_pool2d(x, 2), naive.avg_pool2d(x, 2), dtype)
        check(K.avg_pool2d(x, 2, ceil_mode=True), naive.avg_pool2d(x, 2, ceil_mode=True), dtype)


def test_pool_errors_and_nan():
    x = rnd((1, 2, 6, 6))
    with pytest.raises(ValueError, match="half"):
        K.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError):
        K.avg_pool2d(x, 3, divisor_override=0)
    with pytest.raises(ValueError):
        K.max_pool2d(x, 9)
    x[0, 0, 1, 1] = np.nan
    v, i = K.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(v[0, 0, 0, 0]) and i[0, 0, 0, 0] == 7
    assert not np.isnan(v[0, 1]).any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "size,osz",
    [((7, 9), (3, 4)), ((5, 5), (5, 5)), ((4, 6), (7, 2)), ((6, 7), (None, 3)), ((5, 8), 1)],
)
def test_adaptive_pools(size, osz, dtype):
    x = rnd((2, 3) + size, dtype, 5)
    o2 = (osz, osz) if isinstance(osz, int) else osz
    check(K.adaptive_avg_pool2d(x, osz), naive.adaptive_pool2d(x, o2, False), dtype)
    rv, ri = naive.adaptive_pool2d(x, o2, True)
    check(K.adaptive_max_pool2d(x, osz), rv, dtype)
    v, i = K.adaptive_max_pool2d(x, osz, return_indices=True)
    check(v, rv, dtype)
    np.testing.assert_array_equal(i, ri)
    # 1-D on rows
    x1 = x[:, :, 0, :]
    o1 = o2[1]
    check(
        K.adaptive_avg_pool1d(x1, o1),
        naive.adaptive_pool2d(x1[:, :, None], (1, o1), False)[:, :, 0],
        dtype,
    )
    rv1, ri1 = naive.adaptive_pool2d(x1[:, :, None], (1, o1), True)
    v1, i1 = K.adaptive_max_pool1d(x1, o1, return_indices=True)
    check(v1, rv1[:, :, 0], dtype)
    np.testing.assert_array_equal(i1, ri1[:, :, 0])


# ---------------------------------------------------------------- dense
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_features", [4, 7])
@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5), (9, 5), (17, 5), (4, 5, 5)])
def test_linear(shape, out_features, dtype):
    """Rows <= LINEAR_SMALL_ROWS use the numba kernel (4x4 blocks + remainders),
    more rows use BLAS."""
    o = out_features
    x, w, b = rnd(shape, dtype, 1), rnd((o, 5), dtype, 2), rnd((o,), dtype, 3)
    check(K.linear(x, w, b), naive.linear(x, w, b), dtype)
    check(K.linear(x, w), naive.linear(x, w), dtype)
    with pytest.raises(ValueError):
        K.linear(x, rnd((o, 6)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 7), (2, 3, 4, 5)])
def test_batch_norm(shape, dtype):
    x = rnd(shape, dtype, 1)
    C = shape[1]
    m, v = rnd((C,), dtype, 2), np.abs(rnd((C,), dtype, 3)) + 0.1
    w, b = rnd((C,), dtype, 4), rnd((C,), dtype, 5)
    check(K.batch_norm(x, m, v, w, b), naive.batch_norm(x, m, v, w, b), dtype)
    check(K.batch_norm(x, m, v, eps=1e-3), naive.batch_norm(x, m, v, eps=1e-3), dtype)
    with pytest.raises(NotImplementedError):
        K.batch_norm(x, m, v, training=True)
    with pytest.raises(ValueError):
        K.batch_norm(x, m[:1], v)


# ------------------------------------------------------------ activations
ACTS = [
    ("relu", {}, "relu"),
    ("relu6", {}, "relu6"),
    ("leaky_relu", {"negative_slope": 0.2}, "leaky_relu"),
    ("elu", {"alpha": 1.5}, "elu"),
    ("selu", {}, "selu"),
    ("celu", {"alpha": 0.7}, "celu"),
    ("gelu", {}, "gelu"),
    ("gelu", {"approximate": "tanh"}, "gelu_tanh"),
    ("silu", {}, "silu"),
    ("mish", {}, "mish"),
    ("sigmoid", {}, "sigmoid"),
    ("tanh", {}, "tanh"),
    ("hardtanh", {"min_val": -0.5, "max_val": 2.0}, "hardtanh"),
    ("hardswish", {}, "hardswish"),
    ("hardsigmoid", {}, "hardsigmoid"),
    ("softplus", {"beta": 2.0, "threshold": 5.0}, "softplus"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kw,ref", ACTS, ids=[a[2] for a in ACTS])
def test_activation(name, kw, ref, dtype):
    x = (rnd((2, 3, 4, 5), dtype, 1) * 6).astype(dtype)
    x.flat[:4] = np.array([0.0, -30.0, 30.0, 25.0], dtype)
    args = list(kw.values())
    refargs = {"elu": [1.5], "celu": [0.7], "leaky_relu": [0.2], "hardtanh": [-0.5, 2.0],
               "softplus": [2.0, 5.0]}.get(ref, [])  # fmt: skip
    got = getattr(K, name)(x, **kw)
    check(got, naive.ACTIVATIONS[ref](x, *refargs), dtype)
    if args:  # positional form too
        check(getattr(K, name)(x, *args), naive.ACTIVATIONS[ref](x, *refargs), dtype)


def test_activation_nan_and_errors():
    x = np.array([np.nan, -1.0, 2.0])
    assert np.isnan(K.relu(x)[0]) and np.isnan(K.sigmoid(x)[0])
    with pytest.raises(ValueError):
        K.gelu(x, approximate="fast")
    with pytest.raises(ValueError):
        K.hardtanh(x, 1.0, -1.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_softmax(dim, dtype):
    x = (rnd((2, 3, 5), dtype, 3) * 10).astype(dtype)
    check(K.softmax(x, dim), naive.softmax(x, dim), dtype)
    check(K.log_softmax(x, dim), naive.softmax(x, dim, log=True), dtype)
    with pytest.raises(ValueError):
        K.softmax(x, 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu(dtype):
    x = rnd((2, 4, 3, 3), dtype, 1)
    for w in (np.array([0.25], dtype), rnd((4,), dtype, 2)):
        check(K.prelu(x, w), naive.prelu(x, w), dtype)
    with pytest.raises(ValueError):
        K.prelu(x, np.ones(3, dtype))


# ---------------------------------------------------------------- misc
@FAST
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    data=st.data(),
)
def test_pad_constant(shape, data):
    k = data.draw(st.integers(1, len(shape)))
    pads = []
    for i in range(k):
        n = shape[len(shape) - 1 - i]
        lo = data.draw(st.integers(-n, 3))
        hi = data.draw(st.integers(-(n + lo) if n + lo > 0 else 0, 3))
        assume(n + lo + hi >= 0)
        pads += [lo, hi]
    x = rnd(tuple(shape), seed=3)
    check(K.pad(x, pads, value=1.5), naive.pad_constant(x, pads, 1.5))


def test_pad_modes():
    x = rnd((2, 3, 4, 5))
    pads = (1, 2, 3, 0)
    width = [(0, 0), (0, 0), (3, 0), (1, 2)]
    for mode, npmode in [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")]:
        check(K.pad(x, pads, mode=mode), np.pad(x, width, mode=npmode))
    with pytest.raises(ValueError):
        K.pad(x, (5, 0), mode="reflect")
    with pytest.raises(ValueError):
        K.pad(x, (1,))
    with pytest.raises(ValueError):
        K.pad(x, (1, 1), mode="wrap")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,size,sf",
    [
        ((2, 3, 5), (11,), None),
        ((1, 2, 4, 6), (7, 3), None),
        ((1, 2, 4, 6), None, (2.0, 2.0)),
        ((1, 2, 5, 7), None, (1.7, 0.5)),
        ((1, 2, 3, 3), (3, 3), None),
        ((1, 1, 2, 3, 4), (3, 5, 2), None),
    ],
)
def test_interpolate(shape, size, sf, dtype):
    x = rnd(shape, dtype, 2)
    if size is not None:
        got = K.interpolate(x, size=size if len(size) > 1 else size[0])
        ref = naive.interpolate_nearest(x, size)
    else:
        got = K.interpolate(x, scale_factor=sf)
        osz = tuple(int(np.floor(n * f)) for n, f in zip(shape[2:], sf))
        ref = naive.interpolate_nearest(x, osz, sf)
    check(got, ref, dtype)
    with pytest.raises(ValueError):
        K.interpolate(x, size=4, scale_factor=2.0)
    with pytest.raises(ValueError):
        K.interpolate(x, size=4, mode="area")  # not implemented


def test_add_cat():
    a, b, c = rnd((2, 3, 4), seed=1), rnd((2, 3, 4), seed=2), rnd((2, 1, 4), seed=3)
    check(K.add(a, b, a), a + b + a)
    check(K.cat([a, c]), np.concatenate([a, c], axis=1))
    check(K.cat([a, b], dim=0), np.concatenate([a, b], axis=0))
    with pytest.raises(ValueError):
        K.add(a, c)
    with pytest.raises(ValueError):
        K.cat([a, c], dim=2)


def test_threads():
    n = K.get_num_threads()
    K.set_num_threads(1)
    assert K.get_num_threads() == 1
    K.set_num_threads(n)
    with pytest.raises(ValueError):
        K.set_num_threads(0)


def test_import_compiles_nothing():
    code = (
        "import cnncalc.kernels as K, numba\n"
        "from cnncalc.kernels import _conv, _pool, _dense, _elementwise, _conv_tile\n"
        "mods = [_conv, _pool, _dense, _elementwise, _conv_tile]\n"
        "ds = [v for m in mods for v in vars(m).values()\n"
        "      if isinstance(v, numba.core.registry.CPUDispatcher)]\n"
        "assert len(ds) > 20, len(ds)\n"
        "assert all(not d.signatures for d in ds), [d for d in ds if d.signatures]\n"
        "print('ok')\n"
    )
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
