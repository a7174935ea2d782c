"""What a user may write for each layer type: one pydantic model per PyTorch layer class.

Field names and defaults are PyTorch's constructor arguments, so a spec can be copied from
model code. ``int | tuple`` fields are turned into a tuple of the layer's dimensionality once,
here; the arithmetic never branches on input types. ``positional`` lists the order of
positional arguments in the inline syntax: exactly PyTorch's constructor order, the input size
(``in_channels``, ``in_features``, ``num_features``) included.
"""

# (no __future__ annotations: pydantic builds models faster from real annotations)

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


# --------------------------------------------------------------------------- convolutions


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


class _ConvNd(_ConvBase):
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


class Conv1d(_ConvNd):
    type: Literal["conv1d"] = "conv1d"
    dims: ClassVar = 1


class Conv2d(_ConvNd):
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


class Conv3d(_ConvNd):
    type: Literal["conv3d"] = "conv3d"
    dims: ClassVar = 3


class _ConvTransposeNd(_ConvBase):
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
                    f"output_padding {op} must be smaller than either stride {s} or dilation {d}"
                )
        if self.padding_mode != "zeros":
            raise ValueError("only padding_mode='zeros' is supported for transposed convolutions")
        return self


class ConvTranspose1d(_ConvTransposeNd):
    type: Literal["conv_transpose1d"] = "conv_transpose1d"
    dims: ClassVar = 1


class ConvTranspose2d(_ConvTransposeNd):
    type: Literal["conv_transpose2d"] = "conv_transpose2d"
    dims: ClassVar = 2


class ConvTranspose3d(_ConvTransposeNd):
    type: Literal["conv_transpose3d"] = "conv_transpose3d"
    dims: ClassVar = 3


# --------------------------------------------------------------------------- pooling


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


class _MaxPoolNd(_PoolBase):
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


class MaxPool1d(_MaxPoolNd):
    type: Literal["maxpool1d"] = "maxpool1d"
    dims: ClassVar = 1


class MaxPool2d(_MaxPoolNd):
    type: Literal["maxpool2d"] = "maxpool2d"
    dims: ClassVar = 2


class MaxPool3d(_MaxPoolNd):
    type: Literal["maxpool3d"] = "maxpool3d"
    dims: ClassVar = 3


class _AvgPoolNd(_PoolBase):
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


class AvgPool1d(_AvgPoolNd):
    type: Literal["avgpool1d"] = "avgpool1d"
    dims: ClassVar = 1
    positional: ClassVar = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")


class AvgPool2d(_AvgPoolNd):
    type: Literal["avgpool2d"] = "avgpool2d"
    dims: ClassVar = 2


class AvgPool3d(_AvgPoolNd):
    type: Literal["avgpool3d"] = "avgpool3d"
    dims: ClassVar = 3


class Subsample2d(Layer):
    """LeNet-5 (1998) S-layers: window sum times one trainable coefficient, plus a bias, per map."""

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


OptSize = int | None | tuple[int | None, ...]


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


class _AdaptiveMax(_AdaptiveNd):
    return_indices: bool = False
    positional: ClassVar = ("output_size", "return_indices")


class AdaptiveAvgPool1d(_AdaptiveNd):
    type: Literal["adaptive_avgpool1d"] = "adaptive_avgpool1d"
    dims: ClassVar = 1


class AdaptiveAvgPool2d(_AdaptiveNd):
    type: Literal["adaptive_avgpool2d"] = "adaptive_avgpool2d"
    dims: ClassVar = 2


class AdaptiveMaxPool1d(_AdaptiveMax):
    type: Literal["adaptive_maxpool1d"] = "adaptive_maxpool1d"
    dims: ClassVar = 1


class AdaptiveMaxPool2d(_AdaptiveMax):
    type: Literal["adaptive_maxpool2d"] = "adaptive_maxpool2d"
    dims: ClassVar = 2


class AdaptiveAvgPool3d(_AdaptiveNd):
    type: Literal["adaptive_avgpool3d"] = "adaptive_avgpool3d"
    dims: ClassVar = 3


class AdaptiveMaxPool3d(_AdaptiveMax):
    type: Literal["adaptive_maxpool3d"] = "adaptive_maxpool3d"
    dims: ClassVar = 3


# --------------------------------------------------------------------------- padding, resizing


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


class ZeroPad1d(_ZeroPadNd):
    type: Literal["zeropad1d"] = "zeropad1d"
    dims: ClassVar = 1


