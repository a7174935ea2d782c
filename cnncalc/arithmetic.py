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
from typing import Literal

from cnncalc import layers as L
from cnncalc.errors import shape_text
from cnncalc.registry import lookup, rule

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
    """Real input elements after the last window that floor mode never reads.

    Only windows that tile the input (k ≥ s) can lose a tail: with k < s (a 1×1 stride-2
    downsample) the gaps between windows are skipped by design, every window included, and
    that is not the silent loss shapes, explain and solve warn about (0 then).
    """
    if k_eff < s:
        return 0
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


RFAction = Literal[
    "keep", "windows", "flatten", "dense", "lost", "merge", "mix", "permute", "unflatten"
]


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
    # tensor axes (no batch) for rf "mix": the axes every output reads whole (a norm's
    # statistics); "permute": the new order; "unflatten": (the axis split, into how many)
    axes: tuple[int, ...] = ()


def _prod(values: tuple[int, ...] | list[int]) -> int:
    return math.prod(values)


def _need_rank(layer: L.Layer, shape: Shape, dims: int) -> None:
    if len(shape) != dims + 1:
        want = "x".join(("C",) + AXES[dims])
        got = shape_text(shape)
        hint = " (a flatten too early?)" if len(shape) < dims + 1 else ""
        raise LayerProblem(f"expects a {want} input, got {got}{hint}")


def _check_given(layer: L.Layer, field: str, actual: int) -> None:
    """in_channels / in_features / num_features, when given, must be what the input has."""
    given = getattr(layer, field)
    if given is not None and given != actual:
        from cnncalc.inline import signature

        noun = "feature" if field == "in_features" else "channel"
        raise LayerProblem(
            f"does not match the input, which has {actual} {noun}"
            f"{'s' if actual != 1 else ''} — positional arguments follow "
            f"PyTorch: {signature(type(layer), defaults=False, limit=3)}",
            field,
            given,
        )


_x = shape_text


def _floor_notes(shape: Shape, outs, pads_before, k_effs, strides, what: str) -> list[str]:
    """One note naming every axis whose last input rows floor mode never reads."""
    lost = []
    for axis, n, o, pb, k, s in zip(
        AXES[len(shape) - 1], shape[1:], outs, pads_before, k_effs, strides
    ):
        count = dropped_by_floor(n, pb, k, s, o)
        if count:
            lost.append(f"{count} of {n} on {axis}")
    if not lost:
        return []
    return [
        f"floor mode: the last input rows/columns ({', '.join(lost)}) never reach a {what} window"
    ]


# --------------------------------------------------------------------------- per-layer rules


def infer(layer: L.Layer, *shapes: Shape) -> Facts:
    """Facts of ``layer`` applied to inputs of ``shapes`` (no batch dimension): one shape for
    a layer, one per branch for a merge."""
    return lookup("infer", type(layer))(layer, *shapes)


@rule("infer", *L.ELEMENTWISE)
def _elementwise(layer: L._Elementwise, shape: Shape) -> Facts:
    if layer.type in L.SOFTMAXES and layer.dim is not None:
        rank = len(shape) + 1  # PyTorch counts the batch dimension
        if not -rank <= layer.dim < rank:
            raise LayerProblem(f"out of range for a {rank}-d batched input", "dim", layer.dim)
    return Facts(shape)


@rule("infer", "prelu")
def _prelu(layer: L.PReLU, shape: Shape) -> Facts:
    if layer.num_parameters not in (1, shape[0]):
        raise LayerProblem(
            f"must be 1 or the channel count {shape[0]}", "num_parameters", layer.num_parameters
        )
    return Facts(shape, weights=layer.num_parameters)


def _conv_common(layer: L._ConvBase, shape: Shape) -> tuple[int, int]:
    _need_rank(layer, shape, layer.dims)
    c_in = shape[0]
    _check_given(layer, "in_channels", c_in)
    g = layer.groups
    if c_in % g:
        raise LayerProblem(f"must divide in_channels {c_in}", "groups", g)
    if layer.out_channels % g:
        raise LayerProblem(f"must divide out_channels {layer.out_channels}", "groups", g)
    return c_in, g


