"""Execute a spec with cnncalc's own numba kernels and check every predicted shape.

The analysis gives the rows (layers and merges, wired by ``Row.inputs``); this module binds
each row to a kernel call with seeded random weights, runs it on seeded random input and
compares the measured output shape with the prediction. numba is imported only here (through
``cnncalc.kernels``), never on the ``shapes``/``params`` path.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import singledispatch

import numpy as np

from cnncalc import layers as L
from cnncalc.analysis import DTYPE_BYTES, Analysis, Row, analyze
from cnncalc.errors import CnncalcError, SpecError
from cnncalc.spec import Shape, Spec

Kernel = Callable[[list[np.ndarray]], np.ndarray]


class MemoryLimitError(CnncalcError):
    """The run would need more memory than allowed."""


class RunError(SpecError):
    """A kernel could not execute a layer (e.g. an earlier measured shape was wrong)."""


@dataclass(frozen=True)
class RunRow:
    row: Row
    measured_shape: Shape
    ms: float  # median over repeats

    @property
    def match(self) -> bool:
        return self.measured_shape == self.row.output_shape

    @property
    def gflops(self) -> float | None:
        if not self.row.macs or self.ms <= 0:
            return None
        return self.row.flops / (self.ms * 1e-3) / 1e9


@dataclass(frozen=True)
class RunResult:
    analysis: Analysis
    rows: tuple[RunRow, ...]
    peak_bytes: int
    seed: int
    threads: int

    @property
    def all_match(self) -> bool:
        return all(r.match for r in self.rows)

    @property
    def ms(self) -> float:
        return sum(r.ms for r in self.rows)

    @property
    def mismatches(self) -> list[RunRow]:
        return [r for r in self.rows if not r.match]


# --------------------------------------------------------------------------- memory guard


def available_memory() -> int:
    """Bytes the OS says are available now (MemAvailable), or total RAM as a fallback."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def peak_estimate(a: Analysis) -> tuple[int, str, int]:
    """(peak bytes, largest tensor's description, its bytes) for executing ``a``.

    Counts every weight and buffer, the input, and the activations alive at each step
    (a row's output lives until its last reader has run), plus one padded copy of the
    current input as kernel workspace.
    """
    itemsize = DTYPE_BYTES[a.dtype]
    input_bytes = math.prod(a.input_shape) * a.batch * itemsize
    last_use: dict[int, int] = {}
    for r in a.rows:
        for i in r.inputs:
            last_use[i] = r.index
    live = {-1: input_bytes}
    peak = largest = input_bytes
    largest_name = f"the input {'×'.join(map(str, (a.batch, *a.input_shape)))}"
    for r in a.rows:
        live[r.index] = r.activation_bytes
        workspace = sum(live.get(i, 0) for i in r.inputs) if r.layer is not None else 0
        peak = max(peak, sum(live.values()) + workspace)
        if r.activation_bytes > largest:
            largest = r.activation_bytes
            shape = "×".join(map(str, (a.batch, *r.output_shape)))
            largest_name = f"the output of {r.where} ({shape})"
        for i in r.inputs:
            if last_use.get(i) == r.index:
                live.pop(i, None)
    return peak + a.totals.param_bytes, largest_name, largest


def check_memory(a: Analysis, limit: int | None) -> int:
    peak, name, size = peak_estimate(a)
    limit = available_memory() // 2 if limit is None else limit
    if peak > limit:
        raise MemoryLimitError(
            f"the run would need about {_gib(peak)} at peak, above the limit of {_gib(limit)} "
            f"(--max-memory); the largest tensor is {name}, {_gib(size)}"
        )
    return peak


def _gib(n: int) -> str:
    from cnncalc.report import human_bytes

    return human_bytes(n)


# --------------------------------------------------------------------------- binding layers


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, dtype) -> np.ndarray:
    """PyTorch's default init scale: U(−1/√fan_in, 1/√fan_in) keeps deep nets finite."""
    bound = 1.0 / math.sqrt(max(1, fan_in))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


@singledispatch
def bind(layer: L.Layer, in_shape: Shape, rng: np.random.Generator, dtype) -> Kernel:
    """A kernel call for ``layer`` on inputs of ``in_shape`` (no batch), weights drawn now."""
    raise NotImplementedError(f"cnncalc run has no kernel for {layer.kind}")