class ZeroPad2d(_ZeroPadNd):
    type: Literal["zeropad2d"] = "zeropad2d"
    dims: ClassVar = 2


class ZeroPad3d(_ZeroPadNd):
    type: Literal["zeropad3d"] = "zeropad3d"
    dims: ClassVar = 3


class _ConstantPadNd(_ZeroPadNd):
    """``nn.ConstantPadNd(padding, value)``: pads with ``value``; negative padding crops."""

    value: float
    positional: ClassVar = ("padding", "value")


class ConstantPad1d(_ConstantPadNd):
    type: Literal["constant_pad1d"] = "constant_pad1d"
    dims: ClassVar = 1


class ConstantPad2d(_ConstantPadNd):
    type: Literal["constant_pad2d"] = "constant_pad2d"
    dims: ClassVar = 2


class ConstantPad3d(_ConstantPadNd):
    type: Literal["constant_pad3d"] = "constant_pad3d"
    dims: ClassVar = 3


class _CopyPadNd(_ZeroPadNd):
    """Padding that copies input values (``F.pad``'s reflect, replicate and circular modes);
    negative padding crops, as in PyTorch."""

    mode: ClassVar[str] = ""


class ReflectionPad1d(_CopyPadNd):
    type: Literal["reflection_pad1d"] = "reflection_pad1d"
    dims: ClassVar = 1
    mode: ClassVar = "reflect"


class ReflectionPad2d(_CopyPadNd):
    type: Literal["reflection_pad2d"] = "reflection_pad2d"
    dims: ClassVar = 2
    mode: ClassVar = "reflect"


class ReflectionPad3d(_CopyPadNd):
    type: Literal["reflection_pad3d"] = "reflection_pad3d"
    dims: ClassVar = 3
    mode: ClassVar = "reflect"


class ReplicationPad1d(_CopyPadNd):
    type: Literal["replication_pad1d"] = "replication_pad1d"
    dims: ClassVar = 1
    mode: ClassVar = "replicate"


class ReplicationPad2d(_CopyPadNd):
    type: Literal["replication_pad2d"] = "replication_pad2d"
    dims: ClassVar = 2
    mode: ClassVar = "replicate"


class ReplicationPad3d(_CopyPadNd):
    type: Literal["replication_pad3d"] = "replication_pad3d"
    dims: ClassVar = 3
    mode: ClassVar = "replicate"


class CircularPad1d(_CopyPadNd):
    type: Literal["circular_pad1d"] = "circular_pad1d"
    dims: ClassVar = 1
    mode: ClassVar = "circular"


class CircularPad2d(_CopyPadNd):
    type: Literal["circular_pad2d"] = "circular_pad2d"
    dims: ClassVar = 2
    mode: ClassVar = "circular"


class CircularPad3d(_CopyPadNd):
    type: Literal["circular_pad3d"] = "circular_pad3d"
    dims: ClassVar = 3
    mode: ClassVar = "circular"


INTERPOLATION_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "nearest-exact")
# F.interpolate: the spatial dimensionality each interpolating mode requires
MODE_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


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


class Unfold(_Sliding):
    """``nn.Unfold`` (im2col): C×H×W → (C·∏kernel_size)×L, L the number of sliding blocks."""

    type: Literal["unfold"] = "unfold"
    positional: ClassVar = ("kernel_size", "dilation", "padding", "stride")
    tuple_fields: ClassVar = ("kernel_size", "dilation", "padding", "stride")


class Fold(_Sliding):
    """``nn.Fold`` (col2im): (C·∏kernel_size)×L → C×output_size, overlapping blocks summed."""

    type: Literal["fold"] = "fold"
    output_size: Size

    positional: ClassVar = ("output_size", "kernel_size", "dilation", "padding", "stride")
    tuple_fields: ClassVar = ("output_size", "kernel_size", "dilation", "padding", "stride")

    @field_validator("output_size")
    @classmethod
    def _positive_size(cls, v: Any) -> Any:
        return _check_min(v, 1, "every entry")


def _as_tuple(v: Any) -> tuple:
    return () if v is None else (v if isinstance(v, tuple) else (v,))


# --------------------------------------------------------------------------- dense and shape


class Flatten(Layer):
    """Dims count the batch, as in PyTorch: start_dim=1 is the first non-batch dimension."""

    type: Literal["flatten"] = "flatten"
    start_dim: int = 1
    end_dim: int = -1
    positional: ClassVar = ("start_dim", "end_dim")


