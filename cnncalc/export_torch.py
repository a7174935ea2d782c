"""A spec written as a standalone PyTorch file: ``cnncalc export SPEC --to pytorch``.

The generated file defines ``INPUT_SHAPE``, the network as an ``nn.Module`` and ``build()``;
``python model.py`` prints the parameter count and the output shape of a random input. Module
attribute paths are cnncalc's row names, so ``named_parameters()`` reads
``layer1.0.conv1.weight`` where the table reads ``layer1.0.conv1``; named blocks become
submodules (a small ``Block`` container, indexable like ``nn.Sequential``), and the forward is
the analysed graph in execution order: residual adds, concatenations, products and channel
splits are written there. A row without a name (top level) is named by its row index, as
``nn.Sequential`` names its children, so an unnamed chain exports like ``nn.Sequential(...)``.
Nothing here imports torch: the output is text.

The "torch" part of the registry: one rule per layer type and merge,
``rule(layer, *in_shapes) -> Torch`` (one input shape for a layer, one per branch for a
merge). A rule returns either a module constructor (``Torch(module="nn.Conv2d(3, 64, 7)")``:
the row becomes that module, called on its input) or a forward expression
(``Torch(expr="{x}.narrow(1, 0, 58)")``, or for merges ``Torch(expr="torch.cat([{xs}],
dim=1)")`` with the inputs joined by ``join``). :func:`call` writes a constructor with
PyTorch's argument order, leaving out arguments at their defaults. A type with no class in
``torch.nn`` names a helper class (``helpers``) whose source is in :data:`HELPERS`. A bare
parameter of the enclosing block (ConvNeXt's ``layer_scale``, as torchvision holds it) is
``Torch(param="nn.Parameter(...)", expr="{x} * {p}")``: ``{p}`` reads it in the forward.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cnncalc import layers as L
from cnncalc.analysis import Analysis, analyze, input_shapes
from cnncalc.errors import SpecError
from cnncalc.registry import lookup, rule
from cnncalc.spec import Shape, Spec


@dataclass(frozen=True)
class Torch:
    """How one layer or merge is written in PyTorch (see the module docstring)."""

    module: str | None = None  # constructor text: the row is an nn.Module attribute
    expr: str | None = None  # or a forward expression over {x} (one input) or {xs} (merges)
    join: str = ", "  # how a merge's inputs are joined into {xs}
    helpers: tuple[str, ...] = ()  # helper classes the constructor needs (see HELPERS)
    param: str | None = None  # or an nn.Parameter of the enclosing block, {p} in ``expr``


def torch_code(layer: L.Layer, *shapes: Shape) -> Torch:
    return lookup("torch", type(layer))(layer, *shapes)


# --------------------------------------------------------------------------- constructor text


def _lit(value: Any) -> str:
    """A Python literal as PyTorch takes it: equal tuple entries collapse to one int."""
    if isinstance(value, tuple):
        if value and all(v == value[0] for v in value) and not isinstance(value[0], float | None):
            return _lit(value[0])
        return "(" + ", ".join(_lit(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_lit(v) for v in value) + "]"
    return repr(value)


def call(
    cls: str, args: Iterable[Any] = (), defaults: dict[str, Any] | None = None, **kwargs: Any
) -> str:
    """``nn.Conv2d(3, 64, 7, stride=2)``: positional ``args``, then each keyword whose value
    differs from ``defaults`` (PyTorch's), in the order given."""
    defaults = defaults or {}
    parts = [_lit(a) for a in args]
    for key, value in kwargs.items():
        default = defaults.get(key, object())
        if _same(value, default):
            continue
        parts.append(f"{key}={_lit(value)}")
    return f"{cls}({', '.join(parts)})"


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, tuple) and not isinstance(default, tuple):
        return all(v == default for v in value)
    return value == default and type(value) is type(default)


def _module(text: str, *helpers: str) -> Torch:
    return Torch(module=text, helpers=helpers)


# --------------------------------------------------------------------------- rules: layers


