"""Pooling: max/avg (1-D, 2-D), adaptive max/avg (1-D, 2-D), LeNet subsampling.

1-D pooling is 2-D pooling on planes of height 1.  The max/avg kernels work
row by row: for each output row and each kernel tap they sweep the range of
output columns whose input column is inside the image, so the inner loops
have no bounds tests and vectorise; padding never has to be materialised.
"""

import numpy as np
from numba import prange

from cnncalc.arithmetic import pool_out

from ._common import as_float_array, chunked, is_int, like, ntuple
from ._jit import njit

U1 = np.uint64(1)
U2 = np.uint64(2)


# ----------------------------------------------------------------- kernels
def _row_len(W, OW, kw, sw, pw, dw):
    """Per-phase length Wq of a padded row split into sw stride phases."""
    need = max(pw + W, (OW - 1) * sw + (kw - 1) * dw + 1)
    return -(-need // sw)


# The pooling kernels are separable: for each output row they first reduce
# the kh input rows into one padded row ``vp`` (contiguous, vectorised), then
# split ``vp`` into ``sw`` stride phases (a full interleave group, which LLVM
# vectorises for sw == 2) and reduce over the kw taps with contiguous loads.
# Unsigned indices avoid numba's negative-index wrap-around code.


@njit(parallel=True, cache=True)
def _max_pool2d(xf, out, NC, H, W, OH, OW, kh, sh, ph, dh, kw, sw, pw, dw, Wq):
    """xf (NC*H*W,) -> out (NC*OH*OW,), max over each window (NaN propagates)."""
    Wp = sw * Wq
    Wu = np.uint64(W)
    pwu = np.uint64(pw)
    Wqu = np.uint64(Wq)
    OWu = np.uint64(OW)
    for item in prange(NC):
        vp = np.full(Wp, -np.inf, xf.dtype)
        phs = np.empty(Wp, xf.dtype)
        acc = np.empty(OW, xf.dtype)
        ib = np.uint64(item) * np.uint64(H * W)
        ob = np.uint64(item) * np.uint64(OH * OW)
        for oy in range(OH):
            first = True
            for ky in range(kh):
                iy = oy * sh - ph + ky * dh
                if iy < 0 or iy >= H:
                    continue
                rb = ib + np.uint64(iy * W)
                if first:
                    for i in range(Wu):
                        vp[pwu + i] = xf[rb + i]
                    first = False
                else:
                    for i in range(Wu):
                        v = xf[rb + i]
                        a = vp[pwu + i]
                        vp[pwu + i] = v if (v > a) | (v != v) else a
            if first:
                for i in range(Wu):
                    vp[pwu + i] = -np.inf
            if sw == 1:
                src = vp
            elif sw == 2:
                for q in range(Wqu):
                    phs[q] = vp[q * U2]
                    phs[Wqu + q] = vp[q * U2 + U1]
                src = phs
            else:
                for p in range(sw):
                    for q in range(Wq):
                        phs[p * Wq + q] = vp[q * sw + p]
                src = phs
            for kx in range(kw):
                off = kx * dw
                base = np.uint64((off % sw) * Wq + off // sw)
                if kx == 0:
                    for j in range(OWu):
                        acc[j] = src[base + j]
                else:
                    for j in range(OWu):
                        v = src[base + j]
                        a = acc[j]
                        acc[j] = v if (v > a) | (v != v) else a
            orow = ob + np.uint64(oy * OW)
            for j in range(OWu):
                out[orow + j] = acc[j]


@njit(parallel=True, cache=True)
def _max_pool2d_idx(x, out, idx, kh, kw, sh, sw, ph, pw, dh, dw):
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for item in prange(N * C):
        n = item // C
        c = item % C
        for oy in range(OH):
            y0 = oy * sh - ph
            while y0 < 0:
                y0 += dh
            y1 = min(oy * sh - ph + (kh - 1) * dh + 1, H)
            for ox in range(OW):
                x0 = ox * sw - pw
                while x0 < 0:
                    x0 += dw
                x1 = min(ox * sw - pw + (kw - 1) * dw + 1, W)
                best = -np.inf
                bi = y0 * W + x0
                for iy in range(y0, y1, dh):
                    for ix in range(x0, x1, dw):
                        v = x[n, c, iy, ix]
                        if v > best or v != v:
                            best = v
                            bi = iy * W + ix
                out[n, c, oy, ox] = best
                idx[n, c, oy, ox] = bi


@njit(parallel=True, cache=True)
def _avg_pool2d(xf, out, NC, H, W, OH, OW, kh, sh, ph, kw, sw, pw, Wq, hcnt, wcnt, use_div, div):
    """Like _max_pool2d with sums; out = sum / (hcnt[oy] * wcnt[ox]), or / div
    if use_div; a zero count marks a window without real input (output 0)."""
    Wp = sw * Wq
    Wu = np.uint64(W)
    pwu = np.uint64(pw)
    Wqu = np.uint64(Wq)
    OWu = np.uint64(OW)
    for item in prange(NC):
        vp = np.zeros(Wp, xf.dtype)
        phs = np.empty(Wp, xf.dtype)
        acc = np.empty(OW, xf.dtype)
        ib = np.uint64(item) * np.uint64(H * W)
        ob = np.uint64(item) * np.uint64(OH * OW)
        for oy in range(OH):
            first = True
            for ky in range(kh):
                iy = oy * sh - ph + ky
                if iy < 0 or iy >= H:
                    continue
                rb = ib + np.uint64(iy * W)
                if first:
                    for i in range(Wu):
                        vp[pwu + i] = xf[rb + i]
                    first = False
                else:
                    for i in range(Wu):
                        vp[pwu + i] += xf[rb + i]
            if first:
                for i in range(Wu):
                    vp[pwu + i] = 0.0
            if sw == 1:
                src = vp
            elif sw == 2:
                for q in range(Wqu):
                    phs[q] = vp[q * U2]
                    phs[Wqu + q] = vp[q * U2 + U1]
                src = phs
            else:
                for p in range(sw):
                    for q in range(Wq):
                        phs[p * Wq + q] = vp[q * sw + p]
                src = phs
            for kx in range(kw):
                base = np.uint64((kx % sw) * Wq + kx // sw)
                if kx == 0:
                    for j in range(OWu):
                        acc[j] = src[base + j]
                else:
                    for j in range(OWu):
                        acc[j] += src[base + j]
            orow = ob + np.uint64(oy * OW)
            hc = hcnt[oy]
            if use_div:
                for j in range(OWu):
                    d = div if hc * wcnt[j] > 0 else np.inf
                    out[orow + j] = acc[j] / d
            else:
                for j in range(OWu):
                    d = hc * wcnt[j]
                    out[orow + j] = acc[j] / (d if d > 0 else np.inf)


@njit(parallel=True, cache=True)
def _adaptive_pool2d(x, out, idx, ys, ye, xs, xe, is_max):
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for item in prange(N * C):
        n = item // C
        c = item % C
        for oy in range(OH):
            for ox in range(OW):
                if is_max:
                    best = -np.inf
                    bi = ys[oy] * W + xs[ox]
                    for iy in range(ys[oy], ye[oy]):
                        for ix in range(xs[ox], xe[ox]):
                            v = x[n, c, iy, ix]
                            if v > best or v != v:
                                best = v
                                bi = iy * W + ix
                    out[n, c, oy, ox] = best
                    idx[n, c, oy, ox] = bi
                else:
                    s = 0.0
                    for iy in range(ys[oy], ye[oy]):
                        for ix in range(xs[ox], xe[ox]):
                            s += x[n, c, iy, ix]
                    cnt = (ye[oy] - ys[oy]) * (xe[ox] - xs[ox])
                    out[n, c, oy, ox] = s / cnt


@njit(parallel=True, cache=True)
def _subsample2d(x, w, b, out, kh, kw, sh, sw):
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for item in prange(N * C):
        n = item // C
        c = item % C
        for oy in range(OH):
            for ox in range(OW):
                s = 0.0
                for ky in range(kh):
                    for kx in range(kw):
                        s += x[n, c, oy * sh + ky, ox * sw + kx]
                out[n, c, oy, ox] = s * w[c] + b[c]


# ---------------------------------------------------------------- helpers
def _pool_out(n, k, s, p, d, ceil_mode):
    return pool_out(n, k, s, p, d, ceil_mode)[0]  # PyTorch's rule, one home: arithmetic


def _prep(input, nd, fname):
    x = as_float_array(input)
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{fname}: input must be {nd + 1}-D or {nd + 2}-D, got shape {x.shape}")
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x[None]
    if x.shape[1] == 0 or x.shape[0] == 0:
        raise ValueError(f"{fname}: empty input")
    x4 = np.ascontiguousarray(x.reshape(x.shape[:2] + (1,) * (2 - nd) + x.shape[2:]))
    return x, x4, unbatched


def _finish(out4, x, nd, unbatched):
    out = out4.reshape(out4.shape[:2] + out4.shape[4 - nd :])
    return out[0] if unbatched else out


def _pool_params(fname, nd, x, kernel_size, stride, padding, dilation, ceil_mode):
    k = ntuple(kernel_size, nd, "kernel_size", minimum=1)
    if stride is None or (not is_int(stride) and len(tuple(stride)) == 0):
        s = k
    else:
        s = ntuple(stride, nd, "stride", minimum=1)
    p = ntuple(padding, nd, "padding", minimum=0)
    d = ntuple(dilation, nd, "dilation", minimum=1)
    for i in range(nd):
        if p[i] > k[i] // 2:
            raise ValueError(
                f"{fname}: padding should be at most half of the kernel size, "
                f"got padding={p} for kernel_size={k}"
            )
    osz = []
    for i in range(nd):
        o = _pool_out(x.shape[2 + i], k[i], s[i], p[i], d[i], bool(ceil_mode))
        if o < 1:
            raise ValueError(f"{fname}: output size is too small (input {x.shape[2:]})")
        osz.append(o)
    fill = 2 - nd
    return (
        (1,) * fill + k,
        (1,) * fill + s,
        (0,) * fill + p,
        (1,) * fill + d,
        (1,) * fill + tuple(osz),
    )


def _max_pool(fname, nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, x4, unb = _prep(input, nd, fname)
    k, s, p, d, o = _pool_params(fname, nd, x, kernel_size, stride, padding, dilation, ceil_mode)
    N, C = x4.shape[:2]
    out = np.empty((N, C) + o, x.dtype)
    if return_indices:
        idx = np.empty((N, C) + o, np.int64)
        _max_pool2d_idx(x4, out, idx, k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1])
        return _finish(out, x, nd, unb), _finish(idx, x, nd, unb)
    H, W = x4.shape[2:]
    Wq = _row_len(W, o[1], k[1], s[1], p[1], d[1])
    with chunked(N * C, work=x4.size + out.size):
        _max_pool2d(
        x4.reshape(-1), out.reshape(-1), N * C, H, W, o[0], o[1],
        k[0], s[0], p[0], d[0], k[1], s[1], p[1], d[1], Wq,
    )  # fmt: skip
    return _finish(out, x, nd, unb)


def _avg_pool(fname, nd, input, kernel_size, stride, padding, ceil_mode, cip, divisor_override):
    x, x4, unb = _prep(input, nd, fname)
    k, s, p, d, o = _pool_params(fname, nd, x, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None:
        if not is_int(divisor_override) or divisor_override == 0:
            raise ValueError(f"{fname}: divisor_override must be a non-zero int")
        div = float(divisor_override)
    else:
        div = 1.0
    H, W = x4.shape[2:]

    def counts(n, on, kk, ss, pp):
        c = np.empty(on, np.float64)
        for i in range(on):
            a = i * ss - pp
            b = min(a + kk, n + pp)
            if cip:
                c[i] = b - a
            else:
                c[i] = min(b, n) - max(a, 0)
        return c

    hc = counts(H, o[0], k[0], s[0], p[0])
    wc = counts(W, o[1], k[1], s[1], p[1])
    # windows with no real input element give 0 (as PyTorch): flag via 0 factor
    hreal = np.array(
        [min(i * s[0] - p[0] + k[0], H) > max(i * s[0] - p[0], 0) for i in range(o[0])]
    )
    wreal = np.array(
        [min(i * s[1] - p[1] + k[1], W) > max(i * s[1] - p[1], 0) for i in range(o[1])]
    )
    hc = np.where(hreal, hc, 0.0)
    wc = np.where(wreal, wc, 0.0)
    N, C = x4.shape[:2]
    out = np.empty((N, C) + o, x.dtype)
    Wq = _row_len(W, o[1], k[1], s[1], p[1], 1)
    with chunked(N * C, work=x4.size + out.size):
        _avg_pool2d(
        x4.reshape(-1), out.reshape(-1), N * C, H, W, o[0], o[1], k[0], s[0], p[0],
        k[1], s[1], p[1], Wq, hc.astype(x.dtype), wc.astype(x.dtype),
        divisor_override is not None, div,
    )  # fmt: skip
    return _finish(out, x, nd, unb)


# ----------------------------------------------------------------- public
def max_pool1d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """1-D max pooling on (N, C, L), as ``torch.nn.functional.max_pool1d``."""
    return _max_pool(
        "max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """2-D max pooling on (N, C, H, W), as ``torch.nn.functional.max_pool2d``.

    With ``return_indices`` also returns int64 flat indices into each input plane.
    """
    return _max_pool(
        "max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def avg_pool1d(
    input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None,
):  # fmt: skip
    """1-D average pooling, as ``torch.nn.functional.avg_pool1d`` (plus divisor_override)."""
    return _avg_pool(
        "avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
        divisor_override,
    )  # fmt: skip


def avg_pool2d(
    input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None,
):  # fmt: skip
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``."""
    return _avg_pool(
        "avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
        divisor_override,
    )  # fmt: skip


def _adaptive_bins(n, on):
    i = np.arange(on)
    start = (i * n) // on
    end = -((-(i + 1) * n) // on)
    return start.astype(np.int64), end.astype(np.int64)


def _adaptive(fname, nd, input, output_size, is_max, return_indices=False):
    x, x4, unb = _prep(input, nd, fname)
    if is_int(output_size) or output_size is None:
        osz = (output_size,) * nd
    else:
        osz = tuple(output_size)
        if len(osz) == 1:
            osz = osz * nd
    if len(osz) != nd:
        raise ValueError(f"{fname}: output_size must have {nd} entries, got {output_size!r}")
    full = []
    for i, e in enumerate(osz):
        if e is None:
            e = x.shape[2 + i]
        if not is_int(e) or e < 1:
            raise ValueError(f"{fname}: output_size entries must be positive ints or None")
        full.append(int(e))
    full = [1] * (2 - nd) + full
    H, W = x4.shape[2:]
    ys, ye = _adaptive_bins(H, full[0])
    xs, xe = _adaptive_bins(W, full[1])
    N, C = x4.shape[:2]
    out = np.empty((N, C, full[0], full[1]), x.dtype)
    idx = np.empty((N, C, full[0], full[1]) if is_max else (1, 1, 1, 1), np.int64)
    _adaptive_pool2d(x4, out, idx, ys, ye, xs, xe, is_max)
    if is_max and return_indices:
        return _finish(out, x, nd, unb), _finish(idx, x, nd, unb)
    return _finish(out, x, nd, unb)


def adaptive_avg_pool1d(input, output_size):
    """Adaptive 1-D average pooling, as in PyTorch."""
    return _adaptive("adaptive_avg_pool1d", 1, input, output_size, False)


def adaptive_avg_pool2d(input, output_size):
    """Adaptive 2-D average pooling; output_size entries may be None (keep size)."""
    return _adaptive("adaptive_avg_pool2d", 2, input, output_size, False)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Adaptive 1-D max pooling, as in PyTorch."""
    return _adaptive("adaptive_max_pool1d", 1, input, output_size, True, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive 2-D max pooling; output_size entries may be None (keep size)."""
    return _adaptive("adaptive_max_pool2d", 2, input, output_size, True, return_indices)


def subsample2d(input, weight, bias, kernel_size, stride=None):
    """LeNet-1998 subsampling: (sum over each window) * weight[c] + bias[c].

    input (N, C, H, W); weight and bias shape (C,); stride defaults to
    kernel_size (non-overlapping windows); no padding, floor output size.
    """
    x = as_float_array(input)
    if x.ndim != 4:
        raise ValueError(f"subsample2d: input must be 4-D (N, C, H, W), got {x.shape}")
    x = np.ascontiguousarray(x)
    C = x.shape[1]
    w = like(weight, x, "weight")
    b = like(bias, x, "bias") if bias is not None else np.zeros(C, x.dtype)
    if w is None or w.shape != (C,) or b.shape != (C,):
        raise ValueError(f"subsample2d: weight and bias must have shape ({C},)")
    k = ntuple(kernel_size, 2, "kernel_size", minimum=1)
    s = k if stride is None else ntuple(stride, 2, "stride", minimum=1)
    OH = (x.shape[2] - k[0]) // s[0] + 1
    OW = (x.shape[3] - k[1]) // s[1] + 1
    if OH < 1 or OW < 1:
        raise ValueError("subsample2d: kernel larger than input")
    out = np.empty(x.shape[:2] + (OH, OW), x.dtype)
    _subsample2d(x, w, b, out, k[0], k[1], s[0], s[1])
    return out
