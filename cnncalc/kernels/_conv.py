# ruff: noqa: E741  (O = number of output channels, as in the formulas)
"""Convolutions: conv1d/2d/3d, conv_transpose1d/2d, LeNet's conv2d_table.

Every convolution is computed internally as a 3-D one (N, C, D, H, W) with
unit dimensions added in front.  Paths (chosen by ``_select_path``):

* ``"matmul"``    -- all kernel sizes 1: strided view + BLAS matmul per group;
* ``"gemm"``      -- small convolutions (at most ``_GEMM_MACS`` multiply-adds): im2col
  copy + BLAS matmul, in numpy: no kernel to compile, so a small network (LeNet) runs
  without the ~10 s first-use compile of a tile kernel, as fast as the tile kernel would;
* ``"depthwise"`` -- groups == C_in > 1, 1-D/2-D: per-channel kernel with a
  padded plane in a local scratch buffer;
* ``"tile"``      -- everything else: register-tiled direct convolution
  (``_conv_tile.py``) over an input split by stride phase;
* ``"direct"``    -- plain direct convolution; serves every configuration,
  never chosen automatically (reference / fallback path, used by tests).
"""

import math

import numpy as np
from numba import prange

from ._common import as_float_array, chunked, conv_weight, is_int, like, ntuple, scratch
from ._conv_tile import DW_KERNEL, DW_WIDTH, TILE_HALF, TILE_KERNELS
from ._jit import njit

U = np.uint64


# ----------------------------------------------------------------- kernels
@njit(parallel=True, cache=True)
def _pack_phase(x, xph, pz, py, px):
    """xph[n, c, z, ph, pw, yq, q] = xpad[n, c, z, yq*SH + ph, q*SW + pw]
    (zero outside x): the padded input split by stride phase in H and W, so
    that a tap reads contiguous columns and consecutive output rows are
    consecutive rows of a phase plane.  Flat unsigned indexing."""
    N, C, D, H, W = x.shape
    Dp, SH, SW, Hq, Wq = xph.shape[2], xph.shape[3], xph.shape[4], xph.shape[5], xph.shape[6]
    xf = x.reshape(-1)
    pf = xph.reshape(-1)
    for r in prange(N * C * Dp * SH * Hq):
        yq = r % Hq
        t = r // Hq
        ph = t % SH
        t = t // SH  # = plane * Dp + z
        z = t % Dp
        plane = t // Dp
        zi = z - pz
        yi = yq * SH + ph - py
        valid = zi >= 0 and zi < D and yi >= 0 and yi < H
        src = np.uint64(((plane * D + zi) * H + yi) * W) if valid else np.uint64(0)
        for pw in range(SW):
            dst = np.uint64((((t * SH + ph) * SW + pw) * Hq + yq) * Wq)
            if not valid:
                for i in range(np.uint64(Wq)):
                    pf[dst + i] = 0.0
                continue
            # valid q: 0 <= q*SW + pw - px < W
            lo = px - pw
            q0 = 0 if lo <= 0 else (lo + SW - 1) // SW
            hi = W + px - pw  # q*SW < hi
            q1 = 0 if hi <= 0 else (hi + SW - 1) // SW
            if q1 > Wq:
                q1 = Wq
            if q0 > q1:
                q0 = q1
            for q in range(np.uint64(q0)):
                pf[dst + q] = 0.0
            if SW == 1:
                s0 = src + np.uint64(q0 - px)
                d0 = dst + np.uint64(q0)
                for i in range(np.uint64(q1 - q0)):
                    pf[d0 + i] = xf[s0 + i]
            else:
                for q in range(q0, q1):
                    pf[dst + np.uint64(q)] = xf[src + np.uint64(q * SW + pw - px)]
            for q in range(np.uint64(q1), np.uint64(Wq)):
                pf[dst + q] = 0.0


