"""Worked arithmetic per layer: each formula with the layer's numbers substituted.

For students checking their hand calculations (the seed article's exercises) and for anyone
asking "why is this 102?". Every substituted term is re-derived from the layer's fields and
every result is computed by the same functions the analysis uses (``conv_out``, ``pool_out``,
``conv_transpose_out``, ``same_padding``, ``adaptive_bins``, ``dropped_by_floor``), so the
final numbers are the analysis row's. Where PyTorch silently loses data (floor mode leaving
rows unread, a ceil-mode window dropped) or refuses a layer, the explanation says why, with
numbers. Nothing here prints: :func:`explain` returns data, :func:`render` returns text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction

from cnncalc import layers as L
from cnncalc.analysis import Analysis, ReceptiveField, Row, analyze, input_shapes
from cnncalc.arithmetic import (
    AXES,
    Facts,
    LayerProblem,
    adaptive_bins,
    adaptive_widths,
    conv_out,
    conv_transpose_out,
    dropped_by_floor,
    infer,
    pool_out,
    same_padding,
)
from cnncalc.errors import ShapeError, UsageError, printable
from cnncalc.registry import lookup, rule
from cnncalc.spec import LayerNode, Shape, Spec, label

MINUS = "−"


# --------------------------------------------------------------------------- number text


def n(value: int | Fraction) -> str:
    """A number in a formula: exact, with a typographic minus; fractions as a/b."""
    value = Fraction(value)
    text = (
        str(abs(value.numerator))
        if value.denominator == 1
        else (f"{abs(value.numerator)}/{value.denominator}")
    )
    return (MINUS + text) if value < 0 else text


def f(value: int | Fraction) -> str:
    """A factor inside a product: parenthesised when negative or fractional."""
    text = n(value)
    return f"({text})" if Fraction(value) < 0 or Fraction(value).denominator != 1 else text


def plus(value: int | Fraction) -> str:
    """`` + v`` or `` − |v|``, for a term added to a sum."""
    return f" + {n(value)}" if value >= 0 else f" {MINUS} {n(-value)}"


def total(value: int) -> str:
    """A final result: thousands separated for readability."""
    return f"{value:,}".replace("-", MINUS)


def dims(shape: Shape) -> str:
    return "×".join(str(d) for d in shape)


def prod_text(values: tuple[int, ...] | list[int]) -> str:
    return "·".join(f(v) for v in values)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Step:
    """The worked arithmetic of one layer (``output_shape`` None: PyTorch refuses it)."""

    index: int
    label: str
    input_shape: Shape
    output_shape: Shape | None
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Explanation:
    input_shape: Shape
    batch: int
    steps: tuple[Step, ...]
    analysis: Analysis | None  # of the layers PyTorch accepts (all of them unless `error`)
    error: ShapeError | None = None  # the refusal that stopped the walk


# --------------------------------------------------------------------------- output size


def _axes(layer: L.Layer, shape: Shape) -> tuple[str, ...]:
    return AXES.get(len(shape) - 1, tuple(f"axis{i}" for i in range(1, len(shape))))


def _window_formula(
    axis: str, n_in: int, pads: tuple[int, int], k: int, d: int, s: int, ceil: bool = False
) -> tuple[str, int]:
    """``H_out = ⌊(n + 2·p − d·(k−1) − 1) / s⌋ + 1`` with numbers; returns (text, raw value)."""
    a, b = pads
    pad = f"2·{a}" if a == b else f"{a} + {b}"
    span = n_in + a + b - d * (k - 1) - 1
    lo, hi = ("⌈", "⌉") if ceil else ("⌊", "⌋")
    value = (-(-span // s) if ceil else span // s) + 1
    text = f"{axis}_out = {lo}({n_in} + {pad} {MINUS} {d}·({k}{MINUS}1) {MINUS} 1) / {s}{hi} + 1"
    return text, value


def _unread(axis: str, n_in: int, pad_before: int, k_eff: int, s: int, out: int) -> list[str]:
    lost = dropped_by_floor(n_in, pad_before, k_eff, s, out)
    if not lost:
        return []
    last = (out - 1) * s + k_eff - pad_before
    unit = "column" if axis == "W" else "row"
    which = f"{unit} {last}" if lost == 1 else f"{unit}s {last}..{n_in - 1}"
    return [
        f"  ⚠ floor drops data on {axis}: the last window ends at "
        f"({out}{MINUS}1)·{s} + {k_eff} {MINUS} {pad_before} = {last} of {n_in}, so "
        f"input {which} never reach{'es' if lost == 1 else ''} the output"
    ]


def _too_big(axis: str, n_in: int, pads: tuple[int, int], k: int, d: int) -> list[str]:
    k_eff = d * (k - 1) + 1
    padded = n_in + sum(pads)
    if k_eff <= padded:
        return []
    a, b = pads
    return [
        f"  ✗ on {axis} the padded input {n_in} + {a} + {b} = {padded} is smaller than the "
        f"{'dilated ' if d > 1 else ''}kernel {d}·({k}{MINUS}1) + 1 = {k_eff}"
    ]


def _conv_size(layer: L._ConvNd, shape: Shape) -> list[str]:
    k, s, d = layer.kernel_size, layer.stride, layer.dilation
    if layer.padding == "same":
        pads = [same_padding(ki, di) for ki, di in zip(k, d)]
        head = [
            "padding='same': total d·(k−1) per axis, the odd one on the right: "
            + ", ".join(f"{a}+{b}" for a, b in pads)
        ]
    elif layer.padding == "valid":
        pads, head = [(0, 0)] * layer.dims, ["padding='valid': no padding"]
    else:
        pads, head = [(p, p) for p in layer.padding], []
    lines = head + [
        "out = ⌊(in + 2·padding − dilation·(kernel−1) − 1) / stride⌋ + 1  (torch.nn.Conv docs)"
    ]
    for axis, n_in, ki, si, di, pd in zip(_axes(layer, shape), shape[1:], k, s, d, pads):
        text, value = _window_formula(axis, n_in, pd, ki, di, si)
        assert value == conv_out(n_in, ki, si, sum(pd), di)
        lines.append(f"  {text} = {n(value)}")
        lines += _too_big(axis, n_in, pd, ki, di)
        if value >= 1:
            lines += _unread(axis, n_in, pd[0], di * (ki - 1) + 1, si, value)
    lines.append(f"  C_out = out_channels = {layer.out_channels}")
    return lines


def _conv_transpose_size(layer: L._ConvTransposeNd, shape: Shape) -> list[str]:
    lines = [
        "out = (in − 1)·stride − 2·padding + dilation·(kernel − 1) + output_padding + 1  "
        "(torch.nn.ConvTranspose docs)"
    ]
    fields = zip(
        _axes(layer, shape),
        shape[1:],
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.output_padding,
        layer.dilation,
    )
    for axis, n_in, k, s, p, op, d in fields:
        value = conv_transpose_out(n_in, k, s, p, op, d)
        lines.append(
            f"  {axis}_out = ({n_in} {MINUS} 1)·{s} {MINUS} 2·{p} + {d}·({k} {MINUS} 1)"
            f" + {op} + 1 = {n(value)}"
        )
    lines.append(f"  C_out = out_channels = {layer.out_channels}")
    return lines


def _pool_lines(layer: L._PoolBase, shape: Shape, dilation: tuple[int, ...]) -> list[str]:
    ceil = layer.ceil_mode
    lines = [
        (
            "out = ⌈(in + 2·padding − dilation·(kernel−1) − 1) / stride⌉ + 1, minus a last "
            "window that would start in the right padding (ceil_mode=True"
        )
        if ceil
        else ("out = ⌊(in + 2·padding − dilation·(kernel−1) − 1) / stride⌋ + 1  (ceil_mode=False")
    ]
    lines[0] += ", PyTorch's pooling_output_shape)"
    fields = zip(
        _axes(layer, shape), shape[1:], layer.kernel_size, layer.stride, layer.padding, dilation
    )
    for axis, n_in, k, s, p, d in fields:
        text, value = _window_formula(axis, n_in, (p, p), k, d, s, ceil)
        final, dropped = pool_out(n_in, k, s, p, d, ceil)
        lines.append(f"  {text} = {n(value)}")
        if dropped:
            lines.append(
                f"  ⚠ ceil_mode: the last window would start at ({value}{MINUS}1)·{s} = "
                f"{(value - 1) * s} ≥ {n_in} + {p} = {n_in + p}, inside the right "
                "padding, so PyTorch drops it:"
            )
            lines.append(f"  {axis}_out = {value} {MINUS} 1 = {final}")
        assert final == (value - 1 if dropped else value)
        if final < 1:
            lines.append(
                f"  ✗ the window {d}·({k}{MINUS}1) + 1 = {d * (k - 1) + 1} does not fit "
                f"the padded input {n_in} + 2·{p} = {n_in + 2 * p}"
            )
        elif not ceil:
            lines += _unread(axis, n_in, p, d * (k - 1) + 1, s, final)
    lines.append(f"  C_out = C_in = {shape[0]} (pooling works per channel)")
    return lines


def _maxpool_size(layer: L._MaxPoolNd, shape: Shape) -> list[str]:
    return _pool_lines(layer, shape, layer.dilation)


def _avgpool_size(layer: L._AvgPoolNd, shape: Shape) -> list[str]:
    return _pool_lines(layer, shape, (1,) * layer.dims)


def _subsample_size(layer: L.Subsample2d, shape: Shape) -> list[str]:
    lines = ["out = ⌊(in − kernel) / stride⌋ + 1  (no padding)"]
    for axis, n_in, k, s in zip(_axes(layer, shape), shape[1:], layer.kernel_size, layer.stride):
        value = conv_out(n_in, k, s, 0)
        lines.append(f"  {axis}_out = ⌊({n_in} {MINUS} {k}) / {s}⌋ + 1 = {n(value)}")
        if value >= 1:
            lines += _unread(axis, n_in, 0, k, s, value)
    lines.append(f"  C_out = C_in = {shape[0]}")
    return lines


def _adaptive_size(layer: L._AdaptiveNd, shape: Shape) -> list[str]:
    lines = [
        "out = output_size; bin i reads [⌊i·in/out⌋, ⌈(i+1)·in/out⌉)  (PyTorch's "
        "start_index/end_index)"
    ]
    for axis, n_in, o in zip(_axes(layer, shape), shape[1:], layer.output_size):
        if o is None:
            lines.append(f"  {axis}_out = {n_in} (output_size None keeps the input size)")
            o = n_in
        else:
            lines.append(f"  {axis}_out = {o}")
        bins = adaptive_bins(n_in, o, limit=6)  # closed forms below: o may be 10**7
        shown = ", ".join(f"[{a},{b})" for a, b in bins) + (", …" if o > 6 else "")
        widths = adaptive_widths(n_in, o)
        lines.append(
            f"    bins on {axis}: {shown}; window "
            f"{' or '.join(map(str, widths))} wide" + (" (bins overlap)" if n_in % o else "")
        )  # bin i ends past i+1's start
    lines.append(f"  C_out = C_in = {shape[0]}")
    return lines


def _zeropad_size(layer: L._ZeroPadNd, shape: Shape) -> list[str]:
    lines = ["out = in + pad_before + pad_after (negative padding crops)"]
    for axis, n_in, (a, b) in zip(_axes(layer, shape), shape[1:], layer.per_axis()):
        lines.append(f"  {axis}_out = {n_in}{plus(a)}{plus(b)} = {n(n_in + a + b)}")
    return lines


def _flatten_size(layer: L.Flatten, shape: Shape) -> list[str]:
    rank = len(shape) + 1
    start = layer.start_dim + rank if layer.start_dim < 0 else layer.start_dim
    end = layer.end_dim + rank if layer.end_dim < 0 else layer.end_dim
    part = shape[start - 1 : end]
    if len(part) < 2:
        return ["nothing to merge: the shape is unchanged"]
    return [f"features = {prod_text(part)} = {total(math.prod(part))}"]


def _linear_size(layer: L.Linear, shape: Shape) -> list[str]:
    return [f"features: {shape[-1]} → out_features = {layer.out_features}"]


# --------------------------------------------------------------------------- parameters


def _with_bias(
    terms: str, values: str, weights: int, bias: int, has_bias: bool, bias_term: str = "out"
) -> str:
    if has_bias:
        return f"params = {terms} + {bias_term} = {values} + {bias} = {total(weights + bias)}"
    return f"params = {terms} = {values} = {total(weights)} (bias=False)"


def _conv_params(layer: L._ConvNd, shape: Shape, facts: Facts) -> list[str]:
    k, c_out, c_in, g = layer.kernel_size, layer.out_channels, shape[0], layer.groups
    kt = "·".join(f"k_{a}" for a in _axes(layer, shape))
    table = getattr(layer, "connections", None)
    if table is not None:
        fan = sum(len(row) for row in table)
        weights = fan * math.prod(k)
        line = _with_bias(
            f"Σ|connections|·{kt}", f"{fan}·{prod_text(k)}", weights, c_out, layer.bias
        )
    else:
        weights = c_out * (c_in // g) * math.prod(k)
        line = _with_bias(
            f"out·(in/groups)·{kt}",
            f"{c_out}·({c_in}/{g})·{prod_text(k)}",
            weights,
            c_out,
            layer.bias,
        )
    assert weights == facts.weights
    return [line]


def _conv_transpose_params(layer: L._ConvTransposeNd, shape: Shape, facts: Facts) -> list[str]:
    k, c_out, c_in, g = layer.kernel_size, layer.out_channels, shape[0], layer.groups
    kt = "·".join(f"k_{a}" for a in _axes(layer, shape))
    weights = c_in * (c_out // g) * math.prod(k)
    assert weights == facts.weights
    return [
        _with_bias(
            f"in·(out/groups)·{kt}",
            f"{c_in}·({c_out}/{g})·{prod_text(k)}",
            weights,
            c_out,
            layer.bias,
        )
    ]


def _linear_params(layer: L.Linear, shape: Shape, facts: Facts) -> list[str]:
    n_in, n_out = shape[-1], layer.out_features
    assert n_in * n_out == facts.weights
    return [_with_bias("in·out", f"{n_in}·{n_out}", n_in * n_out, n_out, layer.bias)]


def _subsample_params(layer: L.Subsample2d, shape: Shape, facts: Facts) -> list[str]:
    c = shape[0]
    return [f"params = C + C (one coefficient and one bias per map) = {c} + {c} = {2 * c}"]


def _rbf_params(layer: L.RBF, shape: Shape, facts: Facts) -> list[str]:
    return [
        f"params = in·out = {shape[0]}·{layer.out_features} = "
        f"{total(shape[0] * layer.out_features)} (fixed centres: non-trainable)"
    ]


def _batchnorm_params(layer: L._BatchNormNd, shape: Shape) -> list[str]:
    c = shape[0]
    lines = []
    if layer.affine:
        lines.append(f"params = 2·C (γ and β) = 2·{c} = {2 * c}")
    if layer.track_running_stats:
        lines.append(
            f"buffers = 2·C + 1 (running mean, running var, num_batches_tracked) = "
            f"2·{c} + 1 = {2 * c + 1}"
        )
    return lines


def _prelu_params(layer: L.PReLU) -> list[str]:
    return [f"params = num_parameters = {layer.num_parameters}"]


# --------------------------------------------------------------------------- MACs


def _macs(terms: str, values: str, per: int, batch: int) -> str:
    """``MACs = terms = values = result`` for one sample, times the batch (FLOPs = 2 × MACs)."""
    if batch > 1:
        return f"MACs = batch·{terms} = {batch}·{values} = {total(per * batch)}"
    return f"MACs = {terms} = {values} = {total(per)}"


def _conv_macs(layer: L._ConvNd, row: Row, batch: int) -> str:
    shape, out = row.input_shape, row.output_shape
    axes = _axes(layer, shape)
    k, g = layer.kernel_size, layer.groups
    kt = "·".join(f"k_{a}" for a in axes)
    ot = "·".join(f"{a}_out" for a in axes)
    if getattr(layer, "connections", None) is not None:
        fan = sum(len(r) for r in layer.connections)
        return _macs(
            f"{ot}·Σ|connections|·{kt}",
            f"{prod_text(out[1:])}·{fan}·{prod_text(k)}",
            math.prod(out[1:]) * fan * math.prod(k),
            batch,
        )
    return _macs(
        f"C_out·{ot}·(C_in/groups)·{kt}",
        f"{prod_text(out)}·({shape[0]}/{g})·{prod_text(k)}",
        math.prod(out) * (shape[0] // g) * math.prod(k),
        batch,
    )


def _conv_transpose_macs(layer: L._ConvTransposeNd, row: Row, batch: int) -> str:
    shape, k, g = row.input_shape, layer.kernel_size, layer.groups
    axes = _axes(layer, shape)
    it = "·".join(f"{a}_in" for a in axes)
    kt = "·".join(f"k_{a}" for a in axes)
    return _macs(
        f"C_in·{it}·(C_out/groups)·{kt} (over input positions)",
        f"{prod_text(shape)}·({layer.out_channels}/{g})·{prod_text(k)}",
        math.prod(shape) * (layer.out_channels // g) * math.prod(k),
        batch,
    )


def _linear_macs(layer: L.Linear, row: Row, batch: int) -> str:
    shape = row.input_shape
    rows = math.prod(shape[:-1])
    if rows == 1:
        return _macs(
            "in·out", f"{shape[-1]}·{layer.out_features}", shape[-1] * layer.out_features, batch
        )
    return _macs(
        "positions·in·out",
        f"{rows}·{shape[-1]}·{layer.out_features}",
        rows * shape[-1] * layer.out_features,
        batch,
    )


# --------------------------------------------------------------------------- one rule per type


def _unchanged(shape: Shape) -> str:
    return f"out = in = {dims(shape)} (element-wise)"


@rule("explain", *L.CONV_ND)
def _explain_conv(
    layer: L._ConvNd, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    size = _conv_size(layer, shapes[0])
    if row is None:  # refused: the size formulas show why
        return size
    return size + _conv_params(layer, shapes[0], facts) + [_conv_macs(layer, row, batch)]


@rule("explain", *L.CONV_TRANSPOSE)
def _explain_conv_transpose(
    layer: L._ConvTransposeNd, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    size = _conv_transpose_size(layer, shapes[0])
    if row is None:
        return size
    return (
        size
        + _conv_transpose_params(layer, shapes[0], facts)
        + [_conv_transpose_macs(layer, row, batch)]
    )


@rule("explain", *L.MAX_POOLS)
def _explain_maxpool(
    layer: L._MaxPoolNd, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    return _maxpool_size(layer, shapes[0])


@rule("explain", *L.AVG_POOLS)
def _explain_avgpool(
    layer: L._AvgPoolNd, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    return _avgpool_size(layer, shapes[0])


@rule("explain", *L.ADAPTIVE_AVG, *L.ADAPTIVE_MAX)
def _explain_adaptive(
    layer: L._AdaptiveNd, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    return _adaptive_size(layer, shapes[0])


@rule("explain", "subsample2d")
def _explain_subsample(
    layer: L.Subsample2d, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    size = _subsample_size(layer, shapes[0])
    if row is None:
        return size
    out = row.output_shape
    return (
        size
        + _subsample_params(layer, shapes[0], facts)
        + [
            _macs(
                "C·H_out·W_out·k_H·k_W (window sums)",
                f"{prod_text(out)}·{prod_text(layer.kernel_size)}",
                math.prod(out) * math.prod(layer.kernel_size),
                batch,
            )
        ]
    )


@rule("explain", *L.ZERO_PADS)
def _explain_zeropad(
    layer: L._ZeroPadNd, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    return _zeropad_size(layer, shapes[0])


@rule("explain", "flatten")
def _explain_flatten(
    layer: L.Flatten, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    return _flatten_size(layer, shapes[0])


@rule("explain", "narrow")
def _explain_narrow(
    layer: L.Narrow, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    end = layer.start + layer.length
    return [
        f"out = in[{layer.start}:{end}] on dim {layer.dim} (torch.narrow): length "
        f"{layer.length} of {dims(shapes[0])}"
    ]


@rule("explain", "linear")
def _explain_linear(
    layer: L.Linear, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    size = _linear_size(layer, shapes[0])
    if row is None:
        return size
    return size + _linear_params(layer, shapes[0], facts) + [_linear_macs(layer, row, batch)]


@rule("explain", "rbf")
def _explain_rbf(
    layer: L.RBF, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    n_in = shapes[0][0]
    size = [f"features: {n_in} → out_features = {layer.out_features}"]
    if row is None:
        return size
    return (
        size
        + _rbf_params(layer, shapes[0], facts)
        + [_macs("in·out", f"{n_in}·{layer.out_features}", n_in * layer.out_features, batch)]
    )


@rule("explain", *L.BATCH_NORMS)
def _explain_batchnorm(
    layer: L._BatchNormNd, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    return [_unchanged(shapes[0])] + _batchnorm_params(layer, shapes[0])


@rule("explain", "prelu")
def _explain_prelu(
    layer: L.PReLU, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    return [_unchanged(shapes[0])] + _prelu_params(layer)


@rule("explain", *L.DROPOUTS, "identity")
def _explain_identity(
    layer: L.Layer, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    what = "identity" if layer.type == "identity" else "identity at inference"
    return [f"out = in = {dims(shapes[0])} ({what})"]


@rule("explain", *L.ACTIVATIONS, *L.SOFTMAXES)
def _explain_activation(
    layer: L.Layer, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    return [_unchanged(shapes[0])]


def _branch_shapes(shapes: tuple[Shape, ...]) -> str:
    return " and ".join(dims(s) for s in shapes)


@rule("explain", "add")
def _explain_add(
    layer: L.Add, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    return [
        f"out = element-wise sum of {len(shapes)} branches ({_branch_shapes(shapes)}): "
        "shapes must be equal"
    ]


@rule("explain", "concat")
def _explain_concat(
    layer: L.Concat, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    channels = " + ".join(str(s[0]) for s in shapes)
    return [
        f"C_out = {channels} = {row.output_shape[0]} (concatenated along channels; the "
        f"other sizes, {dims(shapes[0][1:]) or 'none'}, must agree)"
    ]


@rule("explain", "mul")
def _explain_mul(
    layer: L.Mul, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    return [
        f"out = element-wise product of {_branch_shapes(shapes)}, broadcast (sizes equal or "
        f"1) to {dims(row.output_shape)}"
    ]


# --------------------------------------------------------------------------- receptive field


def rf_lines(
    facts: Facts, before: ReceptiveField | None, after: ReceptiveField | None, axes: tuple[str, ...]
) -> list[str]:
    """The Araujo–Norris–Sim recurrence (Distill 2019) with this layer's window substituted."""
    if before is None:
        return []
    if after is None:
        return ["receptive field: no longer tracked (the spatial layout is gone)"]
    if facts.rf == "windows" and len(facts.windows) == len(before.size):
        lines = [
            "receptive field: r = r_prev + (k−1)·j_prev, j = j_prev·s, "
            "start = start_prev − p·j_prev (k: dilated kernel)"
        ]
        for a, r0, j0, s0, w, r1, j1, s1 in zip(
            axes,
            before.size,
            before.jump,
            before.start,
            facts.windows,
            after.size,
            after.jump,
            after.start,
        ):
            r = r0 + (w.kernel - 1) * j0
            j = j0 * w.stride
            st = s0 - w.pad * j0
            assert (r, j, st) == (r1, j1, s1)
            lines.append(
                f"  {a}: r = {n(r0)} + ({w.kernel}{MINUS}1)·{f(j0)} = {n(r)}, "
                f"j = {f(j0)}·{f(w.stride)} = {n(j)}, "
                f"start = {n(s0)} {MINUS} {f(w.pad)}·{f(j0)} = {n(st)}"
            )
        return lines
    if before == after:
        return []
    # per axis of the network input (a flat layer's own shape has no axes)
    sizes = ", ".join(f"{a}: r = {n(r1)}" for a, r1 in zip(AXES[len(after.size)], after.size))
    if facts.rf == "dense":
        return [f"receptive field: each output reads every input position: {sizes}"]
    if facts.rf == "merge":
        return [f"receptive field: the union of the branches' fields: {sizes}"]
    return [f"receptive field: {sizes}"]


