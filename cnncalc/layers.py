"""What a user may write for each layer type: one pydantic model per PyTorch layer class.

Field names and defaults are PyTorch's constructor arguments, so a spec can be copied from
model code. ``int | tuple`` fields are turned into a tuple of the layer's dimensionality once,
here; the arithmetic never branches on input types. ``positional`` lists the order of
positional arguments in the inline syntax: exactly PyTorch's constructor order, the input size
(``in_channels``, ``in_features``, ``num_features``) included.

Every type is known by its name in a spec (``conv2d``): :data:`LAYER_CLASSES` lists them all,
and the registry (``registry.py``) files each type's rules under that name. A model *class* is
built on first use — ``model("conv2d")`` or ``layers.Conv2d`` — because pydantic takes a
moment per class (~0.3 ms; all of them cost every start-up ~30 ms): ``cnncalc shapes`` builds
only the types its spec uses. So each class statement sits in a small function, registered
with ``@_model(type name)``, and a shared base is a cached function (``_conv_nd()``).
"""

# (no __future__ annotations: pydantic builds models faster from real annotations)

import functools
import threading
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Layer(BaseModel):
    """Base of every layer model."""

    # defer_build: a validator is built on first use, so `cnncalc shapes` pays only for the
    # layer types a spec actually uses.
    # strict: an int field refuses True, "6" and 6.0 (YAML's `yes`, a quoted number) instead
    # of converting them; a float field still takes an int.
    model_config = ConfigDict(extra="forbid", defer_build=True, populate_by_name=True, strict=True)

    name: str | None = Field(default=None, description="Optional label shown in reports.")

    dims: ClassVar[int] = 0  # spatial dimensionality the layer expects (0: any)
    positional: ClassVar[tuple[str, ...]] = ()
    tuple_fields: ClassVar[tuple[str, ...]] = ()  # int | tuple fields expanded to `dims`
    data_inputs: ClassVar[int | None] = None  # inputs whose values it reads (None: all)

    @property
    def kind(self) -> str:
        return self.type  # type: ignore[attr-defined]

    @model_validator(mode="after")
    def _expand_tuples(self) -> "Layer":
        for field in self.tuple_fields:
            value = getattr(self, field)
            if value is None or isinstance(value, str):
                continue
            object.__setattr__(self, field, _expand(value, self.dims, field))
        return self


