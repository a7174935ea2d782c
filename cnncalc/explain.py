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
from functools import singledispatch

from cnncalc import layers as L
from cnncalc.analysis import Analysis, ReceptiveField, Row, analyze
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
from cnncalc.errors import ShapeError, UsageError
from cnncalc.spec import LayerNode, Shape, Spec, label

MINUS = "−"


# --------------------------------------------------------------------------- number text


def n(value: int | Fraction) -> str:
    """A number in a formula: exact, with a typographic minus; fractions as a/b."""
    value = Fraction(value)
    text = str(abs(value.numerator)) if value.denominator == 1 else (
        f"{abs(value.numerator)}/{value.denominator}")
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


@singledispatch
def size_lines(layer: L.Layer, shape: Shape) -> list[str]:
    """How the output shape follows from the input shape (one or more lines)."""
    return []


def _axes(layer: L.Layer, shape: Shape) -> tuple[str, ...]:
    return AXES.get(len(shape) - 1, tuple(f"axis{i}" for i in range(1, len(shape))))


def _window_formula(axis: str, n_in: int, pads: tuple[int, int], k: int, d: int, s: int,
                    ceil: bool = False) -> tuple[str, int]:
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
    return [f"  ⚠ floor drops data on {axis}: the last window ends at "
            f"({out}{MINUS}1)·{s} + {k_eff} {MINUS} {pad_before} = {last} of {n_in}, so "
            f"input {which} never reach{'es' if lost == 1 else ''} the output"]


def _too_big(axis: str, n_in: int, pads: tuple[int, int], k: int, d: int) -> list[str]:
    k_eff = d * (k - 1) + 1
    padded = n_in + sum(pads)
    if k_eff <= padded:
        return []
    a, b = pads
    return [f"  ✗ on {axis} the padded input {n_in} + {a} + {b} = {padded} is smaller than the "
            f"{'dilated ' if d > 1 else ''}kernel {d}·({k}{MINUS}1) + 1 = {k_eff}"]


@size_lines.register
def _conv_size(layer: L._ConvNd, shape: Shape) -> list[str]:
    k, s, d = layer.kernel_size, layer.stride, layer.dilation
    if layer.padding == "same":
        pads = [same_padding(ki, di) for ki, di in zip(k, d)]
        head = ["padding='same': total d·(k−1) per axis, the odd one on the right: "
                + ", ".join(f"{a}+{b}" for a, b in pads)]
    elif layer.padding == "valid":
        pads, head = [(0, 0)] * layer.dims, ["padding='valid': no padding"]
    else:
        pads, head = [(p, p) for p in layer.padding], []
    lines = head + ["out = ⌊(in + 2·padding − dilation·(kernel−1) − 1) / stride⌋ + 1  "
                    "(torch.nn.Conv docs)"]
    for axis, n_in, ki, si, di, pd in zip(_axes(layer, shape), shape[1:], k, s, d, pads):
        text, value = _window_formula(axis, n_in, pd, ki, di, si)
        assert value == conv_out(n_in, ki, si, sum(pd), di)
        lines.append(f"  {text} = {n(value)}")
        lines += _too_big(axis, n_in, pd, ki, di)
        if value >= 1:
            lines += _unread(axis, n_in, pd[0], di * (ki - 1) + 1, si, value)
    lines.append(f"  C_out = out_channels = {layer.out_channels}")
    return lines


@size_lines.register
def _conv_transpose_size(layer: L._ConvTransposeNd, shape: Shape) -> list[str]:
    lines = ["out = (in − 1)·stride − 2·padding + dilation·(kernel − 1) + output_padding + 1  "
             "(torch.nn.ConvTranspose docs)"]
    fields = zip(_axes(layer, shape), shape[1:], layer.kernel_size, layer.stride, layer.padding,
                 layer.output_padding, layer.dilation)
    for axis, n_in, k, s, p, op, d in fields:
        value = conv_transpose_out(n_in, k, s, p, op, d)
        lines.append(f"  {axis}_out = ({n_in} {MINUS} 1)·{s} {MINUS} 2·{p} + {d}·({k} {MINUS} 1)"
                     f" + {op} + 1 = {n(value)}")
    lines.append(f"  C_out = out_channels = {layer.out_channels}")
    return lines


