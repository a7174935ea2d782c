# ruff: noqa: E741  (O = number of output channels, as in the formulas)
"""Plain numpy float64 reference implementations (test oracle).

Direct loops over the textbook / PyTorch definitions.  Nothing here calls
``cnncalc.kernels``.  Slow: use on small shapes only.
"""

import math

import numpy as np


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


# --------------------------------------------------------------- convolution
def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """N-d convolution; x (N, C, *S), w (O, C/groups, *K); padding per dim as an
    int, a tuple of ints, a tuple of (left, right) pairs, or 'same'/'valid'."""
    x, w, b = _f64(x), _f64(w), _f64(b)
    nd = x.ndim - 2
    ks = w.shape[2:]
    st = (stride,) * nd if isinstance(stride, int) else tuple(stride)
    dl = (dilation,) * nd if isinstance(dilation, int) else tuple(dilation)
    if padding == "valid":
        pads = [(0, 0)] * nd
    elif padding == "same":
        pads = []
        for k, d in zip(ks, dl):
            tot = d * (k - 1)
            pads.append((tot // 2, tot - tot // 2))
    elif isinstance(padding, int):
        pads = [(padding, padding)] * nd
    else:
        pads = [p if isinstance(p, tuple) else (p, p) for p in padding]
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    N, C = x.shape[:2]
    O = w.shape[0]
    cg, og = C // groups, O // groups
    osz = [(xp.shape[2 + i] - dl[i] * (ks[i] - 1) - 1) // st[i] + 1 for i in range(nd)]
    out = np.zeros((N, O, *osz))
    for pos in np.ndindex(*osz):
        for tap in np.ndindex(*ks):
            src = tuple(pos[i] * st[i] + tap[i] * dl[i] for i in range(nd))
            for g in range(groups):
                xin = xp[(slice(None), slice(g * cg, (g + 1) * cg)) + src]  # (N, cg)
                wt = w[(slice(g * og, (g + 1) * og), slice(None)) + tap]  # (og, cg)
                out[(slice(None), slice(g * og, (g + 1) * og)) + pos] += xin @ wt.T
    if b is not None:
        out += b.reshape((1, O) + (1,) * nd)
    return out


def conv_transpose(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """N-d transposed convolution by scattering; w (C_in, O/groups, *K)."""
    x, w, b = _f64(x), _f64(w), _f64(b)
    nd = x.ndim - 2

    def tup(v):
        return (v,) * nd if isinstance(v, int) else tuple(v)

    st, pd, op, dl = tup(stride), tup(padding), tup(output_padding), tup(dilation)
    ks = w.shape[2:]
    N, C = x.shape[:2]
    og = w.shape[1]
    O = og * groups
    cg = C // groups
    full = [(x.shape[2 + i] - 1) * st[i] + dl[i] * (ks[i] - 1) + 1 + op[i] for i in range(nd)]
    out = np.zeros((N, O, *full))
    for pos in np.ndindex(*x.shape[2:]):
        for tap in np.ndindex(*ks):
            dst = tuple(pos[i] * st[i] + tap[i] * dl[i] for i in range(nd))
            for g in range(groups):
                xin = x[(slice(None), slice(g * cg, (g + 1) * cg)) + pos]  # (N, cg)
                wt = w[(slice(g * cg, (g + 1) * cg), slice(None)) + tap]  # (cg, og)
                out[(slice(None), slice(g * og, (g + 1) * og)) + dst] += xin @ wt
    crop = tuple(slice(pd[i], full[i] - pd[i]) for i in range(nd))
    out = out[(slice(None), slice(None)) + crop]
    if b is not None:
        out = out + b.reshape((1, O) + (1,) * nd)
    return out


def conv2d_table(x, w, b, connections, stride=1, padding=0):
    """LeNet partially connected convolution straight from the table."""
    x, w = _f64(x), _f64(w)
    N, C, H, W = x.shape
    O = w.shape[0]
    kh, kw = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0), (padding, padding), (padding, padding)])
    OH = (xp.shape[2] - kh) // stride + 1
    OW = (xp.shape[3] - kw) // stride + 1
    out = np.zeros((N, O, OH, OW))
    for o in range(O):
        for j, c in enumerate(connections[o]):
            for oy in range(OH):
                for ox in range(OW):
                    win = xp[:, c, oy * stride : oy * stride + kh, ox * stride : ox * stride + kw]
                    out[:, o, oy, ox] += (win * w[o, j]).sum(axis=(1, 2))
        if b is not None:
            out[:, o] += b[o]
    return out


# ------------------------------------------------------------------- pooling
def pool_out_size(n, k, s, p, d, ceil_mode):
    if ceil_mode:
        o = -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1
        if (o - 1) * s >= n + p:
            o -= 1
    else:
        o = (n + 2 * p - d * (k - 1) - 1) // s + 1
    return o


def _t2(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def max_pool2d(x, k, s=None, p=0, d=1, ceil_mode=False):
    """Returns (values, flat indices into each input plane)."""
    x = _f64(x)
    k = _t2(k)
    s = k if s is None else _t2(s)
    p, d = _t2(p), _t2(d)
    N, C, H, W = x.shape
    OH = pool_out_size(H, k[0], s[0], p[0], d[0], ceil_mode)
    OW = pool_out_size(W, k[1], s[1], p[1], d[1], ceil_mode)
    out = np.full((N, C, OH, OW), -np.inf)
    idx = np.zeros((N, C, OH, OW), np.int64)
    for n in range(N):
        for c in range(C):
            for oy in range(OH):
                for ox in range(OW):
                    # PyTorch: the index starts at the first window position
                    # that is not in the leading padding (even when the whole
                    # window is padding), the value at -inf.
                    y0, x0 = oy * s[0] - p[0], ox * s[1] - p[1]
                    while y0 < 0:
                        y0 += d[0]
                    while x0 < 0:
                        x0 += d[1]
                    best, bi = -np.inf, y0 * W + x0
                    for ky in range(k[0]):
                        for kx in range(k[1]):
                            iy = oy * s[0] - p[0] + ky * d[0]
                            ix = ox * s[1] - p[1] + kx * d[1]
                            if 0 <= iy < H and 0 <= ix < W:
                                v = x[n, c, iy, ix]
                                if v > best or np.isnan(v):
                                    best, bi = v, iy * W + ix
                    out[n, c, oy, ox] = best
                    idx[n, c, oy, ox] = bi
    return out, idx


def avg_pool2d(x, k, s=None, p=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    x = _f64(x)
    k = _t2(k)
    s = k if s is None else _t2(s)
    p = _t2(p)
    N, C, H, W = x.shape
    OH = pool_out_size(H, k[0], s[0], p[0], 1, ceil_mode)
    OW = pool_out_size(W, k[1], s[1], p[1], 1, ceil_mode)
    out = np.zeros((N, C, OH, OW))
    for oy in range(OH):
        for ox in range(OW):
            y0, x0 = oy * s[0] - p[0], ox * s[1] - p[1]
            # window clipped to the padded input (not the ceil-mode overhang)
            y1, x1 = min(y0 + k[0], H + p[0]), min(x0 + k[1], W + p[1])
            padded_count = (y1 - y0) * (x1 - x0)
            ry0, rx0, ry1, rx1 = max(y0, 0), max(x0, 0), min(y1, H), min(x1, W)
            if ry0 >= ry1 or rx0 >= rx1:
                continue
            total = x[:, :, ry0:ry1, rx0:rx1].sum(axis=(2, 3))
            if divisor_override is not None:
                div = divisor_override
            elif count_include_pad:
                div = padded_count
            else:
                div = (ry1 - ry0) * (rx1 - rx0)
            out[:, :, oy, ox] = total / div
    return out


def adaptive_bins(n, on):
    return [(math.floor(i * n / on), math.ceil((i + 1) * n / on)) for i in range(on)]


def adaptive_pool2d(x, osz, is_max):
    """Returns values (and indices when is_max)."""
    x = _f64(x)
    N, C, H, W = x.shape
    oh = H if osz[0] is None else osz[0]
    ow = W if osz[1] is None else osz[1]
    out = np.zeros((N, C, oh, ow))
    idx = np.zeros((N, C, oh, ow), np.int64)
    for oy, (y0, y1) in enumerate(adaptive_bins(H, oh)):
        for ox, (x0, x1) in enumerate(adaptive_bins(W, ow)):
            win = x[:, :, y0:y1, x0:x1]
            if is_max:
                flat = win.reshape(N, C, -1)
                a = flat.argmax(axis=2)
                out[:, :, oy, ox] = flat.max(axis=2)
                wy, wx = a // (x1 - x0), a % (x1 - x0)
                idx[:, :, oy, ox] = (y0 + wy) * W + (x0 + wx)
            else:
                out[:, :, oy, ox] = win.mean(axis=(2, 3))
    return (out, idx) if is_max else out


def subsample2d(x, w, b, k, s=None):
    x = _f64(x)
    k = _t2(k)
    s = k if s is None else _t2(s)
    N, C, H, W = x.shape
    OH, OW = (H - k[0]) // s[0] + 1, (W - k[1]) // s[1] + 1
    out = np.zeros((N, C, OH, OW))
    for oy in range(OH):
        for ox in range(OW):
            win = x[:, :, oy * s[0] : oy * s[0] + k[0], ox * s[1] : ox * s[1] + k[1]]
            out[:, :, oy, ox] = win.sum(axis=(2, 3)) * w + b
    return out


# ------------------------------------------------------------------- dense
def linear(x, w, b=None):
    x, w = _f64(x), _f64(w)
    out = np.zeros(x.shape[:-1] + (w.shape[0],))
    for o in range(w.shape[0]):
        out[..., o] = (x * w[o]).sum(axis=-1) + (0.0 if b is None else b[o])
    return out


def rbf(x, w):
    x, w = _f64(x), _f64(w)
    out = np.zeros(x.shape[:-1] + (w.shape[0],))
    for i in range(w.shape[0]):
        out[..., i] = ((x - w[i]) ** 2).sum(axis=-1)
    return out


def batch_norm(x, mean, var, w=None, b=None, eps=1e-5):
    x = _f64(x)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    y = (x - _f64(mean).reshape(shape)) / np.sqrt(_f64(var).reshape(shape) + eps)
    if w is not None:
        y = y * _f64(w).reshape(shape)
    if b is not None:
        y = y + _f64(b).reshape(shape)
    return y


# ------------------------------------------------------------- activations
def _vec(f):
    def g(x, *a):
        x = _f64(x)
        return np.vectorize(lambda v: f(v, *a), otypes=[np.float64])(x)

    return g


def _sig(v):
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


def _softplus(v, beta=1.0, threshold=20.0):
    return v if v * beta > threshold else math.log1p(math.exp(v * beta)) / beta


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

ACTIVATIONS = {
    "relu": _vec(lambda v: max(v, 0.0)),
    "relu6": _vec(lambda v: min(max(v, 0.0), 6.0)),
    "leaky_relu": _vec(lambda v, s=0.01: v if v >= 0 else s * v),
    "elu": _vec(lambda v, a=1.0: v if v > 0 else a * (math.exp(v) - 1)),
    "selu": _vec(lambda v: SELU_SCALE * (v if v > 0 else SELU_ALPHA * (math.exp(v) - 1))),
    "celu": _vec(lambda v, a=1.0: max(0.0, v) + min(0.0, a * (math.exp(v / a) - 1))),
    "gelu": _vec(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2)))),
    "gelu_tanh": _vec(
        lambda v: 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
    ),
    "silu": _vec(lambda v: v * _sig(v)),
    "mish": _vec(lambda v: v * math.tanh(_softplus(v))),
    "sigmoid": _vec(_sig),
    "tanh": _vec(math.tanh),
    "hardtanh": _vec(lambda v, lo=-1.0, hi=1.0: min(max(v, lo), hi)),
    "hardswish": _vec(lambda v: v * min(max(v + 3, 0.0), 6.0) / 6),
    "hardsigmoid": _vec(lambda v: min(max(v + 3, 0.0), 6.0) / 6),
    "softplus": _vec(_softplus),
}


