# ruff: noqa: E741  (O = number of output channels, as in the formulas)
"""Dense layers: linear (BLAS), LeNet's rbf, inference batch_norm."""

import numpy as np
from numba import prange

from ._common import as_float_array, chunked, like
from ._jit import njit

LINEAR_SMALL_ROWS = 16


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


_FM = {"reassoc", "contract", "nsz"}  # lets LLVM vectorise the dot products


@njit(parallel=True, cache=True, fastmath=_FM)
def _linear_small(x, w, b, out):
    """out = x @ w.T + b for few rows M: blocks of 4 output features x 4 rows
    (16 accumulators), so each loaded weight feeds 4 rows and each input 4
    features; remaining rows one at a time.  W is streamed once per 4 rows."""
    M, K = x.shape
    O = w.shape[0]
    nb = (O + 3) // 4
    for ob in prange(nb):
        o = ob * 4
        if o + 4 > O:  # last partial block: plain dot products
            for oo in range(o, O):
                for m in range(M):
                    s = 0.0
                    for k in range(K):
                        s += x[m, k] * w[oo, k]
                    out[m, oo] = s + b[oo]
            continue
        m = 0
        while m + 4 <= M:
            a00 = a01 = a02 = a03 = x.dtype.type(0.0)
            a10 = a11 = a12 = a13 = x.dtype.type(0.0)
            a20 = a21 = a22 = a23 = x.dtype.type(0.0)
            a30 = a31 = a32 = a33 = x.dtype.type(0.0)
            for k in range(K):
                w0 = w[o, k]
                w1 = w[o + 1, k]
                w2 = w[o + 2, k]
                w3 = w[o + 3, k]
                x0 = x[m, k]
                x1 = x[m + 1, k]
                x2 = x[m + 2, k]
                x3 = x[m + 3, k]
                a00 += x0 * w0
                a01 += x0 * w1
                a02 += x0 * w2
                a03 += x0 * w3
                a10 += x1 * w0
                a11 += x1 * w1
                a12 += x1 * w2
                a13 += x1 * w3
                a20 += x2 * w0
                a21 += x2 * w1
                a22 += x2 * w2
                a23 += x2 * w3
                a30 += x3 * w0
                a31 += x3 * w1
                a32 += x3 * w2
                a33 += x3 * w3
            out[m, o] = a00 + b[o]
            out[m, o + 1] = a01 + b[o + 1]
            out[m, o + 2] = a02 + b[o + 2]
            out[m, o + 3] = a03 + b[o + 3]
            out[m + 1, o] = a10 + b[o]
            out[m + 1, o + 1] = a11 + b[o + 1]
            out[m + 1, o + 2] = a12 + b[o + 2]
            out[m + 1, o + 3] = a13 + b[o + 3]
            out[m + 2, o] = a20 + b[o]
            out[m + 2, o + 1] = a21 + b[o + 1]
            out[m + 2, o + 2] = a22 + b[o + 2]
            out[m + 2, o + 3] = a23 + b[o + 3]
            out[m + 3, o] = a30 + b[o]
            out[m + 3, o + 1] = a31 + b[o + 1]
            out[m + 3, o + 2] = a32 + b[o + 2]
            out[m + 3, o + 3] = a33 + b[o + 3]
            m += 4
        while m < M:
            s0 = s1 = s2 = s3 = x.dtype.type(0.0)
            for k in range(K):
                xv = x[m, k]
                s0 += xv * w[o, k]
                s1 += xv * w[o + 1, k]
                s2 += xv * w[o + 2, k]
                s3 += xv * w[o + 3, k]
            out[m, o] = s0 + b[o]
            out[m, o + 1] = s1 + b[o + 1]
            out[m, o + 2] = s2 + b[o + 2]
            out[m, o + 3] = s3 + b[o + 3]
            m += 1


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
    With at most LINEAR_SMALL_ROWS rows (batch x leading dims) a numba kernel
    streams the weights once per 4 rows (memory-bound GEMV/skinny GEMM, where
    it beats BLAS); larger inputs use numpy's BLAS matmul.
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
    lead = x.shape[:-1]
    M = int(np.prod(lead)) if lead else 1
    if M <= LINEAR_SMALL_ROWS:
        x2 = np.ascontiguousarray(x.reshape(M, w.shape[1]))
        out = np.empty((M, w.shape[0]), x.dtype)
        bb = b if b is not None else np.zeros(w.shape[0], x.dtype)
        with chunked((w.shape[0] + 3) // 4, work=w.size * M):
            _linear_small(x2, np.ascontiguousarray(w), bb, out)
        return out.reshape(lead + (w.shape[0],))
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
