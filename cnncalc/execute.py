"""Layers bound to kernels: one place knows how each layer type runs, forward and backward.

A :class:`Step` holds a row's forward call (weights drawn when the step is built, in row
order, from one generator) and its backward call (gradient w.r.t. the input). ``cnncalc
run`` uses the forwards; ``cnncalc rf`` both, and a *theoretical* mode where weights are
positive and max pooling passes the gradient to every element of its window.
numba is imported (through ``cnncalc.kernels``) only when a step is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnncalc import layers as L
from cnncalc.analysis import Analysis, ReceptiveField, Row
from cnncalc.errors import SpecError
from cnncalc.registry import lookup, rule
from cnncalc.spec import Shape


class _Forget(dict):
    """A memo that keeps nothing: forward-only runs free activations as they go."""

    def __setitem__(self, key, value) -> None:
        pass


@dataclass(frozen=True)
class Node:
    """A row as executed: its layer, wiring and shapes on the input actually used."""

    row: Row
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    field: ReceptiveField | None


def plan_from(a: Analysis) -> dict[int, Node]:
    return {
        r.index: Node(
            r,
            tuple(a.input_shape if i < 0 else a.rows[i].output_shape for i in r.inputs),
            r.output_shape,
            r.receptive_field,
        )
        for r in a.rows
    }


class Step:
    """Forward (effective mode only) and backward of one row; keeps what backward needs."""

    def __init__(
        self,
        forward: Callable[[list[np.ndarray]], np.ndarray] | None,
        backward: Callable[[np.ndarray], list[np.ndarray]],
    ) -> None:
        self.forward, self.backward = forward, backward


@dataclass(frozen=True)
class Context:
    """How steps are built: ``theoretical`` (positive weights, max pooling passing every
    element), the generator weights are drawn from, the dtype, the batch, and ``record``:
    whether forward calls keep what backward needs (``cnncalc run`` needs no backward)."""

    theoretical: bool
    rng: np.random.Generator
    dtype: Any
    batch: int = 1
    record: bool = True

    def memo(self) -> dict:
        return {} if self.record else _Forget()

    def weights(self, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        """PyTorch's default scale U(−1/√fan_in, 1/√fan_in); made positive (|w| + bound/10)
        for the theoretical field."""
        bound = 1.0 / math.sqrt(max(1, fan_in))
        # drawn in the target dtype and scaled in place: a float64 draw and a cast would
        # hold three times the weight's bytes (VGG's 138M weights: 1.6 GB more)
        dtype = np.float32 if np.dtype(self.dtype) == np.float32 else np.float64
        w = self.rng.random(shape, dtype=dtype)
        w *= 2 * bound
        w -= bound
        if self.theoretical:
            np.abs(w, out=w)
            w += bound / 10
        return w if w.dtype == self.dtype else w.astype(self.dtype)


def batched(shape: Shape, batch: int = 1) -> tuple[int, ...]:
    return (batch, *shape)


def _identity() -> Step:
    return Step(lambda xs: xs[0], lambda g: [g])


_ACTIVATIONS = {  # kind -> (forward name, backward name, parameter fields)
    "relu": ("relu", "relu_backward", ()),
    "relu6": ("relu6", "relu6_backward", ()),
    "selu": ("selu", "selu_backward", ()),
    "silu": ("silu", "silu_backward", ()),
    "mish": ("mish", "mish_backward", ()),
    "hardswish": ("hardswish", "hardswish_backward", ()),
    "hardsigmoid": ("hardsigmoid", "hardsigmoid_backward", ()),
    "sigmoid": ("sigmoid", "sigmoid_backward", ()),
    "tanh": ("tanh", "tanh_backward", ()),
    "leaky_relu": ("leaky_relu", "leaky_relu_backward", ("negative_slope",)),
    "elu": ("elu", "elu_backward", ("alpha",)),
    "celu": ("celu", "celu_backward", ("alpha",)),
    "gelu": ("gelu", "gelu_backward", ("approximate",)),
    "hardtanh": ("hardtanh", "hardtanh_backward", ("min_val", "max_val")),
    "softplus": ("softplus", "softplus_backward", ("beta", "threshold")),
}


@rule("step", *L.ELEMENTWISE)
def _(layer: L._Elementwise, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    kind = layer.kind
    if ctx.theoretical or kind.startswith(("dropout", "alpha_dropout")) or kind == "identity":
        return _identity()  # theoretical: an activation passes the gradient unchanged
    if kind in ("softmax", "log_softmax"):
        rank = len(node.in_shapes[0]) + 1
        dim = layer.dim if layer.dim is not None else (0 if rank in (0, 1, 3) else 1)
        fwd = getattr(K, kind)
        bwd = getattr(K, f"{kind}_backward")
        saved = ctx.memo()

        def forward(xs):
            y = saved["y"] = fwd(xs[0], dim)
            return y

        return Step(forward, lambda g: [bwd(g, saved.pop("y"), dim)])
    fname, bname, params = _ACTIVATIONS[kind]
    fwd, bwd = getattr(K, fname), getattr(K, bname)
    args = tuple(getattr(layer, p) for p in params)
    saved = ctx.memo()

    def forward(xs):
        saved["x"] = xs[0]
        return fwd(xs[0], *args)

    return Step(forward, lambda g: [bwd(g, saved.pop("x"), *args)])


@rule("step", "prelu")
def _(layer: L.PReLU, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    if ctx.theoretical:
        return _identity()
    w = np.full(layer.num_parameters, layer.init, dtype=ctx.dtype)
    saved = ctx.memo()

    def forward(xs):
        saved["x"] = xs[0]
        return K.prelu(xs[0], w)

    return Step(forward, lambda g: [K.prelu_backward(g, saved.pop("x"), w)[0]])


_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@rule("step", *L.CONV_ND)
def _(layer: L._ConvNd, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K
    from cnncalc.arithmetic import same_padding

    in_shape = batched(node.in_shapes[0], ctx.batch)
    c_in, g, k = in_shape[1], layer.groups, layer.kernel_size
    fan_in = (c_in // g) * math.prod(k)
    b = ctx.weights((layer.out_channels,), fan_in) if layer.bias else None
    table = getattr(layer, "connections", None)
    if table is not None:
        w = ctx.weights((layer.out_channels, max(len(r) for r in table), *k), fan_in)
        return Step(
            lambda xs: K.conv2d_table(xs[0], w, b, table, layer.stride, layer.padding),
            lambda gy: [
                K.conv2d_table_backward(
                    gy,
                    np.broadcast_to(np.zeros((), ctx.dtype), in_shape),
                    w,
                    table,
                    layer.stride,
                    layer.padding,
                    (True, False, False),
                )[0]
            ],
        )
    w = ctx.weights((layer.out_channels, c_in // g, *k), fan_in)
    fwd = {1: K.conv1d, 2: K.conv2d, 3: K.conv3d}[layer.dims]
    bwd = getattr(K, f"conv{layer.dims}d_backward", None)
    padding = layer.padding
    pad_spec = None
    if layer.padding_mode != "zeros" and padding != "valid":
        pairs = (
            [same_padding(ki, di) for ki, di in zip(k, layer.dilation)]
            if padding == "same"
            else [(p, p) for p in padding]
        )
        pad_spec = [v for lo_hi in reversed(pairs) for v in lo_hi]  # F.pad order
        padding = 0
    conv_in = (
        in_shape
        if pad_spec is None
        else in_shape[:2]
        + tuple(
            n + pad_spec[2 * (len(k) - 1 - i)] + pad_spec[2 * (len(k) - 1 - i) + 1]
            for i, n in enumerate(in_shape[2:])
        )
    )
    ghost = np.broadcast_to(np.zeros((), ctx.dtype), conv_in)  # shape only: no grad_weight

    def forward(xs):
        x = xs[0]
        if pad_spec is not None:
            x = K.pad(x, pad_spec, mode=layer.padding_mode)
        return fwd(x, w, b, layer.stride, padding, layer.dilation, g)

    def backward(gy):
        if bwd is None:
            raise SpecError(f"no backward kernel for {layer.kind}", where=node.row.where)
        gx = bwd(
            gy, ghost, w, layer.stride, padding, layer.dilation, g, output_mask=(True, False, False)
        )[0]
        if pad_spec is not None:
            gx = K.pad_backward(gx, pad_spec, layer.padding_mode, in_shape)
        return [gx]

    return Step(forward, backward)


@rule("step", *L.CONV_TRANSPOSE)
def _(layer: L._ConvTransposeNd, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    in_shape = batched(node.in_shapes[0], ctx.batch)
    c_in, g = in_shape[1], layer.groups
    fan_in = (layer.out_channels // g) * math.prod(layer.kernel_size)
    w = ctx.weights((c_in, layer.out_channels // g, *layer.kernel_size), fan_in)
    b = ctx.weights((layer.out_channels,), fan_in) if layer.bias else None
    fwd = getattr(K, f"conv_transpose{layer.dims}d")
    bwd = getattr(K, f"conv_transpose{layer.dims}d_backward")
    ghost = np.broadcast_to(np.zeros((), ctx.dtype), in_shape)
    args = (layer.stride, layer.padding, layer.output_padding, g, layer.dilation)
    return Step(
        lambda xs: fwd(xs[0], w, b, *args),
        lambda gy: [bwd(gy, ghost, w, *args, output_mask=(True, False, False))[0]],
    )


@rule("step", *L.MAX_POOLS)
def _(layer: L._MaxPoolNd, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    in_shape = batched(node.in_shapes[0], ctx.batch)
    geo = (layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    if ctx.theoretical:  # able to pass any element of its window
        back = getattr(K, f"sum_pool{layer.dims}d_backward")
        return Step(None, lambda gy: [back(gy, in_shape, *geo, layer.ceil_mode)])
    fwd = getattr(K, f"max_pool{layer.dims}d")
    back = getattr(K, f"max_pool{layer.dims}d_backward")
    saved = ctx.memo()

    def forward(xs):
        if not ctx.record:  # no backward will route: skip the indices
            return fwd(xs[0], *geo, layer.ceil_mode)
        y, saved["idx"] = fwd(xs[0], *geo, layer.ceil_mode, return_indices=True)
        return y

    return Step(forward, lambda gy: [back(gy, saved.pop("idx"), in_shape)])


@rule("step", *L.AVG_POOLS)
def _(layer: L._AvgPoolNd, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    in_shape = batched(node.in_shapes[0], ctx.batch)
    fwd = getattr(K, f"avg_pool{layer.dims}d")
    back = getattr(K, f"avg_pool{layer.dims}d_backward")
    args = (
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.ceil_mode,
        layer.count_include_pad,
        layer.divisor_override,
    )
    return Step(lambda xs: fwd(xs[0], *args), lambda gy: [back(gy, in_shape, *args)])


@rule("step", *L.ADAPTIVE_AVG, *L.ADAPTIVE_MAX)
def _(layer: L._AdaptiveNd, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    in_shape = batched(node.in_shapes[0], ctx.batch)
    size = layer.output_size if layer.dims > 1 else layer.output_size[0]
    nd = layer.dims
    is_max = layer.kind.startswith("adaptive_max")
    if is_max and not ctx.theoretical:
        fwd = getattr(K, f"adaptive_max_pool{nd}d")
        back = getattr(K, f"adaptive_max_pool{nd}d_backward")
        saved = ctx.memo()

        def forward(xs):
            if not ctx.record:
                return fwd(xs[0], size)
            y, saved["idx"] = fwd(xs[0], size, return_indices=True)
            return y

        return Step(forward, lambda gy: [back(gy, saved.pop("idx"), in_shape)])
    if is_max:
        back = getattr(K, f"adaptive_sum_pool{nd}d_backward")
        return Step(None, lambda gy: [back(gy, in_shape)])
    fwd = getattr(K, f"adaptive_avg_pool{nd}d")
    back = getattr(K, f"adaptive_avg_pool{nd}d_backward")
    return Step(lambda xs: fwd(xs[0], size), lambda gy: [back(gy, in_shape)])


@rule("step", "subsample2d")
def _(layer: L.Subsample2d, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    in_shape = batched(node.in_shapes[0], ctx.batch)
    fan_in = math.prod(layer.kernel_size)
    w = ctx.weights((in_shape[1],), fan_in)
    b = ctx.weights((in_shape[1],), fan_in)
    ghost = np.broadcast_to(np.zeros((), ctx.dtype), in_shape)
    return Step(
        lambda xs: K.subsample2d(xs[0], w, b, layer.kernel_size, layer.stride),
        lambda gy: [
            K.subsample2d_backward(
                gy, ghost, w, layer.kernel_size, layer.stride, (True, False, False)
            )[0]
        ],
    )


@rule("step", *L.ZERO_PADS)
def _(layer: L._ZeroPadNd, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    return Step(
        lambda xs: K.pad(xs[0], layer.padding), lambda gy: [K.pad_backward(gy, layer.padding)]
    )


@rule("step", "flatten")
def _(layer: L.Flatten, node: Node, ctx: Context) -> Step:
    in_shape, out_shape = batched(node.in_shapes[0], ctx.batch), batched(node.out_shape, ctx.batch)
    return Step(lambda xs: xs[0].reshape(out_shape), lambda gy: [gy.reshape(in_shape)])


@rule("step", "linear")
def _(layer: L.Linear, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    n = node.in_shapes[0][-1]
    w = ctx.weights((layer.out_features, n), n)
    b = ctx.weights((layer.out_features,), n) if layer.bias else None
    return Step(lambda xs: K.linear(xs[0], w, b), lambda gy: [np.matmul(gy, w)])


@rule("step", "rbf")
def _(layer: L.RBF, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    n = node.in_shapes[0][0]
    w = ctx.rng.choice(np.array([-1.0, 1.0], dtype=ctx.dtype), size=(layer.out_features, n))
    if ctx.theoretical:  # every centre reads every input: a positive dense map
        return Step(None, lambda gy: [np.matmul(gy, np.abs(w))])
    saved = ctx.memo()

    def forward(xs):
        saved["x"] = xs[0]
        return K.rbf(xs[0], w)

    return Step(forward, lambda gy: [K.rbf_backward(gy, saved.pop("x"), w)])


@rule("step", *L.BATCH_NORMS)
def _(layer: L._BatchNormNd, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    c = node.in_shapes[0][0]
    mean = ctx.rng.standard_normal(c) * 0.1
    var = ctx.rng.uniform(0.5, 1.5, c)
    weight = ctx.rng.uniform(0.5, 1.5, c) if layer.affine else None
    bias = ctx.rng.standard_normal(c) * 0.1 if layer.affine else None
    saved = ctx.memo()

    def forward(xs):
        saved["x"] = xs[0]
        return K.batch_norm(xs[0], mean, var, weight, bias, eps=layer.eps)

    def backward(gy):
        x = saved.pop("x", None)
        x = np.broadcast_to(np.zeros((), ctx.dtype), gy.shape) if x is None else x
        return [K.batch_norm_backward(gy, x, mean, var, weight, layer.eps, (True, False, False))[0]]

    return Step(forward, backward)


@rule("step", "add")
def _(layer: L.Add, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    n = len(node.in_shapes)
    return Step(lambda xs: K.add(*xs), lambda gy: K.add_backward(gy, n))


@rule("step", "concat")
def _(layer: L.Concat, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    sizes = [s[0] for s in node.in_shapes]
    return Step(lambda xs: K.cat(xs, dim=1), lambda gy: K.cat_backward(gy, sizes, dim=1))


@rule("step", "mul")
def _(layer: L.Mul, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    if ctx.theoretical:  # every branch passes the gradient on, as through an add
        ones = [np.ones(batched(s, ctx.batch), ctx.dtype) for s in node.in_shapes]
        return Step(None, lambda gy: K.mul_backward(gy, ones))
    saved = ctx.memo()

    def forward(xs):
        saved["xs"] = xs
        return K.mul(*xs)

    return Step(forward, lambda gy: K.mul_backward(gy, saved.pop("xs")))


@rule("step", "narrow")
def _(layer: L.Narrow, node: Node, ctx: Context) -> Step:
    in_shape = batched(node.in_shapes[0], ctx.batch)
    dim = layer.dim % len(in_shape)
    index = tuple(
        slice(layer.start, layer.start + layer.length) if d == dim else slice(None)
        for d in range(len(in_shape))
    )

    def backward(gy):
        gx = np.zeros(in_shape, dtype=gy.dtype)
        gx[index] = gy
        return [gx]

    return Step(lambda xs: np.ascontiguousarray(xs[0][index]), backward)


# --------------------------------------------------------------------------- today's CNNs


def _affine_weights(
    ctx: Context, shape: tuple[int, ...], weight: bool, bias: bool = True
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """γ ~ U(0.5, 1.5) and β ~ N(0, 0.1²), as the batch-norm step draws them."""
    w = ctx.rng.uniform(0.5, 1.5, shape).astype(ctx.dtype) if weight else None
    b = (ctx.rng.standard_normal(shape) * 0.1).astype(ctx.dtype) if weight and bias else None
    return w, b


def _spread(gy: np.ndarray, rows: tuple[int, ...]) -> np.ndarray:
    """Theoretical backward of a norm: the gradient plus, at every element of a normalised
    row, the row's total — positive wherever the statistics read (``rows``: the (M, K) view)."""
    g = gy.reshape(rows)
    return (g + g.sum(axis=1, keepdims=True)).reshape(gy.shape)


