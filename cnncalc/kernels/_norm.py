"""Normalisations that compute their own statistics, forward and backward: ``group_norm``,
``layer_norm``, ``instance_norm``, torchvision's ``layer_norm2d`` (ConvNeXt), and ConvNeXt's
per-channel ``layer_scale``.

Every norm here is one operation on a (rows, K) view: each row normalised on its own,
x̂ = (x − mean)/√(var + eps) with the biased variance (as PyTorch), then a per-element affine
γ·x̂ + β. The backward of a row (γ folded into the incoming gradient g) is
dx = rstd·(g − mean(g) − x̂·mean(g·x̂)); Ioffe & Szegedy (2015), eq. after (4), per row.
Statistics accumulate in float64 whatever the input dtype.
"""

import math

import numpy as np
from numba import njit, prange

from ._common import as_float_array, like


@njit(parallel=True, cache=True)
def _rows(x, out, rstd, eps):
    """out = (x − mean)/√(var + eps) per row of x (M, K); rstd[m] = 1/√(var + eps)."""
    M, K = x.shape
    for m in prange(M):
        s = 0.0
        for k in range(K):
            s += x[m, k]
        mu = s / K
        v = 0.0
        for k in range(K):
            d = x[m, k] - mu
            v += d * d
        r = 1.0 / math.sqrt(v / K + eps)
        rstd[m] = r
        for k in range(K):
            out[m, k] = (x[m, k] - mu) * r


@njit(parallel=True, cache=True)
def _rows_backward(g, xhat, rstd, out):
    """out = rstd·(g − mean(g) − x̂·mean(g·x̂)) per row."""
    M, K = g.shape
    for m in prange(M):
        a = 0.0
        b = 0.0
        for k in range(K):
            a += g[m, k]
            b += g[m, k] * xhat[m, k]
        a /= K
        b /= K
        r = rstd[m]
        for k in range(K):
            out[m, k] = r * (g[m, k] - a - xhat[m, k] * b)


def _normalize(x2, eps):
    """x̂ and rstd of the rows of a contiguous (M, K) array."""
    if eps < 0:
        raise ValueError("eps must be non-negative")
    xhat = np.empty_like(x2)
    rstd = np.empty(x2.shape[0], np.float64)
    if x2.size:
        _rows(x2, xhat, rstd, float(eps))
    return xhat, rstd


def _row_grad(g2, xhat, rstd):
    out = np.empty_like(xhat)
    if xhat.size:
        _rows_backward(np.ascontiguousarray(g2, dtype=xhat.dtype), xhat, rstd, out)
    return out


def _grad_of(grad_output, x, fname):
    g = as_float_array(grad_output, "grad_output")
    if g.shape != x.shape:
        raise ValueError(f"{fname}: grad_output has shape {g.shape}, the input {x.shape}")
    return np.ascontiguousarray(g, dtype=x.dtype)


def _per_channel(a, x, name, fname):
    """A (C,) parameter as x's dtype, shaped to broadcast over dim 1 of x (N, C, ...)."""
    a = like(a, x, name)
    if a is None:
        return None
    if a.shape != (x.shape[1],):
        raise ValueError(f"{fname}: {name} must have shape ({x.shape[1]},), got {a.shape}")
    return a.reshape((1, -1) + (1,) * (x.ndim - 2))


def _channel_sums(a, x):
    """Σ over every axis but dim 1, in float64, as x's dtype."""
    axes = (0, *range(2, x.ndim))
    return a.sum(axis=axes, dtype=np.float64).astype(x.dtype)


# ----------------------------------------------------------------- group_norm


def _groups(x, num_groups, fname):
    if x.ndim < 2:
        raise ValueError(f"{fname}: input must be (N, C, ...), got {x.shape}")
    if int(num_groups) < 1 or x.shape[1] % int(num_groups):
        raise ValueError(f"{fname}: num_groups {num_groups} must divide the {x.shape[1]} channels")
    return np.ascontiguousarray(x).reshape(x.shape[0] * int(num_groups), -1)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """``F.group_norm``: statistics over each group of C/num_groups channels and all
    positions of one sample; then γ, β per channel."""
    x = as_float_array(input)
    xhat, _ = _normalize(_groups(x, num_groups, "group_norm"), eps)
    y = xhat.reshape(x.shape)
    w, b = (
        _per_channel(weight, x, "weight", "group_norm"),
        _per_channel(bias, x, "bias", "group_norm"),
    )
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y


