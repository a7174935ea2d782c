"""Pure arithmetic per layer type: output shape, parameters, MACs, receptive-field step.

Every rule here is PyTorch's (``torch.nn`` docs and ``aten/src/ATen/native/Pool.h``), and
sizes are Python ints, so 3×100000×100000 inputs are exact. Nothing here prints or reads files.
Shapes carry no batch dimension: ``(C, L)``, ``(C, H, W)``, ``(C, D, H, W)`` or ``(F,)``.

Conventions (also stated in the README): MACs count the multiply-accumulates of weighted
layers only (bias additions, activations, pooling and batch-norm count 0, as in
``torch.utils.flop_counter``); FLOPs = 2 × MACs; transposed convolutions are counted over
their *input* positions, as ``torch.utils.flop_counter`` does.
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import dataclass, field
from fractions import Fraction
from functools import singledispatch
from typing import Literal

from cnncalc import layers as L

Shape = tuple[int, ...]
AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}

# "pytorch" (the default, the ground truth) or "tensorflow" (Keras: 'same' = ⌈n/s⌉ with the
# extra padding at the end, any stride; no ceil_mode). Set by analysis.analyze for one walk.
SEMANTICS: ContextVar[str] = ContextVar("semantics", default="pytorch")


class LayerProblem(Exception):
    """A layer cannot be applied; the analysis adds which layer it is."""

    def __init__(self, reason: str, field: str | None = None, value: object = None) -> None:
        super().__init__(reason)
        self.reason, self.field, self.value = reason, field, value


# --------------------------------------------------------------------------- size formulas


def conv_out(n: int, k: int, s: int, pad_total: int, d: int = 1) -> int:
    """Convolution output size: ⌊(n + p_total − d(k−1) − 1)/s⌋ + 1 (Dumoulin & Visin, 2016).

    With the article's convention (p = total padding, d = 1) this is ⌊(n − k + p + s)/s⌋.
    """
    return (n + pad_total - d * (k - 1) - 1) // s + 1


def pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> tuple[int, bool]:
    """PyTorch's ``pooling_output_shape``; returns (size, whether ceil mode dropped a window).

    In ceil mode the last window may overhang the padded input, but a window that would
    *start* in the right padding is dropped.
    """
    span = n + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    dropped = False
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
        dropped = True
    return out, dropped


def conv_transpose_out(n: int, k: int, s: int, p: int, op: int, d: int) -> int:
    """(n − 1)s − 2p + d(k − 1) + output_padding + 1 (PyTorch ConvTranspose docs)."""
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def same_padding(k: int, d: int) -> tuple[int, int]:
    """PyTorch's padding='same': total d(k−1), the odd one extra on the right."""
    total = d * (k - 1)
    return total // 2, total - total // 2


