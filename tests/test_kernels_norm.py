"""Kernels of the new layer types (cnncalc/kernels/_norm.py, _shape.py): forwards against a
direct numpy reference written here, backwards against central finite differences, and both
against torch.nn.functional / autograd when torch is installed."""

from __future__ import annotations

import numpy as np
import pytest

import cnncalc.kernels as K


def rnd(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def naive_norm(x, axes, eps):
    """(x − mean)/√(var + eps) over ``axes``, biased variance (the textbook definition)."""
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def numeric_grad(f, x, r, h=1e-6):
    """∂(Σ r·f(x))/∂x by central differences."""
    g = np.zeros_like(x)
    flat, gf = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = (r * f(x)).sum()
        flat[i] = old - h
        down = (r * f(x)).sum()
        flat[i] = old
        gf[i] = (up - down) / (2 * h)
    return g


# --------------------------------------------------------------------------- forwards


def test_group_norm_forward():
    x, w, b = rnd((2, 6, 3, 4), 1), rnd(6, 2), rnd(6, 3)
    groups = x.reshape(2, 3, 2, 3, 4)  # 3 groups of 2 channels
    ref = naive_norm(groups, (2, 3, 4), 1e-5).reshape(x.shape) * w[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(K.group_norm(x, 3, w, b), ref, atol=1e-12)


def test_layer_norm_forward_trailing_dims():
    x, w, b = rnd((2, 3, 4, 5), 1), rnd((4, 5), 2), rnd((4, 5), 3)
    ref = naive_norm(x, (2, 3), 1e-6) * w + b
    np.testing.assert_allclose(K.layer_norm(x, (4, 5), w, b, 1e-6), ref, atol=1e-12)


def test_layer_norm2d_is_layer_norm_over_channels():
    x, w, b = rnd((2, 5, 3, 4), 1), rnd(5, 2), rnd(5, 3)
    ref = naive_norm(x, (1,), 1e-6) * w[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(K.layer_norm2d(x, w, b, 1e-6), ref, atol=1e-12)


def test_instance_norm_forward_both_modes():
    x, w, b = rnd((2, 3, 4, 5), 1), rnd(3, 2), rnd(3, 3)
    ref = naive_norm(x, (2, 3), 1e-5) * w[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(K.instance_norm(x, None, None, w, b), ref, atol=1e-12)
    mean, var = rnd(3, 4), np.abs(rnd(3, 5)) + 0.5
    ref = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    np.testing.assert_allclose(
        K.instance_norm(x, mean, var, use_input_stats=False), ref, atol=1e-12
    )


def test_float32_stays_float32_and_accumulates_in_float64():
    x = (rnd((1, 4, 64, 64), 1) + 1000).astype(np.float32)  # a large offset
    y = K.group_norm(x, 2)
    assert y.dtype == np.float32
    ref = naive_norm(x.astype(np.float64).reshape(1, 2, -1), (2,), 1e-5).reshape(x.shape)
    np.testing.assert_allclose(y, ref, atol=2e-3)


def test_moves():
    x = rnd((2, 6, 2, 3), 1)
    shuffled = K.channel_shuffle(x, 2)
    np.testing.assert_array_equal(shuffled[:, [0, 1, 2, 3, 4, 5]], x[:, [0, 3, 1, 4, 2, 5]])
    y = K.pixel_shuffle(rnd((1, 8, 2, 3), 2), 2)
    assert y.shape == (1, 2, 4, 6)
    z = rnd((1, 8, 2, 3), 2)
    # out[c, y·r + i, x·r + j] = in[c·r² + i·r + j, y, x]
    assert K.pixel_shuffle(z, 2)[0, 1, 3, 4] == z[0, 1 * 4 + 1 * 2 + 0, 1, 2]
    np.testing.assert_array_equal(K.pixel_unshuffle(K.pixel_shuffle(z, 2), 2), z)
    np.testing.assert_array_equal(K.permute(x, (0, 2, 3, 1)), np.transpose(x, (0, 2, 3, 1)))
    assert K.unflatten(x, 1, (2, -1)).shape == (2, 2, 3, 2, 3)
    np.testing.assert_array_equal(K.stochastic_depth(x, 0.3, "row"), x)
    np.testing.assert_array_equal(
        K.layer_scale(x, np.arange(6.0)), x * np.arange(6.0)[:, None, None]
    )


# --------------------------------------------------------------------------- backwards


@pytest.mark.parametrize("case", ["group", "layer", "layer2d", "instance", "instance_running"])
def test_norm_backward_matches_finite_differences(case):
    x = rnd((2, 4, 3, 3), 1)
    w, b = rnd(4, 2), rnd(4, 3)
    r = rnd(x.shape, 9)
    if case == "group":
        f = lambda x, w=w, b=b: K.group_norm(x, 2, w, b)  # noqa: E731
        ours = K.group_norm_backward(r, x, 2, w)
    elif case == "layer":
        w, b = rnd((3, 3), 2), rnd((3, 3), 3)
        f = lambda x, w=w, b=b: K.layer_norm(x, (3, 3), w, b)  # noqa: E731
        ours = K.layer_norm_backward(r, x, (3, 3), w)
    elif case == "layer2d":
        f = lambda x, w=w, b=b: K.layer_norm2d(x, w, b)  # noqa: E731
        ours = K.layer_norm2d_backward(r, x, w)
    else:
        stats = case == "instance"
        mean, var = rnd(4, 4), np.abs(rnd(4, 5)) + 0.5
        f = lambda x, w=w, b=b: K.instance_norm(x, mean, var, w, b, stats)  # noqa: E731
        ours = K.instance_norm_backward(r, x, mean, var, w, stats)
    np.testing.assert_allclose(ours[0], numeric_grad(f, x.copy(), r), atol=1e-6)
    np.testing.assert_allclose(ours[1], numeric_grad(lambda w: f(x, w), w.copy(), r), atol=1e-6)
    np.testing.assert_allclose(ours[2], numeric_grad(lambda b: f(x, w, b), b.copy(), r), atol=1e-6)


def test_layer_scale_backward():
    x, w, r = rnd((2, 3, 2, 2), 1), rnd(3, 2), rnd((2, 3, 2, 2), 3)
    gx, gw = K.layer_scale_backward(r, x, w)
    np.testing.assert_allclose(
        gx, numeric_grad(lambda x: K.layer_scale(x, w), x.copy(), r), atol=1e-7
    )
    np.testing.assert_allclose(
        gw, numeric_grad(lambda w: K.layer_scale(x, w), w.copy(), r), atol=1e-7
    )


@pytest.mark.parametrize(
    ("fwd", "bwd"),
    [
        (lambda x: K.channel_shuffle(x, 2), lambda g: K.channel_shuffle_backward(g, 2)),
        (lambda x: K.pixel_shuffle(x, 2), lambda g: K.pixel_shuffle_backward(g, 2)),
        (lambda x: K.pixel_unshuffle(x, 2), lambda g: K.pixel_unshuffle_backward(g, 2)),
        (lambda x: K.permute(x, (0, 3, 1, 2)), lambda g: K.permute_backward(g, (0, 3, 1, 2))),
        (lambda x: K.unflatten(x, 1, (2, 2)), lambda g: K.unflatten_backward(g, (1, 4, 2, 4))),
        (lambda x: K.stochastic_depth(x, 0.5, "batch"), K.stochastic_depth_backward),
    ],
)
def test_moves_backward(fwd, bwd):
    x = rnd((1, 4, 2, 4), 1)
    r = rnd(fwd(x).shape, 2)
    np.testing.assert_allclose(bwd(r), numeric_grad(fwd, x.copy(), r), atol=1e-8)


# --------------------------------------------------------------------------- torch


def _autograd(torch, f, *arrays):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = f(*ts)
    r = rnd(tuple(y.shape), 99)
    (y * torch.tensor(r)).sum().backward()
    return y.detach().numpy(), r, [t.grad.numpy() for t in ts]


def test_against_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w, b = rnd((2, 6, 5, 4), 1), rnd(6, 2), rnd(6, 3)
    y, r, grads = _autograd(torch, lambda x, w, b: F.group_norm(x, 3, w, b, 1e-5), x, w, b)
    np.testing.assert_allclose(K.group_norm(x, 3, w, b), y, atol=1e-10)
    for ours, ref in zip(K.group_norm_backward(r, x, 3, w), grads):
        np.testing.assert_allclose(ours, ref, atol=1e-10)

    ns = (5, 4)
    wl, bl = rnd(ns, 4), rnd(ns, 5)
    y, r, grads = _autograd(torch, lambda x, w, b: F.layer_norm(x, ns, w, b, 1e-6), x, wl, bl)
    np.testing.assert_allclose(K.layer_norm(x, ns, wl, bl, 1e-6), y, atol=1e-10)
    for ours, ref in zip(K.layer_norm_backward(r, x, ns, wl, 1e-6), grads):
        np.testing.assert_allclose(ours, ref, atol=1e-10)

    y, r, grads = _autograd(torch, lambda x, w, b: F.instance_norm(x, weight=w, bias=b), x, w, b)
    np.testing.assert_allclose(K.instance_norm(x, None, None, w, b), y, atol=1e-10)
    for ours, ref in zip(K.instance_norm_backward(r, x, None, None, w), grads):
        np.testing.assert_allclose(ours, ref, atol=1e-10)

    def ln2d(x, w, b):  # torchvision.models.convnext.LayerNorm2d.forward
        return F.layer_norm(x.permute(0, 2, 3, 1), (6,), w, b, 1e-6).permute(0, 3, 1, 2)

    y, r, grads = _autograd(torch, ln2d, x, w, b)
    np.testing.assert_allclose(K.layer_norm2d(x, w, b, 1e-6), y, atol=1e-10)
    for ours, ref in zip(K.layer_norm2d_backward(r, x, w, 1e-6), grads):
        np.testing.assert_allclose(ours, ref, atol=1e-10)

    t = torch.tensor(x)
    np.testing.assert_array_equal(K.channel_shuffle(x, 3), F.channel_shuffle(t, 3).numpy())
    np.testing.assert_array_equal(
        K.pixel_shuffle(x[:, :4], 2), F.pixel_shuffle(t[:, :4], 2).numpy()
    )
    np.testing.assert_array_equal(
        K.pixel_unshuffle(x[:, :, :4], 2), F.pixel_unshuffle(t[:, :, :4], 2).numpy()
    )
