# ruff: noqa: E741  (O = number of output channels, as in the formulas)
"""Backward kernels: gradients of the forward kernels, numpy in and out.

Each ``<op>_backward`` takes the gradient of the loss with respect to the forward output
(``grad_output``) and what the forward pass saw (its input, weights, the recorded max-pool
indices …) and returns the gradient with respect to the input — and, for layers with
parameters, with respect to the weight and the bias, as ``torch.autograd`` would.  Argument
names and layouts are PyTorch's; inputs are batch-first (an unbatched input is accepted where
the forward kernel accepts one).  Everything is computed in the input's dtype (float32 or
float64).

How the gradients are computed:

* convolution, input gradient: the transposed convolution of ``grad_output``, computed by the
  fast forward ``conv2d`` with flipped, channel-swapped weights on ``grad_output`` with zeros
  inserted between its entries (stride > 1) and padded by d·(k − 1) − p (Dumoulin & Visin,
  "A guide to convolution arithmetic", arXiv 1603.07285, §4); a plain numba scatter kernel
  (``path="direct"``) serves as a reference.  Weight gradient: a numba correlation of the
  padded input with ``grad_output``.
* max pooling routes each output's gradient to the element recorded by the forward pass
  (``return_indices=True``: PyTorch's flat index into each input plane); overlapping windows
  add up.  Average pooling splits each output's gradient evenly over the elements its divisor
  counted (so the sum is preserved for non-overlapping windows without padding).
* element-wise activations multiply by their derivative (PyTorch's choice at kinks).
"""

import math

import numpy as np
from numba import prange

from cnncalc.arithmetic import pool_out

from ._common import as_float_array, conv_weight, is_int, like, ntuple
from ._conv import conv2d as _conv2d_forward
from ._elementwise import pad as _pad_forward
from ._elementwise import pad_source_index
from ._jit import njit

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT1_2 = 0.70710678118654752440
_SQRT_2_PI = 0.79788456080286535588
_INV_SQRT_2PI = 0.39894228040143267794


# ----------------------------------------------------------------- kernels
@njit(parallel=True, cache=True)
def _conv_grad_input(gy, w, gxp, sh, sw, dh, dw, groups):
    """gxp (N, C, Hp, Wp), zero on entry: += scatter of gy through w (padded coordinates)."""
    N, O, OH, OW = gy.shape
    C = gxp.shape[1]
    Cg, KH, KW = w.shape[1], w.shape[2], w.shape[3]
    Og = O // groups
    for item in prange(N * C):
        n = item // C
        c = item % C
        g = c // Cg
        ic = c % Cg
        for oo in range(Og):
            o = g * Og + oo
            for ky in range(KH):
                for kx in range(KW):
                    wv = w[o, ic, ky, kx]
                    x0 = kx * dw
                    for oy in range(OH):
                        y = oy * sh + ky * dh
                        for ox in range(OW):
                            gxp[n, c, y, x0 + ox * sw] += wv * gy[n, o, oy, ox]


