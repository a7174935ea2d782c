"""A spec as an ONNX graph: ``cnncalc export SPEC --to onnx -o model.onnx``.

The graph has random (seeded) or zero weights, so a design opens in Netron and runs in
onnxruntime; the batch dimension is symbolic (``N``). Node names follow the PyTorch
exporter's scopes (``/layer1/0/conv1/Conv``) and initializers are named like
``state_dict()`` keys (``layer1.0.conv1.weight``), so ``cnncalc shapes model.onnx`` reads
the same rows back. ``onnx`` is imported only here (the ``onnx`` extra).

The "onnx" part of the registry: one rule per layer type and merge,
``rule(g, layer, xs, *in_shapes) -> str``: ``g`` is the :class:`Graph` being built with the
row's scope set, ``xs`` the names of the input values (one per branch for a merge), shapes
without the batch. The rule adds nodes with ``g.node(op, inputs, **attributes)``, weights
with ``g.weight("weight", shape)`` and constants (shapes, pads) with ``g.const(values)``, and
returns the name of its output value. Opset :data:`OPSET`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cnncalc import layers as L
from cnncalc.analysis import analyze, input_shapes
from cnncalc.arithmetic import infer, resize_plan, same_padding
from cnncalc.errors import SpecError
from cnncalc.export_torch import module_paths
from cnncalc.registry import is_merge, lookup, rule
from cnncalc.spec import Shape, Spec

OPSET = 17


class Unsupported(Exception):
    """A layer setting ONNX has no operator for; the exporter names the row."""


class Graph:
    """Nodes and initializers under construction; ``scope`` is the current row's path."""

    def __init__(self, weights: str = "random", seed: int = 0) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.rng = np.random.default_rng(seed)
        self.zeros = weights == "zeros"
        self.scope = ""
        self._names: dict[str, int] = {}

    def _unique(self, name: str) -> str:
        n = self._names.get(name, 0)
        self._names[name] = n + 1
        return name if n == 0 else f"{name}_{n}"

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        """Add one node in the current scope; returns its output's name."""
        from onnx import helper

        parts = [p for p in self.scope.split(".") if p]
        name = self._unique("/" + "/".join(parts + [op]))
        out = f"{name}_output_0"
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def weight(self, what: str, shape: tuple[int, ...], fill: float | None = None) -> str:
        """A parameter or buffer ``<scope>.<what>``: random normal (σ 0.1), or ``fill``."""
        if fill is not None:
            values = np.full(shape, fill, dtype=np.float32)
        elif self.zeros:
            values = np.zeros(shape, dtype=np.float32)
        else:
            values = (self.rng.standard_normal(shape) * 0.1).astype(np.float32)
        return self._add(f"{self.scope}.{what}" if self.scope else what, values)

    def constant(self, values: Any) -> str:
        """A float Constant node: a norm's fixed scale or shift, not a parameter (PyTorch's
        exporter writes a norm without affine weights so, and the importer reads it so)."""
        from onnx import numpy_helper

        return self.node(
            "Constant", [], value=numpy_helper.from_array(np.asarray(values, dtype=np.float32))
        )

    def const(self, values: Any, dtype: Any = np.int64) -> str:
        """A constant input (a shape, pads, scales): not a parameter."""
        name = self._unique(f"{self.scope or 'const'}.const")
        return self._add(name, np.asarray(values, dtype=dtype))

    def _add(self, name: str, values: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(values, name=name))
        return name


def emit(g: Graph, layer: L.Layer, xs: list[str], *shapes: Shape) -> str:
    return lookup("onnx", type(layer))(g, layer, xs, *shapes)


