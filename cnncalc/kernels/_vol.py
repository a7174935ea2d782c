# ruff: noqa: E741  (O = number of output channels, as in the formulas)
"""3-D (volumetric) layers: pooling, adaptive pooling, transposed convolution, and the
gradients of these and of ``conv3d``; numpy in and out, (N, C, D, H, W) layouts.

The reductions are vectorised numpy over the kernel's offsets: for each offset (a, b, c) of a
k_D×k_H×k_W window, one strided view of the padded input holds that element of every window,
so a pass costs one sweep of the output per kernel element (27 for 3×3×3) and every loop left
in Python runs over the kernel, never over the data. The transposed convolution and the input
gradient of ``conv3d`` run the fast forward ``conv3d`` on zero-inserted, padded input with the
flipped, channel-swapped weight (Dumoulin & Visin, arXiv 1603.07285, §4); the weight gradient
is one matrix product per kernel offset.
"""

import itertools
import math

import numpy as np

from cnncalc.arithmetic import pool_out

from ._common import as_float_array, conv_weight, is_int, like, ntuple
from ._conv import conv3d as _conv3d_forward


# ----------------------------------------------------------------- helpers
def _batched5(x, fname, name="input"):
    if x.ndim == 4:
        return x[None], True
    if x.ndim != 5:
        raise ValueError(f"{fname}: {name} must be 4-D or 5-D, got shape {x.shape}")
    return x, False


def _pool_out(n, k, s, p, d, ceil_mode):
    return pool_out(n, k, s, p, d, ceil_mode)[0]  # PyTorch's rule, one home: arithmetic


def _geometry(fname, spatial, kernel_size, stride, padding, dilation, ceil_mode):
    k = ntuple(kernel_size, 3, "kernel_size", minimum=1)
    if stride is None or (not is_int(stride) and len(tuple(stride)) == 0):
        s = k
    else:
        s = ntuple(stride, 3, "stride", minimum=1)
    p = ntuple(padding, 3, "padding", minimum=0)
    d = ntuple(dilation, 3, "dilation", minimum=1)
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise ValueError(
            f"{fname}: padding should be at most half of the kernel size, got "
            f"padding={p} for kernel_size={k}"
        )
    o = tuple(_pool_out(n, *a, bool(ceil_mode)) for n, a in zip(spatial, zip(k, s, p, d)))
    if min(o) < 1:
        raise ValueError(f"{fname}: output size is too small (input {tuple(spatial)})")
    return k, s, p, d, o


def _padded(x, p, k, s, d, o, fill):
    """x padded by p before and enough after that every window fits (ceil mode overhangs)."""
    after = [
        max(pi, (oi - 1) * si + di * (ki - 1) + 1 - n - pi)
        for n, pi, ki, si, di, oi in zip(x.shape[2:], p, k, s, d, o)
    ]
    return np.pad(x, [(0, 0), (0, 0)] + [(pi, a) for pi, a in zip(p, after)], constant_values=fill)


def _view(a, offset, s, o):
    """The strided view of ``a`` holding element ``offset`` of every window."""
    return a[
        (slice(None), slice(None))
        + tuple(slice(t, t + (oi - 1) * si + 1, si) for t, si, oi in zip(offset, s, o))
    ]


def _offsets(k, d):
    return [tuple(t * di for t, di in zip(ts, d)) for ts in itertools.product(*map(range, k))]


def _counts(n, on, kk, ss, pp, include_pad):
    """PyTorch's avg-pool divisor along one axis (a window clipped to the padded input, or to
    the input when padding is not counted)."""
    c = np.empty(on)
    for i in range(on):
        a = i * ss - pp
        b = min(a + kk, n + pp)
        c[i] = (b - a) if include_pad else (min(b, n) - max(a, 0))
    return c