def _expand(value: int | tuple[int, ...], dims: int, field: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dims
    if len(value) == 1:
        return tuple(value) * dims
    if len(value) != dims:
        raise ValueError(f"{field} needs 1 or {dims} values, got {len(value)}")
    return tuple(value)


Size = int | tuple[int, ...]


def _check_min(value: Any, minimum: int, what: str) -> Any:
    values = (value,) if isinstance(value, int) else value
    if isinstance(values, tuple) and any(v < minimum for v in values):
        raise ValueError(f"{what} must be >= {minimum}")
    return value


# --------------------------------------------------------------------------- the catalogue

# Every layer type: its name in a spec -> its model class (the order of `cnncalc types`).
LAYER_CLASSES: dict[str, str] = {
    "conv1d": "Conv1d",
    "conv2d": "Conv2d",
    "conv3d": "Conv3d",
    "conv_transpose1d": "ConvTranspose1d",
    "conv_transpose2d": "ConvTranspose2d",
    "conv_transpose3d": "ConvTranspose3d",
    "maxpool1d": "MaxPool1d",
    "maxpool2d": "MaxPool2d",
    "maxpool3d": "MaxPool3d",
    "avgpool1d": "AvgPool1d",
    "avgpool2d": "AvgPool2d",
    "avgpool3d": "AvgPool3d",
    "adaptive_avgpool1d": "AdaptiveAvgPool1d",
    "adaptive_avgpool2d": "AdaptiveAvgPool2d",
    "adaptive_avgpool3d": "AdaptiveAvgPool3d",
    "adaptive_maxpool1d": "AdaptiveMaxPool1d",
    "adaptive_maxpool2d": "AdaptiveMaxPool2d",
    "adaptive_maxpool3d": "AdaptiveMaxPool3d",
    "subsample2d": "Subsample2d",
    "zeropad1d": "ZeroPad1d",
    "zeropad2d": "ZeroPad2d",
    "zeropad3d": "ZeroPad3d",
    "constant_pad1d": "ConstantPad1d",
    "constant_pad2d": "ConstantPad2d",
    "constant_pad3d": "ConstantPad3d",
    "reflection_pad1d": "ReflectionPad1d",
    "reflection_pad2d": "ReflectionPad2d",
    "reflection_pad3d": "ReflectionPad3d",
    "replication_pad1d": "ReplicationPad1d",
    "replication_pad2d": "ReplicationPad2d",
    "replication_pad3d": "ReplicationPad3d",
    "circular_pad1d": "CircularPad1d",
    "circular_pad2d": "CircularPad2d",
    "circular_pad3d": "CircularPad3d",
    "upsample": "Upsample",
    "unfold": "Unfold",
    "fold": "Fold",
    "flatten": "Flatten",
    "narrow": "Narrow",
    "linear": "Linear",
    "rbf": "RBF",
    "batchnorm1d": "BatchNorm1d",
    "batchnorm2d": "BatchNorm2d",
    "dropout": "Dropout",
    "dropout1d": "Dropout1d",
    "dropout2d": "Dropout2d",
    "dropout3d": "Dropout3d",
    "alpha_dropout": "AlphaDropout",
    "identity": "Identity",
    "relu": "ReLU",
    "relu6": "ReLU6",
    "leaky_relu": "LeakyReLU",
    "prelu": "PReLU",
    "elu": "ELU",
    "selu": "SELU",
    "celu": "CELU",
    "gelu": "GELU",
    "silu": "SiLU",
    "mish": "Mish",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "hardtanh": "Hardtanh",
    "hardswish": "Hardswish",
    "hardsigmoid": "Hardsigmoid",
    "softplus": "Softplus",
    "softmax": "Softmax",
    "log_softmax": "LogSoftmax",
    "group_norm": "GroupNorm",
    "layer_norm": "LayerNorm",
    "layer_norm2d": "LayerNorm2d",
    "instance_norm1d": "InstanceNorm1d",
    "instance_norm2d": "InstanceNorm2d",
    "instance_norm3d": "InstanceNorm3d",
    "batchnorm3d": "BatchNorm3d",
    "stochastic_depth": "StochasticDepth",
    "layer_scale": "LayerScale",
    "channel_shuffle": "ChannelShuffle",
    "permute": "Permute",
    "unflatten": "Unflatten",
    "pixel_shuffle": "PixelShuffle",
    "pixel_unshuffle": "PixelUnshuffle",
}

# The merges (not layers: written as ``{add: [...]}`` etc.), registered like layer types.
MERGE_CLASSES: dict[str, str] = {
    "add": "Add",
    "concat": "Concat",
    "mul": "Mul",
}

_BUILDERS: dict[str, Callable[[], type[Layer]]] = {}  # type name -> function defining its model


def _model(kind: str) -> Callable[[Callable[[], type[Layer]]], Callable[[], type[Layer]]]:
    """Register the decorated function as the definition of ``kind``'s model class."""
    if kind not in LAYER_CLASSES and kind not in MERGE_CLASSES:
        raise LookupError(f"'{kind}' is not in LAYER_CLASSES or MERGE_CLASSES")

    def register(build: Callable[[], type[Layer]]) -> Callable[[], type[Layer]]:
        if kind in _BUILDERS:
            raise LookupError(f"'{kind}' has two models")
        _BUILDERS[kind] = build
        return build

    return register


def model(kind: str) -> type[Layer]:
    """The model class of layer type (or merge) ``kind``, its canonical name; built on first
    use, then the same class object every time."""
    cls = _BUILT.get(kind)
    if cls is None:
        with _BUILDING:  # one class per type, whichever thread asks first
            cls = _BUILT.get(kind)
            if cls is None:
                cls = _BUILDERS[kind]()
                cls.__qualname__ = cls.__name__  # found as cnncalc.layers.<name> (pickle)
                globals()[cls.__name__] = cls  # later `layers.Conv2d` skips __getattr__
                _BUILT[kind] = cls
    return cls


_BUILT: dict[str, type[Layer]] = {}
_BUILDING = threading.RLock()  # a model's base classes are built inside its build


# --------------------------------------------------------------------------- convolutions


@functools.cache
def _conv_base() -> type[Layer]:
    class _ConvBase(Layer):
        in_channels: int | None = Field(default=None, ge=1, description="Checked when given.")
        out_channels: int = Field(ge=1)
        kernel_size: Size
        stride: Size = 1
        dilation: Size = 1
        groups: int = Field(default=1, ge=1)
        bias: bool = True
        padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros"

        @field_validator("kernel_size", "stride", "dilation")
        @classmethod
        def _positive(cls, v: Any) -> Any:
            return _check_min(v, 1, "every entry")

    return _ConvBase


@functools.cache
def _conv_nd() -> type[Layer]:
    class _ConvNd(_conv_base()):
        padding: Size | Literal["same", "valid"] = 0

        positional: ClassVar = (
            "in_channels",
            "out_channels",
            "kernel_size",
            "stride",
            "padding",
            "dilation",
            "groups",
            "bias",
            "padding_mode",
        )
        tuple_fields: ClassVar = ("kernel_size", "stride", "padding", "dilation")

        @field_validator("padding")
        @classmethod
        def _padding(cls, v: Any) -> Any:
            return v if isinstance(v, str) else _check_min(v, 0, "every entry")

        # 'same' with a stride is refused by PyTorch but allowed by TensorFlow: the arithmetic
        # decides, under the chosen --semantics.

    return _ConvNd


@_model("conv1d")
def _conv1d() -> type[Layer]:
    class Conv1d(_conv_nd()):
        type: Literal["conv1d"] = "conv1d"
        dims: ClassVar = 1

    return Conv1d


@_model("conv2d")
def _conv2d() -> type[Layer]:
    class Conv2d(_conv_nd()):
        type: Literal["conv2d"] = "conv2d"
        dims: ClassVar = 2
        connections: list[list[int]] | None = Field(
            default=None,
            description=(
                "cnncalc extension (LeNet-5, 1998): for each output map, the input maps it reads. "
                "Replaces full connectivity; groups must be 1."
            ),
        )

        @model_validator(mode="after")
        def _connections(self) -> "Conv2d":
            table = self.connections
            if table is None:
                return self
            if len(table) != self.out_channels:
                raise ValueError(
                    f"connections has {len(table)} rows but out_channels is {self.out_channels}"
                )
            if self.groups != 1:
                raise ValueError("connections and groups cannot be combined")
            for row in table:
                if not row or len(set(row)) != len(row) or min(row) < 0:
                    raise ValueError(f"connection row {row} must list distinct input maps >= 0")
            return self

    return Conv2d


@_model("conv3d")
def _conv3d() -> type[Layer]:
    class Conv3d(_conv_nd()):
        type: Literal["conv3d"] = "conv3d"
        dims: ClassVar = 3

    return Conv3d


@functools.cache
def _conv_transpose_nd() -> type[Layer]:
    class _ConvTransposeNd(_conv_base()):
        padding: Size = 0
        output_padding: Size = 0

        positional: ClassVar = (
            "in_channels",
            "out_channels",
            "kernel_size",
            "stride",
            "padding",
            "output_padding",
            "groups",
            "bias",
            "dilation",
            "padding_mode",
        )
        tuple_fields: ClassVar = ("kernel_size", "stride", "padding", "output_padding", "dilation")

        @field_validator("padding", "output_padding")
        @classmethod
        def _non_negative(cls, v: Any) -> Any:
            return _check_min(v, 0, "every entry")

        @model_validator(mode="after")
        def _output_padding_bound(self) -> "_ConvTransposeNd":
            # PyTorch: "output padding must be smaller than either stride or dilation"
            for op, s, d in zip(self.output_padding, self.stride, self.dilation):  # type: ignore[arg-type]
                if op >= max(s, d):
                    raise ValueError(
                        f"output_padding {op} must be smaller than either stride {s} "
                        f"or dilation {d}"
                    )
            if self.padding_mode != "zeros":
                raise ValueError(
                    "only padding_mode='zeros' is supported for transposed convolutions"
                )
            return self

    return _ConvTransposeNd


@_model("conv_transpose1d")
def _conv_transpose1d() -> type[Layer]:
    class ConvTranspose1d(_conv_transpose_nd()):
        type: Literal["conv_transpose1d"] = "conv_transpose1d"
        dims: ClassVar = 1

    return ConvTranspose1d


@_model("conv_transpose2d")
def _conv_transpose2d() -> type[Layer]:
    class ConvTranspose2d(_conv_transpose_nd()):
        type: Literal["conv_transpose2d"] = "conv_transpose2d"
        dims: ClassVar = 2

    return ConvTranspose2d


@_model("conv_transpose3d")
def _conv_transpose3d() -> type[Layer]:
    class ConvTranspose3d(_conv_transpose_nd()):
        type: Literal["conv_transpose3d"] = "conv_transpose3d"
        dims: ClassVar = 3

    return ConvTranspose3d


# --------------------------------------------------------------------------- pooling


@functools.cache
def _pool_base() -> type[Layer]:
    class _PoolBase(Layer):
        kernel_size: Size
        stride: Size | None = Field(default=None, description="Defaults to kernel_size.")
        padding: Size = 0
        ceil_mode: bool = False

        @field_validator("kernel_size", "stride")
        @classmethod
        def _positive(cls, v: Any) -> Any:
            return v if v is None else _check_min(v, 1, "every entry")

        @field_validator("padding")
        @classmethod
        def _non_negative(cls, v: Any) -> Any:
            return _check_min(v, 0, "every entry")

        @model_validator(mode="after")
        def _defaults_and_pad_bound(self) -> "_PoolBase":
            if self.stride is None:
                object.__setattr__(self, "stride", self.kernel_size)
            # PyTorch: "pad should be at most half of effective kernel size" (checked as k/2 >= pad)
            for k, p in zip(self.kernel_size, self.padding):  # type: ignore[arg-type]
                if p > k // 2:
                    raise ValueError(f"padding {p} must be at most half of kernel_size {k}")
            return self

    return _PoolBase


@functools.cache
def _max_pool_nd() -> type[Layer]:
    class _MaxPoolNd(_pool_base()):
        dilation: Size = 1
        return_indices: bool = False

        positional: ClassVar = (
            "kernel_size",
            "stride",
            "padding",
            "dilation",
            "return_indices",
            "ceil_mode",
        )
        tuple_fields: ClassVar = ("kernel_size", "stride", "padding", "dilation")

        @field_validator("dilation")
        @classmethod
        def _dilation(cls, v: Any) -> Any:
            return _check_min(v, 1, "every entry")

    return _MaxPoolNd


@_model("maxpool1d")
def _maxpool1d() -> type[Layer]:
    class MaxPool1d(_max_pool_nd()):
        type: Literal["maxpool1d"] = "maxpool1d"
        dims: ClassVar = 1

    return MaxPool1d


@_model("maxpool2d")
def _maxpool2d() -> type[Layer]:
    class MaxPool2d(_max_pool_nd()):
        type: Literal["maxpool2d"] = "maxpool2d"
        dims: ClassVar = 2

    return MaxPool2d


@_model("maxpool3d")
def _maxpool3d() -> type[Layer]:
    class MaxPool3d(_max_pool_nd()):
        type: Literal["maxpool3d"] = "maxpool3d"
        dims: ClassVar = 3

    return MaxPool3d


@functools.cache
def _avg_pool_nd() -> type[Layer]:
    class _AvgPoolNd(_pool_base()):
        count_include_pad: bool = True
        divisor_override: int | None = Field(default=None, ge=1)

        positional: ClassVar = (
            "kernel_size",
            "stride",
            "padding",
            "ceil_mode",
            "count_include_pad",
            "divisor_override",
        )
        tuple_fields: ClassVar = ("kernel_size", "stride", "padding")

    return _AvgPoolNd


@_model("avgpool1d")
def _avgpool1d() -> type[Layer]:
    class AvgPool1d(_avg_pool_nd()):
        type: Literal["avgpool1d"] = "avgpool1d"
        dims: ClassVar = 1
        positional: ClassVar = (
            "kernel_size",
            "stride",
            "padding",
            "ceil_mode",
            "count_include_pad",
        )

    return AvgPool1d


@_model("avgpool2d")
def _avgpool2d() -> type[Layer]:
    class AvgPool2d(_avg_pool_nd()):
        type: Literal["avgpool2d"] = "avgpool2d"
        dims: ClassVar = 2

    return AvgPool2d


@_model("avgpool3d")
def _avgpool3d() -> type[Layer]:
    class AvgPool3d(_avg_pool_nd()):
        type: Literal["avgpool3d"] = "avgpool3d"
        dims: ClassVar = 3

    return AvgPool3d


@_model("subsample2d")
def _subsample2d() -> type[Layer]:
    class Subsample2d(Layer):
        """LeNet-5 (1998) S-layers: window sum times one trainable coefficient, plus a bias, per map."""  # noqa: E501 (the schema's text)

        type: Literal["subsample2d"] = "subsample2d"
        dims: ClassVar = 2
        kernel_size: Size = 2
        stride: Size | None = Field(default=None, description="Defaults to kernel_size.")

        positional: ClassVar = ("kernel_size", "stride")
        tuple_fields: ClassVar = ("kernel_size", "stride")

        @field_validator("kernel_size", "stride")
        @classmethod
        def _positive(cls, v: Any) -> Any:
            return v if v is None else _check_min(v, 1, "every entry")

        @model_validator(mode="after")
        def _default_stride(self) -> "Subsample2d":
            if self.stride is None:
                object.__setattr__(self, "stride", self.kernel_size)
            return self

    return Subsample2d


OptSize = int | None | tuple[int | None, ...]


@functools.cache
def _adaptive_nd() -> type[Layer]:
    class _AdaptiveNd(Layer):
        output_size: OptSize = Field(description="Entries may be null: keep that input size.")

        positional: ClassVar = ("output_size",)

        @field_validator("output_size")
        @classmethod
        def _sizes(cls, v: Any) -> Any:
            values = v if isinstance(v, tuple) else (v,)
            if any(x is not None and x < 1 for x in values):
                raise ValueError("every entry must be >= 1 or null")
            return v

        @model_validator(mode="after")
        def _expand_output(self) -> "_AdaptiveNd":
            v = self.output_size
            values = v if isinstance(v, tuple) else (v,)
            if len(values) == 1:
                values = values * self.dims
            elif len(values) != self.dims:
                raise ValueError(f"output_size needs 1 or {self.dims} values, got {len(values)}")
            object.__setattr__(self, "output_size", tuple(values))
            return self

    return _AdaptiveNd


@functools.cache
def _adaptive_max() -> type[Layer]:
    class _AdaptiveMax(_adaptive_nd()):
        return_indices: bool = False
        positional: ClassVar = ("output_size", "return_indices")

    return _AdaptiveMax


@_model("adaptive_avgpool1d")
def _adaptive_avgpool1d() -> type[Layer]:
    class AdaptiveAvgPool1d(_adaptive_nd()):
        type: Literal["adaptive_avgpool1d"] = "adaptive_avgpool1d"
        dims: ClassVar = 1

    return AdaptiveAvgPool1d


@_model("adaptive_avgpool2d")
def _adaptive_avgpool2d() -> type[Layer]:
    class AdaptiveAvgPool2d(_adaptive_nd()):
        type: Literal["adaptive_avgpool2d"] = "adaptive_avgpool2d"
        dims: ClassVar = 2

    return AdaptiveAvgPool2d


@_model("adaptive_maxpool1d")
def _adaptive_maxpool1d() -> type[Layer]:
    class AdaptiveMaxPool1d(_adaptive_max()):
        type: Literal["adaptive_maxpool1d"] = "adaptive_maxpool1d"
        dims: ClassVar = 1

    return AdaptiveMaxPool1d


@_model("adaptive_maxpool2d")
def _adaptive_maxpool2d() -> type[Layer]:
    class AdaptiveMaxPool2d(_adaptive_max()):
        type: Literal["adaptive_maxpool2d"] = "adaptive_maxpool2d"
        dims: ClassVar = 2

    return AdaptiveMaxPool2d


@_model("adaptive_avgpool3d")
def _adaptive_avgpool3d() -> type[Layer]:
    class AdaptiveAvgPool3d(_adaptive_nd()):
        type: Literal["adaptive_avgpool3d"] = "adaptive_avgpool3d"
        dims: ClassVar = 3

    return AdaptiveAvgPool3d


@_model("adaptive_maxpool3d")
def _adaptive_maxpool3d() -> type[Layer]:
    class AdaptiveMaxPool3d(_adaptive_max()):
        type: Literal["adaptive_maxpool3d"] = "adaptive_maxpool3d"
        dims: ClassVar = 3

    return AdaptiveMaxPool3d


# --------------------------------------------------------------------------- padding, resizing


@functools.cache
def _zero_pad_nd() -> type[Layer]:
    class _ZeroPadNd(Layer):
        """Constant zero padding; PyTorch order (left, right[, top, bottom]); negative crops."""

        padding: int | tuple[int, ...]
        positional: ClassVar = ("padding",)

        @model_validator(mode="after")
        def _expand_padding(self) -> "_ZeroPadNd":
            p = self.padding
            if isinstance(p, int):
                p = (p,) * (2 * self.dims)
            elif len(p) != 2 * self.dims:
                raise ValueError(f"padding needs 1 or {2 * self.dims} values, got {len(p)}")
            object.__setattr__(self, "padding", tuple(p))
            return self

        def per_axis(self) -> tuple[tuple[int, int], ...]:
            """(before, after) per spatial axis, first axis first (PyTorch lists the last first)."""
            p = self.padding
            pairs = [(p[2 * i], p[2 * i + 1]) for i in range(self.dims)]  # type: ignore[index]
            return tuple(reversed(pairs))

    return _ZeroPadNd


@_model("zeropad1d")
def _zeropad1d() -> type[Layer]:
    class ZeroPad1d(_zero_pad_nd()):
        type: Literal["zeropad1d"] = "zeropad1d"
        dims: ClassVar = 1

    return ZeroPad1d


@_model("zeropad2d")
def _zeropad2d() -> type[Layer]:
    class ZeroPad2d(_zero_pad_nd()):
        type: Literal["zeropad2d"] = "zeropad2d"
        dims: ClassVar = 2

    return ZeroPad2d


@_model("zeropad3d")
def _zeropad3d() -> type[Layer]:
    class ZeroPad3d(_zero_pad_nd()):
        type: Literal["zeropad3d"] = "zeropad3d"
        dims: ClassVar = 3

    return ZeroPad3d


@functools.cache
def _constant_pad_nd() -> type[Layer]:
    class _ConstantPadNd(_zero_pad_nd()):
        """``nn.ConstantPadNd(padding, value)``: pads with ``value``; negative padding crops."""

        value: float
        positional: ClassVar = ("padding", "value")

    return _ConstantPadNd


@_model("constant_pad1d")
def _constant_pad1d() -> type[Layer]:
    class ConstantPad1d(_constant_pad_nd()):
        type: Literal["constant_pad1d"] = "constant_pad1d"
        dims: ClassVar = 1

    return ConstantPad1d


@_model("constant_pad2d")
def _constant_pad2d() -> type[Layer]:
    class ConstantPad2d(_constant_pad_nd()):
        type: Literal["constant_pad2d"] = "constant_pad2d"
        dims: ClassVar = 2

    return ConstantPad2d


@_model("constant_pad3d")
def _constant_pad3d() -> type[Layer]:
    class ConstantPad3d(_constant_pad_nd()):
        type: Literal["constant_pad3d"] = "constant_pad3d"
        dims: ClassVar = 3

    return ConstantPad3d


@functools.cache
def _copy_pad_nd() -> type[Layer]:
    class _CopyPadNd(_zero_pad_nd()):
        """Padding that copies input values (``F.pad``'s reflect, replicate and circular modes);
        negative padding crops, as in PyTorch."""

        mode: ClassVar[str] = ""

    return _CopyPadNd


@_model("reflection_pad1d")
def _reflection_pad1d() -> type[Layer]:
    class ReflectionPad1d(_copy_pad_nd()):
        type: Literal["reflection_pad1d"] = "reflection_pad1d"
        dims: ClassVar = 1
        mode: ClassVar = "reflect"

    return ReflectionPad1d


@_model("reflection_pad2d")
def _reflection_pad2d() -> type[Layer]:
    class ReflectionPad2d(_copy_pad_nd()):
        type: Literal["reflection_pad2d"] = "reflection_pad2d"
        dims: ClassVar = 2
        mode: ClassVar = "reflect"

    return ReflectionPad2d


@_model("reflection_pad3d")
def _reflection_pad3d() -> type[Layer]:
    class ReflectionPad3d(_copy_pad_nd()):
        type: Literal["reflection_pad3d"] = "reflection_pad3d"
        dims: ClassVar = 3
        mode: ClassVar = "reflect"

    return ReflectionPad3d


@_model("replication_pad1d")
def _replication_pad1d() -> type[Layer]:
    class ReplicationPad1d(_copy_pad_nd()):
        type: Literal["replication_pad1d"] = "replication_pad1d"
        dims: ClassVar = 1
        mode: ClassVar = "replicate"

    return ReplicationPad1d


@_model("replication_pad2d")
def _replication_pad2d() -> type[Layer]:
    class ReplicationPad2d(_copy_pad_nd()):
        type: Literal["replication_pad2d"] = "replication_pad2d"
        dims: ClassVar = 2
        mode: ClassVar = "replicate"

    return ReplicationPad2d


@_model("replication_pad3d")
def _replication_pad3d() -> type[Layer]:
    class ReplicationPad3d(_copy_pad_nd()):
        type: Literal["replication_pad3d"] = "replication_pad3d"
        dims: ClassVar = 3
        mode: ClassVar = "replicate"

    return ReplicationPad3d


@_model("circular_pad1d")
def _circular_pad1d() -> type[Layer]:
    class CircularPad1d(_copy_pad_nd()):
        type: Literal["circular_pad1d"] = "circular_pad1d"
        dims: ClassVar = 1
        mode: ClassVar = "circular"

    return CircularPad1d


@_model("circular_pad2d")
def _circular_pad2d() -> type[Layer]:
    class CircularPad2d(_copy_pad_nd()):
        type: Literal["circular_pad2d"] = "circular_pad2d"
        dims: ClassVar = 2
        mode: ClassVar = "circular"

    return CircularPad2d


@_model("circular_pad3d")
def _circular_pad3d() -> type[Layer]:
    class CircularPad3d(_copy_pad_nd()):
        type: Literal["circular_pad3d"] = "circular_pad3d"
        dims: ClassVar = 3
        mode: ClassVar = "circular"

    return CircularPad3d


INTERPOLATION_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "nearest-exact")
# F.interpolate: the spatial dimensionality each interpolating mode requires
MODE_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