def export_onnx(
    spec: Spec, input_shape: Shape | None = None, weights: str = "random", seed: int = 0
):
    """The ONNX ``ModelProto`` of ``spec`` (checked with ``onnx.checker``)."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        from cnncalc.errors import UsageError

        raise UsageError(
            "ONNX export needs the onnx package: pip install 'cnncalc[onnx]'"
        ) from None
    a = analyze(spec, input_shape)
    g = Graph(weights, seed)
    values: dict[int, str] = {-1: "input"}
    for row, path in zip(a.rows, module_paths(a)):
        # a merge is an op of its block's forward, as PyTorch scopes it: /layer1/0/Add
        kind = row.layer.kind
        g.scope = path.removesuffix(f".{kind}") if is_merge(type(row.layer)) else path
        try:
            values[row.index] = emit(
                g, row.layer, [values[i] for i in row.inputs], *input_shapes(a, row)
            )
        except Unsupported as exc:
            raise SpecError(f"cannot be written in ONNX: {exc}", where=row.where) from None

    def info(name: str, shape: Shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *shape])

    outputs = [(values[a.output_row], a.totals.output_shape)]
    outputs += [(values[o.row], o.shape) for o in a.side_outputs]
    renamed = []
    for k, (value, shape) in enumerate(outputs):
        name = "output" if k == 0 else f"output_{k}"
        if value == "input" or any(info.name == value for info in renamed):
            g.nodes.append(helper.make_node("Identity", [value], [name], name=f"/{name}"))
        else:  # the producing node's output takes the name
            _rename(g.nodes, value, name)
        renamed.append(info(name, shape))
    graph = helper.make_graph(
        g.nodes, a.name or "network", [info("input", a.input_shape)], renamed, g.initializers
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="cnncalc"
    )
    model.ir_version = min(model.ir_version, 8)  # readable by onnxruntime >= 1.10
    if _weight_bytes(model) < _PROTO_LIMIT:  # larger models are checked when saved
        onnx.checker.check_model(model)
    return model


_PROTO_LIMIT = 1_800_000_000  # protobuf refuses messages over 2 GiB


def _weight_bytes(model) -> int:
    return sum(4 * math.prod(t.dims) for t in model.graph.initializer)


def save_onnx(model, path: str) -> None:
    """Write ``model``; weights over ~1.8 GB go to ``<path>.data`` beside it (external data),
    which ``cnncalc shapes`` does not need."""
    import onnx

    if _weight_bytes(model) < _PROTO_LIMIT:
        onnx.save_model(model, path)
        return
    from pathlib import Path

    onnx.save_model(
        model,
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=Path(path).name + ".data",
        size_threshold=1024,
    )
    onnx.checker.check_model(path)


def _rename(nodes: list[Any], old: str, new: str) -> None:
    for node in nodes:
        for seq in (node.input, node.output):
            for i, name in enumerate(seq):
                if name == old:
                    seq[i] = new


# --------------------------------------------------------------------------- helpers


def _pads(before: list[int], after: list[int]) -> list[int]:
    """ONNX order: every axis's start, then every axis's end."""
    return list(before) + list(after)


def _conv_pads(layer: L._ConvNd) -> tuple[list[int], list[int]]:
    if layer.padding == "same":
        pairs = [same_padding(k, d) for k, d in zip(layer.kernel_size, layer.dilation)]
    elif layer.padding == "valid":
        pairs = [(0, 0)] * layer.dims
    else:
        pairs = [(p, p) for p in layer.padding]
    return [a for a, _ in pairs], [b for _, b in pairs]


_PAD_MODES = {"reflect": "reflect", "replicate": "edge"}


# --------------------------------------------------------------------------- rules: layers


@rule("onnx", *L.CONV_ND)
def _conv(g: Graph, layer: L._ConvNd, xs: list[str], shape: Shape) -> str:
    before, after = _conv_pads(layer)
    x = xs[0]
    if getattr(layer, "connections", None) is not None:  # LeNet's table: a masked full conv
        w = _partial_weight(g, layer, shape[0])
    else:
        w = g.weight("weight", (layer.out_channels, shape[0] // layer.groups, *layer.kernel_size))
    if layer.padding_mode == "circular":  # Pad's 'wrap' needs opset 19: Slice + Concat
        x = _circular(g, x, shape, tuple(zip(before, after)))
        before, after = [0] * layer.dims, [0] * layer.dims
    elif layer.padding_mode != "zeros":
        x = g.node(
            "Pad",
            [x, g.const(_pads([0, 0, *before], [0, 0, *after]))],
            mode=_PAD_MODES[layer.padding_mode],
        )
        before, after = [0] * layer.dims, [0] * layer.dims
    inputs = [x, w] + ([g.weight("bias", (layer.out_channels,))] if layer.bias else [])
    return g.node(
        "Conv",
        inputs,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        pads=_pads(before, after),
        dilations=list(layer.dilation),
        group=layer.groups,
    )


def _partial_weight(g: Graph, layer: L.Conv2d, c_in: int) -> str:
    """LeNet-5's C3: only the connected kernels are parameters (one flat tensor); a constant
    index gathers them into the full kernel, zero where a map is not connected."""
    k = tuple(layer.kernel_size)
    area = math.prod(k)
    fan = sum(len(row) for row in layer.connections)
    index = np.full((layer.out_channels, c_in, *k), fan * area, dtype=np.int64)
    i = 0
    for j, row in enumerate(layer.connections):
        for c in row:
            index[j, c] = np.arange(i * area, (i + 1) * area).reshape(k)
            i += 1
    w = g.weight("weight", (fan * area,))
    padded = g.node("Concat", [w, g.const([0.0], np.float32)], axis=0)
    return g.node("Gather", [padded, g.const(index)], axis=0)


@rule("onnx", *L.CONV_TRANSPOSE)
def _conv_transpose(g: Graph, layer: L._ConvTransposeNd, xs: list[str], shape: Shape) -> str:
    w = g.weight("weight", (shape[0], layer.out_channels // layer.groups, *layer.kernel_size))
    inputs = [xs[0], w] + ([g.weight("bias", (layer.out_channels,))] if layer.bias else [])
    return g.node(
        "ConvTranspose",
        inputs,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        pads=_pads(layer.padding, layer.padding),
        output_padding=list(layer.output_padding),
        dilations=list(layer.dilation),
        group=layer.groups,
    )


@rule("onnx", *L.MAX_POOLS)
def _maxpool(g: Graph, layer: L._MaxPoolNd, xs: list[str], shape: Shape) -> str:
    return g.node(
        "MaxPool",
        xs,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        pads=_pads(layer.padding, layer.padding),
        dilations=list(layer.dilation),
        ceil_mode=int(layer.ceil_mode),
    )


@rule("onnx", *L.AVG_POOLS)
def _avgpool(g: Graph, layer: L._AvgPoolNd, xs: list[str], shape: Shape) -> str:
    if layer.divisor_override is not None:
        raise Unsupported("divisor_override has no ONNX attribute")
    return g.node(
        "AveragePool",
        xs,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        pads=_pads(layer.padding, layer.padding),
        ceil_mode=int(layer.ceil_mode),
        count_include_pad=int(layer.count_include_pad),
    )


@rule("onnx", *L.ADAPTIVE_AVG, *L.ADAPTIVE_MAX)
def _adaptive(g: Graph, layer: L._AdaptiveNd, xs: list[str], shape: Shape) -> str:
    avg = layer.type in L.ADAPTIVE_AVG
    outs = [n if o is None else o for n, o in zip(shape[1:], layer.output_size)]
    if all(o == 1 for o in outs):
        return g.node("GlobalAveragePool" if avg else "GlobalMaxPool", xs)
    if any(n % o for n, o in zip(shape[1:], outs)):
        sizes = "x".join(map(str, shape[1:]))
        raise Unsupported(
            f"adaptive pooling of {sizes} to {'x'.join(map(str, outs))} has "
            "uneven bins (ONNX pools only by a fixed window)"
        )
    k = [n // o for n, o in zip(shape[1:], outs)]  # even bins: a plain pool is the same
    return g.node("AveragePool" if avg else "MaxPool", xs, kernel_shape=k, strides=k)


@rule("onnx", "subsample2d")
def _subsample(g: Graph, layer: L.Subsample2d, xs: list[str], shape: Shape) -> str:
    # window mean × coefficient + bias: the sum's k² is absorbed by the coefficient
    y = g.node("AveragePool", xs, kernel_shape=list(layer.kernel_size), strides=list(layer.stride))
    y = g.node("Mul", [y, g.weight("weight", (shape[0], 1, 1))])
    return g.node("Add", [y, g.weight("bias", (shape[0], 1, 1))])


@rule("onnx", *L.ZERO_PADS)
def _zeropad(g: Graph, layer: L._ZeroPadNd, xs: list[str], shape: Shape) -> str:
    pairs = layer.per_axis()
    pads = _pads([0, 0, *(a for a, _ in pairs)], [0, 0, *(b for _, b in pairs)])
    return g.node("Pad", [xs[0], g.const(pads)], mode="constant")


# Resize attributes per PyTorch mode, as torch.onnx writes them (TorchScript exporter, opset
# 11+): legacy nearest src = ⌊dst/scale⌋ is "asymmetric" + "floor"; the linear modes and bicubic
# (A = −0.75, ONNX's default cubic_coeff_a) use "half_pixel", or "align_corners". torch.onnx
# refuses nearest-exact; its src = ⌊(dst + ½)/scale⌋ is "half_pixel" + "round_prefer_ceil".
_RESIZE_MODES = {
    "nearest": "nearest",
    "nearest-exact": "nearest",
    "linear": "linear",
    "bilinear": "linear",
    "trilinear": "linear",
    "bicubic": "cubic",
}


def _resize_attributes(layer: L.Upsample) -> dict[str, str]:
    if layer.mode == "nearest":
        return dict(
            mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"
        )
    if layer.mode == "nearest-exact":
        return dict(
            mode="nearest",
            coordinate_transformation_mode="half_pixel",
            nearest_mode="round_prefer_ceil",
        )
    ctm = "align_corners" if layer.align_corners else "half_pixel"
    return dict(mode=_RESIZE_MODES[layer.mode], coordinate_transformation_mode=ctm)


@rule("onnx", "upsample")
def _upsample(
    g: Graph, layer: L.Upsample, xs: list[str], shape: Shape, ref: Shape | None = None
) -> str:
    attrs = _resize_attributes(layer)
    dims = len(shape) - 1
    if layer.scale_factor is not None and not layer.recompute_scale_factor:
        # PyTorch maps with 1/scale_factor, as Resize does with scales
        f = layer.scale_factor
        factors = f if isinstance(f, tuple) else (f,) * dims
        return g.node("Resize", [xs[0], "", g.const([1, 1, *factors], np.float32)], **attrs)
    nc = g.node("Slice", [g.node("Shape", [xs[0]]), g.const([0]), g.const([2])])
    if layer.size_of is not None:  # the spatial size of another tensor, read at run time
        spatial = g.node("Slice", [g.node("Shape", [xs[1]]), g.const([2]), g.const([2 + dims])])
    else:  # size, or scale_factor with recompute_scale_factor (mapped with in/out)
        spatial = g.const([o for _, o, _ in resize_plan(layer, shape[1:])])
    sizes = g.node("Concat", [nc, spatial], axis=0)
    return g.node("Resize", [xs[0], "", "", sizes], **attrs)


@rule("onnx", "flatten")
def _flatten(g: Graph, layer: L.Flatten, xs: list[str], shape: Shape) -> str:
    rank = len(shape) + 1
    start = layer.start_dim % rank
    end = layer.end_dim % rank
    if start == 1 and end == rank - 1:
        return g.node("Flatten", xs, axis=1)
    out = shape[: start - 1] + (math.prod(shape[start - 1 : end]),) + shape[end:]
    return g.node("Reshape", [xs[0], g.const([0, *out])])


@rule("onnx", "narrow")
def _narrow(g: Graph, layer: L.Narrow, xs: list[str], shape: Shape) -> str:
    return g.node(
        "Slice",
        [
            xs[0],
            g.const([layer.start]),
            g.const([layer.start + layer.length]),
            g.const([layer.dim]),
        ],
    )


@rule("onnx", "linear")
def _linear(g: Graph, layer: L.Linear, xs: list[str], shape: Shape) -> str:
    if len(shape) == 1:  # nn.Linear on a flat input: Gemm with transB, as PyTorch exports it
        inputs = [xs[0], g.weight("weight", (layer.out_features, shape[0]))]
        if layer.bias:
            inputs.append(g.weight("bias", (layer.out_features,)))
        return g.node("Gemm", inputs, transB=1)
    y = g.node("MatMul", [xs[0], g.weight("weight", (shape[-1], layer.out_features))])
    return g.node("Add", [y, g.weight("bias", (layer.out_features,))]) if layer.bias else y


@rule("onnx", "rbf")
def _rbf(g: Graph, layer: L.RBF, xs: list[str], shape: Shape) -> str:
    # y_j = Σ_i (x_i − w_ji)²: [N, 1, F] − [out, F] → square → sum over F
    x = g.node("Unsqueeze", [xs[0], g.const([1])])
    d = g.node("Sub", [x, g.weight("weight", (layer.out_features, shape[0]))])
    return g.node("ReduceSum", [g.node("Mul", [d, d]), g.const([2])], keepdims=0)


@rule("onnx", *L.BATCH_NORMS)
def _batchnorm(g: Graph, layer: L._BatchNormNd, xs: list[str], shape: Shape) -> str:
    return _running_norm(g, layer, xs[0], shape[0])


def _running_norm(g: Graph, layer: L._BatchNormNd | L._InstanceNormNd, x: str, c: int) -> str:
    """Normalisation by running statistics (a batch-norm, or an instance norm that tracks
    them, at inference). Without affine weights scale and shift are constants, not parameters,
    as PyTorch exports them."""
    scale, bias = _affine(g, (c,), layer.affine)
    mean = g.weight("running_mean", (c,), fill=0.0)
    var = g.weight("running_var", (c,), fill=1.0)
    momentum = None if layer.momentum is None else 1 - layer.momentum
    return g.node(
        "BatchNormalization", [x, scale, bias, mean, var], epsilon=layer.eps, momentum=momentum
    )


def _affine(g: Graph, shape: tuple[int, ...], weight: bool, bias: bool = True) -> tuple[str, str]:
    """A norm's scale and shift: parameters ``weight``/``bias``, or constants 1 and 0."""
    scale = g.weight("weight", shape) if weight else g.constant(np.ones(shape))
    shift = g.weight("bias", shape) if weight and bias else g.constant(np.zeros(shape))
    return scale, shift