def _pool_lines(layer: L._PoolBase, shape: Shape, dilation: tuple[int, ...]) -> list[str]:
    ceil = layer.ceil_mode
    lines = [("out = ⌈(in + 2·padding − dilation·(kernel−1) − 1) / stride⌉ + 1, minus a last "
              "window that would start in the right padding (ceil_mode=True") if ceil else
             ("out = ⌊(in + 2·padding − dilation·(kernel−1) − 1) / stride⌋ + 1  (ceil_mode="
              "False")]
    lines[0] += ", PyTorch's pooling_output_shape)"
    fields = zip(_axes(layer, shape), shape[1:], layer.kernel_size, layer.stride, layer.padding,
                 dilation)
    for axis, n_in, k, s, p, d in fields:
        text, value = _window_formula(axis, n_in, (p, p), k, d, s, ceil)
        final, dropped = pool_out(n_in, k, s, p, d, ceil)
        lines.append(f"  {text} = {n(value)}")
        if dropped:
            lines.append(f"  ⚠ ceil_mode: the last window would start at ({value}{MINUS}1)·{s} = "
                         f"{(value - 1) * s} ≥ {n_in} + {p} = {n_in + p}, inside the right "
                         "padding, so PyTorch drops it:")
            lines.append(f"  {axis}_out = {value} {MINUS} 1 = {final}")
        assert final == (value - 1 if dropped else value)
        if final < 1:
            lines.append(f"  ✗ the window {d}·({k}{MINUS}1) + 1 = {d * (k - 1) + 1} does not fit "
                         f"the padded input {n_in} + 2·{p} = {n_in + 2 * p}")
        elif not ceil:
            lines += _unread(axis, n_in, p, d * (k - 1) + 1, s, final)
    lines.append(f"  C_out = C_in = {shape[0]} (pooling works per channel)")
    return lines


@size_lines.register
def _maxpool_size(layer: L._MaxPoolNd, shape: Shape) -> list[str]:
    return _pool_lines(layer, shape, layer.dilation)


@size_lines.register
def _avgpool_size(layer: L._AvgPoolNd, shape: Shape) -> list[str]:
    return _pool_lines(layer, shape, (1,) * layer.dims)


@size_lines.register
def _subsample_size(layer: L.Subsample2d, shape: Shape) -> list[str]:
    lines = ["out = ⌊(in − kernel) / stride⌋ + 1  (no padding)"]
    for axis, n_in, k, s in zip(_axes(layer, shape), shape[1:], layer.kernel_size, layer.stride):
        value = conv_out(n_in, k, s, 0)
        lines.append(f"  {axis}_out = ⌊({n_in} {MINUS} {k}) / {s}⌋ + 1 = {n(value)}")
        if value >= 1:
            lines += _unread(axis, n_in, 0, k, s, value)
    lines.append(f"  C_out = C_in = {shape[0]}")
    return lines


@size_lines.register
def _adaptive_size(layer: L._AdaptiveNd, shape: Shape) -> list[str]:
    lines = ["out = output_size; bin i reads [⌊i·in/out⌋, ⌈(i+1)·in/out⌉)  (PyTorch's "
             "start_index/end_index)"]
    for axis, n_in, o in zip(_axes(layer, shape), shape[1:], layer.output_size):
        if o is None:
            lines.append(f"  {axis}_out = {n_in} (output_size None keeps the input size)")
            o = n_in
        else:
            lines.append(f"  {axis}_out = {o}")
        bins = adaptive_bins(n_in, o, limit=6)  # closed forms below: o may be 10**7
        shown = ", ".join(f"[{a},{b})" for a, b in bins) + (", …" if o > 6 else "")
        widths = adaptive_widths(n_in, o)
        lines.append(f"    bins on {axis}: {shown}; window "
                     f"{' or '.join(map(str, widths))} wide"
                     + (" (bins overlap)" if n_in % o else ""))  # bin i ends past i+1's start
    lines.append(f"  C_out = C_in = {shape[0]}")
    return lines


@size_lines.register
def _zeropad_size(layer: L._ZeroPadNd, shape: Shape) -> list[str]:
    lines = ["out = in + pad_before + pad_after (negative padding crops)"]
    for axis, n_in, (a, b) in zip(_axes(layer, shape), shape[1:], layer.per_axis()):
        lines.append(f"  {axis}_out = {n_in}{plus(a)}{plus(b)} = {n(n_in + a + b)}")
    return lines