class Narrow(Layer):
    """``torch.narrow(x, dim, start, length)``: a slice of one dimension. ``dim`` counts the
    batch, as in PyTorch (1 = channels); a merge's ``split`` makes one per branch."""

    type: Literal["narrow"] = "narrow"
    dim: int = 1
    start: int = Field(ge=0)
    length: int = Field(ge=1)
    positional: ClassVar = ("dim", "start", "length")


class Linear(Layer):
    type: Literal["linear"] = "linear"
    in_features: int | None = Field(default=None, ge=1, description="Checked when given.")
    out_features: int = Field(ge=1)
    bias: bool = True
    positional: ClassVar = ("in_features", "out_features", "bias")


class RBF(Layer):
    """LeNet-5 (1998) output layer: Euclidean RBF units with fixed (non-trainable) centres."""

    type: Literal["rbf"] = "rbf"
    in_features: int | None = Field(default=None, ge=1)
    out_features: int = Field(ge=1)
    positional: ClassVar = ("in_features", "out_features")


class _BatchNormNd(Layer):
    num_features: int | None = Field(default=None, ge=1, description="Checked when given.")
    eps: float = Field(default=1e-5, gt=0)
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True
    positional: ClassVar = ("num_features", "eps", "momentum", "affine", "track_running_stats")


class BatchNorm1d(_BatchNormNd):
    type: Literal["batchnorm1d"] = "batchnorm1d"


class BatchNorm2d(_BatchNormNd):
    type: Literal["batchnorm2d"] = "batchnorm2d"
    dims: ClassVar = 2


# --------------------------------------------------------------------------- element-wise


class _Elementwise(Layer):
    """Shape-preserving layers without parameters."""


class _DropoutBase(_Elementwise):
    p: float = Field(default=0.5, ge=0, le=1)
    inplace: bool = False
    positional: ClassVar = ("p", "inplace")


class Dropout(_DropoutBase):
    type: Literal["dropout"] = "dropout"


class Dropout1d(_DropoutBase):
    type: Literal["dropout1d"] = "dropout1d"


class Dropout2d(_DropoutBase):
    type: Literal["dropout2d"] = "dropout2d"


class Dropout3d(_DropoutBase):
    type: Literal["dropout3d"] = "dropout3d"


class AlphaDropout(_DropoutBase):
    type: Literal["alpha_dropout"] = "alpha_dropout"


class _Inplace(_Elementwise):
    inplace: bool = False
    positional: ClassVar = ("inplace",)


class Identity(_Elementwise):
    type: Literal["identity"] = "identity"


class ReLU(_Inplace):
    type: Literal["relu"] = "relu"


class ReLU6(_Inplace):
    type: Literal["relu6"] = "relu6"


class SELU(_Inplace):
    type: Literal["selu"] = "selu"


class SiLU(_Inplace):
    type: Literal["silu"] = "silu"


class Mish(_Inplace):
    type: Literal["mish"] = "mish"


class Hardswish(_Inplace):
    type: Literal["hardswish"] = "hardswish"


class Hardsigmoid(_Inplace):
    type: Literal["hardsigmoid"] = "hardsigmoid"


class Sigmoid(_Elementwise):
    type: Literal["sigmoid"] = "sigmoid"


class Tanh(_Elementwise):
    type: Literal["tanh"] = "tanh"


class LeakyReLU(_Elementwise):
    type: Literal["leaky_relu"] = "leaky_relu"
    negative_slope: float = 0.01
    inplace: bool = False
    positional: ClassVar = ("negative_slope", "inplace")


class ELU(_Elementwise):
    type: Literal["elu"] = "elu"
    alpha: float = 1.0
    inplace: bool = False
    positional: ClassVar = ("alpha", "inplace")


class CELU(_Elementwise):
    type: Literal["celu"] = "celu"
    alpha: float = 1.0
    inplace: bool = False
    positional: ClassVar = ("alpha", "inplace")


class GELU(_Elementwise):
    type: Literal["gelu"] = "gelu"
    approximate: Literal["none", "tanh"] = "none"
    positional: ClassVar = ("approximate",)


class Hardtanh(_Elementwise):
    type: Literal["hardtanh"] = "hardtanh"
    min_val: float = -1.0
    max_val: float = 1.0
    inplace: bool = False
    positional: ClassVar = ("min_val", "max_val", "inplace")


