"""Activations, softmax / log_softmax, prelu, pad, add, cat.

Each activation is a small parallel numba loop over the flattened array;
scalar maths is done in float64 and stored in the input dtype.
"""

import math

import numpy as np
from numba import prange

from ._common import as_float_array, is_int, like, serial_if_small
from ._jit import njit

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT1_2 = 0.70710678118654752440
_SQRT_2_PI = 0.79788456080286535588


# ----------------------------------------------------------------- kernels
@njit(parallel=True, cache=True)
def _relu(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = 0.0 if v < 0 else v


@njit(parallel=True, cache=True)
def _hardtanh(x, out, lo, hi):
    for i in prange(x.size):
        v = x[i]
        out[i] = lo if v < lo else (hi if v > hi else v)


@njit(parallel=True, cache=True)
def _leaky_relu(x, out, slope):
    for i in prange(x.size):
        v = x[i]
        out[i] = v * slope if v < 0 else v


@njit(parallel=True, cache=True)
def _elu(x, out, alpha, scale, inv):
    """scale * (v if v > 0 else alpha * (exp(v * inv) - 1))  (elu, selu, celu)."""
    for i in prange(x.size):
        v = np.float64(x[i])
        out[i] = scale * (v if v > 0 else alpha * math.expm1(v * inv))


@njit(parallel=True, cache=True)
def _gelu(x, out, approx_tanh):
    for i in prange(x.size):
        v = np.float64(x[i])
        if approx_tanh:
            out[i] = 0.5 * v * (1.0 + math.tanh(_SQRT_2_PI * (v + 0.044715 * v * v * v)))
        else:
            out[i] = 0.5 * v * (1.0 + math.erf(v * _SQRT1_2))


@njit(cache=True, inline="always")
def _sigmoid_scalar(v):
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


@njit(parallel=True, cache=True)
def _sigmoid(x, out):
    for i in prange(x.size):
        out[i] = _sigmoid_scalar(np.float64(x[i]))


@njit(parallel=True, cache=True)
def _silu(x, out):
    for i in prange(x.size):
        v = np.float64(x[i])
        out[i] = v * _sigmoid_scalar(v)


@njit(parallel=True, cache=True)
def _tanh(x, out):
    for i in prange(x.size):
        out[i] = math.tanh(np.float64(x[i]))


@njit(parallel=True, cache=True)
def _softplus(x, out, beta, threshold):
    for i in prange(x.size):
        v = np.float64(x[i])
        bv = v * beta
        out[i] = v if bv > threshold else math.log1p(math.exp(bv)) / beta


@njit(parallel=True, cache=True)
def _mish(x, out):
    for i in prange(x.size):
        v = np.float64(x[i])
        sp = v if v > 20.0 else math.log1p(math.exp(v))
        out[i] = v * math.tanh(sp)


@njit(parallel=True, cache=True)
def _hardswish(x, out, times_x):
    for i in prange(x.size):
        v = np.float64(x[i])
        t = v + 3.0
        t = 0.0 if t < 0 else (6.0 if t > 6.0 else t)
        out[i] = v * t / 6.0 if times_x else t / 6.0


@njit(parallel=True, cache=True)
def _softmax_rows(x, out, log):
    M, K = x.shape
    for m in prange(M):
        mx = -np.inf
        for k in range(K):
            if x[m, k] > mx or x[m, k] != x[m, k]:
                mx = x[m, k]
        if mx == -np.inf:
            mx = 0.0
        s = 0.0
        for k in range(K):
            s += math.exp(np.float64(x[m, k]) - mx)
        if log:
            ls = math.log(s)
            for k in range(K):
                out[m, k] = np.float64(x[m, k]) - mx - ls
        else:
            inv = 1.0 / s
            for k in range(K):
                out[m, k] = math.exp(np.float64(x[m, k]) - mx) * inv


@njit(parallel=True, cache=True)
def _prelu(x, w, out):
    N, C, S = x.shape
    for item in prange(N * C):
        n = item // C
        c = item % C
        a = w[c]
        for i in range(S):
            v = x[n, c, i]
            out[n, c, i] = v * a if v < 0 else v


# ----------------------------------------------------------------- helpers
def _unary(kernel, input, *args):
    x = as_float_array(input)
    xf = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(xf)
    if xf.size:
        with serial_if_small(xf.size):
            kernel(xf, out, *args)
    return out.reshape(x.shape)


def _number(v, name):
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {v!r}") from None


# ----------------------------------------------------------------- public
def relu(input):
    """max(x, 0) (NaN propagates)."""
    return _unary(_relu, input)


def relu6(input):
    """min(max(x, 0), 6)."""
    return _unary(_hardtanh, input, 0.0, 6.0)


def hardtanh(input, min_val=-1.0, max_val=1.0):
    """Clamp to [min_val, max_val]."""
    lo, hi = _number(min_val, "min_val"), _number(max_val, "max_val")
    if hi < lo:
        raise ValueError("hardtanh: max_val cannot be less than min_val")
    return _unary(_hardtanh, input, lo, hi)


def leaky_relu(input, negative_slope=0.01):
    """x if x >= 0 else negative_slope * x."""
    return _unary(_leaky_relu, input, _number(negative_slope, "negative_slope"))


def elu(input, alpha=1.0):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return _unary(_elu, input, _number(alpha, "alpha"), 1.0, 1.0)


def selu(input):
    """scale * elu(x, alpha) with PyTorch's SELU constants."""
    return _unary(_elu, input, _SELU_ALPHA, _SELU_SCALE, 1.0)


def celu(input, alpha=1.0):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    a = _number(alpha, "alpha")
    if a == 0:
        raise ValueError("celu: alpha must not be 0")
    return _unary(_elu, input, a, 1.0, 1.0 / a)


def gelu(input, approximate="none"):
    """0.5 x (1 + erf(x / sqrt 2)), or the tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _unary(_gelu, input, approximate == "tanh")


def silu(input):
    """x * sigmoid(x)."""
    return _unary(_silu, input)


def mish(input):
    """x * tanh(softplus(x))."""
    return _unary(_mish, input)


def sigmoid(input):
    """1 / (1 + exp(-x))."""
    return _unary(_sigmoid, input)


def tanh(input):
    """Hyperbolic tangent."""
    return _unary(_tanh, input)


def hardswish(input):
    """x * relu6(x + 3) / 6."""
    return _unary(_hardswish, input, True)


def hardsigmoid(input):
    """relu6(x + 3) / 6."""
    return _unary(_hardswish, input, False)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, linear (x) where beta x > threshold."""
    b = _number(beta, "beta")
    if b == 0:
        raise ValueError("softplus: beta must not be 0")
    return _unary(_softplus, input, b, _number(threshold, "threshold"))


def _softmax_impl(input, dim, log, fname):
    x = as_float_array(input)
    if dim is None:
        raise ValueError(f"{fname}: dim must be given")
    if not is_int(dim):
        raise ValueError(f"{fname}: dim must be an int, got {dim!r}")
    nd = max(x.ndim, 1)
    if not -nd <= dim < nd:
        raise ValueError(f"{fname}: dim {dim} out of range for a {x.ndim}-D input")
    if x.ndim == 0:
        x2 = x.reshape(1, 1)
        out = np.empty_like(x2)
        _softmax_rows(x2, out, log)
        return out.reshape(())
    xm = np.moveaxis(x, dim, -1)
    x2 = np.ascontiguousarray(xm).reshape(-1, xm.shape[-1])
    out = np.empty_like(x2)
    if x2.size:
        _softmax_rows(x2, out, log)
    return np.ascontiguousarray(np.moveaxis(out.reshape(xm.shape), -1, dim))


def softmax(input, dim):
    """exp(x) / sum(exp(x)) along ``dim``."""
    return _softmax_impl(input, dim, False, "softmax")


def log_softmax(input, dim):
    """x - log(sum(exp(x))) along ``dim``."""
    return _softmax_impl(input, dim, True, "log_softmax")


def prelu(input, weight):
    """x if x >= 0 else weight[c] * x, channels on dim 1; weight (1,) or (C,)."""
    x = as_float_array(input)
    w = like(weight, x, "weight")
    if w is None or w.ndim > 1:
        raise ValueError("prelu: weight must be 1-D (1,) or (C,)")
    w = w.reshape(-1)
    C = x.shape[1] if x.ndim >= 2 else 1
    if w.size == 1:
        w = np.full(C, w[0], x.dtype)
    elif w.size != C:
        raise ValueError(f"prelu: weight has {w.size} entries but input has {C} channels")
    N = x.shape[0] if x.ndim >= 2 else 1
    x3 = np.ascontiguousarray(x).reshape(N, C, -1)
    out = np.empty_like(x3)
    if x3.size:
        _prelu(x3, w, out)
    return out.reshape(x.shape)


def pad(input, pad, mode="constant", value=0.0):
    """Pad as ``torch.nn.functional.pad``: ``pad`` = (left, right) of the last
    dim, then of the one before, ...; negative amounts crop ('constant' only).

    Modes: 'constant' (value), 'reflect', 'replicate', 'circular'.
    """
    x = as_float_array(input)
    try:
        p = [int(v) for v in pad]
    except (TypeError, ValueError):
        raise ValueError(f"pad: pad must be a sequence of ints, got {pad!r}") from None
    if len(p) % 2 or len(p) // 2 > x.ndim:
        raise ValueError(f"pad: pad length {len(p)} must be even and <= 2 * input.ndim")
    k = len(p) // 2
    pairs = [(0, 0)] * (x.ndim - k) + [(p[2 * i], p[2 * i + 1]) for i in range(k)][::-1]
    if mode == "constant":
        shape = []
        src = []
        dst = []
        for n, (lo, hi) in zip(x.shape, pairs):
            m = n + lo + hi
            if m < 0:
                raise ValueError(f"pad: padding {lo, hi} makes a dimension of size {n} negative")
            shape.append(m)
            s0, s1 = max(-lo, 0), n - max(-hi, 0)
            d0 = max(lo, 0)
            src.append(slice(s0, max(s1, s0)))
            dst.append(slice(d0, d0 + max(s1 - s0, 0)))
        out = np.full(shape, _number(value, "value"), x.dtype)
        out[tuple(dst)] = x[tuple(src)]
        return out
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: unknown mode {mode!r}")
    out = x
    for axis, (lo, hi) in enumerate(pairs):
        if lo == 0 and hi == 0:
            continue
        j = pad_source_index(x.shape[axis], lo, hi, mode)
        out = np.take(out, j, axis=axis)
    return np.ascontiguousarray(out)


def pad_source_index(n, lo, hi, mode):
    """The input index each output of ``pad`` copies along one axis (PyTorch's index maps;
    negative amounts crop): reflect and replicate map j − lo against the input's borders,
    circular crops first and wraps around what is left."""
    if mode == "circular":
        c0, c1 = max(-lo, 0), max(-hi, 0)
        m = n - c0 - c1
        if m < 1 or max(lo, hi) > m:
            raise ValueError("pad: Padding value causes wrapping around more than once.")
        return c0 + np.arange(-max(lo, 0), m + max(hi, 0)) % m
    j = np.arange(-lo, n + hi)
    if mode == "reflect":
        if lo >= n or hi >= n:
            raise ValueError("pad: reflect padding must be smaller than the input size")
        j = np.abs(j)
        return np.where(j >= n, 2 * (n - 1) - j, j)
    if n == 0:
        raise ValueError("pad: cannot replicate-pad an empty dimension")
    return np.clip(j, 0, n - 1)


def add(*tensors):
    """Element-wise sum of any number of same-shape arrays (residual merges)."""
    if not tensors:
        raise ValueError("add: at least one tensor is required")
    arrs = [as_float_array(t) for t in tensors]
    shape = arrs[0].shape
    for a in arrs[1:]:
        if a.shape != shape:
            raise ValueError(f"add: shape mismatch {a.shape} vs {shape}")
    out = np.array(arrs[0], dtype=np.result_type(*arrs), copy=True)
    for a in arrs[1:]:
        out += a
    return out


def cat(tensors, dim=1):
    """Concatenate along ``dim`` (default: channels)."""
    arrs = [as_float_array(t) for t in tensors]
    if not arrs:
        raise ValueError("cat: at least one tensor is required")
    nd = arrs[0].ndim
    if not is_int(dim) or not -nd <= dim < nd:
        raise ValueError(f"cat: dim {dim!r} out of range for {nd}-D inputs")
    for a in arrs[1:]:
        if a.ndim != nd or any(
            s != t for i, (s, t) in enumerate(zip(a.shape, arrs[0].shape)) if i != dim % nd
        ):
            raise ValueError("cat: tensors must match in every dimension except dim")
    return np.concatenate(arrs, axis=dim)


def mul(*tensors):
    """Element-wise product with NumPy/PyTorch broadcasting (squeeze-and-excitation gates)."""
    if not tensors:
        raise ValueError("mul: at least one tensor is required")
    arrs = [as_float_array(t) for t in tensors]
    out = arrs[0]
    for a in arrs[1:]:
        out = out * a
    return np.ascontiguousarray(out)