@rule("torch", *L.CONV_ND)
def _conv(layer: L._ConvNd, shape: Shape) -> Torch:
    if getattr(layer, "connections", None) is not None:
        return _module(
            call(
                "PartialConv2d",
                (shape[0], layer.out_channels, layer.kernel_size),
                {"stride": 1, "bias": True},
                stride=layer.stride,
                bias=layer.bias,
                connections=layer.connections,
            ),
            "PartialConv2d",
        )
    return _module(
        call(
            f"nn.Conv{layer.dims}d",
            (shape[0], layer.out_channels, layer.kernel_size),
            {
                "stride": 1,
                "padding": 0,
                "dilation": 1,
                "groups": 1,
                "bias": True,
                "padding_mode": "zeros",
            },
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=layer.groups,
            bias=layer.bias,
            padding_mode=layer.padding_mode,
        )
    )


@rule("torch", *L.CONV_TRANSPOSE)
def _conv_transpose(layer: L._ConvTransposeNd, shape: Shape) -> Torch:
    return _module(
        call(
            f"nn.ConvTranspose{layer.dims}d",
            (shape[0], layer.out_channels, layer.kernel_size),
            {
                "stride": 1,
                "padding": 0,
                "output_padding": 0,
                "groups": 1,
                "bias": True,
                "dilation": 1,
            },
            stride=layer.stride,
            padding=layer.padding,
            output_padding=layer.output_padding,
            groups=layer.groups,
            bias=layer.bias,
            dilation=layer.dilation,
        )
    )


@rule("torch", *L.MAX_POOLS)
def _maxpool(layer: L._MaxPoolNd, shape: Shape) -> Torch:
    # return_indices is left out: the forward passes on the values, as cnncalc analyses them
    return _module(
        call(
            f"nn.MaxPool{layer.dims}d",
            (layer.kernel_size,),
            {"stride": layer.kernel_size, "padding": 0, "dilation": 1, "ceil_mode": False},
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            ceil_mode=layer.ceil_mode,
        )
    )


@rule("torch", *L.AVG_POOLS)
def _avgpool(layer: L._AvgPoolNd, shape: Shape) -> Torch:
    # nn.AvgPool1d has no divisor_override; AvgPool2d and AvgPool3d do
    extra = {"divisor_override": layer.divisor_override} if layer.dims > 1 else {}
    return _module(
        call(
            f"nn.AvgPool{layer.dims}d",
            (layer.kernel_size,),
            {
                "stride": layer.kernel_size,
                "padding": 0,
                "ceil_mode": False,
                "count_include_pad": True,
                "divisor_override": None,
            },
            stride=layer.stride,
            padding=layer.padding,
            ceil_mode=layer.ceil_mode,
            count_include_pad=layer.count_include_pad,
            **extra,
        )
    )


@rule("torch", *L.ADAPTIVE_AVG, *L.ADAPTIVE_MAX)
def _adaptive(layer: L._AdaptiveNd, shape: Shape) -> Torch:
    kind = "Avg" if layer.type in L.ADAPTIVE_AVG else "Max"
    return _module(call(f"nn.Adaptive{kind}Pool{layer.dims}d", (layer.output_size,)))


@rule("torch", "subsample2d")
def _subsample(layer: L.Subsample2d, shape: Shape) -> Torch:
    return _module(
        call(
            "Subsample2d",
            (shape[0], layer.kernel_size),
            {"stride": layer.kernel_size},
            stride=layer.stride,
        ),
        "Subsample2d",
    )


@rule("torch", *L.ZERO_PADS)
def _zeropad(layer: L._ZeroPadNd, shape: Shape) -> Torch:
    return _module(call(f"nn.ZeroPad{layer.dims}d", (layer.padding,)))


_UPSAMPLE_DEFAULTS = {
    "size": None,
    "scale_factor": None,
    "mode": "nearest",
    "align_corners": None,
    "recompute_scale_factor": None,
}


@rule("torch", "upsample")
def _upsample(layer: L.Upsample, shape: Shape, ref: Shape | None = None) -> Torch:
    if layer.size_of is not None:
        # torchvision's heads: F.interpolate(x, size=input.shape[-2:], mode=..., ...); the
        # second input ({1}) is the tensor whose size is taken
        options = call(
            "", (), _UPSAMPLE_DEFAULTS, mode=layer.mode, align_corners=layer.align_corners
        )[1:-1]
        return Torch(
            expr="nn.functional.interpolate({x}, size={1}.shape[2:]"
            + (f", {options}" if options else "")
            + ")"
        )
    return _module(
        call(
            "nn.Upsample",
            (),
            _UPSAMPLE_DEFAULTS,
            size=layer.size,
            scale_factor=layer.scale_factor,
            mode=layer.mode,
            align_corners=layer.align_corners,
            recompute_scale_factor=layer.recompute_scale_factor,
        )
    )