def tf_same_padding(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's 'SAME': output ⌈n/s⌉, total padding max((⌈n/s⌉−1)s + d(k−1) + 1 − n, 0),
    the odd one extra at the end (tf.nn.convolution docs)."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def adaptive_bins(n: int, out: int, limit: int | None = None) -> list[tuple[int, int]]:
    """Adaptive pooling bins [⌊i·n/out⌋, ⌈(i+1)·n/out⌉) for i < out (PyTorch's start/end_index);
    only the first ``limit`` when given (out may be 10**7)."""
    count = out if limit is None else min(out, limit)
    return [(i * n // out, -(-(i + 1) * n // out)) for i in range(count)]


def adaptive_widths(n: int, out: int) -> tuple[int, ...]:
    """The distinct widths of :func:`adaptive_bins`, in closed form (out may be 10**7).

    With n = q·out + r, bin i is q + ⌈(r + (i·r mod out))/out⌉ wide; i·r mod out takes every
    multiple of g = gcd(r, out) below out, so the widths are q (r = 0), or q + 1 and, when
    r > g, also q + 2 — the widest bin is the one a receptive field must cover.
    """
    q, r = divmod(n, out)
    if r == 0:
        return (q,)
    return (q + 1, q + 2) if r > math.gcd(r, out) else (q + 1,)


def dropped_by_floor(n: int, pad_before: int, k_eff: int, s: int, out: int) -> int:
    """Real input elements after the last window that floor mode never reads."""
    last_end = (out - 1) * s + k_eff  # in padded coordinates
    return max(0, n + pad_before - last_end)


# --------------------------------------------------------------------------- receptive field


@dataclass(frozen=True)
class Window:
    """How one layer maps positions along an axis, for the receptive-field recurrence.

    Araujo, Norris & Sim, "Computing Receptive Fields of CNNs", Distill 2019:
    r_out = r_in + (k − 1)·j_in,  j_out = j_in·s,  start_out = start_in − pad·j_in,
    with k the effective (dilated) kernel. Strides below 1 (transposed conv, upsampling)
    are fractions.
    """

    kernel: int = 1
    stride: Fraction = Fraction(1)
    pad: Fraction = Fraction(0)


RFAction = Literal["keep", "windows", "flatten", "dense", "lost"]


@dataclass(frozen=True)
class Facts:
    """What one layer does to one input shape."""

    output_shape: Shape
    weights: int = 0
    bias: int = 0
    buffers: int = 0  # stored, never trained (running stats, the batch counter)
    frozen: int = 0  # parameters that are not trained (counted in weights/bias too)
    macs: int = 0
    dense_comparable: bool = False  # a learned weighted map: the FC comparison applies
    rf: RFAction = "keep"
    windows: tuple[Window, ...] = ()
    notes: tuple[str, ...] = field(default=())  # where PyTorch silently loses data
    drops_input: bool = False  # floor mode leaves real input rows/columns unread


def _prod(values: tuple[int, ...] | list[int]) -> int:
    return math.prod(values)


def _need_rank(layer: L.Layer, shape: Shape, dims: int) -> None:
    if len(shape) != dims + 1:
        want = "×".join(("C",) + AXES[dims])
        got = "×".join(map(str, shape))
        hint = " (a flatten too early?)" if len(shape) < dims + 1 else ""
        raise LayerProblem(f"expects a {want} input, got {got}{hint}")


def _check_given(given: int | None, actual: int, field: str) -> None:
    if given is not None and given != actual:
        raise LayerProblem(f"does not match the input, which has {actual}", field, given)


def _x(values: tuple[int, ...] | list[int]) -> str:
    return "x".join(map(str, values))


def _floor_notes(shape: Shape, outs, pads_before, k_effs, strides, what: str) -> list[str]:
    """One note naming every axis whose last input rows floor mode never reads.

    Only for windows that tile the input (k ≥ s): a 1×1 stride-2 conv skips every other row
    by design, and that is not the silent loss this note is about.
    """
    lost = []
    for axis, n, o, pb, k, s in zip(AXES[len(shape) - 1], shape[1:], outs, pads_before, k_effs,
                                    strides):
        # with k < s gaps between windows are skipped by design; only flag a tiling's tail
        count = dropped_by_floor(n, pb, k, s, o) if k >= s else 0
        if count:
            lost.append(f"{count} of {n} on {axis}")
    if not lost:
        return []
    return [f"floor mode: the last input rows/columns ({', '.join(lost)}) never reach a "
            f"{what} window"]


# --------------------------------------------------------------------------- per-layer rules


@singledispatch
def infer(layer: L.Layer, shape: Shape) -> Facts:
    """Facts of ``layer`` applied to an input of ``shape`` (no batch dimension)."""
    raise NotImplementedError(f"no arithmetic for {type(layer).__name__}")


@infer.register
def _elementwise(layer: L._Elementwise, shape: Shape) -> Facts:
    if isinstance(layer, (L.Softmax, L.LogSoftmax)) and layer.dim is not None:
        rank = len(shape) + 1  # PyTorch counts the batch dimension
        if not -rank <= layer.dim < rank:
            raise LayerProblem(f"out of range for a {rank}-d batched input", "dim", layer.dim)
    return Facts(shape)


@infer.register
def _prelu(layer: L.PReLU, shape: Shape) -> Facts:
    if layer.num_parameters not in (1, shape[0]):
        raise LayerProblem(f"must be 1 or the channel count {shape[0]}", "num_parameters",
                           layer.num_parameters)
    return Facts(shape, weights=layer.num_parameters)


def _conv_common(layer: L._ConvBase, shape: Shape) -> tuple[int, int]:
    _need_rank(layer, shape, layer.dims)
    c_in = shape[0]
    _check_given(layer.in_channels, c_in, "in_channels")
    g = layer.groups
    if c_in % g:
        raise LayerProblem(f"must divide in_channels {c_in}", "groups", g)
    if layer.out_channels % g:
        raise LayerProblem(f"must divide out_channels {layer.out_channels}", "groups", g)
    return c_in, g


@infer.register
def _conv(layer: L._ConvNd, shape: Shape) -> Facts:
    c_in, g = _conv_common(layer, shape)
    spatial = shape[1:]
    k, s, d = layer.kernel_size, layer.stride, layer.dilation
    if layer.padding == "same" and SEMANTICS.get() == "tensorflow":
        pads = [tf_same_padding(n, ki, si, di) for n, ki, si, di in zip(spatial, k, s, d)]
    elif layer.padding == "same":
        if any(si != 1 for si in s):
            raise LayerProblem("is not supported for strided convolutions in PyTorch "
                               "(--semantics tensorflow allows it)", "padding", "same")
        pads = [same_padding(ki, di) for ki, di in zip(k, d)]
    elif layer.padding == "valid":
        pads = [(0, 0)] * layer.dims
    else:
        pads = [(p, p) for p in layer.padding]
    mode = layer.padding_mode
    for axis, n, (a, b) in zip(AXES[layer.dims], spatial, pads):
        # F.pad's rules: reflect needs pad < size; circular may wrap around at most once
        if (mode == "reflect" and max(a, b) >= n) or (mode == "circular" and max(a, b) > n):
            bound = "smaller than" if mode == "reflect" else "at most"
            raise LayerProblem(f"padding {max(a, b)} on {axis} must be {bound} the input size "
                               f"{n} with padding_mode='{mode}'", "padding", layer.padding)
    k_eff = [di * (ki - 1) + 1 for ki, di in zip(k, d)]
    padded = [n + a + b for n, (a, b) in zip(spatial, pads)]
    if any(ke > n for ke, n in zip(k_eff, padded)):
        what = "dilated kernel" if any(di > 1 for di in d) else "kernel"
        raise LayerProblem(f"{what} {_x(k_eff)} is larger than the padded input {_x(padded)}")
    outs = [conv_out(n, ki, si, a + b, di) for n, ki, si, (a, b), di in
            zip(spatial, k, s, pads, d)]
    out_shape = (layer.out_channels, *outs)
    k_area = _prod(k)
    if getattr(layer, "connections", None) is not None:
        table = layer.connections
        bad = [i for row in table for i in row if i >= c_in]
        if bad:
            raise LayerProblem(f"refers to input map {bad[0]}, but the input has {c_in} maps",
                               "connections")
        fan = sum(len(row) for row in table)
        weights = fan * k_area
        macs = _prod(outs) * fan * k_area
    else:
        weights = layer.out_channels * (c_in // g) * k_area
        macs = _prod(out_shape) * (c_in // g) * k_area
    notes = _floor_notes(shape, outs, [a for a, _ in pads], k_eff, s, "kernel")
    drops = bool(notes)
    return Facts(
        out_shape,
        weights=weights,
        bias=layer.out_channels if layer.bias else 0,
        macs=macs,
        dense_comparable=True,
        rf="windows",
        windows=tuple(Window(ke, Fraction(si), Fraction(a)) for ke, si, (a, _) in
                      zip(k_eff, s, pads)),
        notes=tuple(notes),
        drops_input=drops,
    )


def _transposed_window(k: int, s: int, p: int, d: int) -> Window:
    """Receptive-field step of a transposed conv: output o reads inputs i with i·s − p + t·d = o.

    Size is the widest span over the s output phases; start is that of output 0. In closed
    form (s may be 10**9): taps t with t·d ≡ o + p (mod s) step by m = s/g, g = gcd(d, s),
    and a phase whose first tap is t = 0 exists, so the widest span is ⌊(k−1)/m⌋·(d/g) + 1.
    Output 0's taps solve t·(d/g) ≡ p/g (mod m): the last one, t_max, reads the first input.
    """
    g = math.gcd(d, s)
    m = s // g
    widest = (k - 1) // m * (d // g) + 1
    start = -((p + s - 1) // s)  # output 0 reads no input (only its bias)
    if p % g == 0:
        t0 = (p // g) * pow(d // g, -1, m) % m if m > 1 else 0
        if t0 <= k - 1:
            t_max = t0 + (k - 1 - t0) // m * m
            start = (p - t_max * d) // s
    return Window(widest, Fraction(1, s), Fraction(-start))


@infer.register
def _conv_transpose(layer: L._ConvTransposeNd, shape: Shape) -> Facts:
    c_in, g = _conv_common(layer, shape)
    spatial = shape[1:]
    k, s, p, op, d = (layer.kernel_size, layer.stride, layer.padding, layer.output_padding,
                      layer.dilation)
    outs = [conv_transpose_out(*a) for a in zip(spatial, k, s, p, op, d)]
    if any(o < 1 for o in outs):
        raise LayerProblem(f"output size {_x(outs)} is not positive (padding too large)",
                           "padding", tuple(p))
    out_shape = (layer.out_channels, *outs)
    k_area = _prod(k)
    weights = c_in * (layer.out_channels // g) * k_area
    return Facts(
        out_shape,
        weights=weights,
        bias=layer.out_channels if layer.bias else 0,
        macs=_prod(spatial) * c_in * (layer.out_channels // g) * k_area,
        dense_comparable=True,
        rf="windows",
        windows=tuple(_transposed_window(*a) for a in zip(k, s, p, d)),
    )


def _pool(layer: L._PoolBase, shape: Shape, dilation: tuple[int, ...]) -> Facts:
    _need_rank(layer, shape, layer.dims)
    if layer.ceil_mode and SEMANTICS.get() == "tensorflow":
        raise LayerProblem("does not exist in TensorFlow/Keras pooling", "ceil_mode", True)
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    k_eff = [di * (ki - 1) + 1 for ki, di in zip(k, dilation)]
    outs, notes = [], []
    for axis, n, ki, si, pi, di in zip(AXES[layer.dims], shape[1:], k, s, p, dilation):
        o, dropped = pool_out(n, ki, si, pi, di, layer.ceil_mode)
        if o < 1:
            raise LayerProblem(
                f"output size on {axis} would be {o}: window {di * (ki - 1) + 1} does not fit "
                f"the padded input {n + 2 * pi}"
            )
        if dropped:
            notes.append(axis)
        outs.append(o)
    if notes:
        notes = [f"ceil_mode: the last window on {' and '.join(notes)} would start in the right "
                 "padding and is dropped"]
    floor = [] if layer.ceil_mode else _floor_notes(shape, outs, p, k_eff, s, "pooling")
    notes += floor
    return Facts(
        (shape[0], *outs),
        rf="windows",
        windows=tuple(Window(ke, Fraction(si), Fraction(pi)) for ke, si, pi in zip(k_eff, s, p)),
        notes=tuple(notes),
        drops_input=bool(floor),
    )


@infer.register
def _maxpool(layer: L._MaxPoolNd, shape: Shape) -> Facts:
    return _pool(layer, shape, layer.dilation)


@infer.register
def _avgpool(layer: L._AvgPoolNd, shape: Shape) -> Facts:
    return _pool(layer, shape, (1,) * layer.dims)


@infer.register
def _subsample(layer: L.Subsample2d, shape: Shape) -> Facts:
    _need_rank(layer, shape, 2)
    k, s = layer.kernel_size, layer.stride
    if any(ki > n for ki, n in zip(k, shape[1:])):
        raise LayerProblem(f"window {_x(k)} is larger than the input {_x(shape[1:])}")
    outs = [conv_out(n, ki, si, 0) for n, ki, si in zip(shape[1:], k, s)]
    out_shape = (shape[0], *outs)
    return Facts(
        out_shape,
        weights=shape[0],
        bias=shape[0],
        macs=_prod(out_shape) * _prod(k),  # window sums, each scaled once
        dense_comparable=True,
        rf="windows",
        windows=tuple(Window(ki, Fraction(si)) for ki, si in zip(k, s)),
        notes=tuple(floor := _floor_notes(shape, outs, (0, 0), k, s, "subsampling")),
        drops_input=bool(floor),
    )


@infer.register
def _adaptive(layer: L._AdaptiveNd, shape: Shape) -> Facts:
    _need_rank(layer, shape, layer.dims)
    outs = [n if o is None else o for n, o in zip(shape[1:], layer.output_size)]
    windows = []
    for n, o in zip(shape[1:], outs):
        widest = max(adaptive_widths(n, o))
        windows.append(Window(widest, Fraction(n, o)))
    return Facts((shape[0], *outs), rf="windows", windows=tuple(windows))


@infer.register
def _zeropad(layer: L._ZeroPadNd, shape: Shape) -> Facts:
    _need_rank(layer, shape, layer.dims)
    pairs = layer.per_axis()
    for axis, n, (a, b) in zip(AXES[layer.dims], shape[1:], pairs):
        # PyTorch crops (negative padding) before it pads: the crop alone must fit
        if n + min(a, 0) + min(b, 0) < 0:
            raise LayerProblem(f"crops {-min(a, 0) - min(b, 0)} from {n} on {axis}", "padding",
                               layer.padding)
    outs = [n + a + b for n, (a, b) in zip(shape[1:], pairs)]
    if any(o < 1 for o in outs):
        raise LayerProblem(f"cropping leaves {_x(outs)}", "padding", layer.padding)
    # a padding layer is a 1-wide window that shifts coordinates by the left padding
    return Facts((shape[0], *outs), rf="windows",
                 windows=tuple(Window(1, Fraction(1), Fraction(a)) for a, _ in pairs))


@infer.register
def _upsample(layer: L.Upsample, shape: Shape) -> Facts:
    if len(shape) < 2:
        raise LayerProblem(f"needs spatial dimensions, got {_x(shape)}")
    dims = len(shape) - 1
    spatial = shape[1:]
    if layer.size is not None:
        sizes = layer.size if isinstance(layer.size, tuple) else (layer.size,) * dims
        if len(sizes) != dims:
            raise LayerProblem(f"needs 1 or {dims} values", "size", layer.size)
        outs = list(sizes)
        steps = [Fraction(n, o) for n, o in zip(spatial, outs)]
    else:
        f = layer.scale_factor
        factors = f if isinstance(f, tuple) else (f,) * dims
        if len(factors) != dims:
            raise LayerProblem(f"needs 1 or {dims} values", "scale_factor", f)
        outs = [math.floor(n * fi) for n, fi in zip(spatial, factors)]
        steps = [1 / Fraction(fi) for fi in factors]  # PyTorch reads src = ⌊dst / factor⌋
        if any(o < 1 for o in outs):
            raise LayerProblem(f"output size {_x(outs)} is empty", "scale_factor", f)
    return Facts((shape[0], *outs), rf="windows",
                 windows=tuple(Window(1, st) for st in steps))


@infer.register
def _flatten(layer: L.Flatten, shape: Shape) -> Facts:
    rank = len(shape) + 1  # with the batch dimension, as PyTorch counts
    start = layer.start_dim + rank if layer.start_dim < 0 else layer.start_dim
    end = layer.end_dim + rank if layer.end_dim < 0 else layer.end_dim
    if not 0 <= start < rank:
        raise LayerProblem(f"out of range for a {rank}-d batched input", "start_dim",
                           layer.start_dim)
    if not 0 <= end < rank:
        raise LayerProblem(f"out of range for a {rank}-d batched input", "end_dim", layer.end_dim)
    if start > end:
        raise LayerProblem(f"must not be after end_dim {layer.end_dim}", "start_dim",
                           layer.start_dim)
    if start == 0:
        raise LayerProblem("0 would flatten the batch into the features; use 1", "start_dim",
                           layer.start_dim)
    a, b = start - 1, end - 1  # without the batch
    out = shape[:a] + (_prod(shape[a:b + 1]),) + shape[b + 1:]
    if a == b:
        action: RFAction = "keep"
    elif a == 0 and b == len(shape) - 1:
        action = "flatten"
    else:
        action = "lost"
    return Facts(out, rf=action)


@infer.register
def _linear(layer: L.Linear, shape: Shape) -> Facts:
    n = shape[-1]
    _check_given(layer.in_features, n, "in_features")
    out = shape[:-1] + (layer.out_features,)
    rows = _prod(shape[:-1])
    notes = ()
    if len(shape) > 1:
        notes = (f"input {_x(shape)} is not flat: linear mixes only the last dimension "
                 f"({n}), independently for each of the other {rows} positions "
                 "(add a flatten before it?)",)
    return Facts(
        out,
        weights=n * layer.out_features,
        bias=layer.out_features if layer.bias else 0,
        macs=rows * n * layer.out_features,
        dense_comparable=True,
        rf="dense",
        notes=notes,
    )


@infer.register
def _rbf(layer: L.RBF, shape: Shape) -> Facts:
    if len(shape) != 1:
        raise LayerProblem(f"expects a flat input, got {_x(shape)}")
    _check_given(layer.in_features, shape[0], "in_features")
    w = shape[0] * layer.out_features
    return Facts((layer.out_features,), weights=w, frozen=w, macs=w, dense_comparable=True,
                 rf="dense")


@infer.register
def _batchnorm(layer: L._BatchNormNd, shape: Shape) -> Facts:
    if isinstance(layer, L.BatchNorm2d):
        _need_rank(layer, shape, 2)
    elif len(shape) not in (1, 2):
        raise LayerProblem(f"expects a C or C×L input, got {_x(shape)}")
    c = shape[0]
    _check_given(layer.num_features, c, "num_features")
    affine = c if layer.affine else 0
    # running_mean, running_var and num_batches_tracked, as in PyTorch's state_dict
    buffers = 2 * c + 1 if layer.track_running_stats else 0
    return Facts(shape, weights=affine, bias=affine, buffers=buffers)


# --------------------------------------------------------------------------- exact unit fields


Span = tuple[int, int]


@singledispatch
def input_span(layer: L.Layer, in_shape: Shape, axis: int, lo: int, hi: int) -> Span | None:
    """Input positions (on spatial ``axis``; negative or past the end: padding) that outputs
    ``lo..hi`` read — exact for every unit, where the recurrence's ``start + i·jump`` is exact
    only while the jump is whole. None where the layer mixes positions (dense layers)."""
    facts = infer(layer, in_shape)
    if facts.rf == "keep":
        return lo, hi
    if facts.rf != "windows":
        return None
    w = facts.windows[axis]
    s, pad = int(w.stride), int(w.pad)  # integral for conv, pool, pad and sub-sampling
    return lo * s - pad, hi * s - pad + w.kernel - 1


@input_span.register
def _(layer: L._ConvTransposeNd, in_shape: Shape, axis: int, lo: int, hi: int) -> Span | None:
    # input i writes outputs i·s − p + t·d for t < k
    k, s, p, d = (layer.kernel_size[axis], layer.stride[axis], layer.padding[axis],
                  layer.dilation[axis])
    firsts, lasts = [], []
    for t in range(k):
        a, b = -(-(lo + p - t * d) // s), (hi + p - t * d) // s
        if a <= b:
            firsts.append(a)
            lasts.append(b)
    return (min(firsts), max(lasts)) if firsts else None


@input_span.register
def _(layer: L._AdaptiveNd, in_shape: Shape, axis: int, lo: int, hi: int) -> Span | None:
    n = in_shape[1 + axis]
    o = layer.output_size[axis] or n
    return lo * n // o, -(-(hi + 1) * n // o) - 1


@input_span.register
def _(layer: L.Upsample, in_shape: Shape, axis: int, lo: int, hi: int) -> Span | None:
    # PyTorch's legacy nearest: src = ⌊dst·scale⌋, scale = in/out for size, 1/factor otherwise
    n = in_shape[1 + axis]
    if layer.size is not None:
        size = layer.size if isinstance(layer.size, tuple) else (layer.size,) * (len(in_shape) - 1)
        scale = Fraction(n, size[axis])
    else:
        f = layer.scale_factor
        factor = f[axis] if isinstance(f, tuple) else f
        scale = 1 / Fraction(factor)
    return math.floor(lo * scale), math.floor(hi * scale)