def group_norm_backward(
    grad_output, input, num_groups, weight=None, eps=1e-5, output_mask=(True, True, True)
):
    """Gradients of ``group_norm`` w.r.t. the input, weight and bias (None where masked)."""
    x = as_float_array(input)
    g = _grad_of(grad_output, x, "group_norm_backward")
    xhat, rstd = _normalize(_groups(x, num_groups, "group_norm_backward"), eps)
    w = _per_channel(weight, x, "weight", "group_norm_backward")
    gx = gw = gb = None
    if output_mask[0]:
        gxhat = g if w is None else g * w
        gx = _row_grad(gxhat.reshape(xhat.shape), xhat, rstd).reshape(x.shape)
    if output_mask[1] and weight is not None:
        gw = _channel_sums(g * xhat.reshape(x.shape), x)
    if output_mask[2]:
        gb = _channel_sums(g, x)
    return gx, gw, gb


# ----------------------------------------------------------------- layer_norm


def _trailing(x, normalized_shape, fname):
    ns = (
        (int(normalized_shape),)
        if np.ndim(normalized_shape) == 0
        else tuple(int(v) for v in normalized_shape)
    )
    if x.shape[x.ndim - len(ns) :] != ns or len(ns) > x.ndim:
        raise ValueError(
            f"{fname}: expected input with shape [*, {', '.join(map(str, ns))}], "
            f"got {list(x.shape)}"
        )
    return ns


def _affine(a, x, ns, name, fname):
    a = like(a, x, name)
    if a is not None and a.shape != ns:
        raise ValueError(f"{fname}: {name} must have shape {ns}, got {a.shape}")
    return a


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """``F.layer_norm``: statistics over the trailing ``normalized_shape`` of each row."""
    x = as_float_array(input)
    ns = _trailing(x, normalized_shape, "layer_norm")
    k = math.prod(ns)
    xhat, _ = _normalize(np.ascontiguousarray(x).reshape(-1, k), eps)
    y = xhat.reshape(x.shape)
    w, b = (
        _affine(weight, x, ns, "weight", "layer_norm"),
        _affine(bias, x, ns, "bias", "layer_norm"),
    )
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y


def layer_norm_backward(
    grad_output, input, normalized_shape, weight=None, eps=1e-5, output_mask=(True, True, True)
):
    """Gradients of ``layer_norm`` w.r.t. the input, weight and bias (None where masked)."""
    x = as_float_array(input)
    ns = _trailing(x, normalized_shape, "layer_norm_backward")
    g = _grad_of(grad_output, x, "layer_norm_backward")
    k = math.prod(ns)
    xhat, rstd = _normalize(np.ascontiguousarray(x).reshape(-1, k), eps)
    w = _affine(weight, x, ns, "weight", "layer_norm_backward")
    gx = gw = gb = None
    if output_mask[0]:
        gxhat = g if w is None else g * w
        gx = _row_grad(gxhat.reshape(-1, k), xhat, rstd).reshape(x.shape)
    lead = tuple(range(x.ndim - len(ns)))
    if output_mask[1] and weight is not None:
        gw = (g * xhat.reshape(x.shape)).sum(axis=lead, dtype=np.float64).astype(x.dtype)
    if output_mask[2]:
        gb = g.sum(axis=lead, dtype=np.float64).astype(x.dtype)
    return gx, gw, gb


def layer_norm2d(input, weight=None, bias=None, eps=1e-5):
    """torchvision's ``LayerNorm2d`` (ConvNeXt): ``layer_norm`` over the channels (dim 1) of
    an (N, C, H, W) input at each position."""
    x = as_float_array(input)
    if x.ndim != 4:
        raise ValueError(f"layer_norm2d: input must be (N, C, H, W), got {x.shape}")
    last = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    y = layer_norm(last, (x.shape[1],), weight, bias, eps)
    return np.ascontiguousarray(np.moveaxis(y, -1, 1))