@rule("torch", "flatten")
def _flatten(layer: L.Flatten, shape: Shape) -> Torch:
    return _module(
        call(
            "nn.Flatten",
            (),
            {"start_dim": 1, "end_dim": -1},
            start_dim=layer.start_dim,
            end_dim=layer.end_dim,
        )
    )


@rule("torch", "narrow")
def _narrow(layer: L.Narrow, shape: Shape) -> Torch:
    return Torch(expr=f"{{x}}.narrow({layer.dim}, {layer.start}, {layer.length})")


@rule("torch", "linear")
def _linear(layer: L.Linear, shape: Shape) -> Torch:
    return _module(
        call("nn.Linear", (shape[-1], layer.out_features), {"bias": True}, bias=layer.bias)
    )


@rule("torch", "rbf")
def _rbf(layer: L.RBF, shape: Shape) -> Torch:
    return _module(call("RBF", (shape[0], layer.out_features)), "RBF")


@rule("torch", *L.BATCH_NORMS)
def _batchnorm(layer: L._BatchNormNd, shape: Shape) -> Torch:
    return _module(
        call(
            f"nn.{type(layer).__name__}",
            (shape[0],),
            {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True},
            eps=layer.eps,
            momentum=layer.momentum,
            affine=layer.affine,
            track_running_stats=layer.track_running_stats,
        )
    )


_PLAIN = {
    "identity": "Identity",
    "relu": "ReLU",
    "relu6": "ReLU6",
    "selu": "SELU",
    "silu": "SiLU",
    "mish": "Mish",
    "hardswish": "Hardswish",
    "hardsigmoid": "Hardsigmoid",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
}


@rule("torch", *_PLAIN)
def _plain(layer: L.Layer, shape: Shape) -> Torch:
    # inplace is left out: the forward may read a value again after an activation
    return _module(f"nn.{_PLAIN[layer.type]}()")


_DROPOUT = {
    "dropout": "Dropout",
    "dropout1d": "Dropout1d",
    "dropout2d": "Dropout2d",
    "dropout3d": "Dropout3d",
    "alpha_dropout": "AlphaDropout",
}


@rule("torch", *L.DROPOUTS)
def _dropout(layer: L._DropoutBase, shape: Shape) -> Torch:
    return _module(call(f"nn.{_DROPOUT[layer.type]}", (), {"p": 0.5}, p=layer.p))


@rule("torch", "leaky_relu")
def _leaky(layer: L.LeakyReLU, shape: Shape) -> Torch:
    return _module(
        call("nn.LeakyReLU", (), {"negative_slope": 0.01}, negative_slope=layer.negative_slope)
    )


@rule("torch", "prelu")
def _prelu(layer: L.PReLU, shape: Shape) -> Torch:
    return _module(
        call(
            "nn.PReLU",
            (),
            {"num_parameters": 1, "init": 0.25},
            num_parameters=layer.num_parameters,
            init=layer.init,
        )
    )


@rule("torch", "elu", "celu")
def _elu(layer: L.ELU | L.CELU, shape: Shape) -> Torch:
    return _module(call(f"nn.{type(layer).__name__}", (), {"alpha": 1.0}, alpha=layer.alpha))


@rule("torch", "gelu")
def _gelu(layer: L.GELU, shape: Shape) -> Torch:
    return _module(call("nn.GELU", (), {"approximate": "none"}, approximate=layer.approximate))


@rule("torch", "hardtanh")
def _hardtanh(layer: L.Hardtanh, shape: Shape) -> Torch:
    return _module(
        call(
            "nn.Hardtanh",
            (),
            {"min_val": -1.0, "max_val": 1.0},
            min_val=layer.min_val,
            max_val=layer.max_val,
        )
    )


