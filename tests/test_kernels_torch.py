# ruff: noqa: E741  (O = number of output channels, as in the formulas)
"""Optional cross-check of cnncalc.kernels against torch.nn.functional.

Skipped when torch is not installed.  Uses the benchmark-like configurations
(fast paths) at small batch, and hypothesis-generated small configurations.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import cnncalc.kernels as K  # noqa: E402
from cnncalc.kernels import _conv  # noqa: E402

SET = settings(max_examples=40, deadline=None, database=None)


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def rnd(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def same(got, ref, dtype=np.float32):
    ref = ref.numpy() if isinstance(ref, torch.Tensor) else ref
    assert got.shape == ref.shape and got.dtype == np.dtype(dtype)
    tol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-10
    scale = max(1.0, float(np.abs(ref).max()) if ref.size else 1.0)
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize(
    "N,C,O,H,k,s,p,g",
    [
        (2, 64, 64, 20, 3, 1, 1, 1),  # ResNet 3x3 (tile 16x8)
        (1, 32, 24, 33, 3, 1, 1, 1),  # tile 8x16, channel padding
        (2, 256, 64, 14, 1, 1, 0, 1),  # 1x1 -> BLAS
        (1, 3, 64, 64, 7, 2, 3, 1),  # stem, stride-2 phase split
        (2, 144, 144, 20, 3, 1, 1, 144),  # depthwise
        (1, 32, 32, 21, 3, 2, 1, 32),  # depthwise strided
        (1, 16, 32, 15, 3, 1, 1, 4),  # grouped
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_configs(N, C, O, H, k, s, p, g, dtype):
    x = rnd((N, C, H, H + 3), dtype, 1)
    w = rnd((O, C // g, k, k), dtype, 2) * 0.1
    b = rnd((O,), dtype, 3)
    ref = F.conv2d(T(x), T(w), T(b), s, p, 1, g)
    same(K.conv2d(x, w, b, s, p, 1, g), ref, dtype)
    same(_conv._conv_nd(x, w, b, s, p, 1, g, 2, path="tile"), ref, dtype)


@SET
@given(data=st.data())
def test_conv_random(data):
    nd = data.draw(st.integers(1, 3))
    g = data.draw(st.integers(1, 3))
    dw = data.draw(st.booleans())
    cin_g = 1 if dw else data.draw(st.integers(1, 4))
    cout_g = data.draw(st.integers(1, 10))
    k = [data.draw(st.integers(1, 4)) for _ in range(nd)]
    s = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    d = [data.draw(st.integers(1, 2)) for _ in range(nd)]
    p = [data.draw(st.integers(0, 2)) for _ in range(nd)]
    size = [data.draw(st.integers(1, 12 if nd < 3 else 6)) for _ in range(nd)]
    for i in range(nd):
        assume(size[i] + 2 * p[i] >= d[i] * (k[i] - 1) + 1)
    x = rnd((2, g * cin_g, *size), np.float32, data.draw(st.integers(0, 9)))
    w = rnd((g * cout_g, cin_g, *k), np.float32, 5)
    fn = {1: (K.conv1d, F.conv1d), 2: (K.conv2d, F.conv2d), 3: (K.conv3d, F.conv3d)}[nd]
    same(fn[0](x, w, None, s, p, d, g), fn[1](T(x), T(w), None, s, p, d, g))


@SET
@given(data=st.data())
def test_conv_transpose_random(data):
    nd = data.draw(st.integers(1, 2))
    g = data.draw(st.integers(1, 3))
    cin_g, cout_g = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    k = [data.draw(st.integers(1, 4)) for _ in range(nd)]
    s = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    d = [data.draw(st.integers(1, 2)) for _ in range(nd)]
    p = [data.draw(st.integers(0, 2)) for _ in range(nd)]
    op = [data.draw(st.integers(0, max(s[i], d[i]) - 1)) for i in range(nd)]
    size = [data.draw(st.integers(1, 7)) for _ in range(nd)]
    for i in range(nd):
        assume((size[i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 >= 1)
    x = rnd((2, g * cin_g, *size), np.float32, 1)
    w = rnd((g * cin_g, cout_g, *k), np.float32, 2)
    b = rnd((g * cout_g,), np.float32, 3)
    fk, ft = (K.conv_transpose1d, F.conv_transpose1d) if nd == 1 else (
        K.conv_transpose2d, F.conv_transpose2d)  # fmt: skip
    same(fk(x, w, b, s, p, op, g, d), ft(T(x), T(w), T(b), s, p, op, g, d))


@SET
@given(data=st.data())
def test_pools_random(data):
    nd = data.draw(st.integers(1, 2))
    k = [data.draw(st.integers(1, 4)) for _ in range(nd)]
    s = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    p = [data.draw(st.integers(0, k[i] // 2)) for i in range(nd)]
    d = [data.draw(st.integers(1, 2)) for _ in range(nd)]
    size = [data.draw(st.integers(1, 14)) for _ in range(nd)]
    ceil = data.draw(st.booleans())
    for i in range(nd):
        assume(size[i] + 2 * p[i] >= d[i] * (k[i] - 1) + 1)
    x = rnd((2, 3, *size), np.float32, data.draw(st.integers(0, 9)))
    mk, mt = (K.max_pool1d, F.max_pool1d) if nd == 1 else (K.max_pool2d, F.max_pool2d)
    v, i = mk(x, k, s, p, d, ceil, True)
    tv, ti = mt(T(x), k, s, p, d, ceil, True)
    same(v, tv)
    np.testing.assert_array_equal(i, ti.numpy())
    cip = data.draw(st.booleans())
    for i in range(nd):
        assume(size[i] + 2 * p[i] >= k[i])
    if nd == 2:
        div = data.draw(st.sampled_from([None, 2, 5]))
        same(K.avg_pool2d(x, k, s, p, ceil, cip, div), F.avg_pool2d(T(x), k, s, p, ceil, cip, div))
    else:
        same(K.avg_pool1d(x, k, s, p, ceil, cip), F.avg_pool1d(T(x), k, s, p, ceil, cip))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bench_pools(dtype):
    x = rnd((2, 8, 112, 112), dtype, 4)
    same(K.max_pool2d(x, 3, 2, 1), F.max_pool2d(T(x), 3, 2, 1), dtype)
    same(K.avg_pool2d(x, 2), F.avg_pool2d(T(x), 2), dtype)
    v, i = K.max_pool2d(x, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(i, F.max_pool2d(T(x), 3, 2, 1, return_indices=True)[1].numpy())


@pytest.mark.parametrize("osz", [(3, 4), (None, 2), 1, (7, 9)])
def test_adaptive(osz):
    x = rnd((2, 3, 7, 9), np.float32, 5)
    same(K.adaptive_avg_pool2d(x, osz), F.adaptive_avg_pool2d(T(x), osz))
    v, i = K.adaptive_max_pool2d(x, osz, True)
    tv, ti = F.adaptive_max_pool2d(T(x), osz, True)
    same(v, tv)
    np.testing.assert_array_equal(i, ti.numpy())
    o1 = osz if isinstance(osz, int) else (osz[1] or 9)
    same(K.adaptive_avg_pool1d(x[:, :, 0], o1), F.adaptive_avg_pool1d(T(x[:, :, 0]), o1))
    same(K.adaptive_max_pool1d(x[:, :, 0], o1), F.adaptive_max_pool1d(T(x[:, :, 0]), o1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations(dtype):
    x = (rnd((3, 4, 5, 6), dtype, 6) * 8).astype(dtype)
    cases = [
        ("relu", {}), ("relu6", {}), ("leaky_relu", {"negative_slope": 0.1}),
        ("elu", {"alpha": 0.5}), ("selu", {}), ("celu", {"alpha": 2.0}), ("gelu", {}),
        ("gelu", {"approximate": "tanh"}), ("silu", {}), ("mish", {}), ("sigmoid", {}),
        ("tanh", {}), ("hardtanh", {"min_val": -2.0, "max_val": 0.5}), ("hardswish", {}),
        ("hardsigmoid", {}), ("softplus", {"beta": 0.5, "threshold": 3.0}),
    ]  # fmt: skip
    for name, kw in cases:
        same(getattr(K, name)(x, **kw), getattr(F, name)(T(x), **kw), dtype)
    for dim in (0, 1, -1):
        same(K.softmax(x, dim), F.softmax(T(x), dim), dtype)
        same(K.log_softmax(x, dim), F.log_softmax(T(x), dim), dtype)
    w = rnd((4,), dtype, 7)
    same(K.prelu(x, w), F.prelu(T(x), T(w)), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_bn(dtype):
    x, w, b = rnd((3, 2, 50), dtype, 1), rnd((30, 50), dtype, 2), rnd((30,), dtype, 3)
    same(K.linear(x, w, b), F.linear(T(x), T(w), T(b)), dtype)
    for shape in [(4, 6), (2, 6, 9), (2, 6, 5, 4)]:
        xb = rnd(shape, dtype, 4)
        m, v = rnd((6,), dtype, 5), np.abs(rnd((6,), dtype, 6)) + 0.5
        g, bb = rnd((6,), dtype, 7), rnd((6,), dtype, 8)
        ref = F.batch_norm(T(xb), T(m), T(v), T(g), T(bb), False, 0.1, 1e-3)
        same(K.batch_norm(xb, m, v, g, bb, eps=1e-3), ref, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pad_interpolate_cat(dtype):
    x = rnd((2, 3, 6, 7), dtype, 9)
    for pads, mode in [((1, 2), "constant"), ((1, -2, 0, 3), "constant"), ((2, 1, 1, 2), "reflect"),
                       ((2, 1, 1, 2), "replicate"), ((2, 1, 1, 2), "circular")]:  # fmt: skip
        same(K.pad(x, pads, mode), F.pad(T(x), pads, mode), dtype)
    same(K.pad(x, (1, 1), value=2.5), F.pad(T(x), (1, 1), value=2.5), dtype)
    for size in [(13, 5), (6, 7), (12, 14), (1, 1), (17, 29)]:
        same(K.interpolate(x, size=size), F.interpolate(T(x), size=size), dtype)
    for sf in [2.0, 0.5, 1.7, (3.0, 1.3), 0.34]:
        same(K.interpolate(x, scale_factor=sf), F.interpolate(T(x), scale_factor=sf), dtype)
    x1 = rnd((2, 3, 10), dtype, 1)
    same(K.interpolate(x1, size=23), F.interpolate(T(x1), size=23), dtype)
    x3 = rnd((1, 2, 3, 4, 5), dtype, 1)
    same(K.interpolate(x3, scale_factor=1.5), F.interpolate(T(x3), scale_factor=1.5), dtype)
    same(K.cat([x, x[:, :1]]), torch.cat([T(x), T(x[:, :1])], 1), dtype)
    same(K.add(x, x, x), T(x) + T(x) + T(x), dtype)


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
def test_conv_same_padding():
    x = rnd((2, 4, 9, 10), np.float32, 1)
    for k, d in [((3, 4), (1, 1)), ((2, 5), (2, 1)), ((4, 4), (2, 3))]:
        w = rnd((6, 4, *k), np.float32, 2)
        same(
            K.conv2d(x, w, padding="same", dilation=d),
            F.conv2d(T(x), T(w), padding="same", dilation=d),
        )
    w1 = rnd((5, 4, 4), np.float32, 3)
    x1 = x[:, :, 0]
    same(K.conv1d(x1, w1, padding="same"), F.conv1d(T(x1), T(w1), padding="same"))
    same(K.conv1d(x1, w1, padding="valid"), F.conv1d(T(x1), T(w1), padding="valid"))