# --------------------------------------------------------------------------- assembly


def _dense_line(row: Row) -> str | None:
    if row.fc_equivalent_params is None:
        return None
    i, o = math.prod(row.input_shape), math.prod(row.output_shape)
    value = i * o + o
    assert value == row.fc_equivalent_params
    it = f"({prod_text(row.input_shape)})" if len(row.input_shape) > 1 else str(i)
    ot = f"({prod_text(row.output_shape)})" if len(row.output_shape) > 1 else str(o)
    text = f"dense equivalent = in·out + out = {it}·{ot} + {prod_text(row.output_shape)}"
    if len(row.input_shape) > 1 or len(row.output_shape) > 1:
        text += f" = {i}·{o} + {o}"
    text += f" = {total(value)}"
    if row.sharing_ratio is not None:
        text += f" ({row.sharing_ratio:,.1f}× the layer's params)"
    return text


def _step(
    layer: L.Layer,
    row: Row,
    shapes: tuple[Shape, ...],
    facts: Facts,
    before: ReceptiveField | None,
    batch: int,
) -> Step:
    shape = row.input_shape
    axes = _axes(layer, shape) if len(shape) > 1 else ()
    lines = list(lookup("explain", type(layer))(layer, shapes, facts, row, batch))
    dense = _dense_line(row)
    if dense:  # after the parameter line, before the MACs
        lines.insert(len(lines) - 1 if lines[-1].startswith("MACs") else len(lines), dense)
    lines += rf_lines(facts, before, row.receptive_field, axes)
    lines += [f"⚠ {note}" for note in row.notes if not _explained(note, lines)]
    return Step(row.index, _label(row), shape, row.output_shape, tuple(lines))