@rule("infer", *L.CONV_ND)
def _conv(layer: L._ConvNd, shape: Shape) -> Facts:
    c_in, g = _conv_common(layer, shape)
    spatial = shape[1:]
    k, s, d = layer.kernel_size, layer.stride, layer.dilation
    if layer.padding == "same" and SEMANTICS.get() == "tensorflow":
        pads = [tf_same_padding(n, ki, si, di) for n, ki, si, di in zip(spatial, k, s, d)]
    elif layer.padding == "same":
        if any(si != 1 for si in s):
            raise LayerProblem(
                "is not supported for strided convolutions in PyTorch "
                "(--semantics tensorflow allows it)",
                "padding",
                "same",
            )
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
            raise LayerProblem(
                f"padding {max(a, b)} on {axis} must be {bound} the input size "
                f"{n} with padding_mode='{mode}'",
                "padding",
                layer.padding,
            )
    k_eff = [di * (ki - 1) + 1 for ki, di in zip(k, d)]
    padded = [n + a + b for n, (a, b) in zip(spatial, pads)]
    if any(ke > n for ke, n in zip(k_eff, padded)):
        what = "dilated kernel" if any(di > 1 for di in d) else "kernel"
        raise LayerProblem(f"{what} {_x(k_eff)} is larger than the padded input {_x(padded)}")
    outs = [conv_out(n, ki, si, a + b, di) for n, ki, si, (a, b), di in zip(spatial, k, s, pads, d)]
    out_shape = (layer.out_channels, *outs)
    k_area = _prod(k)
    if getattr(layer, "connections", None) is not None:
        table = layer.connections
        bad = [i for row in table for i in row if i >= c_in]
        if bad:
            raise LayerProblem(
                f"refers to input map {bad[0]}, but the input has {c_in} maps", "connections"
            )
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
        windows=tuple(
            Window(ke, Fraction(si), Fraction(a)) for ke, si, (a, _) in zip(k_eff, s, pads)
        ),
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


@rule("infer", *L.CONV_TRANSPOSE)
def _conv_transpose(layer: L._ConvTransposeNd, shape: Shape) -> Facts:
    c_in, g = _conv_common(layer, shape)
    spatial = shape[1:]
    k, s, p, op, d = (
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.output_padding,
        layer.dilation,
    )
    outs = [conv_transpose_out(*a) for a in zip(spatial, k, s, p, op, d)]
    if any(o < 1 for o in outs):
        raise LayerProblem(
            f"output size {_x(outs)} is not positive (padding too large)", "padding", tuple(p)
        )
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
        notes = [
            f"ceil_mode: the last window on {' and '.join(notes)} would start in the right "
            "padding and is dropped"
        ]
    floor = [] if layer.ceil_mode else _floor_notes(shape, outs, p, k_eff, s, "pooling")
    notes += floor
    return Facts(
        (shape[0], *outs),
        rf="windows",
        windows=tuple(Window(ke, Fraction(si), Fraction(pi)) for ke, si, pi in zip(k_eff, s, p)),
        notes=tuple(notes),
        drops_input=bool(floor),
    )


@rule("infer", *L.MAX_POOLS)
def _maxpool(layer: L._MaxPoolNd, shape: Shape) -> Facts:
    return _pool(layer, shape, layer.dilation)


@rule("infer", *L.AVG_POOLS)
def _avgpool(layer: L._AvgPoolNd, shape: Shape) -> Facts:
    return _pool(layer, shape, (1,) * layer.dims)


@rule("infer", "subsample2d")
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


@rule("infer", *L.ADAPTIVE_AVG, *L.ADAPTIVE_MAX)
def _adaptive(layer: L._AdaptiveNd, shape: Shape) -> Facts:
    _need_rank(layer, shape, layer.dims)
    outs = [n if o is None else o for n, o in zip(shape[1:], layer.output_size)]
    windows = []
    for n, o in zip(shape[1:], outs):
        widest = max(adaptive_widths(n, o))
        windows.append(Window(widest, Fraction(n, o)))
    return Facts((shape[0], *outs), rf="windows", windows=tuple(windows))


@rule("infer", *L.ZERO_PADS, *L.CONSTANT_PADS)
def _zeropad(layer: L._ZeroPadNd, shape: Shape) -> Facts:
    _need_rank(layer, shape, layer.dims)
    pairs = layer.per_axis()
    for axis, n, (a, b) in zip(AXES[layer.dims], shape[1:], pairs):
        # PyTorch crops (negative padding) before it pads: the crop alone must fit
        if n + min(a, 0) + min(b, 0) < 0:
            raise LayerProblem(
                f"crops {-min(a, 0) - min(b, 0)} from {n} on {axis}", "padding", layer.padding
            )
    outs = [n + a + b for n, (a, b) in zip(shape[1:], pairs)]
    if any(o < 1 for o in outs):
        raise LayerProblem(f"cropping leaves {_x(outs)}", "padding", layer.padding)
    # a padding layer is a 1-wide window that shifts coordinates by the left padding
    return Facts(
        (shape[0], *outs),
        rf="windows",
        windows=tuple(Window(1, Fraction(1), Fraction(a)) for a, _ in pairs),
    )


@rule("infer", "flatten")
def _flatten(layer: L.Flatten, shape: Shape) -> Facts:
    rank = len(shape) + 1  # with the batch dimension, as PyTorch counts
    start = layer.start_dim + rank if layer.start_dim < 0 else layer.start_dim
    end = layer.end_dim + rank if layer.end_dim < 0 else layer.end_dim
    if not 0 <= start < rank:
        raise LayerProblem(
            f"out of range for a {rank}-d batched input", "start_dim", layer.start_dim
        )
    if not 0 <= end < rank:
        raise LayerProblem(f"out of range for a {rank}-d batched input", "end_dim", layer.end_dim)
    if start > end:
        raise LayerProblem(
            f"must not be after end_dim {layer.end_dim}", "start_dim", layer.start_dim
        )
    if start == 0:
        raise LayerProblem(
            "0 would flatten the batch into the features; use 1", "start_dim", layer.start_dim
        )
    a, b = start - 1, end - 1  # without the batch
    out = shape[:a] + (_prod(shape[a : b + 1]),) + shape[b + 1 :]
    if a == b:
        action: RFAction = "keep"
    elif a == 0 and b == len(shape) - 1:
        action = "flatten"
    else:
        action = "lost"
    return Facts(out, rf=action)