@bind.register
def _(layer: L._Elementwise, in_shape, rng, dtype) -> Kernel:
    from cnncalc import kernels as K

    kind = layer.kind
    simple = {"relu": K.relu, "relu6": K.relu6, "selu": K.selu, "silu": K.silu, "mish": K.mish,
              "hardswish": K.hardswish, "hardsigmoid": K.hardsigmoid, "sigmoid": K.sigmoid,
              "tanh": K.tanh}
    if kind in simple:
        f = simple[kind]
        return lambda xs: f(xs[0])
    if kind.startswith(("dropout", "alpha_dropout")) or kind == "identity":
        return lambda xs: xs[0]  # inference: dropout is the identity
    if kind == "leaky_relu":
        return lambda xs: K.leaky_relu(xs[0], layer.negative_slope)
    if kind in ("elu", "celu"):
        f = K.elu if kind == "elu" else K.celu
        return lambda xs: f(xs[0], layer.alpha)
    if kind == "gelu":
        return lambda xs: K.gelu(xs[0], layer.approximate)
    if kind == "hardtanh":
        return lambda xs: K.hardtanh(xs[0], layer.min_val, layer.max_val)
    if kind == "softplus":
        return lambda xs: K.softplus(xs[0], layer.beta, layer.threshold)
    if kind in ("softmax", "log_softmax"):
        f = K.softmax if kind == "softmax" else K.log_softmax
        rank = len(in_shape) + 1
        # PyTorch's legacy implicit dim (_get_softmax_dim) when dim is None
        dim = layer.dim if layer.dim is not None else (0 if rank in (0, 1, 3) else 1)
        return lambda xs: f(xs[0], dim)
    raise NotImplementedError(f"cnncalc run has no kernel for {kind}")


@bind.register
def _(layer: L.PReLU, in_shape, rng, dtype) -> Kernel:
    from cnncalc import kernels as K

    w = np.full(layer.num_parameters, layer.init, dtype=dtype)
    return lambda xs: K.prelu(xs[0], w)


