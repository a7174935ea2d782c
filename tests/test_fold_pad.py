"""fold / unfold (cnncalc/kernels/_fold.py) and the copying pad modes of ``pad`` with negative
padding: against loops written here from PyTorch's definitions, finite differences, and
torch when installed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import cnncalc.kernels as K
from cnncalc.arithmetic import copy_pad_source


def rnd(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def naive_unfold(x, k, d, p, s):
    N, C, H, W = x.shape
    xp = np.pad(x, [(0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])])
    bh = (H + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    bw = (W + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    out = np.empty((N, C * k[0] * k[1], bh * bw))
    for c, i, j, by, bx in itertools.product(
        range(C), range(k[0]), range(k[1]), range(bh), range(bw)
    ):
        out[:, (c * k[0] + i) * k[1] + j, by * bw + bx] = xp[
            :, c, by * s[0] + i * d[0], bx * s[1] + j * d[1]
        ]
    return out


GEOMETRY = [
    ((3, 3), (1, 1), (0, 0), (1, 1)),
    ((2, 3), (2, 1), (1, 0), (2, 3)),
    ((1, 2), (1, 1), (1, 1), (3, 2)),
]


@pytest.mark.parametrize(("k", "d", "p", "s"), GEOMETRY)
def test_unfold_and_fold(k, d, p, s):
    x = rnd((2, 3, 9, 8))
    cols = K.unfold(x, k, d, p, s)
    np.testing.assert_array_equal(cols, naive_unfold(x, k, d, p, s))
    # fold is unfold's adjoint: <unfold(x), c> = <x, fold(c)>
    c = rnd(cols.shape, 1)
    back = K.fold(c, (9, 8), k, d, p, s)
    assert np.isclose((cols * c).sum(), (x * back).sum())
    np.testing.assert_array_equal(K.unfold_backward(c, x.shape, k, d, p, s), back)
    np.testing.assert_array_equal(K.fold_backward(x, k, d, p, s), cols)
    # fold of unfold counts how many blocks hold each pixel (the docs' divisor example)
    ones = K.fold(K.unfold(np.ones((1, 1, 9, 8)), k, d, p, s), (9, 8), k, d, p, s)
    assert (
        ones.min() >= 0
        and ones.sum()
        == cols.shape[2] * k[0] * k[1]
        - (naive_unfold(np.ones((1, 1, 9, 8)), k, d, p, s) == 0).sum()
    )


def test_fold_refusals():
    with pytest.raises(ValueError, match="divisible by the product of kernel_size"):
        K.fold(np.zeros((1, 7, 9)), 4, 2)
    with pytest.raises(ValueError, match="number of sliding blocks 3 \\* 3 = 9, but got 8"):
        K.fold(np.zeros((1, 8, 8)), 4, 2)
    with pytest.raises(ValueError, match="at least one"):
        K.unfold(np.zeros((1, 1, 3, 5)), 4)


PADS = [
    ("reflect", (1, 2, -1, 3, 4, 0)),
    ("replicate", (3, -2, 1, 0, 2, 2)),
    ("circular", (1, 2, -1, 3, 4, 0)),
    ("circular", (-2, -1, 0, 0, 2, 3)),
]


@pytest.mark.parametrize(("mode", "pad"), PADS)
def test_copy_pads_follow_the_index_map(mode, pad):
    """Every output copies input copy_pad_source(...) on each axis (the map the span uses)."""
    x = rnd((2, 3, 5, 6, 7))
    y = K.pad(x, pad, mode=mode)
    pairs = [(pad[4], pad[5]), (pad[2], pad[3]), (pad[0], pad[1])]  # D, H, W
    maps = [
        [copy_pad_source(mode, n, a, b, j) for j in range(n + a + b)]
        for n, (a, b) in zip(x.shape[2:], pairs)
    ]
    np.testing.assert_array_equal(y, x[:, :, maps[0]][:, :, :, maps[1]][..., maps[2]])
    r, v = rnd(y.shape, 1), rnd(x.shape, 2)
    eps = 1e-6
    fd = (
        (K.pad(x + eps * v, pad, mode=mode) * r).sum()
        - (K.pad(x - eps * v, pad, mode=mode) * r).sum()
    ) / (2 * eps)
    g = K.pad_backward(r, pad, mode, x.shape)
    assert abs((g * v).sum() - fd) <= 1e-6 * max(1.0, abs(fd))


def test_constant_pad_value_and_crop():
    x = rnd((1, 2, 4))
    y = K.pad(x, (2, -1), value=3.5)
    np.testing.assert_array_equal(y[..., :2], 3.5)
    np.testing.assert_array_equal(y[..., 2:], x[..., :3])


def test_against_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rnd((2, 3, 5, 6, 7))
    for mode, pad in PADS:
        if min(pad) < 0 and mode == "circular" and max(pad) > 0:
            # (torch raises an internal error for some mixed crops and wraps; compare where
            # it computes)
            continue
        np.testing.assert_array_equal(
            K.pad(x, pad, mode=mode), F.pad(torch.tensor(x), pad, mode=mode).numpy()
        )
    x2 = rnd((2, 3, 9, 8))
    for k, d, p, s in GEOMETRY:
        ref = F.unfold(torch.tensor(x2), k, d, p, s).numpy()
        np.testing.assert_array_equal(K.unfold(x2, k, d, p, s), ref)
        np.testing.assert_allclose(
            K.fold(ref, (9, 8), k, d, p, s),
            F.fold(torch.tensor(ref), (9, 8), k, d, p, s).numpy(),
            atol=1e-12,
        )