@size_lines.register
def _upsample_size(layer: L.Upsample, shape: Shape) -> list[str]:
    spatial = shape[1:]
    axes = _axes(layer, shape)
    if layer.size is not None:
        sizes = layer.size if isinstance(layer.size, tuple) else (layer.size,) * len(spatial)
        return [f"{a}_out = size = {o}" for a, o in zip(axes, sizes)]
    fs = layer.scale_factor
    factors = fs if isinstance(fs, tuple) else (fs,) * len(spatial)
    return ["out = ⌊in·scale_factor⌋"] + [
        f"  {a}_out = ⌊{n_in}·{fa:g}⌋ = {math.floor(n_in * fa)}"
        for a, n_in, fa in zip(axes, spatial, factors)]


@size_lines.register
def _flatten_size(layer: L.Flatten, shape: Shape) -> list[str]:
    rank = len(shape) + 1
    start = layer.start_dim + rank if layer.start_dim < 0 else layer.start_dim
    end = layer.end_dim + rank if layer.end_dim < 0 else layer.end_dim
    part = shape[start - 1:end]
    if len(part) < 2:
        return ["nothing to merge: the shape is unchanged"]
    return [f"features = {prod_text(part)} = {total(math.prod(part))}"]


@size_lines.register
def _linear_size(layer: L.Linear, shape: Shape) -> list[str]:
    return [f"features: {shape[-1]} → out_features = {layer.out_features}"]


# --------------------------------------------------------------------------- parameters


@singledispatch
def param_lines(layer: L.Layer, shape: Shape, facts: Facts) -> list[str]:
    """How the parameter count follows from the fields and the input channels."""
    return []


def _with_bias(terms: str, values: str, weights: int, bias: int, has_bias: bool,
               bias_term: str = "out") -> str:
    if has_bias:
        return (f"params = {terms} + {bias_term} = {values} + {bias} = "
                f"{total(weights + bias)}")
    return f"params = {terms} = {values} = {total(weights)} (bias=False)"