@njit(parallel=True, cache=True)
def _crop_cols(buf, out, pitch):
    """out[n, o, z, y, x] = buf[n, o, z, y * pitch + x] (drop row-end columns)."""
    N, O, OD, OH, OW = out.shape
    for r in prange(N * O * OD):
        z = r % OD
        t = r // OD
        o = t % O
        n = t // O
        for y in range(OH):
            for x in range(OW):
                out[n, o, z, y, x] = buf[n, o, z, y * pitch + x]


@njit(parallel=True, cache=True)
def _conv_direct(xp, w, bias, out, sd, sh, sw, dd, dh, dw, groups):
    """Plain direct convolution over a zero-padded input (any configuration)."""
    N = xp.shape[0]
    O, Cg, KD, KH, KW = w.shape
    OD, OH, OW = out.shape[2], out.shape[3], out.shape[4]
    Og = O // groups
    for item in prange(N * O):
        n = item // O
        o = item % O
        g = o // Og
        for oz in range(OD):
            for oy in range(OH):
                for ox in range(OW):
                    out[n, o, oz, oy, ox] = bias[o]
        for ic in range(Cg):
            c = g * Cg + ic
            for kz in range(KD):
                for ky in range(KH):
                    for kx in range(KW):
                        wv = w[o, ic, kz, ky, kx]
                        for oz in range(OD):
                            z = oz * sd + kz * dd
                            for oy in range(OH):
                                y = oy * sh + ky * dh
                                x0 = kx * dw
                                for ox in range(OW):
                                    out[n, o, oz, oy, ox] += wv * xp[n, c, z, y, x0 + ox * sw]


@njit(parallel=True, cache=True)
def _conv_transpose2d(x, w, bias, out, sh, sw, ph, pw, dh, dw, groups):
    """Transposed 2-D convolution by scattering each input pixel."""
    N, C, H, W = x.shape
    Cg = C // groups
    Og = w.shape[1]
    KH, KW = w.shape[2], w.shape[3]
    O, OH, OW = out.shape[1], out.shape[2], out.shape[3]
    for item in prange(N * O):
        n = item // O
        o = item % O
        g = o // Og
        og = o % Og
        for oy in range(OH):
            for ox in range(OW):
                out[n, o, oy, ox] = bias[o]
        for ic in range(Cg):
            c = g * Cg + ic
            for ky in range(KH):
                for kx in range(KW):
                    wv = w[c, og, ky, kx]
                    off = kx * dw - pw
                    # 0 <= ix*sw + off < OW
                    ix0 = 0 if off >= 0 else (-off + sw - 1) // sw
                    lim = OW - off
                    ix1 = 0 if lim <= 0 else (lim + sw - 1) // sw
                    if ix1 > W:
                        ix1 = W
                    for iy in range(H):
                        oy = iy * sh - ph + ky * dh
                        if oy < 0 or oy >= OH:
                            continue
                        for ix in range(ix0, ix1):
                            out[n, o, oy, ix * sw + off] += wv * x[n, c, iy, ix]


# ---------------------------------------------------------------- helpers
def _out_size(n, lo, hi, k, s, d):
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


def _parse_padding(padding, nd, kernel, dilation, stride):
    """Return a list of (left, right) pads, one per spatial dim."""
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return pads
        raise ValueError(f"padding must be 'same', 'valid', an int or a tuple, got {padding!r}")
    p = ntuple(padding, nd, "padding", minimum=0)
    return [(e, e) for e in p]


def _to5d(a, nd):
    return a.reshape(a.shape[:2] + (1,) * (3 - nd) + a.shape[2:])


# convolutions with at most this many multiply-adds take the numpy im2col path
_GEMM_MACS = 1 << 23


def _select_path(x5, w5, groups, nd, osz=None):
    N, C = x5.shape[:2]
    O, Cg, KD, KH, KW = w5.shape
    if KD == 1 and KH == 1 and KW == 1:
        return "matmul"
    if groups == C and groups > 1 and nd <= 2:
        return "depthwise"
    if osz is not None and N * O * math.prod(osz) * Cg * KD * KH * KW <= _GEMM_MACS:
        return "gemm"
    return "tile"