class Softplus(_Elementwise):
    type: Literal["softplus"] = "softplus"
    beta: float = 1.0
    threshold: float = 20.0
    positional: ClassVar = ("beta", "threshold")


class Softmax(_Elementwise):
    """``dim`` counts the batch, as in PyTorch; null picks PyTorch's legacy default."""

    type: Literal["softmax"] = "softmax"
    dim: int | None = None
    positional: ClassVar = ("dim",)


class LogSoftmax(_Elementwise):
    type: Literal["log_softmax"] = "log_softmax"
    dim: int | None = None
    positional: ClassVar = ("dim",)


class PReLU(Layer):
    """Learned negative slope: one shared (num_parameters=1) or one per channel."""

    type: Literal["prelu"] = "prelu"
    num_parameters: int = Field(default=1, ge=1)
    init: float = 0.25
    positional: ClassVar = ("num_parameters", "init")


LAYER_TYPES: tuple[type[Layer], ...] = (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AdaptiveMaxPool3d,
    Subsample2d,
    ZeroPad1d,
    ZeroPad2d,
    ZeroPad3d,
    ConstantPad1d,
    ConstantPad2d,
    ConstantPad3d,
    ReflectionPad1d,
    ReflectionPad2d,
    ReflectionPad3d,
    ReplicationPad1d,
    ReplicationPad2d,
    ReplicationPad3d,
    CircularPad1d,
    CircularPad2d,
    CircularPad3d,
    Upsample,
    Unfold,
    Fold,
    Flatten,
    Narrow,
    Linear,
    RBF,
    BatchNorm1d,
    BatchNorm2d,
    Dropout,
    Dropout1d,
    Dropout2d,
    Dropout3d,
    AlphaDropout,
    Identity,
    ReLU,
    ReLU6,
    LeakyReLU,
    PReLU,
    ELU,
    SELU,
    CELU,
    GELU,
    SiLU,
    Mish,
    Sigmoid,
    Tanh,
    Hardtanh,
    Hardswish,
    Hardsigmoid,
    Softplus,
    Softmax,
    LogSoftmax,
)


# --------------------------------------------------------------------------- today's CNNs
# Normalisations beyond batch-norm, ConvNeXt's layer scale, stochastic depth, and the shape
# layers of ShuffleNet, ConvNeXt and sub-pixel upsampling. ``positional`` is PyTorch's order
# *including* the inferred size (``num_channels``, ``num_features``), which is optional here
# and checked against the input when given.


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


class _InstanceNormNd(Layer):
    num_features: int | None = Field(default=None, ge=1, description="Checked when given.")
    eps: float = Field(default=1e-5, gt=0)
    momentum: float | None = 0.1
    affine: bool = False
    track_running_stats: bool = False
    positional: ClassVar = ("num_features", "eps", "momentum", "affine", "track_running_stats")


class InstanceNorm1d(_InstanceNormNd):
    type: Literal["instance_norm1d"] = "instance_norm1d"
    dims: ClassVar = 1


class InstanceNorm2d(_InstanceNormNd):
    type: Literal["instance_norm2d"] = "instance_norm2d"
    dims: ClassVar = 2


class InstanceNorm3d(_InstanceNormNd):
    type: Literal["instance_norm3d"] = "instance_norm3d"
    dims: ClassVar = 3


class BatchNorm3d(_BatchNormNd):
    type: Literal["batchnorm3d"] = "batchnorm3d"
    dims: ClassVar = 3
    positional: ClassVar = ("num_features", "eps", "momentum", "affine", "track_running_stats")


class StochasticDepth(Layer):
    """``torchvision.ops.StochasticDepth``: drops whole residual branches in training
    (``row``: per sample, ``batch``: all at once); the identity at inference; no parameters."""

    type: Literal["stochastic_depth"] = "stochastic_depth"
    p: float = Field(ge=0, le=1, description="Drop probability.")
    mode: Literal["batch", "row"]
    positional: ClassVar = ("p", "mode")


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


class ChannelShuffle(Layer):
    """``nn.ChannelShuffle``: (g, C/g) channels transposed to (C/g, g) — ShuffleNet."""

    type: Literal["channel_shuffle"] = "channel_shuffle"
    groups: int = Field(ge=1)
    positional: ClassVar = ("groups",)


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