@rule("onnx", *L.DROPOUTS)
def _dropout(g: Graph, layer: L._DropoutBase, xs: list[str], shape: Shape) -> str:
    return g.node("Dropout", [xs[0], g.const(layer.p, np.float32)])


_UNARY = {
    "identity": "Identity",
    "relu": "Relu",
    "selu": "Selu",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "hardswish": "HardSwish",
}


@rule("onnx", *_UNARY)
def _unary(g: Graph, layer: L.Layer, xs: list[str], shape: Shape) -> str:
    return g.node(_UNARY[layer.type], xs)


@rule("onnx", "relu6", "hardtanh")
def _clip(g: Graph, layer: L.ReLU6 | L.Hardtanh, xs: list[str], shape: Shape) -> str:
    low, high = (0.0, 6.0) if layer.type == "relu6" else (layer.min_val, layer.max_val)
    return g.node("Clip", [xs[0], g.const(low, np.float32), g.const(high, np.float32)])


@rule("onnx", "hardsigmoid")
def _hardsigmoid(g: Graph, layer: L.Hardsigmoid, xs: list[str], shape: Shape) -> str:
    return g.node("HardSigmoid", xs, alpha=1 / 6, beta=0.5)


@rule("onnx", "leaky_relu")
def _leaky(g: Graph, layer: L.LeakyReLU, xs: list[str], shape: Shape) -> str:
    return g.node("LeakyRelu", xs, alpha=layer.negative_slope)