NOT_FLAT = "is not flat: linear mixes only the last dimension"


@rule("infer", "linear")
def _linear(layer: L.Linear, shape: Shape) -> Facts:
    n = shape[-1]
    _check_given(layer, "in_features", n)
    out = shape[:-1] + (layer.out_features,)
    rows = _prod(shape[:-1])
    notes = ()
    if len(shape) > 1:
        notes = (
            f"input {_x(shape)} {NOT_FLAT} "
            f"({n}), independently for each of the other {rows} positions "
            "(add a flatten before it?)",
        )
    return Facts(
        out,
        weights=n * layer.out_features,
        bias=layer.out_features if layer.bias else 0,
        macs=rows * n * layer.out_features,
        dense_comparable=True,
        rf="dense",
        notes=notes,
    )


@rule("infer", "rbf")
def _rbf(layer: L.RBF, shape: Shape) -> Facts:
    if len(shape) != 1:
        raise LayerProblem(f"expects a flat input, got {_x(shape)}")
    _check_given(layer, "in_features", shape[0])
    w = shape[0] * layer.out_features
    return Facts(
        (layer.out_features,), weights=w, frozen=w, macs=w, dense_comparable=True, rf="dense"
    )


@rule("infer", *L.BATCH_NORMS)
def _batchnorm(layer: L._BatchNormNd, shape: Shape) -> Facts:
    if layer.type in ("batchnorm2d", "batchnorm3d"):
        _need_rank(layer, shape, layer.dims)
    elif len(shape) not in (1, 2):
        raise LayerProblem(f"expects a C or C×L input, got {_x(shape)}")
    c = shape[0]
    _check_given(layer, "num_features", c)
    affine = c if layer.affine else 0
    # running_mean, running_var and num_batches_tracked, as in PyTorch's state_dict
    buffers = 2 * c + 1 if layer.track_running_stats else 0
    return Facts(shape, weights=affine, bias=affine, buffers=buffers)


# --------------------------------------------------------------------------- exact unit fields


Span = tuple[int, int]


def input_span(
    layer: L.Layer, in_shape: Shape, axis: int, lo: int, hi: int, *context: Shape
) -> Span | None:
    """Input positions (on spatial ``axis``; negative or past the end: padding) that outputs
    ``lo..hi`` read from an input of ``in_shape`` — exact for every unit, where the
    recurrence's ``start + i·jump`` is exact only while the jump is whole. None where the
    layer mixes positions (dense layers). A merge is asked once per branch. ``context``: the
    shapes of inputs read for their shape only (``upsample``'s ``size_of``)."""
    return lookup("span", type(layer))(layer, in_shape, axis, lo, hi, *context)


_BY_WINDOWS = (
    *L.ELEMENTWISE,
    "prelu",
    *L.CONV_ND,
    *L.MAX_POOLS,
    *L.AVG_POOLS,
    "subsample2d",
    *L.ZERO_PADS,
    *L.CONSTANT_PADS,
    "flatten",
    "narrow",
    "linear",
    "rbf",
    *L.BATCH_NORMS,
    "layer_norm2d",
    "stochastic_depth",
    "layer_scale",
    "channel_shuffle",
    "pixel_unshuffle",
)


@rule("span", *_BY_WINDOWS)
def _span_by_windows(layer: L.Layer, in_shape: Shape, axis: int, lo: int, hi: int) -> Span | None:
    """From the layer's receptive-field windows (integral for conv, pool, pad, sub-sampling)."""
    facts = infer(layer, in_shape)
    if facts.rf == "keep":
        return lo, hi
    if facts.rf != "windows":
        return None
    w = facts.windows[axis]
    s, pad = int(w.stride), int(w.pad)
    return lo * s - pad, hi * s - pad + w.kernel - 1