class Unflatten(Layer):
    """``nn.Unflatten(dim, unflattened_size)``: one dimension (counting the batch) split into
    several; one size may be -1."""

    type: Literal["unflatten"] = "unflatten"
    dim: int
    unflattened_size: tuple[int, ...]
    positional: ClassVar = ("dim", "unflattened_size")


class PixelShuffle(Layer):
    """``nn.PixelShuffle(r)``: C·r²×H×W → C×rH×rW (sub-pixel convolution, Shi et al. 2016)."""

    type: Literal["pixel_shuffle"] = "pixel_shuffle"
    dims: ClassVar = 2
    upscale_factor: int = Field(ge=1)
    positional: ClassVar = ("upscale_factor",)


class PixelUnshuffle(Layer):
    """``nn.PixelUnshuffle(r)``: C×rH×rW → C·r²×H×W."""

    type: Literal["pixel_unshuffle"] = "pixel_unshuffle"
    dims: ClassVar = 2
    downscale_factor: int = Field(ge=1)
    positional: ClassVar = ("downscale_factor",)


LAYER_TYPES += (
    GroupNorm,
    LayerNorm,
    LayerNorm2d,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    BatchNorm3d,
    StochasticDepth,
    LayerScale,
    ChannelShuffle,
    Permute,
    Unflatten,
    PixelShuffle,
    PixelUnshuffle,
)
INSTANCE_NORMS = (InstanceNorm1d, InstanceNorm2d, InstanceNorm3d)


# Families: concrete types that share a rule. Rules name the types they serve explicitly, so a
# new type gets no rule by inheritance (the registry test then names what it lacks).
CONV_ND = (Conv1d, Conv2d, Conv3d)
CONV_TRANSPOSE = (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)
MAX_POOLS = (MaxPool1d, MaxPool2d, MaxPool3d)
AVG_POOLS = (AvgPool1d, AvgPool2d, AvgPool3d)
ADAPTIVE_AVG = (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d)
ADAPTIVE_MAX = (AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d)
ZERO_PADS = (ZeroPad1d, ZeroPad2d, ZeroPad3d)
CONSTANT_PADS = (ConstantPad1d, ConstantPad2d, ConstantPad3d)
COPY_PADS = (
    ReflectionPad1d,
    ReflectionPad2d,
    ReflectionPad3d,
    ReplicationPad1d,
    ReplicationPad2d,
    ReplicationPad3d,
    CircularPad1d,
    CircularPad2d,
    CircularPad3d,
)
FOLDS = (Unfold, Fold)
BATCH_NORMS = (BatchNorm1d, BatchNorm2d, BatchNorm3d)
DROPOUTS = (Dropout, Dropout1d, Dropout2d, Dropout3d, AlphaDropout)
ACTIVATIONS = (
    ReLU,
    ReLU6,
    LeakyReLU,
    ELU,
    SELU,
    CELU,
    GELU,
    SiLU,
    Mish,
    Sigmoid,
    Tanh,
    Hardtanh,
    Hardswish,
    Hardsigmoid,
    Softplus,
)
SOFTMAXES = (Softmax, LogSoftmax)
ELEMENTWISE = (*DROPOUTS, Identity, *ACTIVATIONS, *SOFTMAXES)


# --------------------------------------------------------------------------- merges


class _Merge(Layer):
    """Joins the outputs of parallel branches; written as ``{add: [...]}`` etc., not as a layer."""


class Add(_Merge):
    """Element-wise sum (residual connections); shapes must be equal."""

    type: Literal["add"] = "add"


class Concat(_Merge):
    """Concatenation along channels (``torch.cat(xs, dim=1)``); other sizes must agree."""

    type: Literal["concat"] = "concat"


class Mul(_Merge):
    """Element-wise product with PyTorch broadcasting (squeeze-and-excitation: C×1×1 ⊙ C×H×W)."""

    type: Literal["mul"] = "mul"


MERGE_TYPES: tuple[type[Layer], ...] = (Add, Concat, Mul)
MERGE_BY_KIND: dict[str, type[Layer]] = {c.model_fields["type"].default: c for c in MERGE_TYPES}


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

BY_KEY: dict[str, type[Layer]] = {type_key(canonical_type(c)): c for c in LAYER_TYPES}
BY_KEY.update({alias: BY_KEY[type_key(target)] for alias, target in _ALIASES.items()})

# Short names accepted for fields in any spelling of a spec (inline and YAML).
FIELD_ALIASES = {"k": "kernel_size", "s": "stride", "p": "padding", "d": "dilation", "g": "groups"}