@rule("onnx", "elu", "celu")
def _elu(g: Graph, layer: L.ELU | L.CELU, xs: list[str], shape: Shape) -> str:
    return g.node("Elu" if layer.type == "elu" else "Celu", xs, alpha=layer.alpha)


@rule("onnx", "prelu")
def _prelu(g: Graph, layer: L.PReLU, xs: list[str], shape: Shape) -> str:
    n = layer.num_parameters
    slope = g.weight("weight", (n,) + (1,) * (len(shape) - 1) if n > 1 else (1,))
    return g.node("PRelu", [xs[0], slope])


@rule("onnx", "silu", "mish")
def _gated(g: Graph, layer: L.SiLU | L.Mish, xs: list[str], shape: Shape) -> str:
    # x · σ(x) and x · tanh(softplus(x)), as the PyTorch exporter writes them
    if layer.type == "silu":
        gate = g.node("Sigmoid", xs)
    else:
        gate = g.node("Tanh", [g.node("Softplus", xs)])
    return g.node("Mul", [xs[0], gate])


@rule("onnx", "gelu")
def _gelu(g: Graph, layer: L.GELU, xs: list[str], shape: Shape) -> str:
    if layer.approximate != "none":
        raise Unsupported("approximate='tanh' GELU needs opset 20")
    # x · ½(1 + erf(x/√2)), as the PyTorch exporter writes it below opset 20
    e = g.node("Erf", [g.node("Div", [xs[0], g.const(math.sqrt(2), np.float32)])])
    y = g.node("Mul", [xs[0], g.node("Add", [e, g.const(1.0, np.float32)])])
    return g.node("Mul", [y, g.const(0.5, np.float32)])


