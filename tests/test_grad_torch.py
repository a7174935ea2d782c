"""Optional cross-check of the backward kernels against torch.autograd (skipped without torch)."""

import numpy as np
import pytest

import cnncalc.kernels as K

torch = pytest.importorskip("torch")
F = torch.nn.functional


def rnd(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def autograd(f, *arrays):
    """(output, gradients of Σ r·f w.r.t. each array) with a fixed random r."""
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = f(*ts)
    r = torch.tensor(rnd(tuple(y.shape), 99))
    (y * r).sum().backward()
    return r.numpy(), [t.grad.numpy() for t in ts]


@pytest.mark.parametrize(
    ("s", "p", "d", "g"),
    [
        (1, 1, 1, 1),
        (2, 0, 1, 2),
        ((2, 1), (1, 0), (1, 2), 1),
        (1, "same", 2, 3),
        (3, 2, 1, 1),
    ],
)
def test_conv2d(s, p, d, g):
    x, w, b = rnd((2, 6, 9, 8), 1), rnd((6, 6 // g, 3, 2), 2), rnd(6, 3)
    r, (gx, gw, gb) = autograd(lambda x, w, b: F.conv2d(x, w, b, s, p, d, g), x, w, b)
    ours = K.conv2d_backward(r, x, w, s, p, d, g)
    for a, ref in zip(ours, (gx, gw, gb)):
        np.testing.assert_allclose(a, ref, atol=1e-10)


def test_conv_transpose2d():
    x, w = rnd((2, 4, 5, 6), 1), rnd((4, 3, 3, 2), 2)
    args = ((2, 3), (1, 0), (1, 2), 2, (1, 2))
    r, (gx, gw) = autograd(lambda x, w: F.conv_transpose2d(x, w, None, *args), x, w)
    ours = K.conv_transpose2d_backward(r, x, w, *args)
    np.testing.assert_allclose(ours[0], gx, atol=1e-10)
    np.testing.assert_allclose(ours[1], gw, atol=1e-10)


@pytest.mark.parametrize(
    ("cip", "div", "ceil"), [(True, None, False), (False, None, True), (True, 3, True)]
)
def test_pools(cip, div, ceil):
    x = rnd((2, 3, 9, 10), 4)
    r, (gx,) = autograd(lambda x: F.avg_pool2d(x, 3, 2, 1, ceil, cip, div), x)
    np.testing.assert_allclose(
        K.avg_pool2d_backward(r, x.shape, 3, 2, 1, ceil, cip, div), gx, atol=1e-12
    )
    r, (gx,) = autograd(lambda x: F.max_pool2d(x, 3, 2, 1, 2, ceil), x)
    _, idx = K.max_pool2d(x, 3, 2, 1, 2, ceil, return_indices=True)
    np.testing.assert_allclose(K.max_pool2d_backward(r, idx, x.shape), gx, atol=1e-12)
    _, tidx = F.max_pool2d(torch.tensor(x), 3, 2, 1, 2, ceil, return_indices=True)
    np.testing.assert_array_equal(idx, tidx.numpy())  # PyTorch's flat index convention


@pytest.mark.parametrize(
    "name",
    [
        "relu",
        "gelu",
        "silu",
        "mish",
        "hardswish",
        "hardsigmoid",
        "tanh",
        "sigmoid",
        "selu",
        "softplus",
        "elu",
        "relu6",
    ],
)
def test_activations(name):
    x = rnd((2, 3, 7), 5) * 3
    r, (gx,) = autograd(getattr(F, name), x)
    np.testing.assert_allclose(getattr(K, f"{name}_backward")(r, x), gx, atol=1e-7)


def test_interpolate_and_batch_norm():
    x = rnd((1, 2, 5, 7), 6)
    r, (gx,) = autograd(lambda x: F.interpolate(x, scale_factor=2.3), x)
    np.testing.assert_allclose(K.interpolate_backward(r, x.shape, scale_factor=2.3), gx, atol=1e-12)
    mean, var, w, b = rnd(2, 7), np.abs(rnd(2, 8)) + 0.5, rnd(2, 9), rnd(2, 10)
    r, (gx, gw, gb) = autograd(
        lambda x, w, b: F.batch_norm(x, torch.tensor(mean), torch.tensor(var), w, b), x, w, b
    )
    for a, ref in zip(K.batch_norm_backward(r, x, mean, var, w), (gx, gw, gb)):
        np.testing.assert_allclose(a, ref, atol=1e-10)
