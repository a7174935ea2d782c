"""Interpolation (``torch.nn.functional.interpolate``) and its gradient, numpy in and out.

Every mode PyTorch's ``nn.Upsample`` offers is separable: each spatial axis is resized on its
own by a small matrix ``M`` (output × input) whose rows hold the weights of the 1 (nearest),
2 (linear) or 4 (cubic) input taps an output reads, clamped at the borders (a clamped tap adds
its weight to the border element). The forward pass multiplies each axis by ``M``; the
backward pass by ``Mᵀ``. Source coordinates follow ``aten/src/ATen/native/UpSample.h``:

* nearest: ``min(⌊dst·scale⌋, in − 1)`` in float32 (``dst`` itself when the size is kept,
  ``⌊dst/2⌋`` when it doubles); nearest-exact: ``⌊(dst + 0.5)·scale⌋``;
* linear modes: ``src = (dst + 0.5)·scale − 0.5`` clamped at 0 (``align_corners=False``) or
  ``dst·(in − 1)/(out − 1)``; taps ⌊src⌋ and ⌊src⌋ + 1 with weights 1 − λ and λ; an axis whose
  size does not change is copied;
* bicubic: the same ``src`` without the clamp, taps ⌊src⌋ − 1 … ⌊src⌋ + 2 with Keys' cubic
  convolution weights (A = −0.75).

``scale`` is ``1/scale_factor`` when a scale factor is given (unless
``recompute_scale_factor``), else ``in/out``. Weights are computed in float64 and cast to the
input's dtype (PyTorch computes them in the input's precision: float32 results agree to
rounding).
"""

import math

import numpy as np

from ._common import as_float_array, is_int

MODES = {"nearest": 0, "nearest-exact": 0, "linear": 1, "bilinear": 2, "bicubic": 2,
         "trilinear": 3}  # fmt: skip
_A = -0.75


def _cubic(t):
    near = lambda x: ((_A + 2) * x - (_A + 3)) * x * x + 1  # noqa: E731
    far = lambda x: ((_A * x - 5 * _A) * x + 8 * _A) * x - 4 * _A  # noqa: E731
    return far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)