@rule("onnx", "softplus")
def _softplus(g: Graph, layer: L.Softplus, xs: list[str], shape: Shape) -> str:
    if layer.beta != 1:
        raise Unsupported("Softplus with beta != 1 has no ONNX attribute")
    return g.node("Softplus", xs)


@rule("onnx", *L.SOFTMAXES)
def _softmax(g: Graph, layer: L.Softmax | L.LogSoftmax, xs: list[str], shape: Shape) -> str:
    dim = layer.dim if layer.dim is not None else (0 if len(shape) + 1 in (0, 1, 3) else 1)
    return g.node("Softmax" if layer.type == "softmax" else "LogSoftmax", xs, axis=dim)


# --------------------------------------------------------------------------- rules: today's CNNs
# As PyTorch's exporter writes them at opset 17, so the importer reads either back.


@rule("onnx", "group_norm")
def _group_norm(g: Graph, layer: L.GroupNorm, xs: list[str], shape: Shape) -> str:
    # GroupNormalization (opset 18) scales per group, not per channel as PyTorch: statistics by
    # InstanceNormalization over [N, G, C/G·H·W], then the per-channel weight and bias
    groups = layer.num_groups
    y = g.node("Reshape", [xs[0], g.const([0, groups, -1])])
    y = g.node(
        "InstanceNormalization",
        [y, g.constant(np.ones(groups)), g.constant(np.zeros(groups))],
        epsilon=layer.eps,
    )
    y = g.node("Reshape", [y, g.node("Shape", xs)])
    if not layer.affine:
        return y
    per_channel = (shape[0],) + (1,) * (len(shape) - 1)
    y = g.node("Mul", [y, g.weight("weight", per_channel)])
    return g.node("Add", [y, g.weight("bias", per_channel)])


