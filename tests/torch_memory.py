"""PyTorch as the oracle for training memory (imported only where torch is installed).

* :func:`measure` runs one training step of a torch module and reports what PyTorch itself
  holds: the bytes of the distinct storages autograd saves for backward
  (``torch.autograd.graph.saved_tensors_hooks``; parameters and buffers excluded), the
  gradient bytes after ``backward()`` and the optimizer state after one ``step()``.
* :func:`build` turns a cnncalc analysis into a torch module row by row (``torch.nn``
  classes with the spec's fields), for types torchvision has no model for.
* :func:`torchvision_model` builds the zoo's torchvision models (torchvision's compiled ops
  may not load beside a CPU torch: they are stubbed, the models are plain ``nn`` code).

Nothing here imports cnncalc's memory model: the figures are PyTorch's.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import torch
from torch import nn

OPTIMIZERS = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.01),
    "momentum": lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-3),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-3),
}
TORCH_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


@dataclass(frozen=True)
class Measured:
    saved_activation_bytes: int  # distinct storages autograd keeps, params/buffers excluded
    gradient_bytes: int
    optimizer_bytes: int
    output_bytes: int


def measure(
    module: nn.Module,
    input_shape: tuple[int, ...],
    batch: int,
    optimizer: str = "adam",
    dtype: str = "float32",
    amp: str | None = None,
    seed: int = 0,
) -> Measured:
    """One training step (train mode) of ``module`` on a random batch, measured.

    The module may live on the ``meta`` device: autograd records the same graph and keeps
    the same tensors (checked against the CPU in the tests), without computing anything.
    Storages are told apart by their ``StorageImpl`` (``_cdata``), which also works on meta.
    """
    torch.manual_seed(seed)
    module.train()
    if amp is None:
        module.to(TORCH_DTYPES[dtype])
    device = next(module.parameters()).device
    x = torch.randn(
        batch,
        *input_shape,
        device=device,
        dtype=TORCH_DTYPES[dtype] if amp is None else torch.float32,
    )
    own = {t.untyped_storage()._cdata for t in [*module.parameters(), *module.buffers()]}
    kept: dict[int, torch.Tensor] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = t.untyped_storage()._cdata
        if key not in own:
            kept[key] = t  # holding it keeps the storage (and its address) alive
        return t

    # CPU autocast's op lists (the meta device follows them too)
    ctx = (
        torch.autocast("cpu", dtype=TORCH_DTYPES[amp])
        if amp
        else torch.autocast("cpu", enabled=False)
    )
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), ctx:
        y = module(x)
    saved = sum(t.untyped_storage().nbytes() for t in kept.values())
    out_bytes = y.untyped_storage().nbytes()
    y.float().sum().backward()
    grads = sum(
        p.grad.untyped_storage().nbytes() for p in module.parameters() if p.grad is not None
    )
    opt = OPTIMIZERS[optimizer]([p for p in module.parameters() if p.requires_grad])
    opt.step()
    state = sum(
        v.untyped_storage().nbytes()
        for s in opt.state.values()
        for v in s.values()
        if isinstance(v, torch.Tensor)
    )
    return Measured(saved, grads, state, out_bytes)


# --------------------------------------------------------------------------- spec -> torch


def _nd(kind: str) -> int:
    return int(kind[-2]) if kind.endswith("d") and kind[-2].isdigit() else 2


def _layer(layer, in_shapes) -> nn.Module | None:
    """The torch.nn module for one cnncalc layer (None for merges: done in forward)."""
    k = layer.kind
    f = layer.model_dump()
    c = in_shapes[0][0]
    if k.startswith("conv_transpose"):
        cls = getattr(nn, f"ConvTranspose{_nd(k)}d")
        return cls(
            c,
            f["out_channels"],
            f["kernel_size"],
            f["stride"],
            f["padding"],
            f["output_padding"],
            f["groups"],
            f["bias"],
            f["dilation"],
        )
    if k.startswith("conv"):
        cls = getattr(nn, f"Conv{_nd(k)}d")
        return cls(
            c,
            f["out_channels"],
            f["kernel_size"],
            f["stride"],
            f["padding"],
            f["dilation"],
            f["groups"],
            f["bias"],
            f["padding_mode"],
        )
    if k.startswith("maxpool"):
        return getattr(nn, f"MaxPool{_nd(k)}d")(
            f["kernel_size"], f["stride"], f["padding"], f["dilation"], ceil_mode=f["ceil_mode"]
        )
    if k.startswith("avgpool"):
        extra = {"divisor_override": f["divisor_override"]} if _nd(k) == 2 else {}
        return getattr(nn, f"AvgPool{_nd(k)}d")(
            f["kernel_size"],
            f["stride"],
            f["padding"],
            f["ceil_mode"],
            f["count_include_pad"],
            **extra,
        )
    if k.startswith("adaptive_avgpool"):
        return getattr(nn, f"AdaptiveAvgPool{_nd(k)}d")(f["output_size"])
    if k.startswith("adaptive_maxpool"):
        return getattr(nn, f"AdaptiveMaxPool{_nd(k)}d")(f["output_size"])
    if k.startswith("zeropad"):
        return getattr(nn, f"ZeroPad{_nd(k)}d")(f["padding"])
    if k.startswith("batchnorm"):
        return getattr(nn, f"BatchNorm{_nd(k)}d")(
            c, f["eps"], f["momentum"], f["affine"], f["track_running_stats"]
        )
    if k.startswith("instance_norm"):
        return getattr(nn, f"InstanceNorm{_nd(k)}d")(
            c, f["eps"], f["momentum"], f["affine"], f["track_running_stats"]
        )
    simple = {
        "upsample": lambda: nn.Upsample(f["size"], f["scale_factor"], "nearest"),
        "flatten": lambda: nn.Flatten(f["start_dim"], f["end_dim"]),
        "narrow": lambda: _Lambda(lambda x: x.narrow(f["dim"], f["start"], f["length"])),
        "linear": lambda: nn.Linear(in_shapes[0][-1], f["out_features"], f["bias"]),
        "dropout": lambda: nn.Dropout(f["p"], f["inplace"]),
        "dropout1d": lambda: nn.Dropout1d(f["p"], f["inplace"]),
        "dropout2d": lambda: nn.Dropout2d(f["p"], f["inplace"]),
        "dropout3d": lambda: nn.Dropout3d(f["p"], f["inplace"]),
        "alpha_dropout": lambda: nn.AlphaDropout(f["p"], f["inplace"]),
        "identity": nn.Identity,
        "relu": lambda: nn.ReLU(f["inplace"]),
        "relu6": lambda: nn.ReLU6(f["inplace"]),
        "selu": lambda: nn.SELU(f["inplace"]),
        "silu": lambda: nn.SiLU(f["inplace"]),
        "mish": lambda: nn.Mish(f["inplace"]),
        "hardswish": lambda: nn.Hardswish(f["inplace"]),
        "hardsigmoid": lambda: nn.Hardsigmoid(f["inplace"]),
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "leaky_relu": lambda: nn.LeakyReLU(f["negative_slope"], f["inplace"]),
        "elu": lambda: nn.ELU(f["alpha"], f["inplace"]),
        "celu": lambda: nn.CELU(f["alpha"], f["inplace"]),
        "gelu": lambda: nn.GELU(f["approximate"]),
        "hardtanh": lambda: nn.Hardtanh(f["min_val"], f["max_val"], f["inplace"]),
        "softplus": lambda: nn.Softplus(f["beta"], f["threshold"]),
        "softmax": lambda: nn.Softmax(f["dim"]),
        "log_softmax": lambda: nn.LogSoftmax(f["dim"]),
        "prelu": lambda: nn.PReLU(f["num_parameters"], f["init"]),
        "subsample2d": lambda: _Subsample(c, f["kernel_size"], f["stride"]),
        "rbf": lambda: _RBF(in_shapes[0][-1], f["out_features"]),
        "group_norm": lambda: nn.GroupNorm(f["num_groups"], c, f["eps"], f["affine"]),
        "layer_norm": lambda: nn.LayerNorm(
            f["normalized_shape"], f["eps"], f["elementwise_affine"], f["bias"]
        ),
        "layer_norm2d": lambda: _LayerNorm2d(c, f["eps"], f["elementwise_affine"], f["bias"]),
        "stochastic_depth": lambda: _StochasticDepth(f["p"], f["mode"]),
        "layer_scale": lambda: _LayerScale(c, f["init_value"]),
        "channel_shuffle": lambda: nn.ChannelShuffle(f["groups"]),
        "permute": lambda: _Lambda(lambda x: x.permute(*f["order"])),
        "unflatten": lambda: nn.Unflatten(f["dim"], f["unflattened_size"]),
        "pixel_shuffle": lambda: nn.PixelShuffle(f["upscale_factor"]),
        "pixel_unshuffle": lambda: nn.PixelUnshuffle(f["downscale_factor"]),
    }
    if k in ("add", "concat", "mul"):
        return None
    return simple[k]()


class _Lambda(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class _Subsample(nn.Module):
    """LeNet-1998 sub-sampling: window sum × a trainable coefficient + a bias, per map."""

    def __init__(self, c: int, k, s) -> None:
        super().__init__()
        self.k, self.s = tuple(k), tuple(s)
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        area = self.k[0] * self.k[1]
        pooled = nn.functional.avg_pool2d(x, self.k, self.s) * area
        return pooled * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class _RBF(nn.Module):
    """LeNet-1998 output: squared Euclidean distance to fixed centres."""

    def __init__(self, n: int, m: int) -> None:
        super().__init__()
        self.centres = nn.Parameter(torch.ones(m, n), requires_grad=False)

    def forward(self, x):
        return ((x[:, None, :] - self.centres) ** 2).sum(-1)


class _LayerNorm2d(nn.LayerNorm):
    """torchvision.models.convnext.LayerNorm2d: permute, layer_norm, permute back."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class _StochasticDepth(nn.Module):
    """torchvision.ops.stochastic_depth, line for line (training mode)."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        survival_rate = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device)
        noise = noise.bernoulli_(survival_rate)
        if survival_rate > 0.0:
            noise.div_(survival_rate)
        return x * noise


class _LayerScale(nn.Module):
    """torchvision's CNBlock: ``self.layer_scale * self.block(input)``, a C×1×1 parameter."""

    def __init__(self, c: int, init_value: float) -> None:
        super().__init__()
        self.layer_scale = nn.Parameter(torch.ones(c, 1, 1) * init_value)

    def forward(self, x):
        return self.layer_scale * x