@rule("torch", "softplus")
def _softplus(layer: L.Softplus, shape: Shape) -> Torch:
    return _module(
        call(
            "nn.Softplus",
            (),
            {"beta": 1.0, "threshold": 20.0},
            beta=layer.beta,
            threshold=layer.threshold,
        )
    )


@rule("torch", *L.SOFTMAXES)
def _softmax(layer: L.Softmax | L.LogSoftmax, shape: Shape) -> Torch:
    # PyTorch's legacy implicit dim (0 for 0-, 1- and 3-d inputs, else 1), written out
    dim = layer.dim if layer.dim is not None else (0 if len(shape) + 1 in (0, 1, 3) else 1)
    return _module(call(f"nn.{type(layer).__name__}", (), dim=dim))


# --------------------------------------------------------------------------- rules: today's CNNs
# torchvision's own modules (LayerNorm2d, Permute, StochasticDepth) are helper classes of the
# file, so it imports torch only; attribute names keep torchvision's parameter names.


@rule("torch", "group_norm")
def _group_norm(layer: L.GroupNorm, shape: Shape) -> Torch:
    return _module(
        call(
            "nn.GroupNorm",
            (layer.num_groups, shape[0]),
            {"eps": 1e-5, "affine": True},
            eps=layer.eps,
            affine=layer.affine,
        )
    )


@rule("torch", "layer_norm")
def _layer_norm(layer: L.LayerNorm, shape: Shape) -> Torch:
    ns = layer.normalized_shape
    return _module(
        call(
            "nn.LayerNorm",
            (ns[0] if len(ns) == 1 else list(ns),),
            {"eps": 1e-5, "elementwise_affine": True, "bias": True},
            eps=layer.eps,
            elementwise_affine=layer.elementwise_affine,
            bias=layer.bias,
        )
    )


@rule("torch", "layer_norm2d")
def _layer_norm2d(layer: L.LayerNorm2d, shape: Shape) -> Torch:
    return _module(
        call(
            "LayerNorm2d",
            (shape[0],),
            {"eps": 1e-5, "elementwise_affine": True, "bias": True},
            eps=layer.eps,
            elementwise_affine=layer.elementwise_affine,
            bias=layer.bias,
        ),
        "LayerNorm2d",
    )


@rule("torch", *L.INSTANCE_NORMS)
def _instance_norm(layer: L._InstanceNormNd, shape: Shape) -> Torch:
    return _module(
        call(
            f"nn.InstanceNorm{layer.dims}d",
            (shape[0],),
            {"eps": 1e-5, "momentum": 0.1, "affine": False, "track_running_stats": False},
            eps=layer.eps,
            momentum=layer.momentum,
            affine=layer.affine,
            track_running_stats=layer.track_running_stats,
        )
    )


@rule("torch", "stochastic_depth")
def _stochastic_depth(layer: L.StochasticDepth, shape: Shape) -> Torch:
    return _module(call("StochasticDepth", (layer.p, layer.mode)), "StochasticDepth")


@rule("torch", "layer_scale")
def _layer_scale(layer: L.LayerScale, shape: Shape) -> Torch:
    # torchvision's CNBlock: self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * value)
    size = (shape[0],) + (1,) * (len(shape) - 1)
    return Torch(
        param=f"nn.Parameter(torch.full({size!r}, {layer.init_value!r}))", expr="{p} * {x}"
    )


@rule("torch", "channel_shuffle")
def _channel_shuffle(layer: L.ChannelShuffle, shape: Shape) -> Torch:
    return _module(f"nn.ChannelShuffle({layer.groups})")


@rule("torch", "permute")
def _permute(layer: L.Permute, shape: Shape) -> Torch:
    return _module(f"Permute({list(layer.order)!r})", "Permute")


@rule("torch", "unflatten")
def _unflatten(layer: L.Unflatten, shape: Shape) -> Torch:
    return _module(f"nn.Unflatten({layer.dim}, {tuple(layer.unflattened_size)!r})")


@rule("torch", "pixel_shuffle")
def _pixel_shuffle(layer: L.PixelShuffle, shape: Shape) -> Torch:
    return _module(f"nn.PixelShuffle({layer.upscale_factor})")


@rule("torch", "pixel_unshuffle")
def _pixel_unshuffle(layer: L.PixelUnshuffle, shape: Shape) -> Torch:
    return _module(f"nn.PixelUnshuffle({layer.downscale_factor})")