def softmax(x, dim, log=False):
    x = _f64(x)
    xm = np.moveaxis(x, dim, -1)
    out = np.empty_like(xm)
    for i in np.ndindex(*xm.shape[:-1]):
        row = xm[i]
        m = row.max()
        e = np.array([math.exp(v - m) for v in row])
        s = e.sum()
        out[i] = (row - m - math.log(s)) if log else e / s
    return np.moveaxis(out, -1, dim)


def prelu(x, w):
    x, w = _f64(x), _f64(w).reshape(-1)
    out = x.copy()
    for c in range(x.shape[1]):
        a = w[0] if w.size == 1 else w[c]
        xc = x[:, c]
        out[:, c] = np.where(xc >= 0, xc, a * xc)
    return out


# ------------------------------------------------------------------- misc
def pad_constant(x, pad, value=0.0):
    """Pad/crop by explicit index copying (PyTorch order: last dim first)."""
    x = _f64(x)
    k = len(pad) // 2
    pairs = [(0, 0)] * (x.ndim - k) + [(pad[2 * i], pad[2 * i + 1]) for i in range(k)][::-1]
    shape = [n + lo + hi for n, (lo, hi) in zip(x.shape, pairs)]
    out = np.full(shape, float(value))
    for dst in np.ndindex(*shape):
        src = tuple(d - lo for d, (lo, _) in zip(dst, pairs))
        if all(0 <= s < n for s, n in zip(src, x.shape)):
            out[dst] = x[src]
    return out


def interpolate_nearest(x, out_size, scale_factor=None):
    """PyTorch legacy nearest: src = min(floor(dst * scale), in - 1) in float32."""
    x = _f64(x)
    nd = x.ndim - 2
    maps = []
    for d in range(nd):
        n, m = x.shape[2 + d], out_size[d]
        scale = np.float32(1.0 / scale_factor[d]) if scale_factor else np.float32(n / m)
        maps.append([min(int(math.floor(np.float32(i) * scale)), n - 1) for i in range(m)])
    out = np.empty(x.shape[:2] + tuple(out_size))
    for pos in np.ndindex(*out_size):
        src = tuple(maps[d][pos[d]] for d in range(nd))
        out[(slice(None), slice(None)) + pos] = x[(slice(None), slice(None)) + src]
    return out