@_model("upsample")
def _upsample() -> type[Layer]:
    class Upsample(Layer):
        """``nn.Upsample`` / ``F.interpolate``: resize by ``scale_factor``, to ``size``, or to the
        spatial size of an earlier named output (``size_of``; ``input`` is the network input)."""

        type: Literal["upsample"] = "upsample"
        size: int | tuple[int, ...] | None = None
        scale_factor: float | tuple[float, ...] | None = None
        mode: Literal["nearest", "linear", "bilinear", "bicubic", "trilinear", "nearest-exact"] = (
            "nearest"
        )
        align_corners: bool | None = None
        recompute_scale_factor: bool | None = None
        size_of: str | None = Field(
            default=None,
            description=(
                "cnncalc extension: the spatial size of this earlier named output ('input': the "
                "network input), as F.interpolate(x, size=other.shape[-2:]) in torchvision's "
                "segmentation heads. Replaces size."
            ),
        )

        positional: ClassVar = (
            "size",
            "scale_factor",
            "mode",
            "align_corners",
            "recompute_scale_factor",
        )
        data_inputs: ClassVar = 1  # with size_of, the second input is read for its shape only

        @model_validator(mode="after")
        def _one_of(self) -> "Upsample":
            given = [f for f in ("size", "scale_factor", "size_of") if getattr(self, f) is not None]
            if len(given) != 1:
                raise ValueError("give exactly one of size, scale_factor and size_of")
            for v in _as_tuple(self.size) + _as_tuple(self.scale_factor):
                if v <= 0:
                    raise ValueError("size and scale_factor must be positive")
            if self.align_corners is not None and self.mode not in MODE_DIMS:
                # F.interpolate's ValueError
                raise ValueError(
                    "align_corners option can only be set with the interpolating "
                    "modes: linear | bilinear | bicubic | trilinear"
                )
            if self.recompute_scale_factor and self.scale_factor is None:
                raise ValueError("recompute_scale_factor is not meaningful with an explicit size")
            return self

    return Upsample