# --------------------------------------------------------------------------- rules: padding, fold


@rule("torch", *L.CONSTANT_PADS)
def _constant_pad(layer: L._ConstantPadNd, shape: Shape) -> Torch:
    return _module(call(f"nn.ConstantPad{layer.dims}d", (layer.padding, layer.value)))


_COPY_PAD_CLASSES = {
    "reflect": "ReflectionPad",
    "replicate": "ReplicationPad",
    "circular": "CircularPad",
}


@rule("torch", *L.COPY_PADS)
def _copy_pad(layer: L._CopyPadNd, shape: Shape) -> Torch:
    return _module(call(f"nn.{_COPY_PAD_CLASSES[layer.mode]}{layer.dims}d", (layer.padding,)))


_SLIDING_DEFAULTS = {"dilation": 1, "padding": 0, "stride": 1}


@rule("torch", "unfold")
def _unfold(layer: L.Unfold, shape: Shape) -> Torch:
    return _module(
        call(
            "nn.Unfold",
            (layer.kernel_size,),
            _SLIDING_DEFAULTS,
            dilation=layer.dilation,
            padding=layer.padding,
            stride=layer.stride,
        )
    )


@rule("torch", "fold")
def _fold(layer: L.Fold, shape: Shape) -> Torch:
    return _module(
        call(
            "nn.Fold",
            (layer.output_size, layer.kernel_size),
            _SLIDING_DEFAULTS,
            dilation=layer.dilation,
            padding=layer.padding,
            stride=layer.stride,
        )
    )


# --------------------------------------------------------------------------- rules: merges


@rule("torch", "add")
def _add(layer: L.Add, *shapes: Shape) -> Torch:
    return Torch(expr="{xs}", join=" + ")


@rule("torch", "concat")
def _concat(layer: L.Concat, *shapes: Shape) -> Torch:
    return Torch(expr="torch.cat([{xs}], dim=1)")


@rule("torch", "mul")
def _mul(layer: L.Mul, *shapes: Shape) -> Torch:
    return Torch(expr="{xs}", join=" * ")


# --------------------------------------------------------------------------- helper classes

HELPERS = {
    "Subsample2d": '''
class Subsample2d(nn.Module):
    """LeNet-5 (1998) sub-sampling: the window sum times one trainable coefficient, plus a
    bias, per map."""

    def __init__(self, channels: int, kernel_size, stride=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride or kernel_size
        self.weight = nn.Parameter(torch.randn(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        k = nn.modules.utils._pair(self.kernel_size)
        s = nn.functional.avg_pool2d(x, k, self.stride) * (k[0] * k[1])
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
''',
    "RBF": '''
class RBF(nn.Module):
    """LeNet-5 (1998) output layer: Euclidean RBF units with fixed (non-trainable) centres."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features), requires_grad=False)

    def forward(self, x):
        return ((x.unsqueeze(1) - self.weight) ** 2).sum(-1)
''',
    "PartialConv2d": '''
class PartialConv2d(nn.Module):
    """LeNet-5 (1998) C3: output map j reads only the input maps connections[j]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 bias=True, connections=()):
        super().__init__()
        self.k = nn.modules.utils._pair(kernel_size)
        self.stride, self.in_channels, self.connections = stride, in_channels, connections
        fan = sum(len(row) for row in connections)
        self.weight = nn.Parameter(torch.randn(fan * self.k[0] * self.k[1]) * 0.1)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x):
        w = x.new_zeros(len(self.connections), self.in_channels, *self.k)
        kernels = self.weight.view(-1, *self.k)
        i = 0
        for j, row in enumerate(self.connections):
            for c in row:
                w[j, c] = kernels[i]
                i += 1
        return nn.functional.conv2d(x, w, self.bias, self.stride)
''',
    "LayerNorm2d": '''
class LayerNorm2d(nn.LayerNorm):
    """torchvision.models.convnext.LayerNorm2d: LayerNorm over the channels at each position."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)
''',
    "Permute": '''
class Permute(nn.Module):
    """torchvision.ops.misc.Permute: x.permute(dims)."""

    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return torch.permute(x, self.dims)
''',
    "StochasticDepth": '''
class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: in training, zeroes the input per sample ("row") or
    whole ("batch") with probability p and scales survivors by 1/(1-p); the identity in eval."""

    def __init__(self, p: float, mode: str):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        return x * (noise / (1.0 - self.p) if self.p < 1.0 else noise)
''',
}