def _axis_matrix(mode, n_in, n_out, factor, align_corners):
    """The (n_out, n_in) float64 matrix of one axis."""
    m = np.zeros((n_out, n_in))
    j = np.arange(n_out)
    if mode in ("nearest", "nearest-exact"):
        scale = (
            np.float32(1.0 / factor)
            if factor is not None
            else (np.float32(n_in) / np.float32(n_out))
        )
        if mode == "nearest" and n_out in (n_in, 2 * n_in):  # PyTorch's nearest_idx
            src = j if n_out == n_in else j // 2
        elif mode == "nearest":
            src = np.floor(j.astype(np.float32) * scale)
        else:  # floorf((dst + 0.5) * scale): a double product rounded to float
            src = np.floor(((j + 0.5) * np.float64(scale)).astype(np.float32))
        m[j, np.minimum(src.astype(np.int64), n_in - 1)] = 1.0
        return m
    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        scale = 1.0 / factor if factor is not None and factor > 0 else n_in / n_out
    if mode == "bicubic":
        src = scale * j if align_corners else scale * (j + 0.5) - 0.5
        base = np.floor(src)
        weights = _cubic(src - base)
        base = base.astype(np.int64)
        for k, w in enumerate(weights):
            np.add.at(m, (j, np.clip(base - 1 + k, 0, n_in - 1)), w)
        return m
    if n_out == n_in:  # PyTorch copies an axis whose size does not change
        m[j, j] = 1.0
        return m
    src = scale * j if align_corners else np.maximum(scale * (j + 0.5) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam = np.clip(src - i0, 0.0, 1.0)
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    np.add.at(m, (j, i0), 1.0 - lam)
    np.add.at(m, (j, i1), lam)
    return m


def _plan(
    fname, shape, size, scale_factor, mode, align_corners, recompute_scale_factor, out_spatial=None
):
    """Per axis (input size, output size, factor the kernel uses or None)."""
    if mode not in MODES:
        raise ValueError(f"{fname}: unknown mode {mode!r}")
    nd = len(shape) - 2
    if nd < 1 or nd > 3:
        raise ValueError(f"{fname}: input must be 3-D, 4-D or 5-D, got {tuple(shape)}")
    want = MODES[mode]
    if want and want != nd:
        raise ValueError(f"{fname}: got {nd + 2}D input, but {mode} mode needs {want + 2}D input")
    if align_corners is not None and not want:
        raise ValueError(
            f"{fname}: align_corners option can only be set with the "
            "interpolating modes: linear | bilinear | bicubic | trilinear"
        )
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{fname}: exactly one of size and scale_factor must be given")
    ins = tuple(int(v) for v in shape[2:])
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(
                f"{fname}: recompute_scale_factor is not meaningful with an explicit size"
            )
        sizes = [size] * nd if is_int(size) else list(size)
        if len(sizes) != nd or not all(is_int(s) and s > 0 for s in sizes):
            raise ValueError(f"{fname}: size must be {nd} positive ints, got {size!r}")
        return [(i, int(o), None) for i, o in zip(ins, sizes)]
    sf = list(scale_factor) if isinstance(scale_factor, (tuple, list)) else [scale_factor] * nd
    if len(sf) != nd:
        raise ValueError(f"{fname}: scale_factor must have {nd} entries")
    try:
        sf = [float(s) for s in sf]
    except (TypeError, ValueError):
        raise ValueError(f"{fname}: scale_factor must be numbers, got {scale_factor!r}") from None
    if any(s <= 0 for s in sf):
        raise ValueError(f"{fname}: scale_factor must be positive")
    outs = [math.floor(float(i) * s) for i, s in zip(ins, sf)]
    if out_spatial is not None:
        outs = list(out_spatial)
    if any(o < 1 for o in outs):
        raise ValueError(f"{fname}: output size would be empty")
    keep = not recompute_scale_factor
    return [(i, o, s if keep else None) for i, o, s in zip(ins, outs, sf)]


def _apply(x, mats, transpose):
    """Multiply each spatial axis of ``x`` by its matrix (or its transpose)."""
    out = x
    for axis, m in enumerate(mats):
        m = np.ascontiguousarray((m if transpose else m.T), dtype=x.dtype)
        moved = np.moveaxis(out, 2 + axis, -1)
        out = np.moveaxis(moved @ m, -1, 2 + axis)
    return np.ascontiguousarray(out)


def interpolate(
    input,
    size=None,
    scale_factor=None,
    mode="nearest",
    align_corners=None,
    recompute_scale_factor=None,
):
    """Resize (N, C, L), (N, C, H, W) or (N, C, D, H, W) as ``torch.nn.functional.interpolate``
    (modes nearest, nearest-exact, linear, bilinear, bicubic, trilinear)."""
    x = as_float_array(input)
    plan = _plan(
        "interpolate", x.shape, size, scale_factor, mode, align_corners, recompute_scale_factor
    )
    mats = [_axis_matrix(mode, n, o, f, bool(align_corners)) for n, o, f in plan]
    return _apply(x, mats, transpose=False)


def interpolate_backward(
    grad_output,
    input_size,
    size=None,
    scale_factor=None,
    mode="nearest",
    align_corners=None,
    recompute_scale_factor=None,
    absolute_weights=False,
):
    """Gradient of ``interpolate`` w.r.t. its input of shape ``input_size``: every input
    element collects the gradients of the outputs that read it, times their weights.

    ``absolute_weights``: use |weight| (bicubic has negative ones), so that no gradient can
    cancel — how ``cnncalc rf`` measures the theoretical receptive field.
    """
    g = as_float_array(grad_output, "grad_output")
    shape = tuple(int(v) for v in input_size)
    if len(shape) != g.ndim or shape[:2] != g.shape[:2]:
        raise ValueError(
            f"interpolate_backward: input_size {shape} does not fit grad_output {g.shape}"
        )
    plan = _plan(
        "interpolate_backward",
        shape,
        size,
        scale_factor,
        mode,
        align_corners,
        recompute_scale_factor,
        out_spatial=g.shape[2:],
    )
    if tuple(o for _, o, _ in plan) != g.shape[2:]:
        raise ValueError(
            f"interpolate_backward: grad_output {g.shape} is not the forward "
            f"output size {tuple(o for _, o, _ in plan)}"
        )
    mats = [_axis_matrix(mode, n, o, f, bool(align_corners)) for n, o, f in plan]
    if absolute_weights:
        mats = [np.abs(m) for m in mats]
    return _apply(g, mats, transpose=True)