def _divisor(spatial, k, s, p, o, include_pad, divisor_override):
    if divisor_override is not None:
        if not is_int(divisor_override) or divisor_override == 0:
            raise ValueError("divisor_override must be a non-zero int")
        return np.full(o, float(divisor_override))
    c = [_counts(n, oi, ki, si, pi, include_pad) for n, oi, ki, si, pi in zip(spatial, o, k, s, p)]
    return c[0][:, None, None] * c[1][None, :, None] * c[2][None, None, :]


# ----------------------------------------------------------------- pooling
def max_pool3d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """``torch.nn.functional.max_pool3d``; indices are PyTorch's flat index into each input
    volume (d·H·W + h·W + w); the first maximum in scan order wins, as in PyTorch."""
    x, unb = _batched5(as_float_array(input), "max_pool3d")
    k, s, p, d, o = _geometry(
        "max_pool3d", x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode
    )
    xp = _padded(x, p, k, s, d, o, -np.inf)
    best = np.full(x.shape[:2] + o, -np.inf, x.dtype)
    idx = np.zeros(x.shape[:2] + o, np.int64) if return_indices else None
    D, H, W = x.shape[2:]
    grids = np.meshgrid(*[np.arange(oi) * si - pi for oi, si, pi in zip(o, s, p)], indexing="ij")
    for off in _offsets(k, d):
        v = _view(xp, off, s, o)
        better = v > best
        np.copyto(best, v, where=better)
        if idx is not None:
            z, y, xx = (g + t for g, t in zip(grids, off))
            np.copyto(idx, np.broadcast_to((z * H + y) * W + xx, idx.shape), where=better)
    if unb:
        best = best[0]
        idx = None if idx is None else idx[0]
    return (best, idx) if return_indices else best


def avg_pool3d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """``torch.nn.functional.avg_pool3d``."""
    x, unb = _batched5(as_float_array(input), "avg_pool3d")
    k, s, p, d, o = _geometry("avg_pool3d", x.shape[2:], kernel_size, stride, padding, 1, ceil_mode)
    xp = _padded(x, p, k, s, d, o, 0.0)
    acc = np.zeros(x.shape[:2] + o, np.float64 if x.dtype == np.float64 else x.dtype)
    for off in _offsets(k, d):
        acc += _view(xp, off, s, o)
    div = _divisor(x.shape[2:], k, s, p, o, count_include_pad, divisor_override)
    out = (acc / div).astype(x.dtype)
    return out[0] if unb else out


def _window_scatter(fname, grad_output, input_shape, k, s, p, d, o, scale):
    """The adjoint of the window sums: every element gets the (scaled) gradients of the
    windows that hold it."""
    g = as_float_array(grad_output, "grad_output")
    shape = tuple(int(v) for v in input_shape)
    g5, unb = _batched5(g, fname, "grad_output")
    if g5.shape[2:] != o:
        raise ValueError(
            f"{fname}: grad_output has spatial size {g5.shape[2:]}, the forward output has {o}"
        )
    full = shape if len(shape) == 5 else (1, *shape)
    gs = g5 * scale if scale is not None else g5
    gxp = _padded(np.zeros(full, g.dtype), p, k, s, d, o, 0.0)
    for off in _offsets(k, d):
        _view(gxp, off, s, o)[...] += gs
    D, H, W = full[2:]
    gx = gxp[:, :, p[0] : p[0] + D, p[1] : p[1] + H, p[2] : p[2] + W]
    return np.ascontiguousarray(gx.reshape(shape))