_BLOCK = '''
class Block(nn.Module):
    """A named group of layers (a block of the spec). The network's forward calls its layers;
    ``block[0]`` and ``block.conv1`` reach them as in nn.Sequential and torchvision."""

    def __init__(self, layers: dict):
        super().__init__()
        for name, layer in layers.items():
            if isinstance(layer, nn.Parameter):  # a block's own parameter (layer_scale)
                self.register_parameter(name, layer)
            else:
                self.add_module(name, layer)

    def __getitem__(self, key):
        return getattr(self, str(key))
'''

# nn.Module attributes a submodule may not shadow (add_module refuses them)
_RESERVED = {
    "add_module",
    "apply",
    "bfloat16",
    "buffers",
    "children",
    "compile",
    "cpu",
    "cuda",
    "double",
    "dump_patches",
    "eval",
    "extra_repr",
    "float",
    "forward",
    "get_buffer",
    "get_parameter",
    "get_submodule",
    "half",
    "ipu",
    "load_state_dict",
    "modules",
    "mtia",
    "named_buffers",
    "named_children",
    "named_modules",
    "named_parameters",
    "parameters",
    "register_buffer",
    "register_module",
    "register_parameter",
    "requires_grad_",
    "set_submodule",
    "share_memory",
    "state_dict",
    "to",
    "to_empty",
    "train",
    "training",
    "type",
    "xpu",
    "zero_grad",
}


# --------------------------------------------------------------------------- names


def module_paths(a: Analysis) -> list[str]:
    """Every row's attribute path in the exported module: its row name, or its row index for
    an unnamed row. Parameter-free rows with the same name and the same module share it (one
    ``nn.ReLU`` applied twice, as torchvision does); other clashes get ``_1``, ``_2``."""
    paths: list[str] = []
    seen: dict[str, str] = {}  # path -> constructor text
    taken: set[str] = set()
    for row in a.rows:
        base = ".".join(_part(p) for p in (row.name or str(row.index)).split("."))
        code = torch_code(row.layer, *input_shapes(a, row))
        text = code.module or code.param or f"expr:{row.index}"
        stateless = row.params + row.buffers == 0
        path = base
        if path in seen and not (stateless and seen[path] == text):
            n = 1
            while f"{base}_{n}" in taken:
                n += 1
            path = f"{base}_{n}"
        seen.setdefault(path, text)
        taken.add(path)
        paths.append(path)
    return paths


def _part(name: str) -> str:
    name = name or "_"
    return name + "_" if name in _RESERVED else name


def _access(path: str) -> str:
    """``self.layer1[0].conv1`` for ``layer1.0.conv1``."""
    out = "self"
    for part in path.split("."):
        if part.isidentifier() and not keyword.iskeyword(part):
            out += f".{part}"
        elif part.isdigit():
            out += f"[{int(part)}]"
        else:
            out += f"[{part!r}]"
    return out


# --------------------------------------------------------------------------- the file