@functools.cache
def _sliding() -> type[Layer]:
    class _Sliding(Layer):
        """Sliding blocks over a C×H×W map (``nn.Unfold`` / ``nn.Fold``): PyTorch's argument order
        puts dilation before padding."""

        dims: ClassVar = 2
        kernel_size: Size
        dilation: Size = 1
        padding: Size = 0
        stride: Size = 1

        @field_validator("kernel_size", "dilation", "stride")
        @classmethod
        def _positive(cls, v: Any) -> Any:
            return _check_min(v, 1, "every entry")

        @field_validator("padding")
        @classmethod
        def _non_negative(cls, v: Any) -> Any:
            return _check_min(v, 0, "every entry")

    return _Sliding


@_model("unfold")
def _unfold() -> type[Layer]:
    class Unfold(_sliding()):
        """``nn.Unfold`` (im2col): C×H×W → (C·∏kernel_size)×L, L the number of sliding blocks."""

        type: Literal["unfold"] = "unfold"
        positional: ClassVar = ("kernel_size", "dilation", "padding", "stride")
        tuple_fields: ClassVar = ("kernel_size", "dilation", "padding", "stride")

    return Unfold


@_model("fold")
def _fold() -> type[Layer]:
    class Fold(_sliding()):
        """``nn.Fold`` (col2im): (C·∏kernel_size)×L → C×output_size, overlapping blocks summed."""

        type: Literal["fold"] = "fold"
        output_size: Size

        positional: ClassVar = ("output_size", "kernel_size", "dilation", "padding", "stride")
        tuple_fields: ClassVar = ("output_size", "kernel_size", "dilation", "padding", "stride")

        @field_validator("output_size")
        @classmethod
        def _positive_size(cls, v: Any) -> Any:
            return _check_min(v, 1, "every entry")

    return Fold