def _layer_normalization(
    g: Graph, x: str, ns: tuple[int, ...], eps: float, weight: bool, bias: bool
) -> str:
    scale = g.weight("weight", ns) if weight else g.constant(np.ones(ns))
    shift = [g.weight("bias", ns)] if weight and bias else []
    return g.node("LayerNormalization", [x, scale, *shift], axis=-len(ns), epsilon=eps)


@rule("onnx", "layer_norm")
def _layer_norm(g: Graph, layer: L.LayerNorm, xs: list[str], shape: Shape) -> str:
    return _layer_normalization(
        g, xs[0], tuple(layer.normalized_shape), layer.eps, layer.elementwise_affine, layer.bias
    )


@rule("onnx", "layer_norm2d")
def _layer_norm2d(g: Graph, layer: L.LayerNorm2d, xs: list[str], shape: Shape) -> str:
    y = g.node("Transpose", xs, perm=[0, 2, 3, 1])
    y = _layer_normalization(g, y, (shape[0],), layer.eps, layer.elementwise_affine, layer.bias)
    return g.node("Transpose", [y], perm=[0, 3, 1, 2])


@rule("onnx", *L.INSTANCE_NORMS)
def _instance_norm(g: Graph, layer: L._InstanceNormNd, xs: list[str], shape: Shape) -> str:
    if layer.track_running_stats:  # at inference the running statistics normalise
        return _running_norm(g, layer, xs[0], shape[0])
    scale, shift = _affine(g, (shape[0],), layer.affine)
    return g.node("InstanceNormalization", [xs[0], scale, shift], epsilon=layer.eps)


@rule("onnx", "stochastic_depth")
def _stochastic_depth(g: Graph, layer: L.StochasticDepth, xs: list[str], shape: Shape) -> str:
    return g.node("Identity", xs)  # the identity at inference