def avg_pool3d_backward(
    grad_output,
    input_shape,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """Gradient of ``avg_pool3d``: each output's gradient spread over its window, divided by
    the forward's divisor."""
    spatial = tuple(int(v) for v in input_shape)[-3:]
    k, s, p, d, o = _geometry(
        "avg_pool3d_backward", spatial, kernel_size, stride, padding, 1, ceil_mode
    )
    div = _divisor(spatial, k, s, p, o, count_include_pad, divisor_override)
    return _window_scatter(
        "avg_pool3d_backward",
        grad_output,
        input_shape,
        k,
        s,
        p,
        d,
        o,
        (1.0 / div).astype(np.asarray(grad_output).dtype),
    )


def sum_pool3d_backward(
    grad_output, input_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False
):
    """Every element of a max-pool window gets the window's gradient: the theoretical field
    (a max pool able to pass any element of its window)."""
    spatial = tuple(int(v) for v in input_shape)[-3:]
    k, s, p, d, o = _geometry(
        "sum_pool3d_backward", spatial, kernel_size, stride, padding, dilation, ceil_mode
    )
    return _window_scatter("sum_pool3d_backward", grad_output, input_shape, k, s, p, d, o, None)


def _scatter_volumes(fname, grad_output, indices, input_shape):
    g = as_float_array(grad_output, "grad_output")
    shape = tuple(int(v) for v in input_shape)
    idx = np.asarray(indices)
    if idx.shape != g.shape or idx.dtype.kind not in "iu":
        raise ValueError(f"{fname}: indices must be integers of grad_output's shape {g.shape}")
    lead = math.prod(shape[:-3])
    vol = math.prod(shape[-3:])
    if g.shape[:-3] != shape[:-3]:
        raise ValueError(f"{fname}: grad_output {g.shape} does not fit input_shape {shape}")
    gx = np.zeros((lead, vol), g.dtype)
    i2 = idx.reshape(lead, -1).astype(np.int64)
    if i2.size and (i2.min() < 0 or i2.max() >= vol):
        raise ValueError(f"{fname}: indices must lie in [0, {vol})")
    rows = np.repeat(np.arange(lead), i2.shape[1])
    np.add.at(gx, (rows, i2.reshape(-1)), g.reshape(-1))
    return gx.reshape(shape)


def max_pool3d_backward(grad_output, indices, input_shape):
    """Gradient of ``max_pool3d`` given the indices it returned: each output's gradient goes to
    its maximum; elements that are the maximum of several windows add them up."""
    return _scatter_volumes("max_pool3d_backward", grad_output, indices, input_shape)


def adaptive_max_pool3d_backward(grad_output, indices, input_shape):
    """Gradient of ``adaptive_max_pool3d`` given its indices."""
    return _scatter_volumes("adaptive_max_pool3d_backward", grad_output, indices, input_shape)


# ----------------------------------------------------------------- adaptive pooling
def _bins(n, on):
    return [(i * n // on, -(-(i + 1) * n // on)) for i in range(on)]


def _adaptive_sizes(fname, x, output_size):
    osz = (output_size,) * 3 if is_int(output_size) or output_size is None else tuple(output_size)
    if len(osz) == 1:
        osz = osz * 3
    if len(osz) != 3:
        raise ValueError(f"{fname}: output_size must have 3 entries, got {output_size!r}")
    out = []
    for n, e in zip(x.shape[2:], osz):
        e = n if e is None else e
        if not is_int(e) or e < 1:
            raise ValueError(f"{fname}: output_size entries must be positive ints or None")
        out.append(int(e))
    return out


def adaptive_avg_pool3d(input, output_size):
    """``torch.nn.functional.adaptive_avg_pool3d``: bins [⌊i·n/o⌋, ⌈(i+1)·n/o⌉) per axis; the
    mean over a box is the mean of means along each axis."""
    x, unb = _batched5(as_float_array(input), "adaptive_avg_pool3d")
    out = x
    for axis, o in enumerate(_adaptive_sizes("adaptive_avg_pool3d", x, output_size)):
        bins = _bins(x.shape[2 + axis], o)
        out = np.stack(
            [out.take(range(a, b), axis=2 + axis).mean(axis=2 + axis) for a, b in bins],
            axis=2 + axis,
        )
    out = np.ascontiguousarray(out, dtype=x.dtype)
    return out[0] if unb else out


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """``torch.nn.functional.adaptive_max_pool3d`` (indices: flat into each input volume)."""
    x, unb = _batched5(as_float_array(input), "adaptive_max_pool3d")
    o = _adaptive_sizes("adaptive_max_pool3d", x, output_size)
    D, H, W = x.shape[2:]
    N, C = x.shape[:2]
    out = np.empty((N, C, *o), x.dtype)
    idx = np.empty((N, C, *o), np.int64)
    for (i, (z0, z1)), (j, (y0, y1)), (m, (x0, x1)) in itertools.product(
        *[enumerate(_bins(n, oi)) for n, oi in zip((D, H, W), o)]
    ):
        box = x[:, :, z0:z1, y0:y1, x0:x1].reshape(N, C, -1)
        arg = box.argmax(axis=2)  # the first maximum in scan order, as PyTorch
        out[:, :, i, j, m] = np.take_along_axis(box, arg[..., None], 2)[..., 0]
        bz, rest = np.divmod(arg, (y1 - y0) * (x1 - x0))
        by, bx = np.divmod(rest, x1 - x0)
        idx[:, :, i, j, m] = ((z0 + bz) * H + y0 + by) * W + x0 + bx
    if unb:
        out, idx = out[0], idx[0]
    return (out, idx) if return_indices else out


def _adaptive_spread(fname, grad_output, input_shape, divide):
    g = as_float_array(grad_output, "grad_output")
    shape = tuple(int(v) for v in input_shape)
    g5, unb = _batched5(g, fname, "grad_output")
    out = g5
    for axis, n in enumerate(shape[-3:]):
        o = g5.shape[2 + axis]
        moved = np.moveaxis(out, 2 + axis, -1)
        acc = np.zeros(moved.shape[:-1] + (n,), g.dtype)
        for i, (a, b) in enumerate(_bins(n, o)):
            acc[..., a:b] += moved[..., i : i + 1] / ((b - a) if divide else 1)
        out = np.moveaxis(acc, -1, 2 + axis)
    return np.ascontiguousarray(out.reshape(shape))


def adaptive_avg_pool3d_backward(grad_output, input_shape):
    """Gradient of ``adaptive_avg_pool3d``: each bin's gradient spread evenly over it."""
    return _adaptive_spread("adaptive_avg_pool3d_backward", grad_output, input_shape, True)


def adaptive_sum_pool3d_backward(grad_output, input_shape):
    """Each bin's gradient given to every element of the bin (theoretical field)."""
    return _adaptive_spread("adaptive_sum_pool3d_backward", grad_output, input_shape, False)


# ----------------------------------------------------------------- convolutions
def _flip_swap(w, groups):
    """Conv weight (O, C/g, *k) -> the weight of its transpose (C, O/g, *k), flipped."""
    O, Cg = w.shape[:2]
    k = w.shape[2:]
    Og = O // groups
    wt = w.reshape(groups, Og, Cg, *k).swapaxes(1, 2)[..., ::-1, ::-1, ::-1]
    return np.ascontiguousarray(wt.reshape(groups * Cg, Og, *k))


def _grad_input(gy, w, in_size, s, pads, d, groups):
    """Input gradient of a 3-D conv (weight (O, C/g, *k)) for an input of spatial ``in_size``:
    the stride-1 conv of grad_output with zeros inserted and padded by d(k−1) − p."""
    N, O = gy.shape[:2]
    k = w.shape[2:]
    outs = gy.shape[2:]
    if s != (1, 1, 1):
        gz = np.zeros((N, O, *[(m - 1) * si + 1 for m, si in zip(outs, s)]), gy.dtype)
        gz[(slice(None), slice(None)) + tuple(slice(None, None, si) for si in s)] = gy
    else:
        gz = gy
    pairs = []
    for n, ki, di, (pl, _), m in zip(in_size, k, d, pads, gz.shape[2:]):
        lo = di * (ki - 1) - pl
        pairs.append((lo, n + di * (ki - 1) - m - lo))
    crop = (slice(None), slice(None)) + tuple(
        slice(max(-lo, 0), m - max(-hi, 0)) for (lo, hi), m in zip(pairs, gz.shape[2:])
    )
    gz = np.pad(gz[crop], [(0, 0), (0, 0)] + [(max(lo, 0), max(hi, 0)) for lo, hi in pairs])
    return _conv3d_forward(np.ascontiguousarray(gz), _flip_swap(w, groups), None, 1, 0, d, groups)


def _grad_weight(gy, x, wshape, s, pads, d, groups):
    """Σ over batch and positions of grad_output × the input element each weight met."""
    N, O = gy.shape[:2]
    C = x.shape[1]
    Og, Cg = O // groups, C // groups
    k = wshape[2:]
    outs = gy.shape[2:]
    after = [
        max(ph, (m - 1) * si + di * (ki - 1) + 1 - n - pl)
        for n, (pl, ph), ki, si, di, m in zip(x.shape[2:], pads, k, s, d, outs)
    ]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pl, a) for (pl, _), a in zip(pads, after)])
    gw = np.empty(wshape, x.dtype)
    gg = gy.reshape(N, groups, Og, -1).transpose(1, 2, 0, 3).reshape(groups, Og, -1)
    for ts in itertools.product(*map(range, k)):
        v = _view(xp, tuple(t * di for t, di in zip(ts, d)), s, outs)
        xv = v.reshape(N, groups, Cg, -1).transpose(1, 0, 3, 2).reshape(groups, -1, Cg)
        gw[(slice(None), slice(None)) + ts] = np.matmul(gg, xv).reshape(O, Cg)
    return gw