def export_pytorch(spec: Spec, input_shape: Shape | None = None, origin: str = "") -> str:
    """The source of a standalone PyTorch file for ``spec`` (see the module docstring)."""
    from cnncalc import __version__

    a = analyze(spec, input_shape)
    paths = module_paths(a)
    tree: dict[str, Any] = {}
    leaves: set[str] = set()
    helpers: list[str] = []
    calls: list[str | None] = []  # per row: the module path it calls, or None (an expression)
    for row, path in zip(a.rows, paths):
        code = torch_code(row.layer, *input_shapes(a, row))
        helpers += [h for h in code.helpers if h not in helpers]
        if code.module is None and code.param is None:
            calls.append(None)
            continue
        calls.append(path)
        if path in leaves:
            continue
        node = tree
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SpecError(
                    f"'{path}' names a layer inside the layer '{part}'; rename one of them",
                    where=row.where,
                )
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise SpecError(
                f"'{path}' names both a layer and a block; rename one of them", where=row.where
            )
        node[parts[-1]] = code.module or code.param
        leaves.add(path)
    cls = _class_name(a.name)
    lines = [
        f'"""{a.name or "network"} — written by cnncalc {__version__}'
        + (f" from {origin}" if origin else "")
        + ".",
        "",
        "build() returns the network; its named_parameters() are the rows of `cnncalc shapes`",
        "(`layer1.0.conv1.weight` is row `layer1.0.conv1`). `python` this file to print the",
        'parameter count and the output shape of a random input."""',
        "",
        "import torch",
        "from torch import nn",
        "",
        f"INPUT_SHAPE = {tuple(a.input_shape)!r}  # without the batch dimension",
        f"OUTPUT_SHAPE = {tuple(a.totals.output_shape)!r}",
        f"PARAMETERS = {a.totals.params}  # cnncalc's count, for the check below",
        _BLOCK,
    ]
    for name in helpers:
        lines.append(HELPERS[name])
    lines += [
        "",
        f"class {cls}(Block):",
        f'    """{a.name or "The network"}, as specified."""',
        "",
        "    def __init__(self):",
        "        super().__init__({",
    ]
    lines += _tree_lines(tree, 3)
    lines += ["        })", "", "    def forward(self, x):"]
    lines += ["        " + line for line in _forward(a, calls)]
    lines += [
        "",
        "",
        "def build() -> nn.Module:",
        f"    return {cls}()",
        "",
        "",
        'if __name__ == "__main__":',
        "    model = build().eval()",
        "    with torch.no_grad():",
        "        y = model(torch.randn(1, *INPUT_SHAPE))",
        "    y = y[0] if isinstance(y, tuple) else y",
        "    count = sum(p.numel() for p in model.parameters())",
        '    print(f"params {count:,}")',
        '    print("output", "x".join(map(str, y.shape[1:])))',
        "    assert count == PARAMETERS and tuple(y.shape[1:]) == OUTPUT_SHAPE",
        "",
    ]
    return "\n".join(lines)


def _class_name(name: str | None) -> str:
    words = re.findall(r"[A-Za-z0-9]+", name or "")
    text = "".join(w[:1].upper() + w[1:] for w in words)
    if not text or not text[0].isalpha():
        text = "Net" + text
    return text if text != "Block" else "Net"


def _tree_lines(tree: dict[str, Any], depth: int) -> list[str]:
    pad = "    " * depth
    out = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out.append(f"{pad}{key!r}: Block({{")
            out += _tree_lines(value, depth + 1)
            out.append(f"{pad}}}),")
        else:
            out.append(f"{pad}{key!r}: {value},")
    return out


def _forward(a: Analysis, calls: list[str | None]) -> list[str]:
    """The rows in execution order; a value read only by the next row stays in ``x``."""
    readers: dict[int, list[int]] = {}
    for row in a.rows:
        for i in row.inputs:
            readers.setdefault(i, []).append(row.index)
    main = a.output_row
    kept = {o.row for o in a.side_outputs} | {main}

    def var(i: int) -> str:
        if i < 0:
            return "x" if readers.get(-1) == [0] else "x_in"
        if readers.get(i) == [i + 1] and i not in kept:
            return "x"
        return f"x{i}"

    lines = []
    if readers.get(-1, [0]) != [0]:
        lines.append("x_in = x")
    for row, path in zip(a.rows, calls):
        args = [var(i) for i in row.inputs]
        code = torch_code(row.layer, *input_shapes(a, row))
        if code.param is not None:
            value = code.expr.format(x=args[0], p=_access(path))
        elif path is not None:
            value = f"{_access(path)}({args[0]})"
        else:
            # {x}: the first input, {xs}: all of them joined, {1}: the second (size_of)
            value = code.expr.format(*args, x=args[0], xs=code.join.join(args))
        target = var(row.index)
        comment = f"  # {row.name}" if path is None and row.name else ""
        lines.append(f"{target} = {value}{comment}")
    outs = [var(main)] + [var(o.row) for o in a.side_outputs]
    lines.append(f"return {', '.join(outs)}")
    return lines


__all__ = ["HELPERS", "Torch", "call", "export_pytorch", "module_paths", "torch_code"]