def _explained(note: str, lines: list[str]) -> bool:
    """A floor/ceil note already worked out with numbers above is not repeated."""
    if note.startswith("floor mode"):
        return any("floor drops data" in x for x in lines)
    if note.startswith("ceil_mode"):
        return any("ceil_mode: the last window" in x for x in lines)
    return False


def _label(row: Row) -> str:
    return printable(row.where or label(f"layer {row.index}", row.type, row.name))


def _refusal(spec: Spec, shape: Shape) -> tuple[int, Shape, LayerProblem] | None:
    """The first layer PyTorch refuses in a plain sequence, its input shape and the reason.

    None when no layer is refused or the spec is a graph (blocks, merges): then only the
    analysis's error is reported.
    """
    if not all(isinstance(node, LayerNode) for node in spec.nodes):
        return None
    if any(getattr(node.layer, "size_of", None) for node in spec.nodes):
        return None  # reads another tensor's shape: a graph
    current = shape
    for index, node in enumerate(spec.nodes):
        try:
            current = infer(node.layer, current).output_shape
        except LayerProblem as problem:
            return index, current, problem
    return None


def explain(
    spec: Spec,
    input_shape: Shape | None = None,
    batch: int = 1,
    dtype: str = "float32",
    layer: int | None = None,
) -> Explanation:
    """Worked arithmetic for every row (or only row ``layer``) of ``spec`` on ``input_shape``.

    Rows are numbered as in ``cnncalc shapes``. When PyTorch refuses a layer of a plain
    sequence, the explanation covers the layers before it and the refused layer's formulas,
    and ``error`` holds the :class:`ShapeError` the analysis raised (the caller reports it).
    """
    error: ShapeError | None = None
    found = None
    try:
        analysis: Analysis | None = analyze(spec, input_shape, batch=batch, dtype=dtype)
    except ShapeError as exc:
        shape = input_shape or spec.input
        found = _refusal(spec, shape) if shape else None
        if found is None:
            raise
        error = exc
        index = found[0]
        analysis = (
            analyze(replace(spec, nodes=spec.nodes[:index]), shape, batch=batch, dtype=dtype)
            if index
            else None
        )
    rows = analysis.rows if analysis else ()
    shape = analysis.input_shape if analysis else (input_shape or spec.input)
    n_rows = len(rows) + (error is not None)
    if layer is not None and not 0 <= layer < max(n_rows, len(spec.layers)):
        raise UsageError(
            f"--layer {layer} is out of range: the analysis has rows "
            f"0..{max(n_rows, len(spec.layers)) - 1}"
        )
    one = tuple(Fraction(1) for _ in shape[1:])
    initial = ReceptiveField(one, one, tuple(Fraction(0) for _ in shape[1:]))
    steps: list[Step] = []
    for row in rows:
        source = row.inputs[0] if row.inputs else -1
        before = initial if source < 0 else rows[source].receptive_field
        shapes = input_shapes(analysis, row)
        steps.append(_step(row.layer, row, shapes, infer(row.layer, *shapes), before, batch))
    if error is not None and found is not None:
        index, in_shape, _ = found
        item = spec.nodes[index]
        reason = str(error).removeprefix(f"{error.where}: ")
        worked = lookup("explain", type(item.layer))(item.layer, (in_shape,), None, None, batch)
        lines = [*worked, f"✗ PyTorch refuses this layer: {reason}"]
        steps.append(Step(len(rows), item.where, in_shape, None, tuple(lines)))
    if layer is not None:
        steps = [s for s in steps if s.index == layer]
        if not steps:  # the walk stopped before it
            assert error is not None
            raise error
    return Explanation(shape, batch, tuple(steps), analysis, error)