def _as_tuple(v: Any) -> tuple:
    return () if v is None else (v if isinstance(v, tuple) else (v,))


# --------------------------------------------------------------------------- dense and shape


@_model("flatten")
def _flatten() -> type[Layer]:
    class Flatten(Layer):
        """Dims count the batch, as in PyTorch: start_dim=1 is the first non-batch dimension."""

        type: Literal["flatten"] = "flatten"
        start_dim: int = 1
        end_dim: int = -1
        positional: ClassVar = ("start_dim", "end_dim")

    return Flatten


@_model("narrow")
def _narrow() -> type[Layer]:
    class Narrow(Layer):
        """``torch.narrow(x, dim, start, length)``: a slice of one dimension. ``dim`` counts the
        batch, as in PyTorch (1 = channels); a merge's ``split`` makes one per branch."""

        type: Literal["narrow"] = "narrow"
        dim: int = 1
        start: int = Field(ge=0)
        length: int = Field(ge=1)
        positional: ClassVar = ("dim", "start", "length")

    return Narrow


@_model("linear")
def _linear() -> type[Layer]:
    class Linear(Layer):
        type: Literal["linear"] = "linear"
        in_features: int | None = Field(default=None, ge=1, description="Checked when given.")
        out_features: int = Field(ge=1)
        bias: bool = True
        positional: ClassVar = ("in_features", "out_features", "bias")

    return Linear


@_model("rbf")
def _rbf() -> type[Layer]:
    class RBF(Layer):
        """LeNet-5 (1998) output layer: Euclidean RBF units with fixed (non-trainable) centres."""

        type: Literal["rbf"] = "rbf"
        in_features: int | None = Field(default=None, ge=1)
        out_features: int = Field(ge=1)
        positional: ClassVar = ("in_features", "out_features")

    return RBF


