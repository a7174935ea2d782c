"""Training and inference memory, counted tensor by tensor as PyTorch holds them.

The model (also stated in the README):

* **parameters** (trainable and frozen) and **buffers** (batch-norm's running statistics in
  the parameter dtype, its ``num_batches_tracked`` counter as int64);
* **gradients**: one per trainable parameter, in the parameter dtype;
* **optimizer state** after ``step()``, as ``torch.optim`` stores it: SGD nothing, SGD with
  momentum one ``momentum_buffer`` per parameter, Adam/AdamW ``exp_avg`` and ``exp_avg_sq``
  per parameter plus a 0-d float32 ``step`` tensor per parameter tensor;
* **saved activations**: the distinct tensors autograd keeps for backward in training mode,
  parameters and buffers excluded. What each op keeps is per-type knowledge: the ``saved``
  part of the registry (:func:`saved`), measured on PyTorch's CPU kernels (a conv keeps its
  input, a ReLU its output, a batch-norm its input and two per-channel statistics, a max-pool
  its input and int64 indices, …). A kept tensor is a *storage*: views (flatten, narrow,
  identity) and in-place ops share their input's, so a tensor kept by two ops counts once;
* **mixed precision** (``amp``): PyTorch's CPU autocast — convolutions, linear layers and
  PReLU compute in float16/bfloat16 and keep low-precision *copies* of their input (when it is
  float32) and of their weight; everything else runs in its input's dtype; merges promote.
* **peaks**, by a liveness walk over the rows: inference (no autograd) holds the input, the
  outputs still to be read and the current output; training adds the kept tensors through the
  forward pass, then walks backward freeing each kept tensor after its first keeper's backward
  while activation gradients and parameter gradients come and go. PyTorch's caching allocator
  rounds and caches blocks and kernels take workspace (cuDNN, oneDNN): a static count cannot
  know those, so the peaks are the tensors' own bytes, a floor for what ``nvidia-smi`` shows.

Adding a layer type: register its ``saved`` rule here (``@rule("saved", Model)``), returning
a :class:`Saves` — which inputs/outputs it keeps, which new tensors, whether its output aliases
its input, and how autocast treats it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from cnncalc import layers as L
from cnncalc.analysis import DTYPE_BYTES, Analysis, Row
from cnncalc.arithmetic import same_padding
from cnncalc.errors import bad_option
from cnncalc.progress import SILENT, Progress
from cnncalc.registry import lookup, rule

Shape = tuple[int, ...]

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
AMP_DTYPES = ("float16", "bfloat16")
TRAIN_DTYPES = ("float32", "float64", "float16", "bfloat16")
STEP_BYTES = 4  # Adam's per-tensor ``step``: a 0-d float32 tensor (torch >= 1.12)


# --------------------------------------------------------------------------- the "saved" part


@dataclass(frozen=True)
class Keep:
    """One tensor an op keeps for its backward pass.

    ``source``: ``"input"`` (its input number ``index``), ``"output"``, ``"weight"`` (its
    weight: a parameter, so counted only when autocast keeps a low-precision copy) or
    ``"new"`` (a tensor the op makes, of ``shape`` without the batch, with the batch in front
    unless ``batched`` is false). ``dtype``: ``"compute"`` (the op's compute dtype; an input in
    another dtype is kept as a cast copy), ``"float32"`` (an op autocast runs in float32),
    ``"param"`` (the parameter dtype: batch-norm statistics) or ``"int64"`` (indices).
    ``if_grad``: kept only when input number ``if_grad`` requires a gradient.
    """

    source: Literal["input", "output", "weight", "new"]
    index: int = 0
    shape: Shape = ()
    batched: bool = True
    dtype: Literal["compute", "float32", "param", "int64"] = "compute"
    if_grad: int | None = None


@dataclass(frozen=True)
class Saves:
    """What one op holds for backward, and how it treats its output's storage and autocast.

    ``alias``: the output shares input 0's storage (a view, an identity, an in-place op).
    ``autocast``: ``"lower"`` computes in the low-precision dtype under autocast (CPU's list:
    conv, conv_transpose, linear, prelu), ``"promote"`` takes the widest input dtype (merges),
    ``"param"`` the widest of its input's and its parameter's (``x * parameter``: float32
    under autocast), ``"same"`` runs in its input's dtype, ``"float32"`` casts its input up
    and runs in float32 (CPU's float32 list: 3-D pooling, reflection and replication padding
    but reflection_pad3d). Only ops on autocast's lists (``"lower"``, ``"float32"``, and
    ``Keep(dtype="float32")``) keep cast copies of their inputs; the others keep the tensors
    they were given.
    ``counters``: int64 buffers (batch-norm's ``num_batches_tracked``).
    """

    keeps: tuple[Keep, ...] = ()
    alias: bool = False
    autocast: Literal["lower", "promote", "param", "same", "float32"] = "same"
    counters: int = 0


def saved(layer: L.Layer, in_shapes: tuple[Shape, ...], out_shape: Shape) -> Saves:
    """The ``saved`` rule of ``layer``'s type: shapes carry no batch dimension."""
    return lookup("saved", type(layer))(layer, in_shapes, out_shape)


IN = Keep("input")
OUT = Keep("output")
WEIGHT = Keep("weight")


@rule("saved", *L.CONV_ND)
def _conv(layer: L._ConvNd, in_shapes, out_shape) -> Saves:
    if layer.padding_mode == "zeros":
        return Saves((IN, WEIGHT), autocast="lower")
    # F.pad first (a new padded tensor, which the conv keeps); reflect/replicate padding keeps
    # its input too, in float32 under CPU autocast
    shape = in_shapes[0]
    if layer.padding == "same":
        pads = [sum(same_padding(k, d)) for k, d in zip(layer.kernel_size, layer.dilation)]
    elif layer.padding == "valid":
        pads = [0] * layer.dims
    else:
        pads = [2 * p for p in layer.padding]
    padded = Keep("new", shape=(shape[0], *(n + p for n, p in zip(shape[1:], pads))))
    pad_keeps = (
        () if layer.padding_mode == "circular" else (Keep("input", dtype="float32", if_grad=0),)
    )
    return Saves((*pad_keeps, padded, WEIGHT), autocast="lower")


@rule("saved", *L.CONV_TRANSPOSE)
def _conv_transpose(layer, in_shapes, out_shape) -> Saves:
    return Saves((IN, WEIGHT), autocast="lower")


@rule("saved", "linear")
def _linear(layer, in_shapes, out_shape) -> Saves:
    # the weight is needed only for the input's gradient
    return Saves((IN, Keep("weight", if_grad=0)), autocast="lower")


@rule("saved", "prelu")
def _prelu(layer, in_shapes, out_shape) -> Saves:
    return Saves((IN, WEIGHT), autocast="lower")  # prelu is on CPU autocast's list


@rule("saved", *L.BATCH_NORMS)
def _batchnorm(layer: L._BatchNormNd, in_shapes, out_shape) -> Saves:
    # save_mean and save_invstd: in the parameter dtype when weights or running statistics
    # are there (a low-precision input beside float32 ones: CPU's "mixed type" kernel), else
    # in the input's dtype (matters only under autocast)
    mixed = layer.affine or layer.track_running_stats
    stats = Keep(
        "new", shape=(in_shapes[0][0],), batched=False, dtype="param" if mixed else "compute"
    )
    return Saves((IN, stats, stats), counters=int(layer.track_running_stats))


# CPU autocast runs the 3-D poolings in float32 (a float32 copy of a low-precision input)
_FLOAT32_POOLS = ("maxpool3d", "avgpool3d", "adaptive_avgpool3d", "adaptive_maxpool3d")


def _pool_autocast(layer: L.Layer) -> Literal["float32", "same"]:
    return "float32" if layer.type in _FLOAT32_POOLS else "same"


@rule("saved", *L.MAX_POOLS, *L.ADAPTIVE_MAX)
def _maxpool(layer, in_shapes, out_shape) -> Saves:
    return Saves((IN, Keep("new", shape=out_shape, dtype="int64")), autocast=_pool_autocast(layer))


@rule("saved", *L.AVG_POOLS)
def _avgpool(layer, in_shapes, out_shape) -> Saves:
    return Saves((IN,), autocast=_pool_autocast(layer))


@rule("saved", *L.ADAPTIVE_AVG)
def _adaptive_avg(layer, in_shapes, out_shape) -> Saves:
    # an all-ones output is computed as a mean, which keeps nothing; other sizes keep the input
    keeps = () if all(n == 1 for n in out_shape[1:]) else (IN,)
    return Saves(keeps, autocast=_pool_autocast(layer))


@rule("saved", *L.ZERO_PADS, "upsample")
def _nothing(layer, in_shapes, out_shape) -> Saves:
    return Saves()


@rule("saved", "flatten", "narrow", "identity")
def _view(layer, in_shapes, out_shape) -> Saves:
    return Saves(alias=True)


@rule("saved", "subsample2d")
def _subsample(layer, in_shapes, out_shape) -> Saves:
    # avg_pool2d (keeps its input) × area, times the coefficient (keeps the pooled map)
    return Saves((IN, Keep("new", shape=out_shape)))


@rule("saved", "rbf")
def _rbf(layer: L.RBF, in_shapes, out_shape) -> Saves:
    # ((x[:, None] - centres) ** 2).sum(-1): pow keeps the differences, batch × out × in
    return Saves((Keep("new", shape=(layer.out_features, in_shapes[0][-1])),))


_KEEPS_OUTPUT = ("relu", "sigmoid", "tanh", "softmax", "log_softmax")
# in place, PyTorch keeps the result (the input's storage, modified) for these …
_INPLACE_KEEPS_RESULT = ("relu", "elu", "selu", "celu", "leaky_relu")
# … and a copy of the original input for these (their backward needs the input)
_INPLACE_KEEPS_COPY = ("relu6", "hardtanh", "silu", "hardswish", "hardsigmoid", "mish")


@rule("saved", *L.ACTIVATIONS, *L.SOFTMAXES)
def _activation(layer, in_shapes, out_shape) -> Saves:
    if getattr(layer, "inplace", False):
        if layer.type in _INPLACE_KEEPS_RESULT:
            return Saves((OUT,), alias=True)
        if layer.type in _INPLACE_KEEPS_COPY:
            return Saves((Keep("new", shape=in_shapes[0]),), alias=True)
    return Saves((OUT,) if layer.type in _KEEPS_OUTPUT else (IN,))


@rule("saved", *L.DROPOUTS)
def _dropout(layer: L._DropoutBase, in_shapes, out_shape) -> Saves:
    """CPU dropout is ``input * noise``: the noise (input-sized, or one value per channel for
    the feature dropouts) is kept in the input's dtype. CUDA's fused kernel keeps a bool mask
    instead. p = 0 returns the input itself; p = 1 multiplies by a 0-d zero."""
    if layer.p == 0:
        return Saves(alias=True)
    if layer.p == 1:
        noise = Keep("new", shape=(), batched=False)
    elif layer.type in ("dropout1d", "dropout2d", "dropout3d"):
        shape = in_shapes[0]
        noise = Keep("new", shape=(shape[0], *(1 for _ in shape[1:])))
    else:
        noise = Keep("new", shape=in_shapes[0])
    return Saves((noise,), alias=layer.inplace)


@rule("saved", "add", "concat")
def _merge_nothing(layer, in_shapes, out_shape) -> Saves:
    return Saves(autocast="promote")


@rule("saved", "mul")
def _mul(layer, in_shapes, out_shape) -> Saves:
    """a * b keeps b for a's gradient and a for b's; n branches multiply left to right, so
    each partial product is kept too."""
    if len(in_shapes) == 2:
        return Saves((Keep("input", 0, if_grad=1), Keep("input", 1, if_grad=0)), autocast="promote")
    keeps = [Keep("input", 0), Keep("input", 1)]
    partial = in_shapes[0]
    for i in range(2, len(in_shapes)):
        partial = _broadcast(partial, in_shapes[i - 1])
        keeps += [Keep("new", shape=partial), Keep("input", i)]
    return Saves(tuple(keeps), autocast="promote")


def _broadcast(a: Shape, b: Shape) -> Shape:
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    return tuple(max(x, y) for x, y in zip(a, b))


# today's CNNs (measured on PyTorch 2.13's CPU kernels). Normalisations keep their input and
# two statistics (mean, 1/std) per normalised group, in the parameter dtype when they have
# weights (CPU's "mixed type" kernels under autocast), else in the input's dtype.


def _stats(shape: Shape, weighted: bool, batched: bool = True) -> Keep:
    return Keep("new", shape=shape, batched=batched, dtype="param" if weighted else "compute")


@rule("saved", "group_norm")
def _group_norm(layer: L.GroupNorm, in_shapes, out_shape) -> Saves:
    """native_group_norm: input, mean and rstd (N × groups)."""
    stats = _stats((layer.num_groups,), layer.affine)
    return Saves((IN, stats, stats))


@rule("saved", "layer_norm")
def _layer_norm(layer: L.LayerNorm, in_shapes, out_shape) -> Saves:
    """native_layer_norm: input, mean and rstd (one per leading position: N × shape[:-k])."""
    shape = in_shapes[0]
    stats = _stats(shape[: len(shape) - len(layer.normalized_shape)], layer.elementwise_affine)
    return Saves((IN, stats, stats))


@rule("saved", "layer_norm2d")
def _layer_norm2d(layer: L.LayerNorm2d, in_shapes, out_shape) -> Saves:
    """permute (a view), native_layer_norm (input, mean and rstd per position: N×H×W), permute
    back (a view of a new tensor)."""
    stats = _stats(in_shapes[0][1:], layer.elementwise_affine)
    return Saves((IN, stats, stats))


@rule("saved", *L.INSTANCE_NORMS)
def _instance_norm(layer: L._InstanceNormNd, in_shapes, out_shape) -> Saves:
    """A batch-norm on the input viewed as 1 × N·C × …: it keeps the input, save_mean and
    save_invstd (N·C), and the weight and running statistics repeated N times (new tensors,
    not the parameters), all in the parameter dtype when affine, else the input's."""
    per_sample = _stats((in_shapes[0][0],), layer.affine)
    repeated = (
        (1 + 2 * layer.track_running_stats) if layer.affine else (2 * layer.track_running_stats)
    )
    return Saves((IN, *(per_sample,) * (2 + repeated)), counters=int(layer.track_running_stats))


@rule("saved", "stochastic_depth")
def _stochastic_depth(layer: L.StochasticDepth, in_shapes, out_shape) -> Saves:
    """torchvision's stochastic_depth in training: ``input * noise`` keeps the noise, one value
    per sample (row) or one in all (batch), in the input's dtype; p = 0 returns the input."""
    if layer.p == 0:
        return Saves(alias=True)
    ones = tuple(1 for _ in in_shapes[0])
    noise = Keep("new", shape=ones, batched=layer.mode == "row")
    return Saves((noise,))


@rule("saved", "layer_scale")
def _layer_scale(layer, in_shapes, out_shape) -> Saves:
    """``layer_scale * x``: the input is kept for the parameter's gradient (the parameter, for
    the input's, is not an activation); the product takes the parameter's dtype (float32
    under autocast)."""
    return Saves((IN,), autocast="param")


@rule("saved", "channel_shuffle", "pixel_shuffle", "pixel_unshuffle")
def _shuffle(layer, in_shapes, out_shape) -> Saves:
    # a new tensor (a copy, even for 1 group or factor 1), nothing kept: backward shuffles back
    return Saves()


@rule("saved", "permute", "unflatten")
def _view_only(layer, in_shapes, out_shape) -> Saves:
    return Saves(alias=True)


# --------------------------------------------------------------------------- padding, fold
# Measured on PyTorch 2.13's CPU kernels (tests/test_memory_layout_torch.py): constant_pad_nd
# keeps only the pad sizes; reflection and replication padding keep their input (their
# backward scatters into its shape); F.pad's circular mode is slices and a cat, which keep
# nothing; im2col and col2im (nn.Unfold, nn.Fold) need only the sizes.


@rule("saved", *L.CONSTANT_PADS)
def _constant_pad(layer, in_shapes, out_shape) -> Saves:
    return Saves()


# CPU autocast's float32 list has these (reflection_pad3d is not on it)
_FLOAT32_PADS = (
    "reflection_pad1d",
    "reflection_pad2d",
    "replication_pad1d",
    "replication_pad2d",
    "replication_pad3d",
)
_CIRCULAR_PADS = ("circular_pad1d", "circular_pad2d", "circular_pad3d")


@rule("saved", *(t for t in L.COPY_PADS if t not in _CIRCULAR_PADS))
def _copy_pad(layer, in_shapes, out_shape) -> Saves:
    return Saves((IN,), autocast="float32" if layer.type in _FLOAT32_PADS else "same")


@rule("saved", *_CIRCULAR_PADS, *L.FOLDS)
def _circular_pad_fold(layer, in_shapes, out_shape) -> Saves:
    return Saves()


# --------------------------------------------------------------------------- the walk


@dataclass(frozen=True)
class MemoryRow:
    """Bytes one row holds: what it owns (parameters …) and what it adds to the walk."""

    row: Row
    parameter_bytes: int
    buffer_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    saved_activation_bytes: int  # tensors this row is the first to keep
    output_bytes: int
    peak_bytes: int  # training: the most held while this row runs, forward or backward
    inference_peak_bytes: int
    output_dtype: str


@dataclass(frozen=True)
class MemoryTotals:
    parameter_bytes: int
    buffer_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    saved_activation_bytes: int
    output_bytes: int
    peak_bytes: int
    inference_peak_bytes: int
    input_bytes: int

    @property
    def state_bytes(self) -> int:
        """What lives across steps: parameters, buffers, optimizer state."""
        return self.parameter_bytes + self.buffer_bytes + self.optimizer_bytes


@dataclass(frozen=True)
class Memory:
    analysis: Analysis
    batch: int
    dtype: str  # of the parameters (the master weights under amp)
    amp: str | None
    optimizer: str
    rows: tuple[MemoryRow, ...]
    totals: MemoryTotals


def check_memory_options(optimizer: str, dtype: str, amp: str | None) -> None:
    if optimizer not in OPTIMIZERS:
        raise bad_option("--optimizer", optimizer, f"must be one of {', '.join(OPTIMIZERS)}")
    if dtype not in TRAIN_DTYPES:
        raise bad_option(
            "--dtype", dtype, f"training memory needs a floating dtype: {', '.join(TRAIN_DTYPES)}"
        )
    if amp is not None:
        if amp not in AMP_DTYPES:
            raise bad_option("--amp", amp, f"must be one of {', '.join(AMP_DTYPES)}")
        if dtype != "float32":
            raise bad_option(
                "--dtype", dtype, "--amp keeps float32 master weights; leave --dtype at float32"
            )


@dataclass
class _Storage:
    bytes: int
    made: int  # the row that allocates it (-1: the network input)
    keepers: list[int] = field(default_factory=list)  # rows that keep it, in order


def memory(
    a: Analysis, batch: int | None = None, optimizer: str = "adam", amp: str | None = None
) -> Memory:
    """Training and inference memory of ``a`` at ``batch`` (default: the analysis' batch).

    The parameter dtype is the analysis' dtype; ``amp`` ("float16"/"bfloat16") runs autocast
    over float32 master weights.
    """
    batch = a.batch if batch is None else batch
    if batch < 1:
        raise bad_option("--batch", batch, "must be at least 1")
    check_memory_options(optimizer, a.dtype, amp)
    param_dtype = a.dtype

    def nbytes(shape: Shape, dtype: str, batched: bool = True) -> int:
        size = 8 if dtype == "int64" else DTYPE_BYTES[dtype]
        return math.prod(shape) * (batch if batched else 1) * size

    storages: dict[object, _Storage] = {"input": _Storage(nbytes(a.input_shape, a.dtype), -1)}
    sid: dict[int, object] = {-1: "input"}  # value (row index) -> the storage it lives in
    dtypes: dict[int, str] = {-1: a.dtype}
    grads: dict[int, bool] = {-1: False}  # the network input needs no gradient
    owned, firsts = [], []
    for r in a.rows:
        shapes = tuple(a.input_shape if i < 0 else a.rows[i].output_shape for i in r.inputs)
        s = saved(r.layer, shapes, r.output_shape)
        in_types = [dtypes[i] for i in r.inputs]
        compute = _compute_dtype(s, amp, a.dtype, in_types)
        needs = [grads[i] for i in r.inputs]
        grads[r.index] = any(needs) or r.trainable_params > 0
        dtypes[r.index] = compute
        if s.alias:
            sid[r.index] = sid[r.inputs[0]]
        else:
            sid[r.index] = r.index
            storages[r.index] = _Storage(nbytes(r.output_shape, compute), r.index)

        def new(key: object, size: int) -> object:
            storages[key] = _Storage(size, r.index)  # noqa: B023 - used at once
            return key

        first = 0
        for j, keep in enumerate(s.keeps if grads[r.index] else ()):
            # autograd records nothing for a row without gradients
            if keep.if_grad is not None and not needs[keep.if_grad]:
                continue
            if keep.source == "output":
                key = sid[r.index]
            elif keep.source == "weight":
                if compute == param_dtype:
                    continue  # the parameter itself: not an activation
                key = new(("weight", r.index), r.weights * DTYPE_BYTES[compute])
            elif keep.source == "new":
                dtype = {"compute": compute, "param": param_dtype}.get(keep.dtype, keep.dtype)
                key = new(("new", r.index, j), nbytes(keep.shape, dtype, keep.batched))
            else:
                i = keep.index
                want = "float32" if keep.dtype == "float32" and amp else compute
                listed = s.autocast in ("lower", "float32") or keep.dtype == "float32"
                if amp is not None and listed and in_types[i] != want:  # autocast's cast copy
                    key = new(("cast", r.index, j), nbytes(shapes[i], want))
                else:
                    key = sid[r.inputs[i]]
            st = storages[key]
            if not st.keepers:
                first += st.bytes
            if r.index not in st.keepers:
                st.keepers.append(r.index)
        grad_b = r.trainable_params * DTYPE_BYTES[param_dtype]
        frozen = r.non_trainable_params - r.buffers
        tensors = int(r.weights - frozen > 0) + int(r.bias > 0)
        opt = {
            "sgd": 0,
            "momentum": grad_b,
            "adam": 2 * grad_b + STEP_BYTES * tensors,
            "adamw": 2 * grad_b + STEP_BYTES * tensors,
        }[optimizer]
        buffers = (r.buffers - s.counters) * DTYPE_BYTES[param_dtype] + 8 * s.counters
        owned.append((r.params * DTYPE_BYTES[param_dtype], buffers, grad_b, opt))
        firsts.append(first)

    state = sum(p + b + o for p, b, _, o in owned)
    weights = sum(p + b for p, b, _, _ in owned)
    final = sid[a.rows[-1].index] if a.rows else "input"
    train = _training_live(a, storages, sid, grads, dtypes, owned, final, nbytes)
    # inference: the caller holds the input and gets the output; no tensor is kept
    infer = live_bytes(
        a,
        {k: st.bytes for k, st in storages.items() if k == "input" or isinstance(k, int)},
        sid,
        ("input", final),
    )
    rows = tuple(
        MemoryRow(
            r,
            p,
            b,
            g,
            o,
            first,
            storages[sid[r.index]].bytes if not _aliases(sid, r) else 0,
            state + train[r.index],
            weights + infer[r.index],
            dtypes[r.index],
        )
        for r, (p, b, g, o), first in zip(a.rows, owned, firsts)
    )
    totals = MemoryTotals(
        parameter_bytes=sum(x[0] for x in owned),
        buffer_bytes=sum(x[1] for x in owned),
        gradient_bytes=sum(x[2] for x in owned),
        optimizer_bytes=sum(x[3] for x in owned),
        saved_activation_bytes=sum(firsts),
        output_bytes=storages[final].bytes,
        peak_bytes=max((m.peak_bytes for m in rows), default=state),
        inference_peak_bytes=max((m.inference_peak_bytes for m in rows), default=weights),
        input_bytes=storages["input"].bytes,
    )
    return Memory(a, batch, a.dtype, amp, optimizer, rows, totals)


def _aliases(sid: dict[int, object], r: Row) -> bool:
    """Whether the row's output shares an earlier storage (a view, an in-place op)."""
    return sid[r.index] != r.index


def _compute_dtype(s: Saves, amp: str | None, dtype: str, in_types: list[str]) -> str:
    if amp is None:
        return dtype
    if s.autocast == "lower":
        return amp
    if s.autocast == "promote":
        return max(in_types, key=lambda t: DTYPE_BYTES[t])
    if s.autocast == "param":
        return max((in_types[0], dtype), key=lambda t: DTYPE_BYTES[t])
    if s.autocast == "float32":
        return "float32"
    return in_types[0]


def _last_reads(a: Analysis, sid: dict[int, object]) -> dict[object, int]:
    """For each storage, the last row that reads a value living in it."""
    last: dict[object, int] = {}
    for r in a.rows:
        for i in r.inputs:
            last[sid[i]] = max(last.get(sid[i], -1), r.index)
    return last


def live_bytes(
    a: Analysis,
    sizes: dict[object, int],
    sid: dict[int, object] | None = None,
    held: tuple[object, ...] = (),
    workspace: bool = False,
) -> dict[int, int]:
    """The one liveness walk (inference; ``cnncalc run``'s memory guard uses it too): per row,
    the bytes alive while it runs — every earlier tensor still to be read (a tensor lives until
    its last reader has run), its own output, and the ``held`` storages (never freed).

    ``sizes``: bytes per storage, the network input under ``sid[-1]``; ``sid``: the storage
    each row's output lives in (an in-place op or a view shares its input's; default: its
    own, and ``-1`` for the input). ``workspace``: add a copy of the row's inputs (a padded
    copy, a merge's gather), as cnncalc's kernels need.
    """
    sid = sid or {-1: -1, **{r.index: r.index for r in a.rows}}
    last = _last_reads(a, sid)
    alive: dict[object, int] = {sid[-1]: sizes[sid[-1]]}
    out, live = {}, sizes[sid[-1]]
    for r in a.rows:
        key = sid[r.index]
        if key not in alive:
            alive[key] = sizes[key]
            live += sizes[key]
        extra = sum(alive.get(k, 0) for k in {sid[i] for i in r.inputs}) if workspace else 0
        out[r.index] = live + extra
        for k in {sid[i] for i in r.inputs} | {key}:  # free what no later row reads
            if k in alive and k not in held and last.get(k, r.index) <= r.index:
                live -= alive.pop(k)
    return out


def _training_live(
    a: Analysis, storages, sid, grads, dtypes, owned, final, nbytes
) -> dict[int, int]:
    """Per row, the most held (besides parameters, buffers, optimizer state) while its forward
    or its backward runs.

    Forward: the input, every kept tensor made so far, outputs still to be read, the current
    output. Backward (rows in reverse): kept tensors until their first keeper's backward has
    run, the input and final output (the caller holds them), the gradient of each value from
    its last reader's backward to its producer's, and the parameter gradients made so far
    (``zero_grad()`` sets them to None between steps, PyTorch's default)."""
    last = _last_reads(a, sid)
    readers: dict[int, int] = {}
    for r in a.rows:
        for i in r.inputs:
            readers[i] = max(readers.get(i, -1), r.index)
    n = len(a.rows)
    # forward: a storage is alive from the row that makes it to its last read (kept ones and
    # the final output to the end of the forward pass)
    delta = [0] * (n + 1)
    for key, st in storages.items():
        if key == "input":
            continue
        end = n - 1 if st.keepers or key == final else max(last.get(key, st.made), st.made)
        delta[st.made] += st.bytes
        delta[end + 1] -= st.bytes
    forward, running = [], storages["input"].bytes
    for k in range(n):
        running += delta[k]
        forward.append(running)
    # backward
    kept_at = [0] * (n + 1)  # kept storages still held at row k's backward: first keeper <= k
    for key, st in storages.items():
        if st.keepers and key not in ("input", final):
            kept_at[min(st.keepers)] += st.bytes
    held = storages["input"].bytes + storages[final].bytes
    grad_delta = [0] * (n + 1)
    for r in a.rows:
        if not grads[r.index]:
            continue
        size = nbytes(r.output_shape, dtypes[r.index])
        top = n - 1 if r.index == a.rows[-1].index else readers.get(r.index, r.index)
        grad_delta[r.index] += size
        grad_delta[top + 1] -= size
    out: dict[int, int] = {}
    kept = act = 0
    kept_to, act_to = [], []  # prefix sums: kept tensors and activation gradients at row k
    for k in range(n):
        kept += kept_at[k]
        act += grad_delta[k]
        kept_to.append(kept)
        act_to.append(act)
    params = 0
    for k in range(n - 1, -1, -1):
        params += owned[k][2]
        out[a.rows[k].index] = max(forward[k], held + kept_to[k] + act_to[k] + params)
    return out


# --------------------------------------------------------------------------- batch questions


MAX_BATCH = 2**40


@dataclass(frozen=True)
class Fit:
    """The largest batch whose training peak fits ``budget``, and the memory at it."""

    budget: int
    batch: int
    memory: Memory
    next_peak: int  # the training peak at batch + 1 (above the budget)


def fit(
    a: Analysis,
    budget: int,
    optimizer: str = "adam",
    amp: str | None = None,
    progress: Progress = SILENT,
) -> Fit:
    """Largest batch whose training peak is at most ``budget`` bytes.

    Every term of the peak grows with the batch, so the peak is monotone in it: doubling
    then bisection finds the answer with O(log batch) walks. Raises when batch 1 does not fit.
    ``progress`` hears of each batch tried.
    """
    from cnncalc.errors import CnncalcError
    from cnncalc.report import human_bytes

    tried = [0]
    progress.phase("fitting batch")

    def peak(b: int) -> int:
        progress.step(tried[0], f"batch {b}")
        tried[0] += 1
        return memory(a, b, optimizer, amp).totals.peak_bytes

    one = memory(a, 1, optimizer, amp)
    if one.totals.peak_bytes > budget:
        raise CnncalcError(
            f"--fit {human_bytes(budget)}: not even batch 1 fits: its training "
            f"peak is {human_bytes(one.totals.peak_bytes)}"
        )
    lo, hi = 1, 2
    while hi <= MAX_BATCH and peak(hi) <= budget:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if peak(mid) <= budget else (lo, mid)
    return Fit(budget, lo, memory(a, lo, optimizer, amp), peak(lo + 1))


def sweep(
    a: Analysis, batches: list[int], optimizer: str = "adam", amp: str | None = None
) -> list[Memory]:
    """Memory at each batch size (``--batch 1,8,32``)."""
    return [memory(a, b, optimizer, amp) for b in batches]