class Built(nn.Module):
    """A cnncalc analysis executed with torch: one module per row, wired by ``Row.inputs``."""

    def __init__(self, analysis) -> None:
        super().__init__()
        self.wiring = []
        self.mods = nn.ModuleList()
        for r in analysis.rows:
            shapes = [
                analysis.input_shape if i < 0 else analysis.rows[i].output_shape for i in r.inputs
            ]
            mod = _layer(r.layer, shapes)
            self.mods.append(mod if mod is not None else nn.Identity())
            self.wiring.append((r.layer.kind, r.inputs, mod is None))

    def forward(self, x):
        values = {-1: x}
        y = x
        for i, ((kind, inputs, merge), mod) in enumerate(zip(self.wiring, self.mods)):
            xs = [values[j] for j in inputs]
            if not merge:
                y = mod(xs[0])
            elif kind == "add":
                y = xs[0]
                for other in xs[1:]:
                    y = y + other
            elif kind == "concat":
                y = torch.cat(xs, 1)
            else:
                y = xs[0]
                for other in xs[1:]:
                    y = y * other
            values[i] = y
        return y


def build(analysis, device: str = "cpu") -> nn.Module:
    with torch.device(device):
        return Built(analysis)


# --------------------------------------------------------------------------- torchvision


def torchvision_model(name: str, device: str = "cpu") -> nn.Module:
    with torch.device(device):
        return _torchvision_model(name)


def _torchvision_model(name: str) -> nn.Module:
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("stub"))
    import torchvision.models as tvm

    if name == "googlenet":
        return tvm.googlenet(weights=None, aux_logits=False, init_weights=False)
    return getattr(tvm, name)(weights=None)