@param_lines.register
def _conv_params(layer: L._ConvNd, shape: Shape, facts: Facts) -> list[str]:
    k, c_out, c_in, g = layer.kernel_size, layer.out_channels, shape[0], layer.groups
    kt = "·".join(f"k_{a}" for a in _axes(layer, shape))
    table = getattr(layer, "connections", None)
    if table is not None:
        fan = sum(len(row) for row in table)
        weights = fan * math.prod(k)
        line = _with_bias(f"Σ|connections|·{kt}", f"{fan}·{prod_text(k)}", weights, c_out,
                          layer.bias)
    else:
        weights = c_out * (c_in // g) * math.prod(k)
        line = _with_bias(f"out·(in/groups)·{kt}", f"{c_out}·({c_in}/{g})·{prod_text(k)}",
                          weights, c_out, layer.bias)
    assert weights == facts.weights
    return [line]


@param_lines.register
def _conv_transpose_params(layer: L._ConvTransposeNd, shape: Shape, facts: Facts) -> list[str]:
    k, c_out, c_in, g = layer.kernel_size, layer.out_channels, shape[0], layer.groups
    kt = "·".join(f"k_{a}" for a in _axes(layer, shape))
    weights = c_in * (c_out // g) * math.prod(k)
    assert weights == facts.weights
    return [_with_bias(f"in·(out/groups)·{kt}", f"{c_in}·({c_out}/{g})·{prod_text(k)}",
                       weights, c_out, layer.bias)]


@param_lines.register
def _linear_params(layer: L.Linear, shape: Shape, facts: Facts) -> list[str]:
    n_in, n_out = shape[-1], layer.out_features
    assert n_in * n_out == facts.weights
    return [_with_bias("in·out", f"{n_in}·{n_out}", n_in * n_out, n_out, layer.bias)]


@param_lines.register
def _subsample_params(layer: L.Subsample2d, shape: Shape, facts: Facts) -> list[str]:
    c = shape[0]
    return [f"params = C + C (one coefficient and one bias per map) = {c} + {c} = {2 * c}"]


@param_lines.register
def _rbf_params(layer: L.RBF, shape: Shape, facts: Facts) -> list[str]:
    return [f"params = in·out = {shape[0]}·{layer.out_features} = "
            f"{total(shape[0] * layer.out_features)} (fixed centres: non-trainable)"]


@param_lines.register
def _batchnorm_params(layer: L._BatchNormNd, shape: Shape, facts: Facts) -> list[str]:
    c = shape[0]
    lines = []
    if layer.affine:
        lines.append(f"params = 2·C (γ and β) = 2·{c} = {2 * c}")
    if layer.track_running_stats:
        lines.append(f"buffers = 2·C + 1 (running mean, running var, num_batches_tracked) = "
                     f"2·{c} + 1 = {2 * c + 1}")
    return lines


@param_lines.register
def _prelu_params(layer: L.PReLU, shape: Shape, facts: Facts) -> list[str]:
    return [f"params = num_parameters = {layer.num_parameters}"]


# --------------------------------------------------------------------------- MACs


def mac_line(layer: L.Layer, row: Row, batch: int) -> str | None:
    """MACs of the weighted layers, as the analysis counts them (FLOPs = 2 × MACs)."""
    shape, out = row.input_shape, row.output_shape
    axes = _axes(layer, shape) if len(shape) > 1 else ()
    if isinstance(layer, L._ConvNd):
        k, g = layer.kernel_size, layer.groups
        kt = "·".join(f"k_{a}" for a in axes)
        ot = "·".join(f"{a}_out" for a in axes)
        if getattr(layer, "connections", None) is not None:
            fan = sum(len(r) for r in layer.connections)
            terms, values = f"{ot}·Σ|connections|·{kt}", f"{prod_text(out[1:])}·{fan}·" \
                f"{prod_text(k)}"
            per = math.prod(out[1:]) * fan * math.prod(k)
        else:
            terms = f"C_out·{ot}·(C_in/groups)·{kt}"
            values = f"{prod_text(out)}·({shape[0]}/{g})·{prod_text(k)}"
            per = math.prod(out) * (shape[0] // g) * math.prod(k)
    elif isinstance(layer, L._ConvTransposeNd):
        k, g = layer.kernel_size, layer.groups
        it = "·".join(f"{a}_in" for a in axes)
        kt = "·".join(f"k_{a}" for a in axes)
        terms = f"C_in·{it}·(C_out/groups)·{kt} (over input positions)"
        values = f"{prod_text(shape)}·({layer.out_channels}/{g})·{prod_text(layer.kernel_size)}"
        per = math.prod(shape) * (layer.out_channels // g) * math.prod(k)
    elif isinstance(layer, L.Linear):
        rows = math.prod(shape[:-1])
        terms = "in·out" if rows == 1 else "positions·in·out"
        values = (f"{shape[-1]}·{layer.out_features}" if rows == 1
                  else f"{rows}·{shape[-1]}·{layer.out_features}")
        per = rows * shape[-1] * layer.out_features
    elif isinstance(layer, L.Subsample2d):
        terms = "C·H_out·W_out·k_H·k_W (window sums)"
        values = f"{prod_text(out)}·{prod_text(layer.kernel_size)}"
        per = math.prod(out) * math.prod(layer.kernel_size)
    elif isinstance(layer, L.RBF):
        terms, values = "in·out", f"{shape[0]}·{layer.out_features}"
        per = shape[0] * layer.out_features
    else:
        return None
    if batch > 1:
        return f"MACs = batch·{terms} = {batch}·{values} = {total(per * batch)}"
    return f"MACs = {terms} = {values} = {total(per)}"


# --------------------------------------------------------------------------- receptive field


def rf_lines(facts: Facts, before: ReceptiveField | None, after: ReceptiveField | None,
             axes: tuple[str, ...]) -> list[str]:
    """The Araujo–Norris–Sim recurrence (Distill 2019) with this layer's window substituted."""
    if before is None:
        return []
    if after is None:
        return ["receptive field: no longer tracked (the spatial layout is gone)"]
    if facts.rf == "windows" and len(facts.windows) == len(before.size):
        lines = ["receptive field: r = r_prev + (k−1)·j_prev, j = j_prev·s, "
                 "start = start_prev − p·j_prev (k: dilated kernel)"]
        for a, r0, j0, s0, w, r1, j1, s1 in zip(axes, before.size, before.jump, before.start,
                                                facts.windows, after.size, after.jump,
                                                after.start):
            r = r0 + (w.kernel - 1) * j0
            j = j0 * w.stride
            st = s0 - w.pad * j0
            assert (r, j, st) == (r1, j1, s1)
            lines.append(f"  {a}: r = {n(r0)} + ({w.kernel}{MINUS}1)·{f(j0)} = {n(r)}, "
                         f"j = {f(j0)}·{f(w.stride)} = {n(j)}, "
                         f"start = {n(s0)} {MINUS} {f(w.pad)}·{f(j0)} = {n(st)}")
        return lines
    if before == after:
        return []
    if facts.rf == "dense":
        return ["receptive field: each output reads every input position: "
                + ", ".join(f"{a}: r = {n(r1)}" for a, r1 in zip(axes, after.size))]
    return ["receptive field: " + ", ".join(f"{a}: r = {n(r1)}" for a, r1 in
                                            zip(axes, after.size))]


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


def _step(layer: L.Layer, row: Row, facts: Facts, before: ReceptiveField | None,
          batch: int) -> Step:
    shape = row.input_shape
    axes = _axes(layer, shape) if len(shape) > 1 else ()
    lines = list(size_lines(layer, shape)) + param_lines(layer, shape, facts)
    lines += [x for x in (_dense_line(row), mac_line(layer, row, batch)) if x]
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
    return row.where or label(f"layer {row.index}", row.type, row.name)


def _generic(row: Row) -> Step:
    """A row without a worked formula (a merge: add or concat)."""
    return Step(row.index, _label(row), row.input_shape, row.output_shape,
                tuple(f"⚠ {note}" for note in row.notes))


def _refusal(spec: Spec, shape: Shape) -> tuple[int, Shape, LayerProblem] | None:
    """The first layer PyTorch refuses in a plain sequence, its input shape and the reason.

    None when no layer is refused or the spec is a graph (blocks, merges): then only the
    analysis's error is reported.
    """
    if not all(isinstance(node, LayerNode) for node in spec.nodes):
        return None
    current = shape
    for index, node in enumerate(spec.nodes):
        try:
            current = infer(node.layer, current).output_shape
        except LayerProblem as problem:
            return index, current, problem
    return None


def explain(spec: Spec, input_shape: Shape | None = None, batch: int = 1,
            dtype: str = "float32", layer: int | None = None) -> Explanation:
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
        analysis = analyze(replace(spec, nodes=spec.nodes[:index]), shape, batch=batch,
                           dtype=dtype) if index else None
    rows = analysis.rows if analysis else ()
    shape = analysis.input_shape if analysis else (input_shape or spec.input)
    n_rows = len(rows) + (error is not None)
    if layer is not None and not 0 <= layer < max(n_rows, len(spec.layers)):
        raise UsageError(f"--layer {layer} is out of range: the analysis has rows "
                         f"0..{max(n_rows, len(spec.layers)) - 1}")
    one = tuple(Fraction(1) for _ in shape[1:])
    initial = ReceptiveField(one, one, tuple(Fraction(0) for _ in shape[1:]))
    steps: list[Step] = []
    for row in rows:
        source = row.inputs[0] if row.inputs else -1
        before = initial if source < 0 else rows[source].receptive_field
        if row.layer is not None:
            steps.append(_step(row.layer, row, infer(row.layer, row.input_shape), before,
                               batch))
        else:
            steps.append(_generic(row))
    if error is not None and found is not None:
        index, in_shape, _ = found
        item = spec.nodes[index]
        reason = str(error).removeprefix(f"{error.where}: ")
        lines = list(size_lines(item.layer, in_shape)) + [f"✗ PyTorch refuses this layer: "
                                                          f"{reason}"]
        steps.append(Step(len(rows), item.where, in_shape, None, tuple(lines)))
    if layer is not None:
        steps = [s for s in steps if s.index == layer]
        if not steps:  # the walk stopped before it
            assert error is not None
            raise error
    return Explanation(shape, batch, tuple(steps), analysis, error)


def render(expl: Explanation) -> str:
    """Plain text, the same on a terminal and in a pipe."""
    out = [f"input {dims(expl.input_shape)}" + (f", batch {expl.batch}" if expl.batch > 1
                                                  else "")]
    for step in expl.steps:
        arrow = dims(step.output_shape) if step.output_shape else "refused"
        out += ["", f"{step.label}: {dims(step.input_shape)} → {arrow}"]
        out += [f"  {line}" for line in step.lines]
    a = expl.analysis
    if expl.error is None and a is not None and len(expl.steps) == len(a.rows):
        t = a.totals
        out += ["", f"total: output {dims(t.output_shape)}, params {total(t.params)}, "
                f"MACs {total(t.macs)} (FLOPs = 2 × MACs = {total(t.flops)})"]
    return "\n".join(out) + "\n"