def render(expl: Explanation) -> str:
    """Plain text, the same on a terminal and in a pipe."""
    out = [f"input {dims(expl.input_shape)}" + (f", batch {expl.batch}" if expl.batch > 1 else "")]
    for step in expl.steps:
        arrow = dims(step.output_shape) if step.output_shape else "refused"
        out += ["", f"{step.label}: {dims(step.input_shape)} → {arrow}"]
        out += [f"  {line}" for line in step.lines]
    a = expl.analysis
    if expl.error is None and a is not None and len(expl.steps) == len(a.rows):
        t = a.totals
        out += [
            "",
            f"total: output {dims(t.output_shape)}, params {total(t.params)}, "
            f"MACs {total(t.macs)} (FLOPs = 2 × MACs = {total(t.flops)})",
        ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- today's CNNs


def _mixed_axes(facts: Facts | None, shape: Shape) -> str:
    """The spatial axes a norm's statistics read whole, by name (H, W …), or ''."""
    if facts is None or facts.rf != "mix":
        return ""
    names = _axes(None, shape) if len(shape) > 1 else ()
    return ", ".join(names[a - 1] for a in facts.axes if a >= 1 and a - 1 < len(names))


def _norm_rf(facts: Facts | None, shape: Shape, where: str) -> list[str]:
    mixed = _mixed_axes(facts, shape)
    if not mixed:
        return [f"receptive field: unchanged ({where}: positions are normalised independently)"]
    return [
        f"receptive field: the statistics span all of {mixed}, so every output reads every "
        f"position there: the field becomes the whole map's, jump 0 (all units share it)"
    ]


def _affine_line(what: str, count: int, weight: bool, bias: bool = True) -> list[str]:
    if not weight:
        return []
    if bias:
        return [f"params = 2·{what} (γ and β) = 2·{count} = {2 * count}"]
    return [f"params = {what} (γ; bias=False) = {count}"]


@rule("explain", "group_norm")
def _explain_group_norm(
    layer: L.GroupNorm, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    c, g = shapes[0][0], layer.num_groups
    lines = [
        f"out = in = {dims(shapes[0])}; statistics over each of {g} groups of "
        f"C/groups = {c}/{g} = {c // g if c % g == 0 else '✗'} channels and all positions"
    ]
    if row is None:
        return lines
    return (
        lines
        + _affine_line("C", c, layer.affine)
        + ["MACs = 0 (normalisation, as in torch.utils.flop_counter)"]
        + _norm_rf(facts, shapes[0], "group norm")
    )


@rule("explain", "layer_norm")
def _explain_layer_norm(
    layer: L.LayerNorm, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    ns = tuple(layer.normalized_shape)
    lines = [
        f"out = in = {dims(shapes[0])}; statistics over the trailing normalized_shape "
        f"{dims(ns)} of each sample"
    ]
    if row is None:
        return lines
    count = math.prod(ns)
    what = f"Π normalized_shape = {prod_text(ns)}" if len(ns) > 1 else "normalized_shape"
    return (
        lines
        + _affine_line(
            f"({what})" if len(ns) > 1 else what, count, layer.elementwise_affine, layer.bias
        )
        + ["MACs = 0 (normalisation, as in torch.utils.flop_counter)"]
        + (
            [
                "receptive field: where the normalised sizes are spatial, every output reads "
                "every position of them (the field becomes the whole map's, jump 0); over the "
                "channels alone (channels-last) it is unchanged"
            ]
            if row
            else []
        )
    )


@rule("explain", "layer_norm2d")
def _explain_layer_norm2d(
    layer: L.LayerNorm2d, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    c = shapes[0][0]
    return (
        [
            f"out = in = {dims(shapes[0])}; LayerNorm over the {c} channels at each position "
            "(permute to channels-last, layer_norm, permute back)"
        ]
        + _affine_line("C", c, layer.elementwise_affine, layer.bias)
        + _norm_rf(None, shapes[0], "over channels only")
    )


@rule("explain", *L.INSTANCE_NORMS)
def _explain_instance_norm(
    layer: L._InstanceNormNd, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    c = shapes[0][0]
    stats = (
        "running statistics at inference (track_running_stats)"
        if layer.track_running_stats
        else "statistics over all positions of each channel"
    )
    lines = [f"out = in = {dims(shapes[0])}; {stats}"] + _affine_line("C", c, layer.affine)
    if row is None:
        return lines
    if layer.track_running_stats:
        lines.append(
            f"buffers = 2·C + 1 (running mean, running var, num_batches_tracked) = "
            f"2·{c} + 1 = {2 * c + 1}"
        )
    lines.append("MACs = 0 (normalisation, as in torch.utils.flop_counter)")
    return lines + _norm_rf(facts, shapes[0], "running statistics")


@rule("explain", "stochastic_depth")
def _explain_stochastic_depth(
    layer: L.StochasticDepth, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    return [
        f"out = in = {dims(shapes[0])} (identity at inference; in training a whole "
        f"{'sample' if layer.mode == 'row' else 'batch'} is dropped with p = {layer.p})"
    ]


@rule("explain", "layer_scale")
def _explain_layer_scale(
    layer: L.LayerScale, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    c = shapes[0][0]
    return [
        f"out = γ_c · in = {dims(shapes[0])} (one learned scale per channel, initialised "
        f"to {layer.init_value})",
        f"params = C = {c}",
    ]


@rule("explain", "channel_shuffle")
def _explain_channel_shuffle(
    layer: L.ChannelShuffle, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    c, g = shapes[0][0], layer.groups
    return [
        f"out = in = {dims(shapes[0])}: channels viewed as groups×(C/groups) = {g}×"
        f"{c // g if c % g == 0 else '✗'} and transposed (channel g·(C/groups)+i moves to "
        f"i·groups+g)"
    ]


@rule("explain", "permute")
def _explain_permute(
    layer: L.Permute, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    order = ", ".join(map(str, layer.order))
    if row is None:
        return [f"permute({order}) of the batched {dims(shapes[0])} (dims count the batch)"]
    return [
        f"out = permute({order}) of N×{dims(shapes[0])} = N×{dims(row.output_shape)} "
        "(dims count the batch)"
    ]


@rule("explain", "unflatten")
def _explain_unflatten(
    layer: L.Unflatten, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    sizes = ", ".join(map(str, layer.unflattened_size))
    if row is None:
        return [f"unflatten dim {layer.dim} of {dims(shapes[0])} into ({sizes})"]
    return [
        f"out = dim {layer.dim} (counting the batch) of {dims(shapes[0])} split into "
        f"({sizes}) = {dims(row.output_shape)}"
    ]


@rule("explain", "pixel_shuffle")
def _explain_pixel_shuffle(
    layer: L.PixelShuffle, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    r, (c, h, w) = layer.upscale_factor, shapes[0]
    return [
        f"C_out = C/r² = {c}/{r}² = {c // (r * r) if c % (r * r) == 0 else '✗'}, "
        f"H_out = H·r = {h}·{r} = {h * r}, W_out = W·r = {w}·{r} = {w * r}"
    ]


@rule("explain", "pixel_unshuffle")
def _explain_pixel_unshuffle(
    layer: L.PixelUnshuffle, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    r, (c, h, w) = layer.downscale_factor, shapes[0]
    return [
        f"C_out = C·r² = {c}·{r}² = {c * r * r}, H_out = H/r = {h}/{r} = {h // r}, "
        f"W_out = W/r = {w}/{r} = {w // r}"
    ]


# --------------------------------------------------------------------------- padding, resizing


@rule("explain", *L.CONSTANT_PADS)
def _explain_constant_pad(
    layer: L._ConstantPadNd, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    return _zeropad_size(layer, shapes[0]) + [f"  new entries are {layer.value:g}"]


_COPY_TEXT = {
    "reflect": "mirrored about the border element, which is not repeated (padding < input size)",
    "replicate": "copies of the border element",
    "circular": "copies from the opposite side (after any cropping; padding ≤ what is left)",
}


@rule("explain", *L.COPY_PADS)
def _explain_copy_pad(
    layer: L._CopyPadNd, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    return _zeropad_size(layer, shapes[0]) + [f"  new entries are {_COPY_TEXT[layer.mode]}"]


def _blocks_lines(layer: L._Sliding, spatial: tuple[int, ...]) -> tuple[list[str], int]:
    lines = [
        "blocks = ⌊(size + 2·padding − dilation·(kernel−1) − 1) / stride⌋ + 1 per axis "
        "(torch.nn.Unfold docs)"
    ]
    count = 1
    for axis, n_in, k, s, p, d in zip(
        ("H", "W"), spatial, layer.kernel_size, layer.stride, layer.padding, layer.dilation
    ):
        text, value = _window_formula(axis, n_in, (p, p), k, d, s)
        lines.append(f"  {text.replace('_out', '_blocks')} = {n(value)}")
        count *= value
    return lines, count


@rule("explain", "unfold")
def _explain_unfold(
    layer: L.Unfold, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    shape = shapes[0]
    lines, count = _blocks_lines(layer, shape[1:])
    area = math.prod(layer.kernel_size)
    return lines + [
        f"  L = {count} blocks, each C·k_H·k_W = {shape[0]}·"
        f"{prod_text(layer.kernel_size)} = {total(shape[0] * area)} values"
    ]


@rule("explain", "fold")
def _explain_fold(
    layer: L.Fold, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    shape = shapes[0]
    area = math.prod(layer.kernel_size)
    lines, count = _blocks_lines(layer, layer.output_size)
    return (
        [
            f"C_out = rows / (k_H·k_W) = {shape[0]} / ({prod_text(layer.kernel_size)}) = "
            f"{shape[0] // area if shape[0] % area == 0 else n(Fraction(shape[0], area))}"
        ]
        + [
            f"output_size = {dims(layer.output_size)}; its sliding blocks must number L = "
            f"{shape[1]}"
        ]
        + lines
        + [f"  blocks = {count} (overlapping blocks are summed)"]
    )


def _upsample_size(layer: L.Upsample, shapes: tuple[Shape, ...]) -> list[str]:
    from cnncalc.arithmetic import resize_plan

    shape = shapes[0]
    axes = _axes(layer, shape)
    try:
        plan = resize_plan(layer, shape[1:], shapes[1] if len(shapes) > 1 else None)
    except LayerProblem:  # refused: the size rule with what numbers there are
        fs = layer.scale_factor
        factors = fs if isinstance(fs, tuple) else (fs,) * len(axes)
        if fs is None or len(factors) != len(axes):
            return ["out = size: one value, or one per spatial axis"]
        return ["out = ⌊in·scale_factor⌋  (F.interpolate)"] + [
            f"  {a}_out = ⌊{n_in}·{fa:g}⌋ = {math.floor(n_in * fa)}"
            for a, n_in, fa in zip(axes, shape[1:], factors)
        ]
    lines = []
    if layer.size_of is not None:
        lines.append(
            f"out = the spatial size of '{layer.size_of}' = "
            f"{dims(tuple(o for _, o, _ in plan))} (size_of)"
        )
    elif layer.size is not None:
        lines += [f"{a}_out = size = {o}" for a, (_, o, _) in zip(axes, plan)]
    else:
        fs = layer.scale_factor
        factors = fs if isinstance(fs, tuple) else (fs,) * len(plan)
        lines.append("out = ⌊in·scale_factor⌋  (F.interpolate)")
        lines += [
            f"  {a}_out = ⌊{n_in}·{fa:g}⌋ = {o}" for a, (n_in, o, _), fa in zip(axes, plan, factors)
        ]
    mode = layer.mode
    if mode in ("nearest", "nearest-exact"):
        rule_text = "⌊dst·scale⌋" if mode == "nearest" else "⌊(dst + 0.5)·scale⌋"
        lines.append(f"mode {mode}: output dst copies input min({rule_text}, in − 1)")
    else:
        taps = 4 if mode == "bicubic" else 2
        where = (
            "src = dst·(in − 1)/(out − 1)"
            if layer.align_corners
            else "src = (dst + 0.5)·scale − 0.5"
        )
        lines.append(
            f"mode {mode}: {where}; each output mixes the {taps} nearest inputs per "
            "axis, clamped at the borders"
        )
    for a, (n_in, o, factor) in zip(axes, plan):
        if mode in ("nearest", "nearest-exact") or not layer.align_corners:
            scale = f"1/{factor:g}" if factor is not None else f"{n_in}/{o}"
            lines.append(
                f"  scale on {a} = {scale}"
                + (" (1/scale_factor)" if factor is not None else " (in/out)")
            )
        else:
            lines.append(
                f"  scale on {a} = ({n_in} − 1)/({o} − 1) (align_corners)"
                if o > 1
                else f"  scale on {a} = 0 (one output)"
            )
    return lines


@rule("explain", "upsample")
def _explain_upsample(
    layer: L.Upsample, shapes: tuple[Shape, ...], facts: Facts, row: Row, batch: int
) -> list[str]:
    return _upsample_size(layer, shapes)
