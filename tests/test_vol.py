"""3-D kernels (cnncalc/kernels/_vol.py): pools, adaptive pools, the transposed convolution
and the gradients of these and of conv3d — against direct loops written here from PyTorch's
definitions, finite differences in float64, and torch.autograd when torch is installed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import cnncalc.kernels as K


def rnd(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def pool_out(n, k, s, p, d, ceil):
    o = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    return o - 1 if ceil and (o - 1) * s >= n + p else o


def windows(shape, k, s, p, d, ceil):
    """Per output position, the real input positions of its window and the padded count."""
    outs = [pool_out(n, *a, ceil) for n, a in zip(shape, zip(k, s, p, d))]
    for pos in itertools.product(*map(range, outs)):
        starts = [o * si - pi for o, si, pi in zip(pos, s, p)]
        cells = [
            tuple(a + t * di for a, t, di in zip(starts, ts, d))
            for ts in itertools.product(*map(range, k))
        ]
        yield pos, [c for c in cells if all(0 <= ci < n for ci, n in zip(c, shape))], starts


def naive_max(x, k, s, p, d, ceil):
    shape = x.shape[2:]
    outs = [pool_out(n, *a, ceil) for n, a in zip(shape, zip(k, s, p, d))]
    y = np.empty(x.shape[:2] + tuple(outs))
    for pos, cells, _ in windows(shape, k, s, p, d, ceil):
        y[(..., *pos)] = np.max([x[(..., *c)] for c in cells], axis=0)
    return y


def naive_avg(x, k, s, p, ceil, cip):
    shape = x.shape[2:]
    outs = [pool_out(n, *a, ceil) for n, a in zip(shape, zip(k, s, p, (1, 1, 1)))]
    y = np.empty(x.shape[:2] + tuple(outs))
    for pos, cells, starts in windows(shape, k, s, p, (1, 1, 1), ceil):
        if cip:  # the window clipped to the padded input
            div = np.prod([min(a + ki, n + pi) - a for a, ki, n, pi in zip(starts, k, shape, p)])
        else:
            div = len(cells)
        y[(..., *pos)] = np.sum([x[(..., *c)] for c in cells], axis=0) / div
    return y


POOLS = [
    ((3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), False),
    ((2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 1, 1), True),
    ((2, 2, 2), (2, 2, 2), (0, 0, 0), (1, 1, 1), True),
]


@pytest.mark.parametrize(("k", "s", "p", "d", "ceil"), POOLS)
def test_max_pool3d_and_its_gradient(k, s, p, d, ceil):
    x = rnd((2, 3, 7, 8, 9))
    y, idx = K.max_pool3d(x, k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(y, naive_max(x, k, s, p, d, ceil))
    # indices point at the maxima (flat in each volume)
    np.testing.assert_array_equal(
        np.take_along_axis(x.reshape(2, 3, -1), idx.reshape(2, 3, -1), 2).reshape(y.shape), y
    )
    r = rnd(y.shape, 1)
    gx = K.max_pool3d_backward(r, idx, x.shape)
    assert np.isclose(gx.sum(), r.sum()) and gx.shape == x.shape
    # theoretical: every element of a window gets its gradient
    gs = K.sum_pool3d_backward(np.ones(y.shape), x.shape, k, s, p, d, ceil)
    counts = np.zeros(x.shape[2:])
    for _, cells, _ in windows(x.shape[2:], k, s, p, d, ceil):
        for c in cells:
            counts[c] += 1
    np.testing.assert_array_equal(gs[0, 0], counts)


@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize(
    ("k", "s", "p", "ceil"),
    [((3, 3, 3), (2, 2, 2), (1, 1, 1), False), ((3, 1, 2), (2, 1, 3), (1, 0, 1), True)],
)
def test_avg_pool3d_and_its_gradient(k, s, p, ceil, cip):
    x = rnd((2, 2, 5, 6, 7))
    y = K.avg_pool3d(x, k, s, p, ceil, cip)
    np.testing.assert_allclose(y, naive_avg(x, k, s, p, ceil, cip), atol=1e-12)
    check_fd(
        lambda z: K.avg_pool3d(z, k, s, p, ceil, cip),
        x,
        lambda r: K.avg_pool3d_backward(r, x.shape, k, s, p, ceil, cip),
    )


@pytest.mark.parametrize("out", [(1, 1, 1), (3, 5, 4), (None, 2, 7)])
def test_adaptive_pools(out):
    x = rnd((2, 3, 7, 8, 9))
    bins = [
        [(i * n // (o or n), -(-(i + 1) * n // (o or n))) for i in range(o or n)]
        for n, o in zip(x.shape[2:], out)
    ]
    ref_avg = np.empty(x.shape[:2] + tuple(len(b) for b in bins))
    ref_max = np.empty_like(ref_avg)
    for pos in itertools.product(*[range(len(b)) for b in bins]):
        box = x[(..., *[slice(*bins[a][i]) for a, i in enumerate(pos)])].reshape(2, 3, -1)
        ref_avg[(..., *pos)] = box.mean(axis=2)
        ref_max[(..., *pos)] = box.max(axis=2)
    np.testing.assert_allclose(K.adaptive_avg_pool3d(x, out), ref_avg, atol=1e-12)
    y, idx = K.adaptive_max_pool3d(x, out, return_indices=True)
    np.testing.assert_array_equal(y, ref_max)
    r = rnd(y.shape, 2)
    assert np.isclose(K.adaptive_max_pool3d_backward(r, idx, x.shape).sum(), r.sum())
    check_fd(
        lambda z: K.adaptive_avg_pool3d(z, out),
        x,
        lambda g: K.adaptive_avg_pool3d_backward(g, x.shape),
    )


def check_fd(forward, x, grad_of, seed=5, tol=1e-6):
    y = forward(x)
    r, v = rnd(y.shape, seed), rnd(x.shape, seed + 1)
    eps = 1e-6
    fd = ((forward(x + eps * v) * r).sum() - (forward(x - eps * v) * r).sum()) / (2 * eps)
    assert abs(float((grad_of(r) * v).sum()) - fd) <= tol * max(1.0, abs(fd))


def naive_conv_transpose3d(x, w, b, s, p, op, g, d):
    """y[c, i·s − p + t·d] += x[o, i]·w[o, c, t] (the scatter definition)."""
    N, Ci = x.shape[:2]
    Cg = w.shape[1]
    k = w.shape[2:]
    outs = [
        (n - 1) * si - 2 * pi + di * (ki - 1) + oi + 1
        for n, si, pi, di, ki, oi in zip(x.shape[2:], s, p, d, k, op)
    ]
    y = np.zeros((N, Cg * g, *outs))
    for o in range(Ci):
        grp = o // (Ci // g)
        for i in itertools.product(*map(range, x.shape[2:])):
            for t in itertools.product(*map(range, k)):
                q = [ii * si - pi + ti * di for ii, si, pi, ti, di in zip(i, s, p, t, d)]
                if all(0 <= qi < n for qi, n in zip(q, outs)):
                    y[(slice(None), slice(grp * Cg, (grp + 1) * Cg), *q)] += (
                        x[(slice(None), o, *i)][:, None] * w[(o, slice(None), *t)][None]
                    )
    return y + (0 if b is None else b.reshape(1, -1, 1, 1, 1))


TRANSPOSED = [
    ((1, 1, 1), (0, 0, 0), (0, 0, 0), 1, (1, 1, 1)),
    ((2, 2, 2), (1, 1, 1), (1, 1, 1), 2, (1, 1, 1)),
    ((2, 1, 3), (1, 0, 2), (1, 0, 1), 1, (1, 2, 1)),
]


@pytest.mark.parametrize(("s", "p", "op", "g", "d"), TRANSPOSED)
def test_conv_transpose3d(s, p, op, g, d):
    x, w, b = rnd((2, 4, 3, 4, 3), 1), rnd((4, 3, 3, 2, 3), 2), rnd(3 * g, 3)
    y = K.conv_transpose3d(x, w, b, s, p, op, g, d)
    np.testing.assert_allclose(y, naive_conv_transpose3d(x, w, b, s, p, op, g, d), atol=1e-10)
    check_fd(
        lambda z: K.conv_transpose3d(z, w, b, s, p, op, g, d),
        x,
        lambda r: K.conv_transpose3d_backward(r, x, w, s, p, op, g, d)[0],
    )
    check_fd(
        lambda ww: K.conv_transpose3d(x, ww, b, s, p, op, g, d),
        w,
        lambda r: K.conv_transpose3d_backward(r, x, w, s, p, op, g, d)[1],
    )


@pytest.mark.parametrize(
    ("s", "p", "d", "g"),
    [(1, 1, 1, 1), (2, 0, 1, 3), ((2, 1, 3), (1, 0, 2), (1, 2, 1), 1), (1, "same", 2, 3)],
)
def test_conv3d_backward_matches_finite_differences(s, p, d, g):
    x, w, b = rnd((2, 6, 5, 6, 7), 4), rnd((9, 6 // g, 3, 2, 3), 5), rnd(9, 6)
    check_fd(
        lambda z: K.conv3d(z, w, b, s, p, d, g),
        x,
        lambda r: K.conv3d_backward(r, x, w, s, p, d, g)[0],
    )
    check_fd(
        lambda ww: K.conv3d(x, ww, b, s, p, d, g),
        w,
        lambda r: K.conv3d_backward(r, x, w, s, p, d, g)[1],
    )
    check_fd(
        lambda bb: K.conv3d(x, w, bb, s, p, d, g),
        b,
        lambda r: K.conv3d_backward(r, x, w, s, p, d, g)[2],
    )


def test_against_torch_autograd():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional

    def autograd(f, *arrays):
        ts = [torch.tensor(a, requires_grad=True) for a in arrays]
        y = f(*ts)
        r = rnd(tuple(y.shape), 99)
        (y * torch.tensor(r)).sum().backward()
        return y.detach().numpy(), r, [t.grad.numpy() for t in ts]

    x, w, b = rnd((2, 6, 7, 6, 8), 1), rnd((9, 2, 3, 2, 3), 2), rnd(9, 3)
    args = ((2, 1, 3), (1, 0, 2), (1, 2, 1), 3)
    y, r, grads = autograd(lambda x, w, b: F.conv3d(x, w, b, *args), x, w, b)
    for ours, ref in zip(K.conv3d_backward(r, x, w, *args), grads):
        np.testing.assert_allclose(ours, ref, atol=1e-10)
    x, w, b = rnd((2, 6, 4, 5, 3), 4), rnd((6, 3, 3, 2, 3), 5), rnd(6, 6)
    args = ((2, 1, 3), (1, 0, 2), (1, 0, 1), 2, (1, 2, 1))
    y, r, grads = autograd(lambda x, w, b: F.conv_transpose3d(x, w, b, *args), x, w, b)
    np.testing.assert_allclose(K.conv_transpose3d(x, w, b, *args), y, atol=1e-10)
    for ours, ref in zip(K.conv_transpose3d_backward(r, x, w, *args), grads):
        np.testing.assert_allclose(ours, ref, atol=1e-10)
    x = rnd((2, 3, 7, 8, 9), 7)
    y, r, (gx,) = autograd(
        lambda t: F.max_pool3d(t, (2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 1, 1), True), x
    )
    ours, idx = K.max_pool3d(x, (2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 1, 1), True, True)
    np.testing.assert_array_equal(ours, y)
    np.testing.assert_allclose(K.max_pool3d_backward(r, idx, x.shape), gx, atol=1e-12)
    y, r, (gx,) = autograd(lambda t: F.avg_pool3d(t, 3, 2, 1, True, False), x)
    np.testing.assert_allclose(K.avg_pool3d(x, 3, 2, 1, True, False), y, atol=1e-12)
    np.testing.assert_allclose(
        K.avg_pool3d_backward(r, x.shape, 3, 2, 1, True, False), gx, atol=1e-12
    )
    y, r, (gx,) = autograd(lambda t: F.adaptive_max_pool3d(t, (3, 5, 4)), x)
    ours, idx = K.adaptive_max_pool3d(x, (3, 5, 4), return_indices=True)
    np.testing.assert_array_equal(ours, y)
    np.testing.assert_allclose(K.adaptive_max_pool3d_backward(r, idx, x.shape), gx, atol=1e-12)
