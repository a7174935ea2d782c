"""Backward kernels (cnncalc/kernels/_grad.py) against central finite differences in float64,
and the article's pooling invariants."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cnncalc.kernels as K

FEW = settings(max_examples=25, deadline=None, database=None)
EPS = 1e-6


def rnd(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def directional(f, x, v):
    """(f(x + εv) − f(x − εv)) / 2ε: the derivative of the scalar f along v."""
    return (f(x + EPS * v) - f(x - EPS * v)) / (2 * EPS)


def check_fd(forward, x, grad_of, seed=1, tol=1e-6):
    """<grad, v> equals the finite-difference derivative of Σ r·forward along v."""
    y = forward(x)
    r = rnd(y.shape, seed)
    v = rnd(x.shape, seed + 1)
    grad = grad_of(r)
    assert grad.shape == x.shape and grad.dtype == np.float64
    fd = directional(lambda z: float((forward(z) * r).sum()), x, v)
    assert abs(float((grad * v).sum()) - fd) <= tol * max(1.0, abs(fd)), (grad, fd)


# ------------------------------------------------------------ convolutions
@st.composite
def conv_cfg(draw, nd=2):
    g = draw(st.integers(1, 3))
    cin, cout = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    mode = draw(st.sampled_from(["int", "same", "valid"]))
    if mode == "same":
        s, pad = (1,) * nd, "same"
    elif mode == "valid":
        pad = "valid"
    else:
        pad = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    size = tuple(draw(st.integers(di * (ki - 1) + 1, 8)) for ki, di in zip(k, d))
    return cin, cout, g, k, s, pad, d, size, draw(st.integers(0, 10**6))


@FEW
@given(conv_cfg(2), st.sampled_from([None, "direct"]))
def test_conv2d_backward_matches_finite_differences(cfg, path):
    cin, cout, g, k, s, pad, d, size, seed = cfg
    x, w, b = rnd((2, cin, *size), seed), rnd((cout, cin // g, *k), seed + 1), rnd(cout, seed)
    fwd = lambda z: K.conv2d(z, w, b, s, pad, d, g)  # noqa: E731
    gx, gw, gb = K.conv2d_backward(np.ones_like(fwd(x)), x, w, s, pad, d, g, path=path)
    check_fd(fwd, x, lambda r: K.conv2d_backward(r, x, w, s, pad, d, g, path=path)[0])
    check_fd(
        lambda ww: K.conv2d(x, ww, b, s, pad, d, g),
        w,
        lambda r: K.conv2d_backward(r, x, w, s, pad, d, g)[1],
    )
    check_fd(
        lambda bb: K.conv2d(x, w, bb, s, pad, d, g),
        b,
        lambda r: K.conv2d_backward(r, x, w, s, pad, d, g)[2],
    )


@FEW
@given(conv_cfg(1))
def test_conv1d_backward_matches_finite_differences(cfg):
    cin, cout, g, k, s, pad, d, size, seed = cfg
    x, w = rnd((2, cin, *size), seed), rnd((cout, cin // g, *k), seed + 1)
    check_fd(
        lambda z: K.conv1d(z, w, None, s, pad, d, g),
        x,
        lambda r: K.conv1d_backward(r, x, w, s, pad, d, g)[0],
    )
    check_fd(
        lambda ww: K.conv1d(x, ww, None, s, pad, d, g),
        w,
        lambda r: K.conv1d_backward(r, x, w, s, pad, d, g)[1],
    )


@FEW
@given(conv_cfg(2))
def test_fast_and_direct_input_gradients_agree(cfg):
    cin, cout, g, k, s, pad, d, size, seed = cfg
    x, w = rnd((1, cin, *size), seed), rnd((cout, cin // g, *k), seed + 1)
    gy = rnd(K.conv2d(x, w, None, s, pad, d, g).shape, seed + 2)
    fast = K.conv2d_backward(gy, x, w, s, pad, d, g, output_mask=(True, False, False))[0]
    direct = K.conv2d_backward(
        gy, x, w, s, pad, d, g, output_mask=(True, False, False), path="direct"
    )[0]
    np.testing.assert_allclose(fast, direct, atol=1e-12)


@FEW
@given(
    st.integers(1, 2),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(0, 1),
    st.integers(1, 2),
    st.integers(0, 10**6),
    st.sampled_from([1, 2]),
)
def test_conv_transpose_backward_matches_finite_differences(g, k, s, p, d, seed, nd):
    cin, cout = 2 * g, g
    op = (s - 1) if s > 1 else 0
    x = rnd((1, cin, *(4,) * nd), seed)
    w = rnd((cin, cout // g, *(k,) * nd), seed + 1)
    fwd_f = K.conv_transpose2d if nd == 2 else K.conv_transpose1d
    bwd_f = K.conv_transpose2d_backward if nd == 2 else K.conv_transpose1d_backward
    args = (s, p, op, g, d)
    try:
        fwd_f(x, w, None, *args)
    except ValueError:
        return  # padding too large for this kernel: no output
    check_fd(lambda z: fwd_f(z, w, None, *args), x, lambda r: bwd_f(r, x, w, *args)[0])
    check_fd(lambda ww: fwd_f(x, ww, None, *args), w, lambda r: bwd_f(r, x, w, *args)[1])


def test_conv2d_table_backward():
    x, w = rnd((1, 3, 6, 6), 0), rnd((2, 2, 3, 3), 1)
    table = [[0, 2], [1]]
    check_fd(
        lambda z: K.conv2d_table(z, w, None, table),
        x,
        lambda r: K.conv2d_table_backward(r, x, w, table)[0],
    )
    gw = K.conv2d_table_backward(np.ones((1, 2, 4, 4)), x, w, table)[1]
    assert not gw[1, 1].any()  # the unused slot of map 1 gets no gradient


# ------------------------------------------------------------ pooling
@st.composite
def pool_cfg(draw):
    k = tuple(draw(st.integers(1, 3)) for _ in range(2))
    s = tuple(draw(st.integers(1, 3)) for _ in range(2))
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    size = tuple(draw(st.integers(ki, 8)) for ki in k)
    return k, s, p, size, draw(st.booleans()), draw(st.integers(0, 10**6))


@FEW
@given(pool_cfg(), st.booleans(), st.sampled_from([None, 3]))
def test_avg_pool2d_backward_matches_finite_differences(cfg, cip, div):
    k, s, p, size, ceil, seed = cfg
    x = rnd((2, 2, *size), seed)
    args = (k, s, p, ceil, cip, div)
    check_fd(
        lambda z: K.avg_pool2d(z, *args), x, lambda r: K.avg_pool2d_backward(r, x.shape, *args)
    )


@FEW
@given(pool_cfg(), st.integers(1, 2))
def test_max_pool2d_backward_matches_finite_differences(cfg, d):
    k, s, p, size, ceil, seed = cfg
    size = tuple(max(n, d * (ki - 1) + 1) for n, ki in zip(size, k))
    x = rnd((2, 2, *size), seed)  # continuous values: no ties
    args = (k, s, p, d, ceil)
    _, idx = K.max_pool2d(x, *args, return_indices=True)
    check_fd(lambda z: K.max_pool2d(z, *args), x, lambda r: K.max_pool2d_backward(r, idx, x.shape))


@FEW
@given(
    st.integers(1, 3), st.integers(1, 2), st.integers(3, 9), st.booleans(), st.integers(0, 10**6)
)
def test_pool1d_backward(k, s, n, ceil, seed):
    x = rnd((2, 3, n), seed)
    check_fd(
        lambda z: K.avg_pool1d(z, k, s, 0, ceil),
        x,
        lambda r: K.avg_pool1d_backward(r, x.shape, k, s, 0, ceil),
    )
    _, idx = K.max_pool1d(x, k, s, 0, 1, ceil, return_indices=True)
    check_fd(
        lambda z: K.max_pool1d(z, k, s, 0, 1, ceil),
        x,
        lambda r: K.max_pool1d_backward(r, idx, x.shape),
    )


@FEW
@given(
    st.integers(1, 9),
    st.integers(1, 9),
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(0, 10**6),
)
def test_adaptive_pools_backward(h, w, oh, ow, seed):
    x = rnd((1, 2, h, w), seed)
    check_fd(
        lambda z: K.adaptive_avg_pool2d(z, (oh, ow)),
        x,
        lambda r: K.adaptive_avg_pool2d_backward(r, x.shape),
    )
    _, idx = K.adaptive_max_pool2d(x, (oh, ow), return_indices=True)
    check_fd(
        lambda z: K.adaptive_max_pool2d(z, (oh, ow)),
        x,
        lambda r: K.adaptive_max_pool2d_backward(r, idx, x.shape),
    )
    x1 = x[:, :, 0]
    check_fd(
        lambda z: K.adaptive_avg_pool1d(z, ow),
        x1,
        lambda r: K.adaptive_avg_pool1d_backward(r, x1.shape),
    )


def test_sum_pool_backward_is_avg_pool_without_division():
    x = rnd((1, 1, 6, 6), 0)
    check_fd(
        lambda z: K.avg_pool2d(z, 3, 1, 1, divisor_override=1),
        x,
        lambda r: K.sum_pool2d_backward(r, x.shape, 3, 1, 1),
    )


def test_subsample2d_backward():
    x, w, b = rnd((1, 2, 6, 6), 0), rnd(2, 1), rnd(2, 2)
    for i, arg in enumerate((x, w, b)):

        def fwd(z, i=i):
            a = [x, w, b]
            a[i] = z
            return K.subsample2d(a[0], a[1], a[2], 2)

        check_fd(fwd, arg, lambda r, i=i: K.subsample2d_backward(r, x, w, 2)[i])


# the article: mean pooling splits a gradient evenly (the sum is preserved); max pooling sends
# it to the recorded argmax, one element per window
@FEW
@given(
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(0, 10**6),
)
def test_mean_pooling_preserves_the_gradient_sum(kh, kw, oh, ow, seed):
    x = rnd((2, 3, kh * oh, kw * ow), seed)
    gy = rnd((2, 3, oh, ow), seed + 1)
    gx = K.avg_pool2d_backward(gy, x.shape, (kh, kw))
    np.testing.assert_allclose(gx.sum(), gy.sum(), atol=1e-12)
    window = gx.reshape(2, 3, oh, kh, ow, kw).transpose(0, 1, 2, 4, 3, 5)
    np.testing.assert_allclose(
        window, np.broadcast_to((gy / (kh * kw))[..., None, None], window.shape), atol=1e-15
    )


@FEW
@given(
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(0, 10**6),
)
def test_max_pooling_routes_to_the_argmax_only(kh, kw, oh, ow, seed):
    x = rnd((1, 2, kh * oh, kw * ow), seed)
    _, idx = K.max_pool2d(x, (kh, kw), return_indices=True)
    gy = rnd(idx.shape, seed + 1)
    gx = K.max_pool2d_backward(gy, idx, x.shape)
    np.testing.assert_allclose(gx.sum(), gy.sum(), atol=1e-12)
    window = gx.reshape(1, 2, oh, kh, ow, kw).transpose(0, 1, 2, 4, 3, 5)
    assert ((window != 0).sum(axis=(-1, -2)) == 1).all()  # one element per window
    xw = x.reshape(1, 2, oh, kh, ow, kw).transpose(0, 1, 2, 4, 3, 5)
    hot = window != 0
    np.testing.assert_array_equal(xw[hot], xw.max(axis=(-1, -2)).ravel())  # the maxima
    np.testing.assert_array_equal(window[hot], gy.ravel())


def test_max_pool_indices_follow_pytorch_flat_index():
    x = np.arange(32.0).reshape(1, 2, 4, 4)  # the article's example 2
    y, idx = K.max_pool2d(x, 3, (2, 1), 1, return_indices=True)
    assert y.shape == (1, 2, 2, 4)
    np.testing.assert_array_equal(x.reshape(1, 2, 16)[0, 0][idx[0, 0].ravel()], y[0, 0].ravel())
    with pytest.raises(ValueError, match="indices"):
        K.max_pool2d_backward(np.ones((1, 2, 2, 4)), idx + 16, x.shape)


# ------------------------------------------------------------ dense and element-wise
def test_linear_and_batch_norm_backward():
    x, w, b = rnd((3, 5), 0), rnd((4, 5), 1), rnd(4, 2)
    for i, arg in enumerate((x, w, b)):

        def fwd(z, i=i):
            a = [x, w, b]
            a[i] = z
            return K.linear(*a)

        check_fd(fwd, arg, lambda r, i=i: K.linear_backward(r, x, w)[i])
    x4 = rnd((2, 3, 4, 4), 3)
    mean, var, gam, bet = rnd(3, 4), np.abs(rnd(3, 5)) + 0.5, rnd(3, 6), rnd(3, 7)
    for i, arg in enumerate((x4, gam, bet)):

        def bn(z, i=i):
            a = [x4, gam, bet]
            a[i] = z
            return K.batch_norm(a[0], mean, var, a[1], a[2])

        check_fd(bn, arg, lambda r, i=i: K.batch_norm_backward(r, x4, mean, var, gam)[i])


ACTIVATIONS = [
    ("relu", ()),
    ("relu6", ()),
    ("selu", ()),
    ("silu", ()),
    ("mish", ()),
    ("hardswish", ()),
    ("hardsigmoid", ()),
    ("sigmoid", ()),
    ("tanh", ()),
    ("leaky_relu", (0.2,)),
    ("elu", (0.7,)),
    ("celu", (1.3,)),
    ("gelu", ("none",)),
    ("gelu", ("tanh",)),
    ("hardtanh", (-0.5, 0.8)),
    ("softplus", (2.0, 3.0)),
]


@pytest.mark.parametrize(("name", "args"), ACTIVATIONS)
def test_activation_backward(name, args):
    x = rnd((2, 3, 5), 0) * 3
    x[np.abs(x) < 1e-3] = 0.5  # keep away from kinks at 0
    for kink in (-3, 3, 6, -0.5, 0.8, 1.5):
        x[np.abs(x - kink) < 1e-3] += 0.01
    fwd, bwd = getattr(K, name), getattr(K, f"{name}_backward")
    check_fd(lambda z: fwd(z, *args), x, lambda r: bwd(r, x, *args))


def test_prelu_softmax_backward():
    x, w = rnd((2, 3, 4), 0), np.array([0.1, 0.2, 0.3])
    check_fd(lambda z: K.prelu(z, w), x, lambda r: K.prelu_backward(r, x, w)[0])
    check_fd(lambda ww: K.prelu(x, ww), w, lambda r: K.prelu_backward(r, x, w)[1])
    for f, b in ((K.softmax, K.softmax_backward), (K.log_softmax, K.log_softmax_backward)):
        check_fd(lambda z, f=f: f(z, 1), x, lambda r, f=f, b=b: b(r, f(x, 1), 1))


# ------------------------------------------------------------ shape and merges
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_backward(mode):
    x = rnd((1, 2, 5, 6), 0)
    pad = (2, -1, -2, 3) if mode == "constant" else (2, 1, 1, 3)
    check_fd(lambda z: K.pad(z, pad, mode=mode), x, lambda r: K.pad_backward(r, pad, mode, x.shape))


@pytest.mark.parametrize(("size", "scale"), [(None, 2), (None, 1.7), ((7, 3), None)])
def test_interpolate_backward(size, scale):
    x = rnd((1, 2, 4, 5), 0)
    check_fd(
        lambda z: K.interpolate(z, size=size, scale_factor=scale),
        x,
        lambda r: K.interpolate_backward(r, x.shape, size=size, scale_factor=scale),
    )


def test_add_cat_flatten_backward():
    gy = rnd((1, 6, 3, 3), 2)
    ga, gb = K.cat_backward(gy, [2, 4])
    np.testing.assert_array_equal(np.concatenate([ga, gb], axis=1), gy)
    assert all(g is gy for g in K.add_backward(gy, 2))
    assert K.flatten_backward(gy.reshape(1, -1), gy.shape).shape == gy.shape
    with pytest.raises(ValueError):
        K.cat_backward(gy, [2, 3])


def test_float32_stays_float32():
    x, w = rnd((1, 2, 6, 6), 0).astype(np.float32), rnd((3, 2, 3, 3), 1).astype(np.float32)
    gx, gw, gb = K.conv2d_backward(np.ones((1, 3, 4, 4), np.float32), x, w)
    assert gx.dtype == gw.dtype == gb.dtype == np.float32


def test_shape_mismatch_is_a_value_error():
    x, w = rnd((1, 2, 6, 6), 0), rnd((3, 2, 3, 3), 1)
    with pytest.raises(ValueError, match="grad_output"):
        K.conv2d_backward(np.ones((1, 3, 5, 5)), x, w)
