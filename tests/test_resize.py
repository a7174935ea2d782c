"""Interpolation (cnncalc/kernels/_resize.py and the upsample arithmetic): every mode against a
direct per-element formula written here from PyTorch's definitions, against
``torch.nn.functional.interpolate`` and autograd when torch is installed, the gradient against
finite differences, and the exact unit span against the kernel's own gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cnncalc.kernels as K
from cnncalc.arithmetic import input_span
from cnncalc.layers import Upsample

A = -0.75


def taps_1d(mode: str, n_in: int, n_out: int, j: int, factor, align: bool) -> dict[int, float]:
    """{input index: weight} of output j, straight from aten/src/ATen/native/UpSample.h."""
    if mode in ("nearest", "nearest-exact"):
        if mode == "nearest" and n_out == n_in:
            return {j: 1.0}
        if mode == "nearest" and n_out == 2 * n_in:
            return {j // 2: 1.0}
        scale = np.float32(1 / factor) if factor else np.float32(n_in) / np.float32(n_out)
        src = np.float32(j) * scale if mode == "nearest" else np.float32((j + 0.5) * float(scale))
        return {min(math.floor(src), n_in - 1): 1.0}
    if align:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        scale = 1 / factor if factor else n_in / n_out
    if mode == "bicubic":
        src = scale * j if align else scale * (j + 0.5) - 0.5
        i = math.floor(src)
        t = src - i
        w = [
            ((A * x - 5 * A) * x + 8 * A) * x - 4 * A
            if k in (0, 3)
            else ((A + 2) * x - (A + 3)) * x * x + 1
            for k, x in enumerate((t + 1, t, 1 - t, 2 - t))
        ]
        out: dict[int, float] = {}
        for k in range(4):
            idx = min(max(i - 1 + k, 0), n_in - 1)
            out[idx] = out.get(idx, 0.0) + w[k]
        return out
    if n_out == n_in:
        return {j: 1.0}
    src = scale * j if align else max(scale * (j + 0.5) - 0.5, 0.0)
    i0 = min(math.floor(src), n_in - 1)
    lam = min(max(src - i0, 0.0), 1.0)
    i1 = i0 + 1 if i0 < n_in - 1 else i0
    out = {i0: 1.0 - lam}
    out[i1] = out.get(i1, 0.0) + lam
    return out


def reference(x, outs, mode, factors, align):
    """Every output element as the sum over its taps' product of weights (no separability)."""
    ins = x.shape[2:]
    per_axis = [
        [taps_1d(mode, n, o, j, f, align) for j in range(o)] for n, o, f in zip(ins, outs, factors)
    ]
    y = np.zeros(x.shape[:2] + tuple(outs))
    for pos in np.ndindex(*outs):
        acc = 0.0
        for combo in np.ndindex(*[len(per_axis[a][p]) for a, p in enumerate(pos)]):
            idx, w = [], 1.0
            for a, (p, c) in enumerate(zip(pos, combo)):
                i, wi = list(per_axis[a][p].items())[c]
                idx.append(i)
                w *= wi
            acc = acc + w * x[(slice(None), slice(None), *idx)]
        y[(slice(None), slice(None), *pos)] = acc
    return y


CASES = [  # (input shape, F.interpolate arguments)
    ((2, 3, 5, 7), dict(scale_factor=2.3, mode="bilinear")),
    ((2, 3, 5, 7), dict(size=(11, 4), mode="bilinear", align_corners=True)),
    ((2, 3, 5, 7), dict(size=(11, 4), mode="bicubic")),
    ((2, 3, 5, 7), dict(scale_factor=(1.7, 0.6), mode="bicubic", align_corners=True)),
    ((2, 3, 6), dict(scale_factor=1.5, mode="linear", recompute_scale_factor=True)),
    ((2, 3, 6), dict(scale_factor=0.7, mode="linear")),
    ((1, 2, 3, 4, 5), dict(scale_factor=(2, 1.5, 0.5), mode="trilinear")),
    ((1, 2, 3, 4, 5), dict(size=(3, 9, 5), mode="trilinear", align_corners=True)),
    ((2, 3, 5, 7), dict(scale_factor=2.3, mode="nearest")),
    ((2, 3, 5, 7), dict(scale_factor=2.1, mode="nearest")),  # 10 = 2·5: PyTorch halves
    ((2, 3, 5, 7), dict(size=(13, 3), mode="nearest-exact")),
    ((2, 3, 13, 7), dict(scale_factor=0.37, mode="nearest-exact")),
    ((2, 3, 5, 7), dict(size=(5, 7), mode="bilinear")),
    ((2, 3, 5, 7), dict(scale_factor=1.1, mode="bilinear")),  # H stays 5: copied
]
IDS = [f"{c[1]['mode']}-{i}" for i, c in enumerate(CASES)]