def _norm_step(ctx: Context, fwd, bwd, rows) -> Step:
    """A norm whose forward is ``fwd(x)``, backward ``bwd(gy, x)`` (w.r.t. the input) and whose
    statistics read the ``rows(shape)`` view of a batched tensor."""
    if ctx.theoretical:
        return Step(None, lambda gy: [_spread(gy, rows(gy.shape))])
    saved = ctx.memo()

    def forward(xs):
        saved["x"] = xs[0]
        return fwd(xs[0])

    return Step(forward, lambda gy: [bwd(gy, saved.pop("x"))])


@rule("step", "group_norm")
def _(layer: L.GroupNorm, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    c, g, eps = node.in_shapes[0][0], layer.num_groups, layer.eps
    w, b = _affine_weights(ctx, (c,), layer.affine)
    return _norm_step(
        ctx,
        lambda x: K.group_norm(x, g, w, b, eps),
        lambda gy, x: K.group_norm_backward(gy, x, g, w, eps, (True, False, False))[0],
        lambda s: (s[0] * g, -1),
    )


@rule("step", "layer_norm")
def _(layer: L.LayerNorm, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    ns, eps = tuple(layer.normalized_shape), layer.eps
    w, b = _affine_weights(ctx, ns, layer.elementwise_affine, layer.bias)
    k = math.prod(ns)
    return _norm_step(
        ctx,
        lambda x: K.layer_norm(x, ns, w, b, eps),
        lambda gy, x: K.layer_norm_backward(gy, x, ns, w, eps, (True, False, False))[0],
        lambda s: (-1, k),
    )


@rule("step", "layer_norm2d")
def _(layer: L.LayerNorm2d, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    c, eps = node.in_shapes[0][0], layer.eps
    w, b = _affine_weights(ctx, (c,), layer.elementwise_affine, layer.bias)
    if ctx.theoretical:  # channels at one position: spread over them, positions kept
        return Step(None, lambda gy: [gy + gy.sum(axis=1, keepdims=True)])
    return _norm_step(
        ctx,
        lambda x: K.layer_norm2d(x, w, b, eps),
        lambda gy, x: K.layer_norm2d_backward(gy, x, w, eps, (True, False, False))[0],
        None,
    )


@rule("step", *L.INSTANCE_NORMS)
def _(layer: L._InstanceNormNd, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    c, eps, stats = node.in_shapes[0][0], layer.eps, not layer.track_running_stats
    w, b = _affine_weights(ctx, (c,), layer.affine)
    mean = None if stats else ctx.rng.standard_normal(c) * 0.1
    var = None if stats else ctx.rng.uniform(0.5, 1.5, c)
    if ctx.theoretical and not stats:  # running statistics: element-wise
        return _identity()
    return _norm_step(
        ctx,
        lambda x: K.instance_norm(x, mean, var, w, b, stats, eps),
        lambda gy, x: K.instance_norm_backward(
            gy, x, mean, var, w, stats, eps, (True, False, False)
        )[0],
        lambda s: (s[0] * s[1], -1),
    )


@rule("step", "stochastic_depth")
def _(layer: L.StochasticDepth, node: Node, ctx: Context) -> Step:
    return _identity()  # inference


@rule("step", "layer_scale")
def _(layer: L.LayerScale, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    # γ at its initial value (ConvNeXt: 1e-6); 1 for the theoretical field, where a 1e-6
    # factor per block would underflow float32 long before the input
    value = 1.0 if ctx.theoretical else layer.init_value
    gamma = np.full(node.in_shapes[0][0], value, dtype=ctx.dtype)
    return Step(
        lambda xs: K.layer_scale(xs[0], gamma),
        lambda gy: [K.layer_scale_backward(gy, gy, gamma, (True, False))[0]],
    )


@rule("step", "channel_shuffle")
def _(layer: L.ChannelShuffle, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    g = layer.groups
    return Step(
        lambda xs: K.channel_shuffle(xs[0], g), lambda gy: [K.channel_shuffle_backward(gy, g)]
    )


@rule("step", "permute")
def _(layer: L.Permute, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    dims = layer.order
    return Step(lambda xs: K.permute(xs[0], dims), lambda gy: [K.permute_backward(gy, dims)])


@rule("step", "unflatten")
def _(layer: L.Unflatten, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    in_shape = batched(node.in_shapes[0], ctx.batch)
    return Step(
        lambda xs: K.unflatten(xs[0], layer.dim, layer.unflattened_size),
        lambda gy: [K.unflatten_backward(gy, in_shape)],
    )


@rule("step", "pixel_shuffle")
def _(layer: L.PixelShuffle, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    r = layer.upscale_factor
    return Step(lambda xs: K.pixel_shuffle(xs[0], r), lambda gy: [K.pixel_shuffle_backward(gy, r)])


@rule("step", "pixel_unshuffle")
def _(layer: L.PixelUnshuffle, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    r = layer.downscale_factor
    return Step(
        lambda xs: K.pixel_unshuffle(xs[0], r), lambda gy: [K.pixel_unshuffle_backward(gy, r)]
    )


@rule("step", *L.CONSTANT_PADS)
def _(layer: L._ConstantPadNd, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    return Step(
        lambda xs: K.pad(xs[0], layer.padding, value=layer.value),
        lambda gy: [K.pad_backward(gy, layer.padding)],
    )


@rule("step", *L.COPY_PADS)
def _(layer: L._CopyPadNd, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    in_shape = batched(node.in_shapes[0], ctx.batch)
    return Step(
        lambda xs: K.pad(xs[0], layer.padding, mode=layer.mode),
        lambda gy: [K.pad_backward(gy, layer.padding, layer.mode, in_shape)],
    )


@rule("step", "upsample")
def _(layer: L.Upsample, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    in_shape = batched(node.in_shapes[0], ctx.batch)
    if layer.size_of is not None:  # resolved by the analysis: the size of the named tensor
        args = {"size": node.out_shape[1:]}
    else:
        args = {
            "size": layer.size,
            "scale_factor": layer.scale_factor,
            "recompute_scale_factor": layer.recompute_scale_factor,
        }
    args.update(mode=layer.mode, align_corners=layer.align_corners)
    # theoretical field: bicubic's negative weights must not cancel a path
    absolute = ctx.theoretical and layer.mode == "bicubic"
    shape_only = [batched(s, ctx.batch) for s in node.in_shapes[1:]]

    def backward(gy):
        gx = K.interpolate_backward(gy, in_shape, absolute_weights=absolute, **args)
        return [gx] + [np.zeros(s, gy.dtype) for s in shape_only]

    return Step(lambda xs: K.interpolate(xs[0], **args), backward)


@rule("step", "unfold")
def _(layer: L.Unfold, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    in_shape = batched(node.in_shapes[0], ctx.batch)
    geo = (layer.kernel_size, layer.dilation, layer.padding, layer.stride)
    return Step(
        lambda xs: K.unfold(xs[0], *geo), lambda gy: [K.unfold_backward(gy, in_shape, *geo)]
    )


@rule("step", "fold")
def _(layer: L.Fold, node: Node, ctx: Context) -> Step:
    from cnncalc import kernels as K

    geo = (layer.kernel_size, layer.dilation, layer.padding, layer.stride)
    return Step(
        lambda xs: K.fold(xs[0], layer.output_size, *geo), lambda gy: [K.fold_backward(gy, *geo)]
    )


def steps_for(plan: dict[int, Node], rows: list[int], ctx: Context) -> dict[int, Step]:
    """One step per row, weights drawn in row order from ``ctx.rng``."""
    return {
        i: lookup("step", type(plan[i].row.layer))(plan[i].row.layer, plan[i], ctx) for i in rows
    }