@functools.cache
def _batch_norm_nd() -> type[Layer]:
    class _BatchNormNd(Layer):
        num_features: int | None = Field(default=None, ge=1, description="Checked when given.")
        eps: float = Field(default=1e-5, gt=0)
        momentum: float | None = 0.1
        affine: bool = True
        track_running_stats: bool = True
        positional: ClassVar = ("num_features", "eps", "momentum", "affine", "track_running_stats")

    return _BatchNormNd


@_model("batchnorm1d")
def _batchnorm1d() -> type[Layer]:
    class BatchNorm1d(_batch_norm_nd()):
        type: Literal["batchnorm1d"] = "batchnorm1d"

    return BatchNorm1d


@_model("batchnorm2d")
def _batchnorm2d() -> type[Layer]:
    class BatchNorm2d(_batch_norm_nd()):
        type: Literal["batchnorm2d"] = "batchnorm2d"
        dims: ClassVar = 2

    return BatchNorm2d


# --------------------------------------------------------------------------- element-wise


@functools.cache
def _elementwise() -> type[Layer]:
    class _Elementwise(Layer):
        """Shape-preserving layers without parameters."""

    return _Elementwise


@functools.cache
def _dropout_base() -> type[Layer]:
    class _DropoutBase(_elementwise()):
        p: float = Field(default=0.5, ge=0, le=1)
        inplace: bool = False
        positional: ClassVar = ("p", "inplace")

    return _DropoutBase


@_model("dropout")
def _dropout() -> type[Layer]:
    class Dropout(_dropout_base()):
        type: Literal["dropout"] = "dropout"

    return Dropout


@_model("dropout1d")
def _dropout1d() -> type[Layer]:
    class Dropout1d(_dropout_base()):
        type: Literal["dropout1d"] = "dropout1d"

    return Dropout1d


@_model("dropout2d")
def _dropout2d() -> type[Layer]:
    class Dropout2d(_dropout_base()):
        type: Literal["dropout2d"] = "dropout2d"

    return Dropout2d


@_model("dropout3d")
def _dropout3d() -> type[Layer]:
    class Dropout3d(_dropout_base()):
        type: Literal["dropout3d"] = "dropout3d"

    return Dropout3d


@_model("alpha_dropout")
def _alpha_dropout() -> type[Layer]:
    class AlphaDropout(_dropout_base()):
        type: Literal["alpha_dropout"] = "alpha_dropout"

    return AlphaDropout


@functools.cache
def _inplace() -> type[Layer]:
    class _Inplace(_elementwise()):
        inplace: bool = False
        positional: ClassVar = ("inplace",)

    return _Inplace


@_model("identity")
def _identity() -> type[Layer]:
    class Identity(_elementwise()):
        type: Literal["identity"] = "identity"

    return Identity


@_model("relu")
def _relu() -> type[Layer]:
    class ReLU(_inplace()):
        type: Literal["relu"] = "relu"

    return ReLU


@_model("relu6")
def _relu6() -> type[Layer]:
    class ReLU6(_inplace()):
        type: Literal["relu6"] = "relu6"

    return ReLU6


@_model("selu")
def _selu() -> type[Layer]:
    class SELU(_inplace()):
        type: Literal["selu"] = "selu"

    return SELU


@_model("silu")
def _silu() -> type[Layer]:
    class SiLU(_inplace()):
        type: Literal["silu"] = "silu"

    return SiLU


@_model("mish")
def _mish() -> type[Layer]:
    class Mish(_inplace()):
        type: Literal["mish"] = "mish"

    return Mish


@_model("hardswish")
def _hardswish() -> type[Layer]:
    class Hardswish(_inplace()):
        type: Literal["hardswish"] = "hardswish"

    return Hardswish


@_model("hardsigmoid")
def _hardsigmoid() -> type[Layer]:
    class Hardsigmoid(_inplace()):
        type: Literal["hardsigmoid"] = "hardsigmoid"

    return Hardsigmoid


@_model("sigmoid")
def _sigmoid() -> type[Layer]:
    class Sigmoid(_elementwise()):
        type: Literal["sigmoid"] = "sigmoid"

    return Sigmoid


@_model("tanh")
def _tanh() -> type[Layer]:
    class Tanh(_elementwise()):
        type: Literal["tanh"] = "tanh"

    return Tanh


@_model("leaky_relu")
def _leaky_relu() -> type[Layer]:
    class LeakyReLU(_elementwise()):
        type: Literal["leaky_relu"] = "leaky_relu"
        negative_slope: float = 0.01
        inplace: bool = False
        positional: ClassVar = ("negative_slope", "inplace")

    return LeakyReLU


@_model("elu")
def _elu() -> type[Layer]:
    class ELU(_elementwise()):
        type: Literal["elu"] = "elu"
        alpha: float = 1.0
        inplace: bool = False
        positional: ClassVar = ("alpha", "inplace")

    return ELU


@_model("celu")
def _celu() -> type[Layer]:
    class CELU(_elementwise()):
        type: Literal["celu"] = "celu"
        alpha: float = 1.0
        inplace: bool = False
        positional: ClassVar = ("alpha", "inplace")

    return CELU


@_model("gelu")
def _gelu() -> type[Layer]:
    class GELU(_elementwise()):
        type: Literal["gelu"] = "gelu"
        approximate: Literal["none", "tanh"] = "none"
        positional: ClassVar = ("approximate",)

    return GELU


@_model("hardtanh")
def _hardtanh() -> type[Layer]:
    class Hardtanh(_elementwise()):
        type: Literal["hardtanh"] = "hardtanh"
        min_val: float = -1.0
        max_val: float = 1.0
        inplace: bool = False
        positional: ClassVar = ("min_val", "max_val", "inplace")

    return Hardtanh


@_model("softplus")
def _softplus() -> type[Layer]:
    class Softplus(_elementwise()):
        type: Literal["softplus"] = "softplus"
        beta: float = 1.0
        threshold: float = 20.0
        positional: ClassVar = ("beta", "threshold")

    return Softplus


@_model("softmax")
def _softmax() -> type[Layer]:
    class Softmax(_elementwise()):
        """``dim`` counts the batch, as in PyTorch; null picks PyTorch's legacy default."""

        type: Literal["softmax"] = "softmax"
        dim: int | None = None
        positional: ClassVar = ("dim",)

    return Softmax


@_model("log_softmax")
def _log_softmax() -> type[Layer]:
    class LogSoftmax(_elementwise()):
        type: Literal["log_softmax"] = "log_softmax"
        dim: int | None = None
        positional: ClassVar = ("dim",)

    return LogSoftmax


