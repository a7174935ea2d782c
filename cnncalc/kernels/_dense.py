# ruff: noqa: E741  (O = number of output channels, as in the formulas)
"""Dense layers: linear (BLAS), LeNet's rbf, inference batch_norm."""

import numpy as np
from numba import njit, prange

from ._common import as_float_array, like


@njit(parallel=True, cache=True, fastmath={"contract"})
def _rbf(x, w, out):
    M, K = x.shape
    O = w.shape[0]
    for item in prange(M * O):
        m = item // O
        o = item % O
        s = 0.0
        for k in range(K):
            d = x[m, k] - w[o, k]
            s += d * d
        out[m, o] = s


@njit(parallel=True, cache=True, fastmath={"contract"})
def _affine_channels(x, scale, shift, out):
    """out[n, c, :] = x[n, c, :] * scale[c] + shift[c] on (N, C, S) arrays."""
    N, C, S = x.shape
    for item in prange(N * C):
        n = item // C
        c = item % C
        a = scale[c]
        b = shift[c]
        for i in range(S):
            out[n, c, i] = x[n, c, i] * a + b


def linear(input, weight, bias=None):
    """y = input @ weight.T + bias on the last dimension (any leading dims).

    weight (out_features, in_features), bias (out_features,).  Uses numpy's
    BLAS matmul (numba kernels would not beat sgemm/sgemv here).
    """
    x = as_float_array(input)
    w = like(weight, x, "weight")
    if w is None or w.ndim != 2:
        raise ValueError("linear: weight must be 2-D (out_features, in_features)")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: input's last dimension {x.shape[-1:]} does not match in_features={w.shape[1]}"
        )
    b = like(bias, x, "bias")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"linear: bias must have shape ({w.shape[0]},), got {b.shape}")
    out = np.matmul(x, w.T)
    if b is not None:
        out += b
    return out


def rbf(input, weight):
    """LeNet-1998 Euclidean RBF units: out[..., i] = sum_j (x[..., j] - w[i, j])**2.

    input (..., in_features), weight (out_features, in_features).
    """
    x = as_float_array(input)
    w = like(weight, x, "weight")
    if w is None or w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError("rbf: weight must be (out, in) with in == input.shape[-1]")
    lead = x.shape[:-1]
    x2 = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
    out = np.empty((x2.shape[0], w.shape[0]), x.dtype)
    _rbf(x2, w, out)
    return out.reshape(lead + (w.shape[0],))


def batch_norm(
    input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
    eps=1e-5,
):  # fmt: skip
    """Inference batch normalisation over dim 1 of (N, C), (N, C, L), (N, C, H, W), ...

    y = (x - running_mean) / sqrt(running_var + eps) * weight + bias.
    ``training=True`` raises NotImplementedError (statistics are not computed).
    """
    if training:
        raise NotImplementedError("batch_norm: only inference (training=False) is supported")
    x = as_float_array(input)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be at least 2-D (N, C, ...), got {x.shape}")
    C = x.shape[1]
    arrs = []
    for name, a in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):  # fmt: skip
        if a is None:
            if name.startswith("running"):
                raise ValueError(f"batch_norm: {name} is required in inference mode")
            arrs.append(None)
            continue
        a = np.asarray(a, dtype=np.float64)
        if a.shape != (C,):
            raise ValueError(f"batch_norm: {name} must have shape ({C},), got {a.shape}")
        arrs.append(a)
    mean, var, w, b = arrs
    if eps < 0:
        raise ValueError("batch_norm: eps must be non-negative")
    scale = 1.0 / np.sqrt(var + eps)
    if w is not None:
        scale = scale * w
    shift = -mean * scale
    if b is not None:
        shift = shift + b
    x3 = np.ascontiguousarray(x.reshape(x.shape[0], C, -1))
    out = np.empty_like(x3)
    _affine_channels(x3, scale.astype(x.dtype), shift.astype(x.dtype), out)
    return out.reshape(x.shape)
