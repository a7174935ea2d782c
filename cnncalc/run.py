"""Execute a spec with cnncalc's own numba kernels and check every predicted shape.

The analysis gives the rows (layers and merges, wired by ``Row.inputs``); each row runs the
forward of its :mod:`cnncalc.execute` step (seeded random weights) on seeded random input, and
the measured output shape is compared with the prediction. numba is imported only on this
path (through ``cnncalc.kernels``), never on the ``shapes``/``params`` path.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np

from cnncalc.ahead import Ahead
from cnncalc.analysis import DTYPE_BYTES, Analysis, Row, analyze
from cnncalc.errors import CnncalcError, SpecError, bad_option, shape_text
from cnncalc.execute import Context, plan_from, steps_for
from cnncalc.progress import SILENT, Progress
from cnncalc.spec import Shape, Spec


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
    threads: int  # used
    threads_asked: int  # --threads, or all cores: fewer are used on cores busy elsewhere

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
    from cnncalc.memory import live_bytes

    itemsize = DTYPE_BYTES[a.dtype]
    input_bytes = math.prod(a.input_shape) * a.batch * itemsize
    sizes = {-1: input_bytes, **{r.index: r.activation_bytes for r in a.rows}}
    final = (a.rows[-1].index,) if a.rows else ()
    live = live_bytes(a, sizes, held=final)
    peak = max([input_bytes, *(live[r.index] + _workspace(r, sizes) for r in a.rows)])
    largest = input_bytes
    largest_name = f"the input {shape_text((a.batch, *a.input_shape))}"
    for r in a.rows:
        if r.activation_bytes > largest:
            largest = r.activation_bytes
            shape = shape_text((a.batch, *r.output_shape))
            largest_name = f"the output of {r.where} ({shape})"
    # convolution weights twice: as drawn, and the packed copy the tiled kernels keep
    packed = sum(r.param_bytes for r in a.rows if getattr(r.layer, "kernel_size", None))
    return peak + a.totals.param_bytes + packed, largest_name, largest


def _workspace(row, sizes: dict[int, int]) -> int:
    """An upper bound of the kernel workspace while ``row`` runs: a padded, phase-split copy
    of its inputs (+25% for padding and tile slack), and for a windowed layer with weights
    the im2col matrix the small-convolution path builds (kernel area × the input)."""
    inputs = sum(sizes[i] for i in row.inputs)
    kernel = getattr(row.layer, "kernel_size", None)
    area = math.prod(kernel) if isinstance(kernel, tuple) and row.weights else 0
    return inputs + inputs // 4 + inputs * area


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
    progress: Progress = SILENT,
    ahead: bool = True,
) -> RunResult:
    """Run ``spec`` on seeded random input; every row gets its measured shape and time.

    Weights are drawn from ``numpy.random.default_rng(seed)`` in row order, so a run is
    reproducible. The time of a row is the median of ``repeat`` calls after one warm-up
    call (which also compiles the kernel on first use; compiled code is cached on disk).
    ``progress`` hears of each layer and of each kernel compile (:mod:`cnncalc.progress`).
    ``ahead``: on a cold cache, a helper process compiles the later layers' kernels
    meanwhile (:mod:`cnncalc.ahead`).
    """
    if dtype not in DTYPES:
        raise bad_option("--dtype", dtype, "cnncalc run computes in float32 or float64")
    if repeat < 1:
        raise bad_option("--repeat", repeat, "must be at least 1")
    analysis = analyze(spec, input_shape, batch=batch, dtype=dtype)
    peak = check_memory(analysis, max_memory)
    from cnncalc import kernels as K

    if threads is not None and threads < 1:
        raise bad_option("--threads", threads, "must be at least 1")
    # a maximum: on cores busy with other processes a second thread costs more than it gains
    asked = threads or K.max_threads()
    K.set_num_threads(min(asked, K.idle_cores()))
    np_dtype = DTYPES[dtype]
    plan = plan_from(analysis)
    with Ahead(progress, plan, dtype, batch, enabled=ahead) as watch:
        with K.on_compile(watch.compiling):
            rows = _execute(analysis, plan, np_dtype, seed, batch, repeat, watch)
    return RunResult(analysis, rows, peak, seed, K.get_num_threads(), asked)


def _execute(
    analysis: Analysis, plan: dict, np_dtype, seed: int, batch: int, repeat: int, watch: Ahead
) -> tuple[RunRow, ...]:
    from cnncalc import kernels as K

    rng = np.random.default_rng(seed)
    ctx = Context(theoretical=False, rng=rng, dtype=np_dtype, batch=batch, record=False)
    watch.phase("preparing weights")
    steps = steps_for(plan, [r.index for r in analysis.rows], ctx)
    calls = [steps[r.index].forward for r in analysis.rows]
    x = rng.standard_normal((batch, *analysis.input_shape), dtype=np_dtype)
    values: dict[int, np.ndarray] = {-1: x}
    last_use = {i: r.index for r in analysis.rows for i in r.inputs}
    out_rows = []
    watch.phase("running layer", len(analysis.rows))
    for k, (r, call) in enumerate(zip(analysis.rows, calls)):
        watch.step(k, f"{r.type} {r.name or ''}".strip())
        inputs = [values[i] for i in r.inputs]
        try:
            y = watch.call(call, inputs)  # warm-up (and compile on first use)
            times = []
            for _ in range(repeat):
                y = None  # the last output is dead: freed before the timed call
                t0 = time.perf_counter()
                y = call(inputs)
                times.append((time.perf_counter() - t0) * 1e3)
            K.clear_scratch()  # a padded copy of this layer's input: not kept for the next
        except (ValueError, NotImplementedError) as exc:
            got = ", ".join(shape_text(v.shape[1:]) for v in inputs)
            raise RunError(f"the kernel refused its input ({got}): {exc}", where=r.where) from None
        values[r.index] = y
        for i in r.inputs:  # free what no later row reads
            if last_use.get(i) == r.index:
                values.pop(i, None)
        out_rows.append(RunRow(r, tuple(int(d) for d in y.shape[1:]), statistics.median(times)))
    watch.step(len(analysis.rows), "")
    return tuple(out_rows)