def _conv_pads(padding, k, d, s, fname):
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * 3
        if padding == "same":
            if any(si != 1 for si in s):
                raise ValueError(
                    f"{fname}: padding='same' is not supported for strided convolutions"
                )
            return [
                (di * (ki - 1) // 2, di * (ki - 1) - di * (ki - 1) // 2) for ki, di in zip(k, d)
            ]
        raise ValueError(f"{fname}: padding must be 'same', 'valid', an int or a tuple")
    return [(p, p) for p in ntuple(padding, 3, "padding", minimum=0)]


def conv3d_backward(
    grad_output,
    input,
    weight,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    output_mask=(True, True, True),
):
    """Gradients of ``conv3d``: (grad_input, grad_weight, grad_bias), each None when
    ``output_mask`` leaves it out (as ``torch.ops.aten.convolution_backward``)."""
    fname = "conv3d_backward"
    x, unb = _batched5(as_float_array(input), fname)
    w, groups = conv_weight(x, weight, groups, 3, fname)
    k = tuple(w.shape[2:])
    s = ntuple(stride, 3, "stride", minimum=1)
    d = ntuple(dilation, 3, "dilation", minimum=1)
    pads = _conv_pads(padding, k, d, s, fname)
    outs = tuple(
        (n + pl + ph - di * (ki - 1) - 1) // si + 1
        for n, (pl, ph), ki, si, di in zip(x.shape[2:], pads, k, s, d)
    )
    if min(outs) < 1:
        raise ValueError(f"{fname}: kernel larger than the padded input")
    g = np.ascontiguousarray(as_float_array(grad_output, "grad_output"), dtype=x.dtype)
    if unb and g.ndim == 4:
        g = g[None]
    if g.shape != (x.shape[0], w.shape[0], *outs):
        raise ValueError(
            f"{fname}: grad_output has shape {g.shape}, the forward output has "
            f"{(x.shape[0], w.shape[0], *outs)}"
        )
    want_x, want_w, want_b = output_mask
    gx = gw = gb = None
    if want_x:
        gx = _grad_input(g, w, x.shape[2:], s, pads, d, groups)
        gx = gx[0] if unb else gx
    if want_w:
        gw = _grad_weight(g, x, w.shape, s, pads, d, groups)
    if want_b:
        gb = g.sum(axis=(0, 2, 3, 4), dtype=np.float64).astype(x.dtype)
    return gx, gw, gb


def _transpose_args(fname, x, weight, stride, padding, output_padding, groups, dilation):
    w = like(weight, x, "weight")
    if w is None or w.ndim != 5 or w.shape[0] != x.shape[1]:
        raise ValueError(
            f"{fname}: weight must be (C_in, C_out/groups, kD, kH, kW) with C_in={x.shape[1]}"
        )
    if not is_int(groups) or groups < 1 or x.shape[1] % groups:
        raise ValueError(f"{fname}: groups={groups!r} must divide C_in={x.shape[1]}")
    s = ntuple(stride, 3, "stride", minimum=1)
    p = ntuple(padding, 3, "padding", minimum=0)
    op = ntuple(output_padding, 3, "output_padding", minimum=0)
    d = ntuple(dilation, 3, "dilation", minimum=1)
    if any(o >= max(si, di) for o, si, di in zip(op, s, d)):
        raise ValueError(f"{fname}: output padding must be smaller than either stride or dilation")
    k = w.shape[2:]
    outs = tuple(
        (n - 1) * si - 2 * pi + di * (ki - 1) + oi + 1
        for n, si, pi, di, ki, oi in zip(x.shape[2:], s, p, d, k, op)
    )
    if min(outs) < 1:
        raise ValueError(f"{fname}: output size {outs} is not positive")
    return w, int(groups), s, p, op, d, outs


def conv_transpose3d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """``torch.nn.functional.conv_transpose3d``, weight (C_in, C_out/groups, kD, kH, kW): the
    input gradient of the conv3d whose weight it is."""
    fname = "conv_transpose3d"
    x, unb = _batched5(as_float_array(input), fname)
    w, groups, s, p, op, d, outs = _transpose_args(
        fname, x, weight, stride, padding, output_padding, groups, dilation
    )
    y = _grad_input(np.ascontiguousarray(x), w, outs, s, [(pi, pi) for pi in p], d, groups)
    b = like(bias, x, "bias")
    if b is not None:
        if b.shape != (y.shape[1],):
            raise ValueError(f"{fname}: bias must have shape ({y.shape[1]},)")
        y += b.reshape(1, -1, 1, 1, 1)
    return y[0] if unb else y


def conv_transpose3d_backward(
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
    """Gradients of ``conv_transpose3d``: (grad_input, grad_weight, grad_bias). The input
    gradient is the forward ``conv3d`` of grad_output with the same weight."""
    fname = "conv_transpose3d_backward"
    x, unb = _batched5(as_float_array(input), fname)
    w, groups, s, p, op, d, outs = _transpose_args(
        fname, x, weight, stride, padding, output_padding, groups, dilation
    )
    g = np.ascontiguousarray(as_float_array(grad_output, "grad_output"), dtype=x.dtype)
    if unb and g.ndim == 4:
        g = g[None]
    if g.shape != (x.shape[0], w.shape[1] * groups, *outs):
        raise ValueError(
            f"{fname}: grad_output has shape {g.shape}, the forward output has "
            f"{(x.shape[0], w.shape[1] * groups, *outs)}"
        )
    want_x, want_w, want_b = output_mask
    gx = gw = gb = None
    # the rows output_padding adds past the last window are read by no input
    used = tuple(m - si * (o // si) for m, si, o in zip(outs, s, op))
    gu = np.ascontiguousarray(g[(slice(None), slice(None)) + tuple(slice(0, m) for m in used)])
    if want_x:
        y = _conv3d_forward(g, w, None, s, p, d, groups)
        gx = np.ascontiguousarray(
            y[(slice(None), slice(None)) + tuple(slice(0, n) for n in x.shape[2:])]
        )
        gx = gx[0] if unb else gx
    if want_w:  # roles swapped: the transposed conv's input is the conv's grad_output
        gw = _grad_weight(x, gu, w.shape, s, [(pi, pi) for pi in p], d, groups)
    if want_b:
        gb = g.sum(axis=(0, 2, 3, 4), dtype=np.float64).astype(x.dtype)
    return gx, gw, gb