@_model("prelu")
def _prelu() -> type[Layer]:
    class PReLU(Layer):
        """Learned negative slope: one shared (num_parameters=1) or one per channel."""

        type: Literal["prelu"] = "prelu"
        num_parameters: int = Field(default=1, ge=1)
        init: float = 0.25
        positional: ClassVar = ("num_parameters", "init")

    return PReLU


# --------------------------------------------------------------------------- today's CNNs
# Normalisations beyond batch-norm, ConvNeXt's layer scale, stochastic depth, and the shape
# layers of ShuffleNet, ConvNeXt and sub-pixel upsampling. ``positional`` is PyTorch's order
# *including* the inferred size (``num_channels``, ``num_features``), which is optional here
# and checked against the input when given.


@_model("group_norm")
def _group_norm() -> type[Layer]:
    class GroupNorm(Layer):
        """``nn.GroupNorm``: statistics over each group of channels and all positions."""

        type: Literal["group_norm"] = "group_norm"
        num_groups: int = Field(ge=1)
        num_channels: int | None = Field(default=None, ge=1, description="Checked when given.")
        eps: float = Field(default=1e-5, gt=0)
        affine: bool = True
        positional: ClassVar = ("num_groups", "num_channels", "eps", "affine")

        @model_validator(mode="after")
        def _divisible(self) -> "GroupNorm":
            c = self.num_channels
            if c is not None and c % self.num_groups:
                raise ValueError(
                    f"num_channels ({c}) must be divisible by num_groups ({self.num_groups})"
                )
            return self

    return GroupNorm


@_model("layer_norm")
def _layer_norm() -> type[Layer]:
    class LayerNorm(Layer):
        """``nn.LayerNorm``: statistics over the trailing ``normalized_shape`` dimensions of each
        sample (``LayerNorm(C)`` after a permute to channels-last, as in ConvNeXt's block)."""

        type: Literal["layer_norm"] = "layer_norm"
        normalized_shape: int | tuple[int, ...]
        eps: float = Field(default=1e-5, gt=0)
        elementwise_affine: bool = True
        bias: bool = True
        positional: ClassVar = ("normalized_shape", "eps", "elementwise_affine", "bias")

        @field_validator("normalized_shape")
        @classmethod
        def _sizes(cls, v: Any) -> Any:
            values = (v,) if isinstance(v, int) else tuple(v)
            if not values:
                raise ValueError("must name at least one trailing size")
            _check_min(values, 1, "every entry")
            return values

    return LayerNorm


@_model("layer_norm2d")
def _layer_norm2d() -> type[Layer]:
    class LayerNorm2d(Layer):
        """torchvision's ``convnext.LayerNorm2d``: LayerNorm over the channels of a C×H×W map,
        at each position (permute, layer_norm, permute back). Constructor of ``nn.LayerNorm``."""

        type: Literal["layer_norm2d"] = "layer_norm2d"
        dims: ClassVar = 2
        normalized_shape: int | None = Field(
            default=None, ge=1, description="The channel count; checked when given."
        )
        eps: float = Field(default=1e-5, gt=0)
        elementwise_affine: bool = True
        bias: bool = True
        positional: ClassVar = ("normalized_shape", "eps", "elementwise_affine", "bias")

    return LayerNorm2d


@functools.cache
def _instance_norm_nd() -> type[Layer]:
    class _InstanceNormNd(Layer):
        num_features: int | None = Field(default=None, ge=1, description="Checked when given.")
        eps: float = Field(default=1e-5, gt=0)
        momentum: float | None = 0.1
        affine: bool = False
        track_running_stats: bool = False
        positional: ClassVar = ("num_features", "eps", "momentum", "affine", "track_running_stats")

    return _InstanceNormNd


@_model("instance_norm1d")
def _instance_norm1d() -> type[Layer]:
    class InstanceNorm1d(_instance_norm_nd()):
        type: Literal["instance_norm1d"] = "instance_norm1d"
        dims: ClassVar = 1

    return InstanceNorm1d


@_model("instance_norm2d")
def _instance_norm2d() -> type[Layer]:
    class InstanceNorm2d(_instance_norm_nd()):
        type: Literal["instance_norm2d"] = "instance_norm2d"
        dims: ClassVar = 2

    return InstanceNorm2d


@_model("instance_norm3d")
def _instance_norm3d() -> type[Layer]:
    class InstanceNorm3d(_instance_norm_nd()):
        type: Literal["instance_norm3d"] = "instance_norm3d"
        dims: ClassVar = 3

    return InstanceNorm3d


@_model("batchnorm3d")
def _batchnorm3d() -> type[Layer]:
    class BatchNorm3d(_batch_norm_nd()):
        type: Literal["batchnorm3d"] = "batchnorm3d"
        dims: ClassVar = 3
        positional: ClassVar = ("num_features", "eps", "momentum", "affine", "track_running_stats")

    return BatchNorm3d


@_model("stochastic_depth")
def _stochastic_depth() -> type[Layer]:
    class StochasticDepth(Layer):
        """``torchvision.ops.StochasticDepth``: drops whole residual branches in training
        (``row``: per sample, ``batch``: all at once); the identity at inference; no parameters."""

        type: Literal["stochastic_depth"] = "stochastic_depth"
        p: float = Field(ge=0, le=1, description="Drop probability.")
        mode: Literal["batch", "row"]
        positional: ClassVar = ("p", "mode")

    return StochasticDepth


@_model("layer_scale")
def _layer_scale() -> type[Layer]:
    class LayerScale(Layer):
        """ConvNeXt's learned per-channel scale (``CNBlock.layer_scale``, a C×1×1 parameter):
        out = γ_c · in. Name the row ``layer_scale`` so its parameters land on
        ``<block>.layer_scale``, as in torchvision's ``named_parameters()``."""

        type: Literal["layer_scale"] = "layer_scale"
        dim: int | None = Field(
            default=None, ge=1, description="The channel count; checked when given."
        )
        init_value: float = 1e-6
        positional: ClassVar = ("dim", "init_value")

    return LayerScale


@_model("channel_shuffle")
def _channel_shuffle() -> type[Layer]:
    class ChannelShuffle(Layer):
        """``nn.ChannelShuffle``: (g, C/g) channels transposed to (C/g, g) — ShuffleNet."""

        type: Literal["channel_shuffle"] = "channel_shuffle"
        groups: int = Field(ge=1)
        positional: ClassVar = ("groups",)

    return ChannelShuffle