@rule("span", *L.CONV_TRANSPOSE)
def _span_transposed(
    layer: L._ConvTransposeNd, in_shape: Shape, axis: int, lo: int, hi: int
) -> Span | None:
    # input i writes outputs i·s − p + t·d for t < k
    k, s, p, d = (
        layer.kernel_size[axis],
        layer.stride[axis],
        layer.padding[axis],
        layer.dilation[axis],
    )
    firsts, lasts = [], []
    for t in range(k):
        a, b = -(-(lo + p - t * d) // s), (hi + p - t * d) // s
        if a <= b:
            firsts.append(a)
            lasts.append(b)
    return (min(firsts), max(lasts)) if firsts else None


@rule("span", *L.ADAPTIVE_AVG, *L.ADAPTIVE_MAX)
def _span_adaptive(
    layer: L._AdaptiveNd, in_shape: Shape, axis: int, lo: int, hi: int
) -> Span | None:
    n = in_shape[1 + axis]
    o = layer.output_size[axis] or n
    return lo * n // o, -(-(hi + 1) * n // o) - 1


# --------------------------------------------------------------------------- merges


def _branches(shapes: tuple[Shape, ...]) -> str:
    return ", ".join(f"branch {i + 1} gives {_x(s)}" for i, s in enumerate(shapes))


@rule("infer", "add")
def _add(layer: L.Add, *shapes: Shape) -> Facts:
    if any(s != shapes[0] for s in shapes):
        raise LayerProblem(f"add needs equal shapes: {_branches(shapes)}")
    return Facts(shapes[0], rf="merge")


@rule("infer", "concat")
def _concat(layer: L.Concat, *shapes: Shape) -> Facts:
    if any(len(s) != len(shapes[0]) or s[1:] != shapes[0][1:] for s in shapes):
        raise LayerProblem(f"concat needs equal sizes except channels: {_branches(shapes)}")
    return Facts((sum(s[0] for s in shapes), *shapes[0][1:]), rf="merge")


def broadcast(shapes: tuple[Shape, ...]) -> Shape | None:
    """PyTorch's broadcasting of shapes (batch left out: it is equal): sizes aligned from the
    right must agree or be 1; the result takes the larger. None when they do not broadcast."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + s for s in shapes]
    out = []
    for sizes in zip(*padded):
        big = max(sizes)
        if any(n not in (1, big) for n in sizes):
            return None
        out.append(big)
    return tuple(out)


@rule("infer", "mul")
def _mul(layer: L.Mul, *shapes: Shape) -> Facts:
    out = broadcast(shapes)
    if out is None:
        raise LayerProblem(
            f"mul needs shapes that broadcast (each size equal or 1): {_branches(shapes)}"
        )
    return Facts(out, rf="merge")


@rule("span", "add", "concat")
def _span_same(layer: L.Layer, in_shape: Shape, axis: int, lo: int, hi: int) -> Span:
    return lo, hi  # every branch at the same positions


@rule("span", "mul")
def _span_broadcast(layer: L.Mul, in_shape: Shape, axis: int, lo: int, hi: int) -> Span:
    # a size-1 axis (squeeze-and-excitation's C×1×1) is read at 0 by every output unit
    return (0, 0) if in_shape[1 + axis] == 1 else (lo, hi)


@rule("infer", "narrow")
def _narrow(layer: L.Narrow, shape: Shape) -> Facts:
    rank = len(shape) + 1  # PyTorch counts the batch dimension
    dim = layer.dim + rank if layer.dim < 0 else layer.dim
    if not 1 <= dim < rank:
        raise LayerProblem(
            f"out of range for a {rank}-d batched input (0 is the batch)", "dim", layer.dim
        )
    size = shape[dim - 1]
    if layer.start + layer.length > size:
        raise LayerProblem(
            f"start {layer.start} + length {layer.length} is past the size "
            f"{size} of dim {layer.dim}",
            "length",
            layer.length,
        )
    out = shape[: dim - 1] + (layer.length,) + shape[dim:]
    if dim == 1 or len(shape) == 1:  # channels (or features): positions are untouched
        return Facts(out)
    # a spatial slice is a crop: a 1-wide window shifted by the start
    windows = tuple(
        Window(1, Fraction(1), Fraction(-layer.start if a == dim - 2 else 0))
        for a in range(len(shape) - 1)
    )
    return Facts(out, rf="windows", windows=windows)


# --------------------------------------------------------------------------- today's CNNs
# Receptive-field convention for normalisations: a norm whose statistics span positions
# (GroupNorm, InstanceNorm without running stats, LayerNorm over spatial sizes) makes every
# output read every position of those axes: the field grows to the whole map and the jump
# becomes 0 (all units share one field). A norm over channels only (LayerNorm2d, LayerNorm(C)
# channels-last, batch-norm at inference) leaves positions untouched. MACs are 0 for all of
# them, as in torch.utils.flop_counter (which counts only matmuls and convolutions).


def _affine(count: int, weight: bool, bias: bool = True) -> dict[str, int]:
    return {"weights": count if weight else 0, "bias": count if weight and bias else 0}


@rule("infer", "group_norm")
def _group_norm(layer: L.GroupNorm, shape: Shape) -> Facts:
    c, g = shape[0], layer.num_groups
    _check_given(layer, "num_channels", c)
    if c % g:  # PyTorch: "num_channels (C) must be divisible by num_groups (G)"
        raise LayerProblem(f"must divide the {c} input channels", "num_groups", g)
    return Facts(shape, **_affine(c, layer.affine), rf="mix", axes=tuple(range(len(shape))))


@rule("infer", "layer_norm")
def _layer_norm(layer: L.LayerNorm, shape: Shape) -> Facts:
    ns = tuple(layer.normalized_shape)
    if len(ns) > len(shape) or shape[len(shape) - len(ns) :] != ns:
        # PyTorch: "Given normalized_shape=[5], expected input with shape [*, 5], but got ..."
        raise LayerProblem(
            f"expects an input ending in {_x(ns)}, got {_x(shape)}",
            "normalized_shape",
            layer.normalized_shape,
        )
    mixed = tuple(range(len(shape) - len(ns), len(shape)))
    return Facts(
        shape, **_affine(_prod(ns), layer.elementwise_affine, layer.bias), rf="mix", axes=mixed
    )


@rule("infer", "layer_norm2d")
def _layer_norm2d(layer: L.LayerNorm2d, shape: Shape) -> Facts:
    _need_rank(layer, shape, 2)
    _check_given(layer, "normalized_shape", shape[0])
    return Facts(shape, **_affine(shape[0], layer.elementwise_affine, layer.bias))


@rule("infer", *L.INSTANCE_NORMS)
def _instance_norm(layer: L._InstanceNormNd, shape: Shape) -> Facts:
    _need_rank(layer, shape, layer.dims)
    c, notes = shape[0], ()
    if layer.num_features is not None and layer.num_features != c:
        if layer.affine or layer.track_running_stats:  # PyTorch raises: weights would misfit
            _check_given(layer, "num_features", c)
        notes = (
            f"num_features {layer.num_features} does not match the input's {c} channels "
            "(PyTorch only warns: without affine or running stats nothing depends on it)",
        )
    if layer.track_running_stats:  # at inference the running statistics normalise
        return Facts(shape, **_affine(c, layer.affine), buffers=2 * c + 1, notes=notes)
    if _prod(shape[1:]) == 1:  # F.instance_norm's _verify_spatial_size
        raise LayerProblem(f"expects more than 1 spatial element, got {_x(shape)}")
    return Facts(
        shape, **_affine(c, layer.affine), rf="mix", axes=tuple(range(1, len(shape))), notes=notes
    )


@rule("infer", "stochastic_depth")
def _stochastic_depth(layer: L.StochasticDepth, shape: Shape) -> Facts:
    return Facts(shape)  # the identity at inference


@rule("infer", "layer_scale")
def _layer_scale(layer: L.LayerScale, shape: Shape) -> Facts:
    _check_given(layer, "dim", shape[0])
    return Facts(shape, weights=shape[0])


@rule("infer", "channel_shuffle")
def _channel_shuffle(layer: L.ChannelShuffle, shape: Shape) -> Facts:
    if len(shape) < 2:
        raise LayerProblem(
            f"expects C×L, C×H×W or C×D×H×W (more than 2 dims with the batch), got {_x(shape)}"
        )
    if shape[0] % layer.groups:  # "Number of channels must be divisible by groups."
        raise LayerProblem(f"must divide the {shape[0]} input channels", "groups", layer.groups)
    return Facts(shape)


def _dim(value: int, rank: int, field: str) -> int:
    """A PyTorch dim (counting the batch) made non-negative; the batch itself is refused."""
    d = value + rank if value < 0 else value
    if not 0 <= d < rank:
        raise LayerProblem(f"out of range for a {rank}-d batched input", field, value)
    return d


@rule("infer", "permute")
def _permute(layer: L.Permute, shape: Shape) -> Facts:
    rank, dims = len(shape) + 1, layer.order
    if len(dims) != rank:
        raise LayerProblem(f"has {len(dims)} entries for a {rank}-d batched input", "dims", dims)
    norm = [_dim(d, rank, "dims") for d in dims]
    if len(set(norm)) != rank:
        raise LayerProblem("repeats a dimension (duplicate dims are not allowed)", "dims", dims)
    if norm[0] != 0:
        raise LayerProblem(
            "must keep the batch (0) first: cnncalc's shapes carry no batch", "dims", dims
        )
    perm = tuple(d - 1 for d in norm[1:])
    out = tuple(shape[p] for p in perm)
    if perm == tuple(range(len(shape))):
        return Facts(out)
    return Facts(out, rf="permute", axes=perm)


@rule("infer", "unflatten")
def _unflatten(layer: L.Unflatten, shape: Shape) -> Facts:
    rank = len(shape) + 1
    d = _dim(layer.dim, rank, "dim")
    if d == 0:
        raise LayerProblem("0 would split the batch; use 1 or more", "dim", layer.dim)
    sizes, n = layer.unflattened_size, shape[d - 1]
    known = _prod([v for v in sizes if v != -1])
    if (
        not sizes
        or sizes.count(-1) > 1
        or any(v < 1 and v != -1 for v in sizes)
        or (n % known if -1 in sizes else known != n)
    ):
        raise LayerProblem(
            f"does not multiply up to the size {n} of dim {layer.dim}", "unflattened_size", sizes
        )
    full = tuple(n // known if v == -1 else v for v in sizes)
    out = shape[: d - 1] + full + shape[d:]
    if len(full) == 1:
        return Facts(out)
    return Facts(out, rf="unflatten", axes=(d - 1, len(full)))


@rule("infer", "pixel_shuffle")
def _pixel_shuffle(layer: L.PixelShuffle, shape: Shape) -> Facts:
    _need_rank(layer, shape, 2)
    r, c = layer.upscale_factor, shape[0]
    if c % (r * r):
        raise LayerProblem(
            f"needs channels divisible by {r}² = {r * r}, got {c}", "upscale_factor", r
        )
    # output row y reads input row ⌊y/r⌋ (in the channel of its phase): nearest-like, step 1/r
    return Facts(
        (c // (r * r), shape[1] * r, shape[2] * r),
        rf="windows",
        windows=(Window(1, Fraction(1, r)),) * 2,
    )


@rule("infer", "pixel_unshuffle")
def _pixel_unshuffle(layer: L.PixelUnshuffle, shape: Shape) -> Facts:
    _need_rank(layer, shape, 2)
    r = layer.downscale_factor
    for axis, n in zip(AXES[2], shape[1:]):
        if n % r:
            raise LayerProblem(f"needs {axis} divisible by it, got {n}", "downscale_factor", r)
    # every position reads an r×r block (one element per output channel): a stride-r window
    return Facts(
        (shape[0] * r * r, shape[1] // r, shape[2] // r),
        rf="windows",
        windows=(Window(r, Fraction(r)),) * 2,
    )


@rule("span", "group_norm", "layer_norm", *L.INSTANCE_NORMS)
def _span_norm(layer: L.Layer, in_shape: Shape, axis: int, lo: int, hi: int) -> Span:
    facts = infer(layer, in_shape)
    if facts.rf == "mix" and 1 + axis in facts.axes:  # statistics over the whole axis
        return 0, in_shape[1 + axis] - 1
    return lo, hi


@rule("span", "permute", "unflatten")
def _span_reshaped(layer: L.Layer, in_shape: Shape, axis: int, lo: int, hi: int) -> Span | None:
    facts = infer(layer, in_shape)
    if facts.rf == "keep":
        return lo, hi
    return None  # positions left their axes: the walk cannot follow them


@rule("span", "pixel_shuffle")
def _span_pixel_shuffle(
    layer: L.PixelShuffle, in_shape: Shape, axis: int, lo: int, hi: int
) -> Span:
    r = layer.upscale_factor
    return lo // r, hi // r


# --------------------------------------------------------------------------- copying pads


def copy_pad_source(mode: str, n: int, a: int, b: int, j: int) -> int:
    """The input position output ``j`` of ``F.pad(mode)`` copies (PyTorch's index maps):
    reflect and replicate map ``j − a`` against the input's own borders; circular first
    crops (negative padding) and then wraps around the cropped size."""
    if mode == "circular":
        crop_a, crop_b = max(-a, 0), max(-b, 0)
        return crop_a + (j - max(a, 0)) % (n - crop_a - crop_b)
    i = j - a
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    i = abs(i)  # reflect: about the first and the last element, which are not repeated
    return 2 * (n - 1) - i if i >= n else i


@rule("infer", *L.COPY_PADS)
def _copy_pad(layer: L._CopyPadNd, shape: Shape) -> Facts:
    _need_rank(layer, shape, layer.dims)
    mode = layer.mode
    outs = []
    for axis, n, (a, b) in zip(AXES[layer.dims], shape[1:], layer.per_axis()):
        kept = n - max(-a, 0) - max(-b, 0)  # what the cropping leaves
        if kept < 1 or n + a + b < 1:
            raise LayerProblem(
                f"leaves {min(kept, n + a + b)} of {n} on {axis}", "padding", layer.padding
            )
        # PyTorch: reflect needs each pad < the input size; circular may wrap at most once
        # (its limit is the size left after cropping)
        if mode == "reflect" and max(a, b) >= n:
            raise LayerProblem(
                f"{max(a, b)} on {axis} must be smaller than the input size {n} "
                "(reflection padding)",
                "padding",
                layer.padding,
            )
        if mode == "circular" and max(a, b) > kept:
            raise LayerProblem(
                f"{max(a, b)} on {axis} must be at most the input size {kept} "
                "(circular padding wraps around once)",
                "padding",
                layer.padding,
            )
        outs.append(n + a + b)
    # the window recurrence treats it as zero padding (a 1-wide window shifted by the left
    # padding); the exact positions copied are in the span rule
    return Facts(
        (shape[0], *outs),
        rf="windows",
        windows=tuple(Window(1, Fraction(1), Fraction(a)) for a, _ in layer.per_axis()),
    )


@rule("span", *L.COPY_PADS)
def _span_copy_pad(
    layer: L._CopyPadNd, in_shape: Shape, axis: int, lo: int, hi: int
) -> Span | None:
    n = in_shape[1 + axis]
    a, b = layer.per_axis()[axis]
    if hi - lo + 1 >= 2 * n:  # the map has period ≤ 2n: the whole input is covered
        sources = [copy_pad_source(layer.mode, n, a, b, j) for j in range(lo, lo + 2 * n)]
    else:
        sources = [copy_pad_source(layer.mode, n, a, b, j) for j in range(lo, hi + 1)]
    return min(sources), max(sources)


# --------------------------------------------------------------------------- fold / unfold


def _sliding_blocks(layer: L._Sliding, spatial: tuple[int, ...]) -> list[int]:
    """Blocks per axis: ⌊(n + 2p − d(k−1) − 1)/s⌋ + 1 (torch.nn.Unfold docs); PyTorch refuses
    fewer than one."""
    blocks = [
        conv_out(n, k, s, 2 * p, d)
        for n, k, s, p, d in zip(
            spatial, layer.kernel_size, layer.stride, layer.padding, layer.dilation
        )
    ]
    if any(b < 1 for b in blocks):
        raise LayerProblem(
            f"the sliding blocks on an input of spatial size {_x(spatial)} would "
            f"number {_x(blocks)}, but each must be at least one (kernel_size "
            f"{_x(layer.kernel_size)}, dilation {_x(layer.dilation)}, padding "
            f"{_x(layer.padding)})"
        )
    return blocks


@rule("infer", "unfold")
def _unfold(layer: L.Unfold, shape: Shape) -> Facts:
    _need_rank(layer, shape, 2)
    blocks = _sliding_blocks(layer, shape[1:])
    return Facts((shape[0] * _prod(layer.kernel_size), _prod(blocks)), rf="lost")


@rule("infer", "fold")
def _fold(layer: L.Fold, shape: Shape) -> Facts:
    if len(shape) != 2:
        got = shape_text(shape)
        raise LayerProblem(f"expects a (C·∏kernel_size)×L input, got {got}")
    area = _prod(layer.kernel_size)
    if shape[0] % area:
        raise LayerProblem(
            f"the input's {shape[0]} rows are not divisible by the product of kernel_size {area}",
            "kernel_size",
            layer.kernel_size,
        )
    blocks = _sliding_blocks(layer, layer.output_size)
    if _prod(blocks) != shape[1]:
        raise LayerProblem(
            f"gives {_x(blocks)} = {_prod(blocks)} sliding blocks, but the input "
            f"has L = {shape[1]}",
            "output_size",
            layer.output_size,
        )
    return Facts((shape[0] // area, *layer.output_size), rf="lost")


@rule("span", *L.FOLDS)
def _span_fold(layer: L._Sliding, in_shape: Shape, axis: int, lo: int, hi: int) -> None:
    return None  # blocks are laid out along one axis: positions are mixed


# --------------------------------------------------------------------------- interpolation


def resize_plan(
    layer: L.Upsample, spatial: Shape, ref: Shape | None = None
) -> list[tuple[int, int, float | None]]:
    """Per axis (input size, output size, the scale factor PyTorch's kernel uses or None).

    ``scale_factor`` gives out = ⌊in·scale_factor⌋ (F.interpolate); the kernel then maps
    with 1/scale_factor unless ``recompute_scale_factor`` is set, when it uses in/out.
    """
    dims = len(spatial)
    if layer.size_of is not None:
        if ref is None:
            raise LayerProblem(
                "is resolved by the analysis (it needs the named output)", "size_of", layer.size_of
            )
        if len(ref) - 1 != dims:
            raise LayerProblem(
                f"names a tensor of shape {_x(ref)}, which does not have "
                f"{dims} spatial dimensions like the input {_x(spatial)}",
                "size_of",
                layer.size_of,
            )
        return [(n, o, None) for n, o in zip(spatial, ref[1:])]
    if layer.size is not None:
        sizes = layer.size if isinstance(layer.size, tuple) else (layer.size,) * dims
        if len(sizes) != dims:
            raise LayerProblem(f"needs 1 or {dims} values", "size", layer.size)
        return [(n, o, None) for n, o in zip(spatial, sizes)]
    f = layer.scale_factor
    factors = f if isinstance(f, tuple) else (f,) * dims
    if len(factors) != dims:
        raise LayerProblem(f"needs 1 or {dims} values", "scale_factor", f)
    outs = [math.floor(n * fi) for n, fi in zip(spatial, factors)]
    if any(o < 1 for o in outs):
        raise LayerProblem(f"output size {_x(outs)} is empty", "scale_factor", f)
    keep = not layer.recompute_scale_factor
    return [(n, o, float(fi) if keep else None) for n, o, fi in zip(spatial, outs, factors)]


def cubic_coefficients(t: float) -> tuple[float, float, float, float]:
    """PyTorch's bicubic weights (Keys' cubic convolution, A = −0.75) for the taps
    i−1, i, i+1, i+2 at fraction t (aten/src/ATen/native/UpSample.h), same operation order."""
    a = -0.75

    def near(x: float) -> float:  # |x| ≤ 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: float) -> float:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)


def resize_scale(n_in: int, n_out: int, align_corners: bool, factor: float | None) -> float:
    """PyTorch's area_pixel_compute_scale, in double precision."""
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / factor if factor is not None and factor > 0 else n_in / n_out


def resize_taps(
    mode: str, n_in: int, n_out: int, j: int, scale: float | Fraction, align_corners: bool
) -> tuple[int, int]:
    """First and last input position output ``j`` reads with a non-zero weight (the same
    double-precision arithmetic as the kernels; taps clamped at the borders). Nearest modes
    take the scale as an exact fraction."""
    if mode == "nearest" and n_out in (n_in, 2 * n_in):  # PyTorch's nearest_idx shortcuts
        i = j if n_out == n_in else j // 2
        return i, i
    if mode in ("nearest", "nearest-exact"):  # (the clamp at in − 1 never binds)
        src = Fraction(j) + (Fraction(1, 2) if mode == "nearest-exact" else 0)
        i = math.floor(src * Fraction(scale))
        return i, i
    if not 0 <= j < n_out:  # a padding position around the output: extrapolate, unclamped
        i = math.floor(scale * j if align_corners else scale * (j + 0.5) - 0.5)
        return (i - 1, i + 2) if mode == "bicubic" else (i, i + 1)
    if mode == "bicubic":
        src = scale * j if align_corners else scale * (j + 0.5) - 0.5
        i = math.floor(src)
        weights = cubic_coefficients(src - i)
        taps = [min(max(i - 1 + k, 0), n_in - 1) for k, w in enumerate(weights) if w != 0]
        return min(taps), max(taps)
    # linear, bilinear, trilinear: compute_source_index_and_lambda
    if n_out == n_in:
        return j, j
    src = scale * j if align_corners else max(scale * (j + 0.5) - 0.5, 0.0)
    i0 = min(math.floor(src), n_in - 1)
    lam = min(max(src - i0, 0.0), 1.0)
    i1 = i0 + 1 if i0 < n_in - 1 else i0
    return i0, (i1 if lam != 0 else i0)


def _nearest_scale(n: int, o: int, factor: float | None) -> Fraction:
    if factor is None or o in (n, 2 * n):  # in/out, or nearest_idx's shortcuts
        return Fraction(n, o)
    return 1 / Fraction(factor)


@rule("infer", "upsample")
def _upsample(layer: L.Upsample, shape: Shape, ref: Shape | None = None) -> Facts:
    if len(shape) < 2:
        raise LayerProblem(f"needs spatial dimensions, got {_x(shape)}")
    dims = len(shape) - 1
    want = L.MODE_DIMS.get(layer.mode)
    if want is not None and want != dims:
        # F.interpolate: "Got 4D input, but linear mode needs 3D input"
        raise LayerProblem(
            f"needs {want} spatial dimension{'s' * (want > 1)} "
            f"({want + 2}-D batched input), got {_x(shape)}",
            "mode",
            layer.mode,
        )
    plan = resize_plan(layer, shape[1:], ref)
    outs = [o for _, o, _ in plan]
    windows = []
    for n, o, factor in plan:
        if layer.mode in ("nearest", "nearest-exact"):
            scale = _nearest_scale(n, o, factor)
            first = resize_taps(layer.mode, n, o, 0, scale, False)[0]
            windows.append(Window(1, scale, Fraction(-first)))
            continue
        scale = resize_scale(n, o, bool(layer.align_corners), factor)
        taps = [
            resize_taps(layer.mode, n, o, j, scale, bool(layer.align_corners)) for j in range(o)
        ]
        widest = max(b - a + 1 for a, b in taps)
        step = (
            (Fraction(n - 1, o - 1) if o > 1 else Fraction(0))
            if layer.align_corners
            else (_nearest_scale(n, o, factor))
        )
        windows.append(Window(widest, step if o != n else Fraction(1), Fraction(-taps[0][0])))
    return Facts((shape[0], *outs), rf="windows", windows=tuple(windows))


@rule("span", "upsample")
def _span_upsample(
    layer: L.Upsample, in_shape: Shape, axis: int, lo: int, hi: int, ref: Shape | None = None
) -> Span | None:
    n = in_shape[1 + axis]
    n_in, o, factor = resize_plan(layer, in_shape[1:], ref)[axis]
    mode = layer.mode
    if mode in ("nearest", "nearest-exact"):
        scale: float | Fraction = _nearest_scale(n_in, o, factor)  # exact, as before
    else:
        scale = resize_scale(n_in, o, bool(layer.align_corners), factor)
    align = bool(layer.align_corners)

    def taps(j: int) -> tuple[int, int]:
        return resize_taps(mode, n, o, j, scale, align)

    # first taps need not be monotone (an output on an input position reads one tap, its
    # neighbour four): scan while the base index can still give a smaller one
    first, last = taps(lo), taps(hi)
    low, high = first[0], last[1]
    j = lo + 1
    while j <= hi and taps(j)[0] <= first[0] + 1:
        low = min(low, taps(j)[0])
        j += 1
    j = hi - 1
    while j >= lo and taps(j)[1] >= last[1] - 1:
        high = max(high, taps(j)[1])
        j -= 1
    return low, high