def plan(shape, kw):
    nd = len(shape) - 2
    if kw.get("size") is not None:
        size = kw["size"]
        outs = (size,) * nd if isinstance(size, int) else size
        return outs, (None,) * nd
    sf = kw["scale_factor"]
    sf = sf if isinstance(sf, tuple) else (sf,) * nd
    outs = tuple(math.floor(n * f) for n, f in zip(shape[2:], sf))
    return outs, (None,) * nd if kw.get("recompute_scale_factor") else sf


@pytest.mark.parametrize(("shape", "kw"), CASES, ids=IDS)
def test_forward_matches_direct_formula(shape, kw):
    x = np.random.default_rng(0).standard_normal(shape)
    outs, factors = plan(shape, kw)
    ref = reference(x, outs, kw["mode"], factors, bool(kw.get("align_corners")))
    np.testing.assert_allclose(K.interpolate(x, **kw), ref, rtol=1e-12, atol=1e-12)
    got32 = K.interpolate(x.astype(np.float32), **kw)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("shape", "kw"), CASES, ids=IDS)
def test_backward_matches_finite_differences(shape, kw):
    rng = np.random.default_rng(1)
    x, v = rng.standard_normal(shape), rng.standard_normal(shape)
    r = rng.standard_normal(K.interpolate(x, **kw).shape)
    eps = 1e-6
    fd = (
        (K.interpolate(x + eps * v, **kw) * r).sum() - (K.interpolate(x - eps * v, **kw) * r).sum()
    ) / (2 * eps)
    g = K.interpolate_backward(r, shape, **kw)
    assert abs(float((g * v).sum()) - fd) <= 1e-6 * max(1.0, abs(fd))


@pytest.mark.parametrize(("shape", "kw"), CASES, ids=IDS)
def test_against_torch(shape, kw):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal(shape)
    t = torch.tensor(x, requires_grad=True)
    y = torch.nn.functional.interpolate(t, **kw)
    r = np.random.default_rng(3).standard_normal(tuple(y.shape))
    (y * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(K.interpolate(x, **kw), y.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(K.interpolate_backward(r, shape, **kw), t.grad.numpy(), atol=1e-12)


def test_refusals():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="bilinear mode needs 4D"):
        K.interpolate(x[0], scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="align_corners"):
        K.interpolate(x, size=3, align_corners=True)
    with pytest.raises(ValueError, match="recompute_scale_factor"):
        K.interpolate(x, size=3, mode="bilinear", recompute_scale_factor=True)


# --------------------------------------------------------------------------- exact spans


SPAN_LAYERS = [
    dict(mode="bilinear", scale_factor=2),
    dict(mode="bilinear", scale_factor=2.6, align_corners=True),
    dict(mode="bilinear", size=(7, 13)),
    dict(mode="bilinear", size=(17, 4), align_corners=True),  # 3 → 17: outputs on inputs
    dict(mode="bicubic", scale_factor=1.5),
    dict(mode="bicubic", size=(9, 25), align_corners=True),
    dict(mode="bicubic", size=(3, 2)),
    dict(mode="nearest", scale_factor=2.1),
    dict(mode="nearest-exact", size=(11, 5)),
]


@pytest.mark.parametrize("kw", SPAN_LAYERS, ids=lambda kw: str(kw))
def test_span_is_the_support_of_the_kernels_gradient(kw):
    """For every output unit and for ranges of units, input_span equals the first and last
    input position the kernel's gradient reaches (theoretical: |weights|)."""
    shape = (1, 1, 5, 9)
    layer = Upsample(**{k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()})
    args = {k: v for k, v in kw.items()}
    y = K.interpolate(np.zeros(shape), **args)
    outs = y.shape[2:]
    for axis in (0, 1):
        for lo in range(outs[axis]):
            for hi in (lo, min(lo + 2, outs[axis] - 1)):
                g = np.zeros(y.shape)
                index = [0, 0, 0, 0]
                sl = slice(lo, hi + 1)
                index[2 + axis] = sl
                index[3 - axis] = outs[1 - axis] // 2
                g[tuple(index)] = 1.0
                gx = K.interpolate_backward(g, shape, absolute_weights=True, **args)
                support = np.flatnonzero(np.abs(gx[0, 0]).sum(axis=1 - axis) > 0)
                want = (int(support[0]), int(support[-1]))
                if lo == hi:  # one unit: its real (signed) weights reach the same positions
                    gs = K.interpolate_backward(g, shape, **args)
                    signed = np.flatnonzero(np.abs(gs[0, 0]).sum(axis=1 - axis) > 0)
                    assert (int(signed[0]), int(signed[-1])) == want
                assert input_span(layer, shape[1:], axis, lo, hi) == want, (axis, lo, hi)