@_model("permute")
def _permute() -> type[Layer]:
    class Permute(Layer):
        """``torchvision.ops.misc.Permute``: ``x.permute(dims)``; dims count the batch, which must
        stay first (``[0, 2, 3, 1]``: channels-last)."""

        type: Literal["permute"] = "permute"
        # PyTorch's argument is `dims`; the attribute is `order` (Layer.dims is the spatial rank)
        order: tuple[int, ...] = Field(
            alias="dims",
            description="The new order of the dimensions, counting the batch (0 stays first).",
        )
        positional: ClassVar = ("dims",)

    return Permute


@_model("unflatten")
def _unflatten() -> type[Layer]:
    class Unflatten(Layer):
        """``nn.Unflatten(dim, unflattened_size)``: one dimension (counting the batch) split into
        several; one size may be -1."""

        type: Literal["unflatten"] = "unflatten"
        dim: int
        unflattened_size: tuple[int, ...]
        positional: ClassVar = ("dim", "unflattened_size")

    return Unflatten


@_model("pixel_shuffle")
def _pixel_shuffle() -> type[Layer]:
    class PixelShuffle(Layer):
        """``nn.PixelShuffle(r)``: C·r²×H×W → C×rH×rW (sub-pixel convolution, Shi et al. 2016)."""

        type: Literal["pixel_shuffle"] = "pixel_shuffle"
        dims: ClassVar = 2
        upscale_factor: int = Field(ge=1)
        positional: ClassVar = ("upscale_factor",)

    return PixelShuffle


@_model("pixel_unshuffle")
def _pixel_unshuffle() -> type[Layer]:
    class PixelUnshuffle(Layer):
        """``nn.PixelUnshuffle(r)``: C×rH×rW → C·r²×H×W."""

        type: Literal["pixel_unshuffle"] = "pixel_unshuffle"
        dims: ClassVar = 2
        downscale_factor: int = Field(ge=1)
        positional: ClassVar = ("downscale_factor",)

    return PixelUnshuffle


# Families: concrete types that share a rule. Rules name the types they serve explicitly, so a
# new type gets no rule by inheritance (the registry test then names what it lacks).
CONV_ND = ("conv1d", "conv2d", "conv3d")
CONV_TRANSPOSE = ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
MAX_POOLS = ("maxpool1d", "maxpool2d", "maxpool3d")
AVG_POOLS = ("avgpool1d", "avgpool2d", "avgpool3d")
ADAPTIVE_AVG = ("adaptive_avgpool1d", "adaptive_avgpool2d", "adaptive_avgpool3d")
ADAPTIVE_MAX = ("adaptive_maxpool1d", "adaptive_maxpool2d", "adaptive_maxpool3d")
ZERO_PADS = ("zeropad1d", "zeropad2d", "zeropad3d")
CONSTANT_PADS = ("constant_pad1d", "constant_pad2d", "constant_pad3d")
COPY_PADS = (
    "reflection_pad1d",
    "reflection_pad2d",
    "reflection_pad3d",
    "replication_pad1d",
    "replication_pad2d",
    "replication_pad3d",
    "circular_pad1d",
    "circular_pad2d",
    "circular_pad3d",
)
FOLDS = ("unfold", "fold")
BATCH_NORMS = ("batchnorm1d", "batchnorm2d", "batchnorm3d")
DROPOUTS = ("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout")
ACTIVATIONS = (
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "sigmoid",
    "tanh",
    "hardtanh",
    "hardswish",
    "hardsigmoid",
    "softplus",
)
SOFTMAXES = ("softmax", "log_softmax")
ELEMENTWISE = (*DROPOUTS, "identity", *ACTIVATIONS, *SOFTMAXES)
INSTANCE_NORMS = ("instance_norm1d", "instance_norm2d", "instance_norm3d")


# --------------------------------------------------------------------------- merges


@functools.cache
def _merge() -> type[Layer]:
    class _Merge(Layer):
        """Joins the outputs of parallel branches; written as ``{add: [...]}`` etc., not as
        a layer."""

    return _Merge


@_model("add")
def _add() -> type[Layer]:
    class Add(_merge()):
        """Element-wise sum (residual connections); shapes must be equal."""

        type: Literal["add"] = "add"

    return Add


@_model("concat")
def _concat() -> type[Layer]:
    class Concat(_merge()):
        """Concatenation along channels (``torch.cat(xs, dim=1)``); other sizes must agree."""

        type: Literal["concat"] = "concat"

    return Concat


@_model("mul")
def _mul() -> type[Layer]:
    class Mul(_merge()):
        """Element-wise product with PyTorch broadcasting (squeeze-and-excitation:
        C×1×1 ⊙ C×H×W)."""

        type: Literal["mul"] = "mul"

    return Mul


def type_key(text: str) -> str:
    """Spelling-insensitive key: ``MaxPool2d``, ``max_pool2d`` and ``maxpool2d`` agree."""
    return text.replace("_", "").replace("-", "").lower()


def canonical_type(cls: type[Layer]) -> str:
    return cls.model_fields["type"].default


# Accepted spellings besides the PyTorch class name (keys as produced by type_key).
_ALIASES = {
    "upsamplingnearest2d": "upsample",
    "interpolate": "upsample",
    "dense": "linear",
    "fc": "linear",
    "bn1d": "batchnorm1d",
    "bn2d": "batchnorm2d",
    "deconv1d": "conv_transpose1d",
    "deconv2d": "conv_transpose2d",
    "deconv3d": "conv_transpose3d",
    "pad2d": "zeropad2d",
    "pad1d": "zeropad1d",
    "swish": "silu",
    "avgpool": "avgpool2d",
    "maxpool": "maxpool2d",
}

# type_key of every accepted spelling -> the type's canonical name
BY_KEY: dict[str, str] = {type_key(kind): kind for kind in LAYER_CLASSES}
BY_KEY.update({alias: BY_KEY[type_key(target)] for alias, target in _ALIASES.items()})

# Short names accepted for fields in any spelling of a spec (inline and YAML).
FIELD_ALIASES = {"k": "kernel_size", "s": "stride", "p": "padding", "d": "dilation", "g": "groups"}


_KIND_OF_CLASS = {name: kind for kind, name in {**LAYER_CLASSES, **MERGE_CLASSES}.items()}


def __getattr__(name: str) -> Any:
    """``layers.Conv2d`` builds that model; ``LAYER_TYPES`` / ``MERGE_TYPES`` build them all
    (for what lists every type: ``cnncalc types``, the JSON Schema, the tests)."""
    if name == "LAYER_TYPES":
        return tuple(model(kind) for kind in LAYER_CLASSES)
    if name == "MERGE_TYPES":
        return tuple(model(kind) for kind in MERGE_CLASSES)
    if name in _KIND_OF_CLASS:
        return model(_KIND_OF_CLASS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