def layer_norm2d_backward(
    grad_output, input, weight=None, eps=1e-5, output_mask=(True, True, True)
):
    """Gradients of ``layer_norm2d`` w.r.t. the input, weight and bias."""
    x = as_float_array(input)
    if x.ndim != 4:
        raise ValueError(f"layer_norm2d_backward: input must be (N, C, H, W), got {x.shape}")
    g = _grad_of(grad_output, x, "layer_norm2d_backward")
    gx, gw, gb = layer_norm_backward(
        np.moveaxis(g, 1, -1), np.moveaxis(x, 1, -1), (x.shape[1],), weight, eps, output_mask
    )
    if gx is not None:
        gx = np.ascontiguousarray(np.moveaxis(gx, -1, 1))
    return gx, gw, gb


# ----------------------------------------------------------------- instance_norm


def instance_norm(
    input,
    running_mean=None,
    running_var=None,
    weight=None,
    bias=None,
    use_input_stats=True,
    eps=1e-5,
):
    """``F.instance_norm`` (inference): statistics over all positions of each channel of each
    sample; with ``use_input_stats=False`` the running statistics instead (as batch_norm)."""
    x = as_float_array(input)
    if x.ndim < 3:
        raise ValueError(f"instance_norm: input must be (N, C, ...) with positions, got {x.shape}")
    if use_input_stats:
        xhat, _ = _normalize(np.ascontiguousarray(x).reshape(x.shape[0] * x.shape[1], -1), eps)
        y = xhat.reshape(x.shape)
    else:
        mean = _per_channel(running_mean, x, "running_mean", "instance_norm")
        var = _per_channel(running_var, x, "running_var", "instance_norm")
        if mean is None or var is None:
            raise ValueError("instance_norm: running statistics are needed without input stats")
        y = ((x - mean) / np.sqrt(var.astype(np.float64) + eps)).astype(x.dtype)
    w, b = (
        _per_channel(weight, x, "weight", "instance_norm"),
        _per_channel(bias, x, "bias", "instance_norm"),
    )
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y


def instance_norm_backward(
    grad_output,
    input,
    running_mean=None,
    running_var=None,
    weight=None,
    use_input_stats=True,
    eps=1e-5,
    output_mask=(True, True, True),
):
    """Gradients of ``instance_norm`` w.r.t. the input, weight and bias."""
    x = as_float_array(input)
    g = _grad_of(grad_output, x, "instance_norm_backward")
    w = _per_channel(weight, x, "weight", "instance_norm_backward")
    gxhat = g if w is None else g * w
    if use_input_stats:
        xhat, rstd = _normalize(np.ascontiguousarray(x).reshape(x.shape[0] * x.shape[1], -1), eps)
        xhat = xhat.reshape(x.shape)
        gx = (
            _row_grad(
                gxhat.reshape(rstd.shape[0], -1), xhat.reshape(rstd.shape[0], -1), rstd
            ).reshape(x.shape)
            if output_mask[0]
            else None
        )
    else:
        mean = _per_channel(running_mean, x, "running_mean", "instance_norm_backward")
        inv = 1.0 / np.sqrt(
            _per_channel(running_var, x, "running_var", "instance_norm_backward").astype(np.float64)
            + eps
        )
        xhat = ((x - mean) * inv).astype(x.dtype)
        gx = (gxhat * inv).astype(x.dtype) if output_mask[0] else None
    gw = _channel_sums(g * xhat, x) if output_mask[1] and weight is not None else None
    gb = _channel_sums(g, x) if output_mask[2] else None
    return gx, gw, gb


# ----------------------------------------------------------------- layer scale


def layer_scale(input, weight):
    """ConvNeXt's ``layer_scale * x``: one learned factor per channel (dim 1)."""
    x = as_float_array(input)
    w = _per_channel(weight, x, "weight", "layer_scale")
    if w is None:
        raise ValueError("layer_scale: weight is required")
    return x * w


def layer_scale_backward(grad_output, input, weight, output_mask=(True, True)):
    """Gradients of ``layer_scale`` w.r.t. the input and the scale."""
    x = as_float_array(input)
    g = _grad_of(grad_output, x, "layer_scale_backward")
    w = _per_channel(weight, x, "weight", "layer_scale_backward")
    gx = g * w if output_mask[0] else None
    gw = _channel_sums(g * x, x) if output_mask[1] else None
    return gx, gw