@bind.register
def _(layer: L._ConvNd, in_shape, rng, dtype) -> Kernel:
    from cnncalc import kernels as K

    c_in, g, k = in_shape[0], layer.groups, layer.kernel_size
    fan_in = (c_in // g) * math.prod(k)
    b = _uniform(rng, (layer.out_channels,), fan_in, dtype) if layer.bias else None
    table = getattr(layer, "connections", None)
    if table is not None:
        width = max(len(row) for row in table)
        w = _uniform(rng, (layer.out_channels, width, *k), fan_in, dtype)
        return lambda xs: K.conv2d_table(xs[0], w, b, table, layer.stride, layer.padding)
    w = _uniform(rng, (layer.out_channels, c_in // g, *k), fan_in, dtype)
    f = {1: K.conv1d, 2: K.conv2d, 3: K.conv3d}[layer.dims]
    padding = layer.padding
    if layer.padding_mode != "zeros" and padding != "valid":
        # reflect/replicate/circular: pad with numpy first, as PyTorch's F.pad would
        from cnncalc.arithmetic import same_padding

        pairs = ([same_padding(ki, di) for ki, di in zip(k, layer.dilation)]
                 if padding == "same" else [(p, p) for p in padding])
        mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[layer.padding_mode]
        widths = [(0, 0), (0, 0), *pairs]
        return lambda xs: f(np.pad(xs[0], widths, mode=mode), w, b, layer.stride, 0,
                            layer.dilation, g)
    return lambda xs: f(xs[0], w, b, layer.stride, padding, layer.dilation, g)


@bind.register
def _(layer: L._ConvTransposeNd, in_shape, rng, dtype) -> Kernel:
    from cnncalc import kernels as K

    c_in, g = in_shape[0], layer.groups
    fan_in = (layer.out_channels // g) * math.prod(layer.kernel_size)
    w = _uniform(rng, (c_in, layer.out_channels // g, *layer.kernel_size), fan_in, dtype)
    b = _uniform(rng, (layer.out_channels,), fan_in, dtype) if layer.bias else None
    f = {1: K.conv_transpose1d, 2: K.conv_transpose2d}[layer.dims]
    return lambda xs: f(xs[0], w, b, layer.stride, layer.padding, layer.output_padding, g,
                        layer.dilation)


@bind.register
def _(layer: L._MaxPoolNd, in_shape, rng, dtype) -> Kernel:
    from cnncalc import kernels as K

    f = {1: K.max_pool1d, 2: K.max_pool2d}[layer.dims]
    return lambda xs: f(xs[0], layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                        layer.ceil_mode)


@bind.register
def _(layer: L._AvgPoolNd, in_shape, rng, dtype) -> Kernel:
    from cnncalc import kernels as K

    f = {1: K.avg_pool1d, 2: K.avg_pool2d}[layer.dims]
    return lambda xs: f(xs[0], layer.kernel_size, layer.stride, layer.padding, layer.ceil_mode,
                        layer.count_include_pad, layer.divisor_override)


@bind.register
def _(layer: L._AdaptiveNd, in_shape, rng, dtype) -> Kernel:
    from cnncalc import kernels as K

    f = {
        "adaptive_avgpool1d": K.adaptive_avg_pool1d,
        "adaptive_avgpool2d": K.adaptive_avg_pool2d,
        "adaptive_maxpool1d": K.adaptive_max_pool1d,
        "adaptive_maxpool2d": K.adaptive_max_pool2d,
    }[layer.kind]
    size = layer.output_size if layer.dims > 1 else layer.output_size[0]
    return lambda xs: f(xs[0], size)


@bind.register
def _(layer: L.Subsample2d, in_shape, rng, dtype) -> Kernel:
    from cnncalc import kernels as K

    fan_in = math.prod(layer.kernel_size)
    w = _uniform(rng, (in_shape[0],), fan_in, dtype)
    b = _uniform(rng, (in_shape[0],), fan_in, dtype)
    return lambda xs: K.subsample2d(xs[0], w, b, layer.kernel_size, layer.stride)


@bind.register
def _(layer: L._ZeroPadNd, in_shape, rng, dtype) -> Kernel:
    from cnncalc import kernels as K

    return lambda xs: K.pad(xs[0], layer.padding)


@bind.register
def _(layer: L.Upsample, in_shape, rng, dtype) -> Kernel:
    from cnncalc import kernels as K

    return lambda xs: K.interpolate(xs[0], size=layer.size, scale_factor=layer.scale_factor)


@bind.register
def _(layer: L.Flatten, in_shape, rng, dtype) -> Kernel:
    rank = len(in_shape) + 1
    start = layer.start_dim % rank
    end = layer.end_dim % rank

    def flatten(xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0]
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])

    return flatten


@bind.register
def _(layer: L.Linear, in_shape, rng, dtype) -> Kernel:
    from cnncalc import kernels as K

    n = in_shape[-1]
    w = _uniform(rng, (layer.out_features, n), n, dtype)
    b = _uniform(rng, (layer.out_features,), n, dtype) if layer.bias else None
    return lambda xs: K.linear(xs[0], w, b)


@bind.register
def _(layer: L.RBF, in_shape, rng, dtype) -> Kernel:
    from cnncalc import kernels as K

    w = rng.choice(np.array([-1.0, 1.0], dtype=dtype), size=(layer.out_features, in_shape[0]))
    return lambda xs: K.rbf(xs[0], w)


@bind.register
def _(layer: L._BatchNormNd, in_shape, rng, dtype) -> Kernel:
    from cnncalc import kernels as K

    c = in_shape[0]
    mean = rng.standard_normal(c).astype(dtype) * 0.1
    var = rng.uniform(0.5, 1.5, c).astype(dtype)
    weight = rng.uniform(0.5, 1.5, c).astype(dtype) if layer.affine else None
    bias = rng.standard_normal(c).astype(dtype) * 0.1 if layer.affine else None
    return lambda xs: K.batch_norm(xs[0], mean, var, weight, bias, eps=layer.eps)


def _merge(kind: str) -> Kernel:
    from cnncalc import kernels as K

    if kind == "add":
        return lambda xs: K.add(*xs)
    return lambda xs: K.cat(xs, dim=1)


# --------------------------------------------------------------------------- running


DTYPES = {"float32": np.float32, "float64": np.float64}


def run(
    spec: Spec,
    input_shape: Shape | None = None,
    *,
    batch: int = 1,
    seed: int = 0,
    dtype: str = "float32",
    repeat: int = 1,
    threads: int | None = None,
    max_memory: int | None = None,
    progress: Callable[[int, int, Row], None] | None = None,
) -> RunResult:
    """Run ``spec`` on seeded random input; every row gets its measured shape and time.

    Weights are drawn from ``numpy.random.default_rng(seed)`` in row order, so a run is
    reproducible. The time of a row is the median of ``repeat`` calls after one warm-up
    call (which also compiles the kernel on first use; compiled code is cached on disk).
    """
    if dtype not in DTYPES:
        raise SpecError("cnncalc run computes in float32 or float64", where="option",
                        field="--dtype", value=dtype, has_value=True)
    if repeat < 1:
        raise SpecError("must be at least 1", where="option", field="--repeat", value=repeat,
                        has_value=True)
    analysis = analyze(spec, input_shape, batch=batch, dtype=dtype)
    peak = check_memory(analysis, max_memory)
    from cnncalc import kernels as K

    if threads is not None:
        if threads < 1:
            raise SpecError("must be at least 1", where="option", field="--threads",
                            value=threads, has_value=True)
        K.set_num_threads(threads)
    np_dtype = DTYPES[dtype]
    rng = np.random.default_rng(seed)
    calls = [_merge(r.type) if r.layer is None else bind(r.layer, r.input_shape, rng, np_dtype)
             for r in analysis.rows]
    x = rng.standard_normal((batch, *analysis.input_shape)).astype(np_dtype)
    values: dict[int, np.ndarray] = {-1: x}
    last_use = {i: r.index for r in analysis.rows for i in r.inputs}
    out_rows = []
    for r, call in zip(analysis.rows, calls):
        if progress is not None:
            progress(r.index, len(analysis.rows), r)
        inputs = [values[i] for i in r.inputs]
        try:
            y = call(inputs)  # warm-up (and compile on first use)
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                y = call(inputs)
                times.append((time.perf_counter() - t0) * 1e3)
        except (ValueError, NotImplementedError) as exc:
            got = ", ".join("×".join(map(str, v.shape[1:])) for v in inputs)
            raise RunError(f"the kernel refused its input ({got}): {exc}", where=r.where
                           ) from None
        values[r.index] = y
        for i in r.inputs:  # free what no later row reads
            if last_use.get(i) == r.index:
                values.pop(i, None)
        out_rows.append(RunRow(r, tuple(int(d) for d in y.shape[1:]), statistics.median(times)))
    return RunResult(analysis, tuple(out_rows), peak, seed, K.get_num_threads())