@rule("onnx", "layer_scale")
def _layer_scale(g: Graph, layer: L.LayerScale, xs: list[str], shape: Shape) -> str:
    # torchvision's CNBlock: `self.layer_scale * x`, a parameter of the block (the Mul is the
    # block's op): initializer `features.1.0.layer_scale`, node /features/1/0/Mul
    g.scope, _, own = g.scope.rpartition(".")
    gamma = g.weight(own, (shape[0],) + (1,) * (len(shape) - 1))
    return g.node("Mul", [gamma, xs[0]])


def _shuffle(g: Graph, x: str, split: list[int], perm: list[int], out: Shape) -> str:
    """Reshape → Transpose → Reshape (the batch kept by a 0), as PyTorch exports the view and
    permute of channel_shuffle and pixel_unshuffle."""
    y = g.node("Reshape", [x, g.const([0, *split])])
    y = g.node("Transpose", [y], perm=perm)
    return g.node("Reshape", [y, g.const([0, *out])])


@rule("onnx", "channel_shuffle")
def _channel_shuffle(g: Graph, layer: L.ChannelShuffle, xs: list[str], shape: Shape) -> str:
    # (N, g, C/g, *) → (N, C/g, g, *) → (N, C, *)
    c, k, rest = shape[0], layer.groups, list(shape[1:])
    perm = [0, 2, 1, *range(3, len(shape) + 2)]
    return _shuffle(g, xs[0], [k, c // k, *rest], perm, shape)


@rule("onnx", "pixel_shuffle")
def _pixel_shuffle(g: Graph, layer: L.PixelShuffle, xs: list[str], shape: Shape) -> str:
    # out[c, h·r + i, w·r + j] = in[c·r² + i·r + j, h, w]: DepthToSpace's CRD order
    return g.node("DepthToSpace", xs, blocksize=layer.upscale_factor, mode="CRD")


@rule("onnx", "pixel_unshuffle")
def _pixel_unshuffle(g: Graph, layer: L.PixelUnshuffle, xs: list[str], shape: Shape) -> str:
    # SpaceToDepth puts the block position before the channel (c + C·(i·r + j)); PyTorch's
    # order is c·r² + i·r + j, written as PyTorch exports it
    c, h, w = shape
    r = layer.downscale_factor
    return _shuffle(
        g, xs[0], [c, h // r, r, w // r, r], [0, 1, 3, 5, 2, 4], (c * r * r, h // r, w // r)
    )


@rule("onnx", "permute")
def _permute(g: Graph, layer: L.Permute, xs: list[str], shape: Shape) -> str:
    rank = len(shape) + 1
    return g.node("Transpose", xs, perm=[d % rank for d in layer.order])


@rule("onnx", "unflatten")
def _unflatten(g: Graph, layer: L.Unflatten, xs: list[str], shape: Shape) -> str:
    out = infer(layer, shape).output_shape
    if out == shape:  # one size: nothing to reshape
        return g.node("Identity", xs)
    return g.node("Reshape", [xs[0], g.const([0, *out])])


# --------------------------------------------------------------------------- rules: padding, fold
# ONNX Pad takes negative pads as crops, applied after padding, as PyTorch's reflect and
# replicate modes do (onnxruntime agrees with F.pad). Its 'wrap' mode needs opset 19, so a
# circular pad is written as PyTorch's exporter writes it below: per axis, a Concat of the
# tail, the tensor and the head (Slice nodes) — after cropping, since F.pad's circular mode
# crops first and wraps around what is left. The importer reads these forms back.


@rule("onnx", *L.CONSTANT_PADS, *L.COPY_PADS)
def _pad(g: Graph, layer: L._ZeroPadNd, xs: list[str], shape: Shape) -> str:
    pairs = layer.per_axis()
    if layer.type in L.COPY_PADS and layer.mode == "circular":
        return _circular(g, xs[0], shape, pairs)
    pads = g.const(_pads([0, 0, *(a for a, _ in pairs)], [0, 0, *(b for _, b in pairs)]))
    if layer.type in L.CONSTANT_PADS:
        return g.node("Pad", [xs[0], pads, g.const(layer.value, np.float32)], mode="constant")
    return g.node("Pad", [xs[0], pads], mode=_PAD_MODES[layer.mode])


def _circular(g: Graph, x: str, shape: Shape, pairs: tuple[tuple[int, int], ...]) -> str:
    start = x
    for axis, (n, (a, b)) in enumerate(zip(shape[1:], pairs), start=2):
        if a < 0 or b < 0:
            x = g.node(
                "Slice", [x, g.const([max(-a, 0)]), g.const([n - max(-b, 0)]), g.const([axis])]
            )
            n -= max(-a, 0) + max(-b, 0)
        parts = [x]
        if a > 0:
            parts.insert(0, g.node("Slice", [x, g.const([n - a]), g.const([n]), g.const([axis])]))
        if b > 0:
            parts.append(g.node("Slice", [x, g.const([0]), g.const([b]), g.const([axis])]))
        if len(parts) > 1:
            x = g.node("Concat", parts, axis=axis)
    return x if x != start else g.node("Identity", [x])  # all pads zero


def _one_hot_kernel(channels: int, kernel_size: tuple[int, ...]) -> np.ndarray:
    """(C·K, 1, *kernel) with channel c·K + k picking kernel position k (row-major): a grouped
    convolution with it is im2col in nn.Unfold's layout, its transpose is col2im (nn.Fold)."""
    area = math.prod(kernel_size)
    eye = np.eye(area, dtype=np.float32).reshape(area, 1, *kernel_size)
    return np.tile(eye, (channels, 1, *(1 for _ in kernel_size)))


@rule("onnx", "unfold")
def _unfold(g: Graph, layer: L.Unfold, xs: list[str], shape: Shape) -> str:
    # ONNX has no im2col: a grouped Conv with a constant one-hot kernel (not parameters),
    # then the blocks flattened to L
    c = shape[0]
    k = layer.kernel_size
    w = g.const(_one_hot_kernel(c, k), np.float32)
    y = g.node(
        "Conv",
        [xs[0], w],
        kernel_shape=list(k),
        strides=list(layer.stride),
        pads=_pads(layer.padding, layer.padding),
        dilations=list(layer.dilation),
        group=c,
    )
    return g.node("Reshape", [y, g.const([0, c * math.prod(k), -1])])


@rule("onnx", "fold")
def _fold(g: Graph, layer: L.Fold, xs: list[str], shape: Shape) -> str:
    # Col2Im needs opset 18: the transpose of Unfold's one-hot Conv sums the blocks back;
    # output_padding adds the last rows no block reaches (zeros, as nn.Fold leaves them)
    k, s, p, d = layer.kernel_size, layer.stride, layer.padding, layer.dilation
    c = shape[0] // math.prod(k)
    blocks = [
        (o + 2 * pi - di * (ki - 1) - 1) // si + 1
        for o, ki, si, pi, di in zip(layer.output_size, k, s, p, d)
    ]
    reached = [
        (b - 1) * si - 2 * pi + di * (ki - 1) + 1 for b, ki, si, pi, di in zip(blocks, k, s, p, d)
    ]
    y = g.node("Reshape", [xs[0], g.const([0, shape[0], *blocks])])
    w = g.const(_one_hot_kernel(c, k), np.float32)
    return g.node(
        "ConvTranspose",
        [y, w],
        kernel_shape=list(k),
        strides=list(s),
        pads=_pads(p, p),
        dilations=list(d),
        group=c,
        output_padding=[o - r for o, r in zip(layer.output_size, reached)],
    )


# --------------------------------------------------------------------------- rules: merges


@rule("onnx", "add")
def _add(g: Graph, layer: L.Add, xs: list[str], *shapes: Shape) -> str:
    return g.node("Add" if len(xs) == 2 else "Sum", xs)


@rule("onnx", "concat")
def _concat(g: Graph, layer: L.Concat, xs: list[str], *shapes: Shape) -> str:
    return g.node("Concat", xs, axis=1)


@rule("onnx", "mul")
def _mul(g: Graph, layer: L.Mul, xs: list[str], *shapes: Shape) -> str:
    y = xs[0]
    for x in xs[1:]:
        y = g.node("Mul", [y, x])
    return y