@njit(parallel=True, cache=True)
def _conv_grad_weight(gy, xp, gw, sh, sw, dh, dw, groups):
    """gw[o, ic, ky, kx] = Σ gy[n, o, oy, ox] · xp[n, c, oy·sh + ky·dh, ox·sw + kx·dw]."""
    N, O, OH, OW = gy.shape
    Cg, KH, KW = gw.shape[1], gw.shape[2], gw.shape[3]
    Og = O // groups
    for item in prange(O * Cg):
        o = item // Cg
        ic = item % Cg
        c = (o // Og) * Cg + ic
        for ky in range(KH):
            for kx in range(KW):
                s = 0.0
                x0 = kx * dw
                for n in range(N):
                    for oy in range(OH):
                        y = oy * sh + ky * dh
                        for ox in range(OW):
                            s += gy[n, o, oy, ox] * xp[n, c, y, x0 + ox * sw]
                gw[o, ic, ky, kx] = s


@njit(parallel=True, cache=True)
def _scatter_planes(gy, idx, gx):
    """gx[p, idx[p, j]] += gy[p, j] for every plane p (gx zero on entry)."""
    P, M = gy.shape
    for p in prange(P):
        for j in range(M):
            gx[p, idx[p, j]] += gy[p, j]


@njit(parallel=True, cache=True)
def _window_backward(gy, gx, kh, kw, sh, sw, ph, pw, dh, dw, scale):
    """gx[p] += gy[p, oy, ox] · scale[oy, ox] on every real element of window (oy, ox)."""
    P, OH, OW = gy.shape
    H, W = gx.shape[1], gx.shape[2]
    for p in prange(P):
        for oy in range(OH):
            for ky in range(kh):
                iy = oy * sh - ph + ky * dh
                if iy < 0 or iy >= H:
                    continue
                for ox in range(OW):
                    v = gy[p, oy, ox] * scale[oy, ox]
                    for kx in range(kw):
                        ix = ox * sw - pw + kx * dw
                        if ix >= 0 and ix < W:
                            gx[p, iy, ix] += v


@njit(parallel=True, cache=True)
def _adaptive_backward(gy, gx, ys, ye, xs, xe, divide):
    """gx += gy spread over each adaptive bin (divided by the bin's size if ``divide``)."""
    P, OH, OW = gy.shape
    for p in prange(P):
        for oy in range(OH):
            for ox in range(OW):
                v = gy[p, oy, ox]
                if divide:
                    v = v / ((ye[oy] - ys[oy]) * (xe[ox] - xs[ox]))
                for iy in range(ys[oy], ye[oy]):
                    for ix in range(xs[ox], xe[ox]):
                        gx[p, iy, ix] += v


# op codes of _unary_grad
_RELU, _HARDTANH, _LEAKY, _ELU, _GELU, _GELU_TANH, _SILU, _MISH = 0, 1, 2, 3, 4, 5, 6, 7
_SIGMOID, _TANH, _HARDSWISH, _HARDSIGMOID, _SOFTPLUS = 8, 9, 10, 11, 12


@njit(cache=True, inline="always")
def _sig(v):
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


@njit(parallel=True, cache=True)
def _unary_grad(x, gy, out, op, a, b, c):
    """out = gy · f'(x) for the activation ``op`` (parameters a, b, c), scalar maths in f64."""
    for i in prange(x.size):
        v = np.float64(x[i])
        if op == _RELU:
            d = 1.0 if v > 0 else 0.0
        elif op == _HARDTANH:  # a = min_val, b = max_val
            d = 1.0 if (v > a) and (v < b) else 0.0
        elif op == _LEAKY:  # a = negative_slope
            d = 1.0 if v > 0 else a
        elif op == _ELU:  # a = alpha, b = scale, c = input_scale
            d = b if v > 0 else a * b * c * math.exp(v * c)
        elif op == _GELU:
            d = 0.5 * (1.0 + math.erf(v * _SQRT1_2)) + v * _INV_SQRT_2PI * math.exp(-0.5 * v * v)
        elif op == _GELU_TANH:
            inner = _SQRT_2_PI * (v + 0.044715 * v * v * v)
            t = math.tanh(inner)
            d = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * _SQRT_2_PI * (
                1.0 + 3.0 * 0.044715 * v * v
            )
        elif op == _SILU:
            s = _sig(v)
            d = s * (1.0 + v * (1.0 - s))
        elif op == _MISH:
            sp = v if v > 20.0 else math.log1p(math.exp(v))
            t = math.tanh(sp)
            d = t + v * _sig(v) * (1.0 - t * t)
        elif op == _SIGMOID:
            s = _sig(v)
            d = s * (1.0 - s)
        elif op == _TANH:
            t = math.tanh(v)
            d = 1.0 - t * t
        elif op == _HARDSWISH:  # PyTorch: 0 below −3, x/3 + 1/2 up to 3 (inclusive), then 1
            d = 0.0 if v < -3.0 else (v / 3.0 + 0.5 if v <= 3.0 else 1.0)
        elif op == _HARDSIGMOID:
            d = 1.0 / 6.0 if (v > -3.0) and (v < 3.0) else 0.0
        else:  # _SOFTPLUS: a = beta, b = threshold
            bv = v * a
            d = 1.0 if bv > b else _sig(bv)
        out[i] = gy[i] * d


# ----------------------------------------------------------------- helpers
def _batched(a, nd, name, fname):
    """``a`` with a batch dimension (added if absent) and whether it was added."""
    if a.ndim == nd + 1:
        return a[None], True
    if a.ndim != nd + 2:
        raise ValueError(f"{fname}: {name} must be {nd + 1}-D or {nd + 2}-D, got {a.shape}")
    return a, False


def _grad_like(grad_output, x, fname):
    g = as_float_array(grad_output, "grad_output")
    return np.ascontiguousarray(g, dtype=x.dtype)


def _check_shape(g, want, fname):
    if tuple(g.shape) != tuple(want):
        raise ValueError(
            f"{fname}: grad_output has shape {tuple(g.shape)}, the forward output has {tuple(want)}"
        )


def _conv_pads(padding, nd, k, d, s, fname):
    """(before, after) per spatial axis, as the forward conv pads."""
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * nd
        if padding == "same":
            if any(si != 1 for si in s):
                raise ValueError(
                    f"{fname}: padding='same' is not supported for strided convolutions"
                )
            return [
                (di * (ki - 1) // 2, di * (ki - 1) - di * (ki - 1) // 2) for ki, di in zip(k, d)
            ]
        raise ValueError(
            f"{fname}: padding must be 'same', 'valid', an int or a tuple, got {padding!r}"
        )
    return [(p, p) for p in ntuple(padding, nd, "padding", minimum=0)]


def _flip_swap(w, groups):
    """Conv weight (O, C/g, kh, kw) -> the weight of its transpose (C, O/g, kh, kw), flipped."""
    O, Cg, KH, KW = w.shape
    Og = O // groups
    wt = w.reshape(groups, Og, Cg, KH, KW).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    return np.ascontiguousarray(wt.reshape(groups * Cg, Og, KH, KW))


def _pad_crop(a, pairs):
    """Pad (positive) or crop (negative) the last two axes of ``a`` by (before, after) pairs."""
    if all(lo >= 0 and hi >= 0 for lo, hi in pairs) and any(lo or hi for lo, hi in pairs):
        return np.pad(a, [(0, 0), (0, 0), *pairs])
    idx = [slice(None), slice(None)]
    for (lo, hi), n in zip(pairs, a.shape[2:]):
        idx.append(slice(max(-lo, 0), n - max(-hi, 0)))
    a = a[tuple(idx)]
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
    return np.pad(a, [(0, 0), (0, 0), *grow]) if any(lo or hi for lo, hi in grow) else a


def _grad_input_fast(gy, w, in_hw, s, pads, d, groups):
    """Input gradient of a 2-D conv as a stride-1 forward conv (see the module docstring)."""
    N, O, OH, OW = gy.shape
    C = w.shape[1] * groups
    k = w.shape[2:]
    wt = _flip_swap(w, groups)
    if k == (1, 1):  # 1×1 kernel: x[j·s − p] gets (Wᵀ gy)[j]; no zeros to multiply
        g1 = _conv2d_forward(gy, wt, None, 1, 0, 1, groups)
        gx = np.zeros((N, C) + tuple(in_hw), gy.dtype)
        src, dst = [slice(None)] * 2, [slice(None)] * 2
        for o, n, si, (pl, _) in zip((OH, OW), in_hw, s, pads):
            j0 = -(-pl // si)  # first j with j·s − p ≥ 0
            j1 = min(o, (n - 1 + pl) // si + 1)
            if j1 <= j0:
                return gx
            src.append(slice(j0, j1))
            dst.append(slice(j0 * si - pl, (j1 - 1) * si - pl + 1, si))
        gx[tuple(dst)] = g1[tuple(src)]
        return gx
    if s != (1, 1):
        gz = np.zeros((N, O, (OH - 1) * s[0] + 1, (OW - 1) * s[1] + 1), gy.dtype)
        gz[:, :, :: s[0], :: s[1]] = gy
    else:
        gz = gy
    pairs = []
    for n, ki, di, (pl, _), m in zip(in_hw, k, d, pads, gz.shape[2:]):
        lo = di * (ki - 1) - pl
        pairs.append((lo, n + di * (ki - 1) - m - lo))
    if all(lo == hi >= 0 for lo, hi in pairs):  # symmetric: let the conv pad
        return _conv2d_forward(gz, wt, None, 1, tuple(lo for lo, _ in pairs), d, groups)
    return _conv2d_forward(np.ascontiguousarray(_pad_crop(gz, pairs)), wt, None, 1, 0, d, groups)


def _conv_backward(
    fname, nd, grad_output, input, weight, stride, padding, dilation, groups, output_mask, path
):
    x = as_float_array(input)
    x, unbatched = _batched(x, nd, "input", fname)
    w, groups = conv_weight(x, weight, groups, nd, fname)
    N, C = x.shape[:2]
    O = w.shape[0]
    k = tuple(w.shape[2:])
    s = ntuple(stride, nd, "stride", minimum=1)
    d = ntuple(dilation, nd, "dilation", minimum=1)
    pads = _conv_pads(padding, nd, k, d, s, fname)
    outs = []
    for n, ki, si, di, (pl, pr) in zip(x.shape[2:], k, s, d, pads):
        o = (n + pl + pr - di * (ki - 1) - 1) // si + 1
        if o < 1:
            raise ValueError(f"{fname}: kernel larger than the padded input")
        outs.append(o)
    g = _grad_like(grad_output, x, fname)
    if unbatched and g.ndim == nd + 1:
        g = g[None]
    _check_shape(g, (N, O, *outs), fname)
    if nd == 1:  # a 1-D conv is a 2-D conv on planes of height 1
        x, w, g = x[:, :, None], w[:, :, None], g[:, :, None]
        k, s, d, pads = (1, *k), (1, *s), (1, *d), [(0, 0), *pads]
    w, g = np.ascontiguousarray(w), np.ascontiguousarray(g)
    want_x, want_w, want_b = output_mask  # x's values are read only for grad_weight
    gx = gw = gb = None
    if want_x:
        if path == "direct":
            Hp = max(
                x.shape[2] + pads[0][0] + pads[0][1],
                (g.shape[2] - 1) * s[0] + (k[0] - 1) * d[0] + 1,
            )
            Wp = max(
                x.shape[3] + pads[1][0] + pads[1][1],
                (g.shape[3] - 1) * s[1] + (k[1] - 1) * d[1] + 1,
            )
            gxp = np.zeros((N, C, Hp, Wp), x.dtype)
            _conv_grad_input(g, w, gxp, s[0], s[1], d[0], d[1], groups)
            (t, _), (le, _) = pads
            gx = np.ascontiguousarray(gxp[:, :, t : t + x.shape[2], le : le + x.shape[3]])
        elif path is None:
            gx = _grad_input_fast(g, w, x.shape[2:], s, pads, d, groups)
        else:
            raise ValueError(f"{fname}: path must be None or 'direct', got {path!r}")
        gx = gx.reshape((N, C) + x.shape[4 - nd :])
        gx = gx[0] if unbatched else gx
    if want_w:
        Hp = max(
            x.shape[2] + pads[0][0] + pads[0][1], (g.shape[2] - 1) * s[0] + (k[0] - 1) * d[0] + 1
        )
        Wp = max(
            x.shape[3] + pads[1][0] + pads[1][1], (g.shape[3] - 1) * s[1] + (k[1] - 1) * d[1] + 1
        )
        xp = np.zeros((N, C, Hp, Wp), x.dtype)
        (t, _), (le, _) = pads
        xp[:, :, t : t + x.shape[2], le : le + x.shape[3]] = x
        gw = np.empty(w.shape, x.dtype)
        _conv_grad_weight(g, xp, gw, s[0], s[1], d[0], d[1], groups)
        gw = gw.reshape(w.shape[:2] + w.shape[4 - nd :])
    if want_b:
        gb = g.sum(axis=(0, 2, 3), dtype=np.float64).astype(x.dtype)
    return gx, gw, gb


# ----------------------------------------------------------------- public: convolutions
def conv1d_backward(
    grad_output,
    input,
    weight,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    output_mask=(True, True, True),
    path=None,
):
    """Gradients of ``conv1d``: (grad_input, grad_weight, grad_bias).

    ``output_mask`` (as ``torch.ops.aten.convolution_backward``) says which of the three to
    compute; the others are None. grad_bias is the gradient a bias would get (Σ grad_output).
    """
    return _conv_backward(
        "conv1d_backward",
        1,
        grad_output,
        input,
        weight,
        stride,
        padding,
        dilation,
        groups,
        output_mask,
        path,
    )


def conv2d_backward(
    grad_output,
    input,
    weight,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    output_mask=(True, True, True),
    path=None,
):
    """Gradients of ``conv2d`` (any stride, padding incl. 'same'/'valid', dilation, groups):
    (grad_input, grad_weight, grad_bias), each None when ``output_mask`` leaves it out.

    ``path="direct"`` computes grad_input with the plain numba scatter kernel (reference);
    the default uses the forward ``conv2d`` on the zero-inserted, padded grad_output.
    """
    return _conv_backward(
        "conv2d_backward",
        2,
        grad_output,
        input,
        weight,
        stride,
        padding,
        dilation,
        groups,
        output_mask,
        path,
    )


def _conv_transpose_backward(
    fname,
    nd,
    grad_output,
    input,
    weight,
    stride,
    padding,
    output_padding,
    groups,
    dilation,
    output_mask,
):
    x = as_float_array(input)
    x, unbatched = _batched(x, nd, "input", fname)
    w = like(weight, x, "weight")
    if w is None or w.ndim != nd + 2 or w.shape[0] != x.shape[1]:
        raise ValueError(
            f"{fname}: weight must be (C_in, C_out/groups, *kernel) with C_in={x.shape[1]}"
        )
    if not is_int(groups) or groups < 1 or x.shape[1] % groups:
        raise ValueError(f"{fname}: groups={groups!r} must divide C_in={x.shape[1]}")
    s = ntuple(stride, nd, "stride", minimum=1)
    p = ntuple(padding, nd, "padding", minimum=0)
    op = ntuple(output_padding, nd, "output_padding", minimum=0)
    d = ntuple(dilation, nd, "dilation", minimum=1)
    k = w.shape[2:]
    outs = tuple(
        (n - 1) * si - 2 * pi + di * (ki - 1) + opi + 1
        for n, si, pi, di, ki, opi in zip(x.shape[2:], s, p, d, k, op)
    )
    g = _grad_like(grad_output, x, fname)
    if unbatched and g.ndim == nd + 1:
        g = g[None]
    _check_shape(g, (x.shape[0], w.shape[1] * groups, *outs), fname)
    want_x, want_w, want_b = output_mask
    gx = gw = gb = None
    if want_x:  # the adjoint of a transposed conv is the forward conv with the same weight
        crop = (slice(None), slice(None)) + tuple(slice(0, n) for n in x.shape[2:])
        y = _conv2d_forward(
            g if nd == 2 else g[:, :, None],
            w if nd == 2 else w[:, :, None],
            None,
            (1, *s) if nd == 1 else s,
            (0, *p) if nd == 1 else p,
            (1, *d) if nd == 1 else d,
            int(groups),
        )
        y = y if nd == 2 else y[:, :, 0]
        gx = np.ascontiguousarray(y[crop])
        gx = gx[0] if unbatched else gx
    if want_w:  # roles swapped: the transposed conv's input is the conv's grad_output
        # (output_padding >= stride, possible when dilation > stride, adds rows no x reads)
        extra = (slice(None), slice(None)) + tuple(
            slice(0, m - si * (opi // si)) for m, si, opi in zip(outs, s, op)
        )
        _, gw, _ = _conv_backward(
            fname, nd, x, g[extra], w, s, p, d, groups, (False, True, False), None
        )
    if want_b:
        gb = g.sum(axis=(0, *range(2, g.ndim)), dtype=np.float64).astype(x.dtype)
    return gx, gw, gb


def conv_transpose1d_backward(
    grad_output,
    input,
    weight,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
    output_mask=(True, True, True),
):
    """Gradients of ``conv_transpose1d``: (grad_input, grad_weight, grad_bias)."""
    return _conv_transpose_backward(
        "conv_transpose1d_backward",
        1,
        grad_output,
        input,
        weight,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        output_mask,
    )


def conv_transpose2d_backward(
    grad_output,
    input,
    weight,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
    output_mask=(True, True, True),
):
    """Gradients of ``conv_transpose2d``: (grad_input, grad_weight, grad_bias).

    The input gradient is the forward ``conv2d`` of grad_output with the same weight.
    """
    return _conv_transpose_backward(
        "conv_transpose2d_backward",
        2,
        grad_output,
        input,
        weight,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        output_mask,
    )


def conv2d_table_backward(
    grad_output, input, weight, connections, stride=1, padding=0, output_mask=(True, True, True)
):
    """Gradients of ``conv2d_table`` (LeNet-1998 partial connections): grad_weight has the
    table layout (C_out, max_len, kh, kw), zero in unused slots."""
    x = as_float_array(input)
    w = like(weight, x, "weight")
    O, L = w.shape[:2]
    C = x.shape[1]
    dense = np.zeros((O, C) + w.shape[2:], x.dtype)
    for o, conn in enumerate(connections):
        for j, c in enumerate(conn):
            dense[o, c] = w[o, j]
    gx, gd, gb = conv2d_backward(grad_output, x, dense, stride, padding, 1, 1, output_mask)
    gw = None
    if gd is not None:
        gw = np.zeros_like(w)
        for o, conn in enumerate(connections):
            for j, c in enumerate(conn):
                gw[o, j] = gd[o, c]
    return gx, gw, gb


# ----------------------------------------------------------------- public: pooling
def _planes(grad_output, input_shape, nd, fname, dtype=None):
    """grad_output as (P, OH, OW) planes, the zeroed (P, H, W) input gradient, final shape."""
    g = as_float_array(grad_output, "grad_output")
    shape = tuple(int(v) for v in input_shape)
    if g.ndim not in (nd + 1, nd + 2) or len(shape) != g.ndim:
        raise ValueError(
            f"{fname}: grad_output {g.shape} and input_shape {shape} must both be "
            f"{nd + 1}-D or {nd + 2}-D"
        )
    if shape[:-nd] != g.shape[:-nd]:
        raise ValueError(
            f"{fname}: batch/channels of grad_output {g.shape[:-nd]} and "
            f"input_shape {shape[:-nd]} differ"
        )
    lead = math.prod(shape[:-nd])
    hw = (1,) * (2 - nd) + shape[-nd:]
    ohw = (1,) * (2 - nd) + g.shape[-nd:]
    g3 = np.ascontiguousarray(g.reshape((lead,) + ohw))
    gx = np.zeros((lead,) + hw, g.dtype)
    return g3, gx, shape


def _max_backward(fname, nd, grad_output, indices, input_shape):
    g3, gx, shape = _planes(grad_output, input_shape, nd, fname)
    idx = np.asarray(indices)
    if idx.shape != np.shape(grad_output) or idx.dtype.kind not in "iu":
        raise ValueError(
            f"{fname}: indices must be integers of grad_output's shape {np.shape(grad_output)}"
        )
    plane = gx.shape[1] * gx.shape[2]
    idx2 = np.ascontiguousarray(idx.reshape(g3.shape[0], -1), dtype=np.int64)
    if idx2.size and (idx2.min() < 0 or idx2.max() >= plane):
        raise ValueError(
            f"{fname}: indices must lie in [0, {plane}) (flat index into each input plane)"
        )
    if g3.size:
        _scatter_planes(g3.reshape(g3.shape[0], -1), idx2, gx.reshape(gx.shape[0], -1))
    return gx.reshape(shape)


def max_pool1d_backward(grad_output, indices, input_shape):
    """Gradient of ``max_pool1d`` given the indices it returned (``return_indices=True``):
    each output's gradient goes to the element that was its maximum."""
    return _max_backward("max_pool1d_backward", 1, grad_output, indices, input_shape)


def max_pool2d_backward(grad_output, indices, input_shape):
    """Gradient of ``max_pool2d`` given its indices (PyTorch's flat index into each input
    plane, from ``return_indices=True``): every output's gradient goes to its argmax; the other
    elements get 0; elements that are the maximum of several windows add their gradients."""
    return _max_backward("max_pool2d_backward", 2, grad_output, indices, input_shape)


def adaptive_max_pool1d_backward(grad_output, indices, input_shape):
    """Gradient of ``adaptive_max_pool1d`` given its indices."""
    return _max_backward("adaptive_max_pool1d_backward", 1, grad_output, indices, input_shape)


def adaptive_max_pool2d_backward(grad_output, indices, input_shape):
    """Gradient of ``adaptive_max_pool2d`` given its indices."""
    return _max_backward("adaptive_max_pool2d_backward", 2, grad_output, indices, input_shape)


def _pool_out(n, k, s, p, d, ceil_mode):
    return pool_out(n, k, s, p, d, ceil_mode)[0]  # PyTorch's rule, one home: arithmetic


def _window_params(fname, nd, shape, kernel_size, stride, padding, dilation, ceil_mode, g3):
    k = ntuple(kernel_size, nd, "kernel_size", minimum=1)
    s = (
        k
        if stride is None or (not is_int(stride) and len(tuple(stride)) == 0)
        else ntuple(stride, nd, "stride", minimum=1)
    )
    p = ntuple(padding, nd, "padding", minimum=0)
    d = ntuple(dilation, nd, "dilation", minimum=1)
    outs = tuple(_pool_out(n, *a, bool(ceil_mode)) for n, a in zip(shape[-nd:], zip(k, s, p, d)))
    if g3.shape[-nd:] != outs:
        raise ValueError(
            f"{fname}: grad_output has spatial size {g3.shape[-nd:]}, the forward output has {outs}"
        )
    fill = 2 - nd
    return ((1,) * fill + k, (1,) * fill + s, (0,) * fill + p, (1,) * fill + d, (1,) * fill + outs)


def _avg_backward(
    fname,
    nd,
    grad_output,
    input_shape,
    kernel_size,
    stride,
    padding,
    ceil_mode,
    count_include_pad,
    divisor_override,
):
    g3, gx, shape = _planes(grad_output, input_shape, nd, fname)
    k, s, p, d, o = _window_params(
        fname,
        nd,
        shape,
        kernel_size,
        stride,
        padding,
        1,
        ceil_mode,
        np.empty(np.shape(grad_output)[-nd:]),
    )
    hw = gx.shape[1:]
    if divisor_override is not None:
        if not is_int(divisor_override) or divisor_override == 0:
            raise ValueError(f"{fname}: divisor_override must be a non-zero int")

    def counts(n, on, kk, ss, pp):  # the forward's divisor and whether the window is real
        c = np.empty(on)
        for i in range(on):
            a = i * ss - pp
            b = min(a + kk, n + pp)
            c[i] = (b - a) if count_include_pad else (min(b, n) - max(a, 0))
            if min(a + kk, n) <= max(a, 0):
                c[i] = np.inf  # no real element: output 0, no gradient
        return c

    hc = counts(hw[0], o[0], k[0], s[0], p[0])
    wc = counts(hw[1], o[1], k[1], s[1], p[1])
    div = np.outer(hc, wc)
    if divisor_override is not None:
        div = np.where(np.isinf(div), np.inf, float(divisor_override))
    scale = (1.0 / div).astype(g3.dtype)
    if g3.size:
        _window_backward(g3, gx, k[0], k[1], s[0], s[1], p[0], p[1], 1, 1, scale)
    return gx.reshape(shape)


def avg_pool1d_backward(
    grad_output,
    input_shape,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """Gradient of ``avg_pool1d``: each output's gradient divided by its window's divisor and
    given to every real element of the window."""
    return _avg_backward(
        "avg_pool1d_backward",
        1,
        grad_output,
        input_shape,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


def avg_pool2d_backward(
    grad_output,
    input_shape,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """Gradient of ``avg_pool2d`` (count_include_pad, ceil_mode, divisor_override honoured):
    the mean splits its gradient evenly over the elements it averaged, so with non-overlapping
    windows and no padding the sum of the gradient is preserved."""
    return _avg_backward(
        "avg_pool2d_backward",
        2,
        grad_output,
        input_shape,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


def _sum_backward(
    fname, nd, grad_output, input_shape, kernel_size, stride, padding, dilation, ceil_mode
):
    g3, gx, shape = _planes(grad_output, input_shape, nd, fname)
    k, s, p, d, o = _window_params(
        fname,
        nd,
        shape,
        kernel_size,
        stride,
        padding,
        dilation,
        ceil_mode,
        np.empty(np.shape(grad_output)[-nd:]),
    )
    scale = np.ones(o, g3.dtype)
    if g3.size:
        _window_backward(g3, gx, k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1], scale)
    return gx.reshape(shape)


def sum_pool1d_backward(
    grad_output, input_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False
):
    """1-D :func:`sum_pool2d_backward`."""
    return _sum_backward(
        "sum_pool1d_backward",
        1,
        grad_output,
        input_shape,
        kernel_size,
        stride,
        padding,
        dilation,
        ceil_mode,
    )


def sum_pool2d_backward(
    grad_output, input_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False
):
    """Gradient of a window *sum* with max pooling's geometry (dilation included): every real
    element of a window receives the window's whole gradient.

    This is max pooling "able to pass any element of its window" (the theoretical receptive
    field), and LeNet's subsampling before its per-map coefficient.
    """
    return _sum_backward(
        "sum_pool2d_backward",
        2,
        grad_output,
        input_shape,
        kernel_size,
        stride,
        padding,
        dilation,
        ceil_mode,
    )


def _adaptive_bins(n, on):
    i = np.arange(on)
    return ((i * n) // on).astype(np.int64), (-((-(i + 1) * n) // on)).astype(np.int64)


def _adaptive_avg(fname, nd, grad_output, input_shape, divide):
    g3, gx, shape = _planes(grad_output, input_shape, nd, fname)
    ys, ye = _adaptive_bins(gx.shape[1], g3.shape[1])
    xs, xe = _adaptive_bins(gx.shape[2], g3.shape[2])
    if g3.size:
        _adaptive_backward(g3, gx, ys, ye, xs, xe, divide)
    return gx.reshape(shape)


def adaptive_avg_pool1d_backward(grad_output, input_shape):
    """Gradient of ``adaptive_avg_pool1d`` (PyTorch's bins ⌊i·n/o⌋ … ⌈(i+1)·n/o⌉)."""
    return _adaptive_avg("adaptive_avg_pool1d_backward", 1, grad_output, input_shape, True)


def adaptive_avg_pool2d_backward(grad_output, input_shape):
    """Gradient of ``adaptive_avg_pool2d``."""
    return _adaptive_avg("adaptive_avg_pool2d_backward", 2, grad_output, input_shape, True)


def adaptive_sum_pool1d_backward(grad_output, input_shape):
    """1-D :func:`adaptive_sum_pool2d_backward`."""
    return _adaptive_avg("adaptive_sum_pool1d_backward", 1, grad_output, input_shape, False)


def adaptive_sum_pool2d_backward(grad_output, input_shape):
    """Gradient of an adaptive window *sum*: every element of a bin receives the bin's whole
    gradient (adaptive max pooling able to pass any element of its bin)."""
    return _adaptive_avg("adaptive_sum_pool2d_backward", 2, grad_output, input_shape, False)


def subsample2d_backward(
    grad_output, input, weight, kernel_size, stride=None, output_mask=(True, True, True)
):
    """Gradients of LeNet's ``subsample2d`` (window sum · weight[c] + bias[c])."""
    x = as_float_array(input)
    w = like(weight, x, "weight")
    g = _grad_like(grad_output, x, "subsample2d_backward")
    k = ntuple(kernel_size, 2, "kernel_size", minimum=1)
    s = k if stride is None else ntuple(stride, 2, "stride", minimum=1)
    gx = gw = gb = None
    if output_mask[0]:
        gx = sum_pool2d_backward(g * w[None, :, None, None], x.shape, k, s)
    if output_mask[1]:
        from ._pool import avg_pool2d

        sums = avg_pool2d(x, k, s, divisor_override=1)
        gw = (g * sums).sum(axis=(0, 2, 3), dtype=np.float64).astype(x.dtype)
    if output_mask[2]:
        gb = g.sum(axis=(0, 2, 3), dtype=np.float64).astype(x.dtype)
    return gx, gw, gb


# ----------------------------------------------------------------- public: dense
def linear_backward(grad_output, input, weight, output_mask=(True, True, True)):
    """Gradients of ``linear`` (y = x Wᵀ + b on the last dimension, any leading dims):
    (grad_input = gy W, grad_weight = Σ gyᵀ x, grad_bias = Σ gy)."""
    x = as_float_array(input)
    w = like(weight, x, "weight")
    g = _grad_like(grad_output, x, "linear_backward")
    if w is None or w.ndim != 2 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            "linear_backward: weight must be (out_features, in_features) with "
            "in_features = input.shape[-1]"
        )
    _check_shape(g, x.shape[:-1] + (w.shape[0],), "linear_backward")
    gx = np.matmul(g, w) if output_mask[0] else None
    g2, x2 = g.reshape(-1, w.shape[0]), x.reshape(-1, w.shape[1])
    gw = (g2.T @ x2).astype(x.dtype) if output_mask[1] else None
    gb = g2.sum(axis=0, dtype=np.float64).astype(x.dtype) if output_mask[2] else None
    return gx, gw, gb


def rbf_backward(grad_output, input, weight):
    """Input gradient of LeNet's ``rbf`` (its centres are fixed): 2 Σ_i gy_i (x − w_i)."""
    x = as_float_array(input)
    w = like(weight, x, "weight")
    g = _grad_like(grad_output, x, "rbf_backward")
    return (2.0 * (g.sum(axis=-1, keepdims=True) * x - g @ w)).astype(x.dtype)


def batch_norm_backward(
    grad_output,
    input,
    running_mean,
    running_var,
    weight=None,
    eps=1e-5,
    output_mask=(True, True, True),
):
    """Gradients of inference ``batch_norm`` (running statistics are constants):
    grad_input = gy·γ/√(var+ε), grad_weight = Σ gy·x̂, grad_bias = Σ gy (per channel)."""
    x = as_float_array(input)
    g = _grad_like(grad_output, x, "batch_norm_backward")
    _check_shape(g, x.shape, "batch_norm_backward")
    C = x.shape[1]
    bshape = (1, C) + (1,) * (x.ndim - 2)
    mean = np.asarray(running_mean, np.float64).reshape(bshape)
    inv = 1.0 / np.sqrt(np.asarray(running_var, np.float64).reshape(bshape) + eps)
    gamma = 1.0 if weight is None else np.asarray(weight, np.float64).reshape(bshape)
    axes = (0, *range(2, x.ndim))
    gx = (g * (gamma * inv)).astype(x.dtype) if output_mask[0] else None
    gw = gb = None
    if output_mask[1] and weight is not None:
        gw = (g * ((x - mean) * inv)).sum(axis=axes, dtype=np.float64).astype(x.dtype)
    if output_mask[2]:
        gb = g.sum(axis=axes, dtype=np.float64).astype(x.dtype)
    return gx, gw, gb


# ----------------------------------------------------------------- public: element-wise
def _unary(grad_output, input, op, a=0.0, b=0.0, c=0.0, fname="backward"):
    x = as_float_array(input)
    g = _grad_like(grad_output, x, fname)
    _check_shape(g, x.shape, fname)
    xf = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(xf)
    if xf.size:
        _unary_grad(xf, g.reshape(-1), out, op, float(a), float(b), float(c))
    return out.reshape(x.shape)


def relu_backward(grad_output, input):
    """grad_output where input > 0, else 0 (PyTorch's threshold_backward)."""
    return _unary(grad_output, input, _RELU, fname="relu_backward")


def hardtanh_backward(grad_output, input, min_val=-1.0, max_val=1.0):
    """grad_output strictly inside (min_val, max_val), else 0."""
    return _unary(grad_output, input, _HARDTANH, min_val, max_val, fname="hardtanh_backward")


def relu6_backward(grad_output, input):
    """hardtanh_backward on (0, 6)."""
    return _unary(grad_output, input, _HARDTANH, 0.0, 6.0, fname="relu6_backward")


def leaky_relu_backward(grad_output, input, negative_slope=0.01):
    """grad_output where input > 0, else negative_slope · grad_output."""
    return _unary(grad_output, input, _LEAKY, negative_slope, fname="leaky_relu_backward")


def elu_backward(grad_output, input, alpha=1.0, scale=1.0, input_scale=1.0):
    """PyTorch's elu_backward: scale for x > 0, α·scale·input_scale·exp(x·input_scale) else
    (elu: scale = input_scale = 1; selu: PyTorch's constants; celu: input_scale = 1/α)."""
    return _unary(grad_output, input, _ELU, alpha, scale, input_scale, fname="elu_backward")


def selu_backward(grad_output, input):
    """elu_backward with SELU's α and scale."""
    return _unary(grad_output, input, _ELU, _SELU_ALPHA, _SELU_SCALE, 1.0, fname="selu_backward")


def celu_backward(grad_output, input, alpha=1.0):
    """elu_backward with input_scale 1/α."""
    return _unary(grad_output, input, _ELU, alpha, 1.0, 1.0 / alpha, fname="celu_backward")


def gelu_backward(grad_output, input, approximate="none"):
    """Derivative of the exact GELU, or of its tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise ValueError(
            f"gelu_backward: approximate must be 'none' or 'tanh', got {approximate!r}"
        )
    op = _GELU if approximate == "none" else _GELU_TANH
    return _unary(grad_output, input, op, fname="gelu_backward")


def silu_backward(grad_output, input):
    """σ(x)·(1 + x·(1 − σ(x)))."""
    return _unary(grad_output, input, _SILU, fname="silu_backward")


def mish_backward(grad_output, input):
    """tanh(sp) + x·σ(x)·(1 − tanh²(sp)), sp = softplus(x)."""
    return _unary(grad_output, input, _MISH, fname="mish_backward")


def sigmoid_backward(grad_output, input):
    """σ(x)(1 − σ(x)) — from the input (PyTorch's sigmoid_backward takes the output)."""
    return _unary(grad_output, input, _SIGMOID, fname="sigmoid_backward")


def tanh_backward(grad_output, input):
    """1 − tanh²(x) — from the input (PyTorch's tanh_backward takes the output)."""
    return _unary(grad_output, input, _TANH, fname="tanh_backward")


def hardswish_backward(grad_output, input):
    """0 below −3, x/3 + 1/2 on [−3, 3], 1 above (PyTorch's convention at the kinks)."""
    return _unary(grad_output, input, _HARDSWISH, fname="hardswish_backward")


def hardsigmoid_backward(grad_output, input):
    """1/6 strictly inside (−3, 3), else 0."""
    return _unary(grad_output, input, _HARDSIGMOID, fname="hardsigmoid_backward")


def softplus_backward(grad_output, input, beta=1.0, threshold=20.0):
    """σ(β·x), or 1 where β·x > threshold (the forward is linear there)."""
    return _unary(grad_output, input, _SOFTPLUS, beta, threshold, fname="softplus_backward")


def prelu_backward(grad_output, input, weight):
    """Gradients of ``prelu``: (grad_input, grad_weight); weight (1,) or (C,)."""
    x = as_float_array(input)
    g = _grad_like(grad_output, x, "prelu_backward")
    w = np.asarray(weight, np.float64).reshape(-1)
    C = x.shape[1] if x.ndim >= 2 else 1
    wb = (w if w.size == C else np.full(C, w[0])).reshape((1, C) + (1,) * max(x.ndim - 2, 0))
    if x.ndim < 2:
        wb = wb.reshape(())
    pos = x > 0
    gx = np.where(pos, g, g * wb).astype(x.dtype)
    contrib = np.where(pos, 0.0, g * x.astype(np.float64))
    if w.size == 1:
        gw = np.array([contrib.sum()], x.dtype)
    else:
        gw = contrib.sum(axis=tuple(i for i in range(x.ndim) if i != 1)).astype(x.dtype)
    return gx, gw


def softmax_backward(grad_output, output, dim):
    """From the softmax output y: y·(gy − Σ gy·y) along ``dim``."""
    y = as_float_array(output, "output")
    g = _grad_like(grad_output, y, "softmax_backward")
    return (y * (g - (g * y).sum(axis=dim, keepdims=True))).astype(y.dtype)


def log_softmax_backward(grad_output, output, dim):
    """From the log_softmax output y: gy − exp(y)·Σ gy along ``dim``."""
    y = as_float_array(output, "output")
    g = _grad_like(grad_output, y, "log_softmax_backward")
    return (g - np.exp(y) * g.sum(axis=dim, keepdims=True)).astype(y.dtype)


# ----------------------------------------------------------------- public: shape and merges
def flatten_backward(grad_output, input_shape):
    """Flatten is a reshape: its gradient is grad_output reshaped to the input's shape."""
    g = as_float_array(grad_output, "grad_output")
    if g.size != math.prod(input_shape):
        raise ValueError(f"flatten_backward: {g.shape} cannot take the shape {input_shape}")
    return g.reshape(tuple(input_shape))


def pad_backward(grad_output, pad, mode="constant", input_shape=None):
    """Gradient of ``pad``: 'constant' keeps the part that came from the input (the negated
    padding: padded borders are dropped, cropped borders get 0); 'reflect', 'replicate' and
    'circular' also add each copied border back onto its source (``input_shape`` needed)."""
    g = as_float_array(grad_output, "grad_output")
    p = [int(v) for v in pad]
    if mode == "constant":
        return _pad_forward(g, [-v for v in p])
    if input_shape is None:
        raise ValueError(f"pad_backward: mode {mode!r} needs input_shape")
    k = len(p) // 2
    out = g
    for i in range(k):
        axis = g.ndim - 1 - i
        lo, hi = p[2 * i], p[2 * i + 1]
        n = int(input_shape[axis])
        j = pad_source_index(n, lo, hi, mode)
        moved = np.moveaxis(out, axis, 0)
        acc = np.zeros((n,) + moved.shape[1:], g.dtype)
        np.add.at(acc, j, moved)
        out = np.moveaxis(acc, 0, axis)
    return np.ascontiguousarray(out)


def add_backward(grad_output, n):
    """Gradient of ``add`` of ``n`` tensors: each receives grad_output (the same array)."""
    g = as_float_array(grad_output, "grad_output")
    return [g] * int(n)


def cat_backward(grad_output, sizes, dim=1):
    """Gradient of ``cat``: grad_output split back into pieces of ``sizes`` along ``dim``."""
    g = as_float_array(grad_output, "grad_output")
    if sum(sizes) != g.shape[dim]:
        raise ValueError(f"cat_backward: sizes {tuple(sizes)} do not add up to {g.shape[dim]}")
    return np.split(g, np.cumsum(sizes)[:-1], axis=dim)


def mul_backward(grad_output, inputs):
    """Gradient of ``mul`` w.r.t. each input: grad × the product of the others, summed over
    the axes that input was broadcast along."""
    g = as_float_array(grad_output, "grad_output")
    arrs = [as_float_array(t) for t in inputs]
    grads = []
    for i, a in enumerate(arrs):
        gi = g
        for j, other in enumerate(arrs):
            if j != i:
                gi = gi * other
        lead = gi.ndim - a.ndim
        axes = tuple(range(lead)) + tuple(
            lead + d for d, n in enumerate(a.shape) if n == 1 and gi.shape[lead + d] != 1
        )
        grads.append(np.sum(gi, axis=axes, keepdims=True).reshape(a.shape) if axes else gi)
    return grads