def _tile_cols(OW, tw, half=True):
    """(OWT, HT): OWT full-width tiles plus HT (0/1) half-width tail tile
    (never with ``half`` False: kernel variant without the tail tile)."""
    OWT, rem = divmod(OW, tw)
    if rem == 0:
        return OWT, 0
    if rem <= tw // 2 and half:
        return OWT, 1
    return OWT + 1, 0


# largest padded input image (bytes) for which row-flattened tiling pays
_L2_IMAGE = 1024 * 1024

# packed weights per chunk of taps of the tile kernel (elements, ~9 KB in
# float32): whole input channels of at most _CHUNK_W // ob taps
_CHUNK_W = 2304


def _tile_cost(width, tw, half=True):
    """Relative cost of covering ``width`` columns with tiles (a half tile
    costs about 0.85 of a full one (measured): its FMAs are half as wide, its weight
    broadcasts the same)."""
    owt, ht = _tile_cols(width, tw, half)
    return owt + 0.85 * ht


def _conv_tile(
    x5, w5, b, stride, dilation, pads, groups, osz, tile=None, bmajor=None, flat=None, chunk=None
):
    """Register-tiled convolution (kernels in _conv_tile.py).

    The input is padded and split by stride phase in H and W, so each tap
    reads contiguous columns and output row oy + 1 reads the phase plane row
    after output row oy.  ``flat``: the output rows of an (n, z) plane are
    then laid end to end with the phase planes' row pitch, so tiles run
    across row ends; the few columns that straddle a row end are computed
    and dropped by a final crop.  Chosen for small feature maps (7x7 ...
    56x56) where it needs no more tiles.  ``bmajor``: work items ordered
    weight block first (option, not chosen automatically).
    """
    N, C, D, H, W = x5.shape
    O, Cg, KD, KH, KW = w5.shape
    SD, SH, SW = stride
    DD, DH, DW = dilation
    OD, OH, OW = osz
    Og = O // groups
    if tile is None:
        # 16 channels x 16 columns: 16 accumulator vectors hide the FMA latency
        # and halve the input loads per FMA (measured ~10% faster than 8 x 16
        # on ResNet/VGG 3x3 layers and the 7x7 stem); 8 x 16 for narrow groups
        tile = (16, 16) if Og > 8 else (8, 16)
    ob, tw = tile
    kern = TILE_KERNELS[(ob, tw)]
    half = TILE_HALF[(ob, tw)]
    NBG = -(-Og // ob)
    NB = NBG * groups
    Dp = (OD - 1) * SD + (KD - 1) * DD + 1
    msy = ((KH - 1) * DH) // SH  # largest row shift inside a phase plane
    msx = ((KW - 1) * DW) // SW  # largest column shift
    Hq = OH + msy  # rows per phase plane
    if flat is None:
        # flat keeps a weight block hot across a whole image, but then streams
        # that image's input once per weight block: take it when the image's
        # input fits in L2 and it needs no more tiles, or when it saves many
        Wf = OW + msx
        cf, cn = _tile_cost(OH * Wf, tw, half), OH * _tile_cost(OW, tw, half)
        image_bytes = C * Dp * SH * SW * Hq * Wf * x5.itemsize
        flat = (image_bytes <= _L2_IMAGE and cf <= 1.02 * cn) or cf < 0.75 * cn
    extra = 0
    if flat:
        Wq = OW + msx  # phase-plane row pitch
        # the virtual row of an (n, z) plane (OH * Wq columns) is cut into KOH
        # segments of whole tiles, enough work items for the threads
        ntiles = -(-OH * Wq // tw)
        seg = -(-ntiles // min(ntiles, -(-64 // (N * NB * OD))))
        KOH, KOW = -(-ntiles // seg), seg * tw
        extra = KOH * KOW - OH * Wq
        OWT, HT = seg, 0
    else:
        KOH, KOW = OH, OW
        OWT, HT = _tile_cols(KOW, tw, half)
        Wq = OWT * tw + HT * (tw // 2) + msx
    dt = x5.dtype
    size = N * C * Dp * SH * SW * Hq * Wq
    slack = extra + 2 * tw + msx  # flat tiles read a little past a plane's end
    buf = scratch("conv_xph", (size + slack,), dt)
    xph = buf[:size].reshape(N, C, Dp, SH, SW, Hq, Wq)
    buf[size:] = 0.0
    with chunked(N * C * Dp * SH * Hq, work=size):
        _pack_phase(x5, xph, pads[0][0], pads[1][0], pads[2][0])
    # packed weights (NB, T, ob), zero for padding channels
    wg = np.zeros((groups, NBG * ob, Cg * KD * KH * KW), dt)
    wg[:, :Og] = w5.reshape(groups, Og, -1)
    wpk = np.ascontiguousarray(wg.reshape(NB, ob, -1).transpose(0, 2, 1)).ravel()
    bg = np.zeros((groups, NBG * ob), dt)
    if b is not None:
        bg[:, :Og] = b.reshape(groups, Og)
    sz_p = Hq * Wq  # one phase plane
    sz_z = SH * SW * sz_p
    sz_c = Dp * sz_z
    ic, kz, ky, kx = np.meshgrid(
        np.arange(Cg), np.arange(KD), np.arange(KH), np.arange(KW), indexing="ij"
    )
    offy, offx = ky * DH, kx * DW
    phase = (offy % SH) * SW + offx % SW
    toff = ic * sz_c + kz * DD * sz_z + phase * sz_p + (offy // SH) * Wq + offx // SW
    toff = np.ascontiguousarray(toff.ravel().astype(np.uint64))
    if bmajor is None:
        # weight block outermost: measured slower or equal on the layers
        # tried (ResNet/VGG shapes), kept as an option
        bmajor = False
    # taps in chunks of ``chunk`` input channels, so that a chunk's packed
    # weights (~9 KB) stay in L1 while the tiles of a work item pass over
    # them (measured +10-15% on 3x3 layers vs one chunk of all channels)
    KV = KD * KH * KW
    if chunk is None:
        chunk = max(1, _CHUNK_W // (ob * KV))
    tc = min(Cg * KV, chunk * KV)
    out = np.empty((N, O, OD, KOH, KOW), dt)
    with chunked(N * NB * OD * KOH):
        kern(
            buf, wpk, toff, bg.reshape(-1), out.reshape(-1),
            U(N), U(NB), U(OD), U(KOH), U(KOW), U(OWT), U(HT),
            U(C * sz_c), U(sz_z), U(KOW if flat else Wq), U(Cg * sz_c), U(NBG), U(SD), U(1),
            U(Og),
            U(bmajor), U(tc),
        )  # fmt: skip
    if flat:
        res = np.empty((N, O, OD, OH, OW), dt)
        with chunked(N * O * OD, work=res.size):
            _crop_cols(out.reshape(N, O, OD, KOH * KOW), res, Wq)
        out = res
    return out


def _conv_depthwise(x4, w4, b, stride, dilation, pads, osz):
    """Depthwise 2-D convolution with the generated DW_KERNEL (see _conv_tile.py)."""
    N, C, H, W = x4.shape
    O, _, KH, KW = w4.shape
    SH, SW = stride
    DH, DW = dilation
    OH, OW = osz
    OWT = -(-OW // DW_WIDTH)
    Hp = (OH - 1) * SH + (KH - 1) * DH + 1
    Wq = OWT * DW_WIDTH + ((KW - 1) * DW) // SW
    ky, kx = np.meshgrid(np.arange(KH), np.arange(KW), indexing="ij")
    off = kx * DW
    toff = (ky * DH * SW * Wq + (off % SW) * Wq + off // SW).ravel().astype(np.uint64)
    bb = b if b is not None else np.zeros(O, x4.dtype)
    out = np.empty((N, O, OH, OW), x4.dtype)
    with chunked(N * O):
        DW_KERNEL(
            np.ascontiguousarray(x4), np.ascontiguousarray(w4).reshape(-1), bb, out, toff,
            SH, SW, pads[0][0], pads[1][0], O // C, Hp, Wq, OWT,
        )  # fmt: skip
    return out


def _conv_matmul(x5, w5, b, stride, pads, groups, osz):
    N, C = x5.shape[:2]
    O = w5.shape[0]
    if any(lo or hi for lo, hi in pads):
        x5 = np.pad(x5, [(0, 0), (0, 0)] + [tuple(p) for p in pads])
    OD, OH, OW = osz
    SD, SH, SW = stride
    xs = x5[:, :, : (OD - 1) * SD + 1 : SD, : (OH - 1) * SH + 1 : SH, : (OW - 1) * SW + 1 : SW]
    S = OD * OH * OW
    xs = np.ascontiguousarray(xs).reshape(N, groups, C // groups, S)
    wm = np.ascontiguousarray(w5.reshape(groups, O // groups, C // groups))
    out = np.matmul(wm, xs)  # (N, G, Og, S)
    if b is not None:
        out += b.reshape(1, groups, O // groups, 1)
    return out.reshape(N, O, OD, OH, OW)


def _conv_gemm(x5, w5, b, stride, dilation, pads, groups, osz):
    """im2col (a strided view of the padded input, copied once) + one BLAS matmul per
    group; numpy only."""
    N, C = x5.shape[:2]
    O, Cg, KD, KH, KW = w5.shape
    if any(lo or hi for lo, hi in pads):
        x5 = np.pad(x5, [(0, 0), (0, 0)] + [tuple(p) for p in pads])
    OD, OH, OW = osz
    sn, sc, sd, sh, sw = x5.strides
    (SD, SH, SW), (DD, DH, DW) = stride, dilation
    cols = np.lib.stride_tricks.as_strided(
        x5,
        shape=(N, groups, Cg, KD, KH, KW, OD, OH, OW),
        strides=(sn, Cg * sc, sc, DD * sd, DH * sh, DW * sw, SD * sd, SH * sh, SW * sw),
        writeable=False,
    ).reshape(N, groups, Cg * KD * KH * KW, OD * OH * OW)
    out = np.matmul(w5.reshape(groups, O // groups, -1), cols)  # (N, G, Og, S)
    if b is not None:
        out += b.reshape(1, groups, O // groups, 1)
    return out.reshape(N, O, OD, OH, OW)


def _conv_nd(
    input, weight, bias, stride, padding, dilation, groups, nd, path=None, tile=None,
    bmajor=None, flat=None, chunk=None,
):  # fmt: skip
    fname = f"conv{nd}d"
    x = as_float_array(input)
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{fname}: input must be {nd + 1}-D or {nd + 2}-D, got shape {x.shape}")
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x[None]
    w, groups = conv_weight(x, weight, groups, nd, fname)
    N, C = x.shape[:2]
    O, Cg = w.shape[:2]
    b = like(bias, x, "bias")
    if b is not None and b.shape != (O,):
        raise ValueError(f"{fname}: bias must have shape ({O},), got {b.shape}")
    stride = ntuple(stride, nd, "stride", minimum=1)
    dilation = ntuple(dilation, nd, "dilation", minimum=1)
    kernel = w.shape[2:]
    if min(kernel) < 1 or N == 0 or C == 0 or O == 0:
        raise ValueError(f"{fname}: empty input or weight")
    pads = _parse_padding(padding, nd, kernel, dilation, stride)
    osz = []
    for i in range(nd):
        o = _out_size(x.shape[2 + i], pads[i][0], pads[i][1], kernel[i], stride[i], dilation[i])
        if o < 1:
            raise ValueError(
                f"{fname}: (padded) input size {x.shape[2 + i] + sum(pads[i])} is smaller "
                f"than the dilated kernel size {dilation[i] * (kernel[i] - 1) + 1}"
            )
        osz.append(o)
    fill = 3 - nd
    x5 = np.ascontiguousarray(_to5d(x, nd))
    w5 = np.ascontiguousarray(_to5d(w, nd))
    stride3 = (1,) * fill + stride
    dil3 = (1,) * fill + dilation
    pads3 = [(0, 0)] * fill + pads
    osz3 = (1,) * fill + tuple(osz)
    if path is None:
        path = _select_path(x5, w5, groups, nd, osz3)
    if path == "matmul":
        out = _conv_matmul(x5, w5, b, stride3, pads3, groups, osz3)
    elif path == "gemm":
        out = _conv_gemm(x5, w5, b, stride3, dil3, pads3, groups, osz3)
    elif path == "tile":
        out = _conv_tile(x5, w5, b, stride3, dil3, pads3, groups, osz3, tile, bmajor, flat, chunk)
    elif path == "depthwise":
        if groups != C or nd > 2:
            raise ValueError("depthwise path needs groups == C_in and a 1-D/2-D convolution")
        out = _conv_depthwise(
            x5[:, :, 0], w5[:, :, 0], b, stride3[1:], dil3[1:], pads3[1:], osz3[1:]
        )
        out = out[:, :, None]
    elif path == "direct":
        xp = np.ascontiguousarray(np.pad(x5, [(0, 0), (0, 0)] + pads3))
        bb = b if b is not None else np.zeros(O, x.dtype)
        out = np.empty((N, O) + osz3, x.dtype)
        _conv_direct(xp, w5, bb, out, *stride3, *dil3, groups)
    else:
        raise ValueError(f"unknown convolution path {path!r}")
    out = out.reshape((N, O) + tuple(osz))
    return out[0] if unbatched else out


# ----------------------------------------------------------------- public
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution, input (N, C_in, L), weight (C_out, C_in/groups, k).

    Same arguments and semantics as ``torch.nn.functional.conv1d``; padding may
    be an int, a 1-tuple, ``'valid'`` or ``'same'`` (stride 1 only).
    """
    return _conv_nd(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution, input (N, C_in, H, W), weight (C_out, C_in/groups, kh, kw).

    Same arguments and semantics as ``torch.nn.functional.conv2d``.
    """
    return _conv_nd(input, weight, bias, stride, padding, dilation, groups, 2)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution, input (N, C_in, D, H, W), weight (C_out, C_in/groups, kd, kh, kw).

    Same arguments and semantics as ``torch.nn.functional.conv3d``.
    """
    return _conv_nd(input, weight, bias, stride, padding, dilation, groups, 3)


def _conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups, dilation, nd):
    fname = f"conv_transpose{nd}d"
    x = as_float_array(input)
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{fname}: input must be {nd + 1}-D or {nd + 2}-D, got shape {x.shape}")
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x[None]
    w = like(weight, x, "weight")
    if w is None or w.ndim != nd + 2:
        raise ValueError(f"{fname}: weight must be {nd + 2}-D (C_in, C_out/groups, *kernel)")
    if not is_int(groups) or groups < 1:
        raise ValueError(f"{fname}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    N, C = x.shape[:2]
    if w.shape[0] != C:
        raise ValueError(f"{fname}: weight.shape[0]={w.shape[0]} must equal C_in={C}")
    if C % groups:
        raise ValueError(f"{fname}: in_channels={C} is not divisible by groups={groups}")
    O = w.shape[1] * groups
    b = like(bias, x, "bias")
    if b is not None and b.shape != (O,):
        raise ValueError(f"{fname}: bias must have shape ({O},), got {b.shape}")
    stride = ntuple(stride, nd, "stride", minimum=1)
    dilation = ntuple(dilation, nd, "dilation", minimum=1)
    if isinstance(padding, str):
        raise ValueError(f"{fname}: string padding is not supported")
    padding = ntuple(padding, nd, "padding", minimum=0)
    output_padding = ntuple(output_padding, nd, "output_padding", minimum=0)
    kernel = w.shape[2:]
    osz = []
    for i in range(nd):
        if output_padding[i] >= max(stride[i], dilation[i]):
            raise ValueError(
                f"{fname}: output_padding must be smaller than stride or dilation, "
                f"got output_padding={output_padding}, stride={stride}, dilation={dilation}"
            )
        o = (
            (x.shape[2 + i] - 1) * stride[i]
            - 2 * padding[i]
            + dilation[i] * (kernel[i] - 1)
            + output_padding[i]
            + 1
        )
        if o < 1:
            raise ValueError(f"{fname}: computed output size {o} is not positive")
        osz.append(o)
    fill = 2 - nd
    x4 = np.ascontiguousarray(x.reshape(x.shape[:2] + (1,) * fill + x.shape[2:]))
    w4 = np.ascontiguousarray(w.reshape(w.shape[:2] + (1,) * fill + w.shape[2:]))
    s2 = (1,) * fill + stride
    p2 = (0,) * fill + padding
    d2 = (1,) * fill + dilation
    o2 = (1,) * fill + tuple(osz)
    bb = b if b is not None else np.zeros(O, x.dtype)
    out = np.empty((N, O) + o2, x.dtype)
    _conv_transpose2d(x4, w4, bb, out, s2[0], s2[1], p2[0], p2[1], d2[0], d2[1], groups)
    out = out.reshape((N, O) + tuple(osz))
    return out[0] if unbatched else out


def conv_transpose1d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """Transposed 1-D convolution, weight (C_in, C_out/groups, k), as in PyTorch."""
    return _conv_transpose_nd(
        input, weight, bias, stride, padding, output_padding, groups, dilation, 1
    )


def conv_transpose2d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """Transposed 2-D convolution, weight (C_in, C_out/groups, kh, kw), as in PyTorch."""
    return _conv_transpose_nd(
        input, weight, bias, stride, padding, output_padding, groups, dilation, 2
    )


def conv2d_table(input, weight, bias, connections, stride=1, padding=0):
    """LeNet-1998 partially connected 2-D convolution (e.g. C3 of LeNet-5).

    ``connections[o]`` lists the input channels that output channel ``o`` reads.
    ``weight`` has shape (C_out, max_len, kh, kw); output channel ``o`` uses the
    first ``len(connections[o])`` slots, slot ``j`` applying to input channel
    ``connections[o][j]`` (remaining slots are ignored).  ``bias`` is (C_out,)
    or None.  Implemented by scattering into a dense (C_out, C_in, kh, kw)
    weight with zeros for missing connections and calling ``conv2d``.
    """
    x = as_float_array(input)
    if x.ndim != 4:
        raise ValueError(f"conv2d_table: input must be 4-D (N, C, H, W), got {x.shape}")
    w = like(weight, x, "weight")
    if w is None or w.ndim != 4:
        raise ValueError("conv2d_table: weight must be 4-D (C_out, max_len, kh, kw)")
    O, L = w.shape[:2]
    C = x.shape[1]
    try:
        conns = [list(c) for c in connections]
    except TypeError:
        raise ValueError("conv2d_table: connections must be a list of index lists") from None
    if len(conns) != O:
        raise ValueError(f"conv2d_table: {len(conns)} connection lists for {O} output channels")
    dense = np.zeros((O, C) + w.shape[2:], x.dtype)
    for o, conn in enumerate(conns):
        if len(conn) > L:
            raise ValueError(f"conv2d_table: connections[{o}] has more than {L} entries")
        if len(set(conn)) != len(conn):
            raise ValueError(f"conv2d_table: connections[{o}] repeats a channel")
        for j, c in enumerate(conn):
            if not is_int(c) or not 0 <= c < C:
                raise ValueError(f"conv2d_table: bad input channel {c!r} in connections[{o}]")
            dense[o, c] = w[o, j]
    return conv2d(x, dense, bias, stride=stride, padding=padding)
