"""Receptive fields: the analytic one per layer, and one measured by back-propagation.

The analytic field comes from the analysis (the Araujo–Norris–Sim recurrence, Distill 2019).
The measured one back-propagates a unit gradient from one output unit to the input through the
whole spec (graph specs too: rows are wired by ``Row.inputs``) with cnncalc's own kernels:

* the *theoretical* field: all-positive weights, max pooling able to pass any element of its
  window, activations passing the gradient unchanged — a positive linear map, so the box of
  non-zero input gradient is exactly the set of inputs that can affect the unit; it must equal
  the analytic size and position;
* the *effective* field (Luo, Li, Urtasun & Zemel, "Understanding the Effective Receptive
  Field in Deep Convolutional Neural Networks", NeurIPS 2016): random weights (seeded), real
  ReLU masks and max routing from a forward pass on random input; the smallest box centred on
  the unit's analytic centre holding a given share of the gradient's absolute mass.

Library code: nothing here prints; :mod:`cnncalc.cli` renders the results.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from cnncalc.analysis import (
    Analysis,
    ReceptiveField,
    RFState,
    Row,
    analyze,
    exact,
    next_field,
    unit_field,
)
from cnncalc.arithmetic import LayerProblem, infer
from cnncalc.errors import SpecError, UsageError, printable, shape_text
from cnncalc.execute import Context, Node, Step, batched, plan_from, steps_for
from cnncalc.progress import SILENT, Progress
from cnncalc.spec import Shape, Spec

# --------------------------------------------------------------------------- analytic


@dataclass(frozen=True)
class LayerField:
    """One row's analytic field; ``centre`` is that of the first output unit."""

    row: Row

    @property
    def field(self) -> ReceptiveField | None:
        return self.row.receptive_field

    @property
    def centre(self) -> tuple[Fraction, ...] | None:
        f = self.field
        return None if f is None else tuple(s + (z - 1) / 2 for s, z in zip(f.start, f.size))


def analytic(a: Analysis) -> list[LayerField]:
    """The analytic receptive field of every row (None where the spatial layout is lost)."""
    return [LayerField(r) for r in a.rows]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Box:
    """An inclusive box of input coordinates, per spatial axis."""

    lo: tuple[int, ...]
    hi: tuple[int, ...]

    @property
    def size(self) -> tuple[int, ...]:
        return tuple(h - lo + 1 for lo, h in zip(self.lo, self.hi))


@dataclass(frozen=True)
class Empirical:
    input_shape: Shape
    enlarged_from: Shape | None  # the spec's input, when it had to grow
    row: Row  # the row whose output unit is measured
    unit: tuple[int, ...]  # (channel, *position) in that row's output
    seed: int
    analytic_lo: tuple[Fraction, ...]  # the unit's analytic field, unclipped
    analytic_hi: tuple[Fraction, ...]
    clipped: tuple[bool, ...]  # per axis: the analytic field leaves the input
    theoretical: Box | None  # None: no input gradient at all
    first_disagreement: Row | None  # the first row whose measured field parts from the formula
    mass: float
    effective: Box | None
    mass_in_box: float
    gradient: np.ndarray = field(repr=False)  # |effective gradient| summed over channels
    seconds: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def analytic_size(self) -> tuple[Fraction, ...]:
        return tuple(h - lo + 1 for lo, h in zip(self.analytic_lo, self.analytic_hi))

    @property
    def centre(self) -> tuple[Fraction, ...]:
        return tuple((lo + h) / 2 for lo, h in zip(self.analytic_lo, self.analytic_hi))

    @property
    def agrees(self) -> bool:
        return self.first_disagreement is None

    @property
    def ratio(self) -> tuple[float, ...] | None:
        if self.effective is None or self.theoretical is None:
            return None
        return tuple(e / t for e, t in zip(self.effective.size, self.theoretical.size))

    @property
    def area_ratio(self) -> float | None:
        r = self.ratio
        return None if r is None else math.prod(r)


@dataclass(frozen=True)
class RFResult:
    analysis: Analysis
    layers: list[LayerField]
    empirical: Empirical | None = None


def receptive_fields(
    spec: Spec,
    input_shape: Shape | None = None,
    *,
    empirical: bool = False,
    unit: tuple[int, ...] | None = None,
    mass: float = 0.95,
    seed: int = 0,
    progress: Progress = SILENT,
) -> RFResult:
    """The analytic field per layer and, with ``empirical``, the measured one (see module doc).

    ``unit`` is (channel, *position) in the last spatial row's output; by default the centre
    position, on an input enlarged (when possible) until the field fits inside it, and the
    channel most active there in the effective pass (a dead ReLU unit has no gradient).
    """
    a = analyze(spec, input_shape)
    result = RFResult(a, analytic(a))
    if not empirical:
        return result
    return RFResult(
        a, result.layers, measure(a, unit=unit, mass=mass, seed=seed, progress=progress)
    )


# --------------------------------------------------------------------------- plan


def _ancestors(a: Analysis, target: int) -> list[int]:
    need, todo = set(), [target]
    while todo:
        i = todo.pop()
        if i < 0 or i in need:
            continue
        need.add(i)
        todo.extend(a.rows[i].inputs)
    return sorted(need)


def _derive(a: Analysis, rows: list[int], shape: Shape) -> dict[int, Node] | None:
    """The rows ``rows`` re-derived on another input shape (None if a layer refuses it).

    Only the rows the measurement runs are derived, so layers after it (a linear layer with a
    fixed in_features after a flatten) do not forbid a larger input.
    """
    vals: dict[int, tuple[Shape, RFState]] = {-1: (shape, RFState.initial(shape))}
    plan = {}
    for i in rows:
        r = a.rows[i]
        ins = [vals[j] for j in r.inputs]
        try:
            facts = infer(r.layer, *(s for s, _ in ins))
        except LayerProblem:
            return None
        out = facts.output_shape
        state, _ = next_field(facts, [st for _, st in ins], tuple(s for s, _ in ins))
        vals[i] = (out, state)
        plan[i] = Node(r, tuple(s for s, _ in ins), out, state.field)
    return plan


def target_row(a: Analysis) -> Row:
    """The last row whose output keeps the input's spatial rank (and a receptive field),
    stepping back over trailing adaptive pools: a global pool's field is the whole input,
    however large, so it could never fit inside it."""
    rank = len(a.input_shape)
    cands = [r for r in a.rows if len(r.output_shape) == rank and r.receptive_field is not None]
    if not cands:
        raise SpecError(
            "no layer keeps the input's spatial layout: there is no spatial unit to measure",
            where="spec",
        )
    r = cands[-1]
    while r.type.startswith("adaptive_") and r.inputs[0] >= 0:
        r = a.rows[r.inputs[0]]
    return r


def _unit_box(plan: dict[int, Node], target: int, pos: tuple[int, ...]):
    """The analytic field of one unit, exact for every unit (analysis.unit_field); the
    recurrence's start + i·jump where that walk cannot go (none of our layers today)."""
    nodes = {i: (n.row.layer, n.row.inputs, n.in_shapes) for i, n in plan.items()}
    exact = unit_field(nodes, target, pos)
    if exact is not None:
        return exact
    f = plan[target].field
    lo = tuple(s + i * j for s, i, j in zip(f.start, pos, f.jump))
    return lo, tuple(low + z - 1 for low, z in zip(lo, f.size))


def _centre_unit(out_shape: Shape) -> tuple[int, ...]:
    return (0, *((n - 1) // 2 for n in out_shape[1:]))


def _clipped(lo, hi, spatial) -> tuple[bool, ...]:
    return tuple(low < 0 or h > n - 1 for low, h, n in zip(lo, hi, spatial))


def _enlarge(a: Analysis, target: int, rows: list[int]) -> tuple[Shape, dict[int, Node]] | None:
    """The smallest tried input (growing the clipped axes by the field's jump) on which the
    centre unit's field fits inside the input; None if no tried size works."""
    f = a.rows[target].receptive_field
    shape = a.input_shape
    steps = [max(1, math.ceil(j)) for j in f.jump]
    lo, hi = _unit_box(plan_from(a), target, _centre_unit(a.rows[target].output_shape)[1:])
    grow = _clipped(lo, hi, shape[1:])
    need = [max(1, math.ceil(z)) for z in f.size]
    for k in range(1, 257):
        spatial = tuple(n + k * st if g else n for n, st, g in zip(shape[1:], steps, grow))
        if any(n < z for n, z, g in zip(spatial, need, grow) if g):
            continue
        cand = (shape[0], *spatial)
        plan = _derive(a, rows, cand)
        if plan is None or plan[target].field is None:
            continue
        lo, hi = _unit_box(plan, target, _centre_unit(plan[target].out_shape)[1:])
        if not any(_clipped(lo, hi, spatial)):
            return cand, plan
    return None


# --------------------------------------------------------------------------- back-propagation


def _forward(
    plan: dict[int, Node],
    rows: list[int],
    steps: dict[int, Step],
    x: np.ndarray,
    target: int,
    progress: Progress = SILENT,
) -> np.ndarray:
    """Run the rows in order so every step records what its backward needs; the target's
    output is returned."""
    values = {-1: x}
    last_use = {j: i for i in rows for j in plan[i].row.inputs}
    for k, i in enumerate(rows):
        progress.step(k, _label(plan[i].row))
        ins = plan[i].row.inputs
        values[i] = steps[i].forward([values[j] for j in ins])
        for j in ins:
            if last_use.get(j) == i:
                values.pop(j, None)
    return values[target]


def _label(row: Row) -> str:
    return f"{row.type} {row.name or ''}".strip()


def _backward(
    plan: dict[int, Node],
    rows: list[int],
    steps: dict[int, Step],
    target: int,
    unit: tuple,
    dtype,
    normalise: bool,
    progress: Progress = SILENT,
) -> np.ndarray:
    """d(output unit)/d(input): a one-hot gradient at ``unit`` (channel None: every channel)
    of row ``target``, walked back through every row that feeds it (gradients of rows read
    twice add up)."""
    gy = np.zeros(batched(plan[target].out_shape), dtype)
    gy[(0, slice(None) if unit[0] is None else unit[0], *unit[1:])] = 1
    grads: dict[int, np.ndarray] = {target: gy}
    feeding = set(_ancestor_rows(plan, target))
    for k, i in enumerate(reversed(rows)):
        if i not in feeding or i not in grads:
            continue
        progress.step(k, _label(plan[i].row))
        g = grads.pop(i)
        for j, gx in zip(plan[i].row.inputs, steps[i].backward(g)):
            if normalise:  # positive values: keep the largest at 1 (no overflow/underflow)
                top = gx.max() if gx.size else 0
                gx = gx / top if top > 0 else gx
            grads[j] = gx if j not in grads else grads[j] + gx
    return grads.get(-1, np.zeros(batched(plan[rows[0]].in_shapes[0]), dtype))


def _ancestor_rows(plan: dict[int, Node], target: int) -> list[int]:
    need, todo = set(), [target]
    while todo:
        i = todo.pop()
        if i < 0 or i in need:
            continue
        need.add(i)
        todo.extend(plan[i].row.inputs)
    return sorted(need)


def _support(g: np.ndarray) -> Box | None:
    """The bounding box of the non-zero entries over the spatial axes."""
    nz = np.abs(g).reshape(g.shape[0] * g.shape[1], *g.shape[2:]).sum(axis=0) > 0
    if not nz.any():
        return None
    lo, hi = [], []
    for axis in range(nz.ndim):
        other = tuple(k for k in range(nz.ndim) if k != axis)
        idx = np.flatnonzero(nz.any(axis=other) if other else nz)
        lo.append(int(idx[0]))
        hi.append(int(idx[-1]))
    return Box(tuple(lo), tuple(hi))


def _expected(lo, hi, spatial) -> tuple[tuple, tuple]:
    """The analytic box clipped to the input."""
    return (tuple(max(low, 0) for low in lo), tuple(min(h, n - 1) for h, n in zip(hi, spatial)))


def _agrees(box: Box | None, lo, hi, spatial) -> bool:
    elo, ehi = _expected(lo, hi, spatial)
    if any(low > h for low, h in zip(elo, ehi)):
        return box is None
    return box is not None and box.lo == elo and box.hi == ehi


def _theoretical_box(
    plan, rows, target, unit, seed, progress: Progress = SILENT
) -> tuple[Box | None, dict[int, Step]]:
    """The non-zero box of the positive network's input gradient from every channel at the
    unit's position: the analytic field is per position (through a concat each channel sees
    only its own branch; the formula gives the union)."""
    ctx = Context(True, np.random.default_rng(seed), np.float64)
    sub = _ancestor_rows(plan, target)
    steps = steps_for(plan, sub, ctx)
    g = _backward(
        plan, sub, steps, target, (None, *unit[1:]), np.float64, normalise=True, progress=progress
    )
    return _support(g), steps


def _first_disagreement(
    plan: dict[int, Node], rows: list[int], target: int, spatial, seed: int
) -> Row:
    """Bisect the spatial rows feeding ``target`` for the first whose centre unit's measured
    theoretical field parts from the analytic one."""
    rank = len(plan[target].out_shape)
    cands = [
        i
        for i in _ancestor_rows(plan, target)
        if len(plan[i].out_shape) == rank and plan[i].field is not None
    ]

    def agrees(i: int) -> bool:
        unit = _centre_unit(plan[i].out_shape)
        box, _ = _theoretical_box(plan, rows, i, unit, seed)
        lo, hi = _unit_box(plan, i, unit[1:])
        return _agrees(box, lo, hi, spatial)

    lo, hi = 0, len(cands) - 1  # cands[hi] disagrees (the target)
    while lo < hi:
        mid = (lo + hi) // 2
        if agrees(cands[mid]):
            lo = mid + 1
        else:
            hi = mid
    return plan[cands[lo]].row


def _effective_box(gmap: np.ndarray, centre, tbox: Box, share: float) -> tuple[Box, float]:
    """The smallest box centred on ``centre`` (grown by half a pixel per side and step, each
    axis capped at the theoretical box) holding ``share`` of the absolute gradient mass."""
    total = float(gmap.sum())
    if total <= 0:
        return tbox, 0.0
    cum = gmap.astype(np.float64)
    for axis in range(cum.ndim):
        cum = np.cumsum(cum, axis=axis)
    cum = np.pad(cum, [(1, 0)] * cum.ndim)

    def box_mass(lo, hi) -> float:
        s = 0.0
        for corner in range(2 ** len(lo)):
            idx, sign = [], 1
            for a in range(len(lo)):
                if corner >> a & 1:
                    idx.append(lo[a])
                    sign = -sign
                else:
                    idx.append(hi[a] + 1)
            s += sign * cum[tuple(idx)]
        return s

    half = [(h - lo) / 2 for lo, h in zip(tbox.lo, tbox.hi)]
    h = Fraction(0)
    while True:
        lo = tuple(max(math.ceil(c - min(h, hf)), tl) for c, hf, tl in zip(centre, half, tbox.lo))
        hi = tuple(min(math.floor(c + min(h, hf)), th) for c, hf, th in zip(centre, half, tbox.hi))
        if all(low <= hh for low, hh in zip(lo, hi)):
            m = box_mass(lo, hi) / total
            if m >= share - 1e-12 or (lo == tbox.lo and hi == tbox.hi):
                return Box(lo, hi), m
        if h > max(half) + 1:
            return tbox, box_mass(tbox.lo, tbox.hi) / total
        h += Fraction(1, 2)


def parse_unit(text: str, rank: int) -> tuple[int, ...]:
    """'c,y,x' (or 'c,x' for 1-D) -> ints; a malformed value is a usage error."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(
            f"--unit={text!r}: expected {rank + 1} comma-separated integers "
            f"({'c,' + ','.join('yx'[-rank:] if rank <= 2 else 'zyx')})"
        ) from None
    if len(values) != rank + 1:
        raise UsageError(
            f"--unit={text!r}: expected {rank + 1} values (channel and "
            f"{rank} position(s)), got {len(values)}"
        )
    return values


def measure(
    a: Analysis,
    *,
    unit: tuple[int, ...] | None = None,
    mass: float = 0.95,
    seed: int = 0,
    progress: Progress = SILENT,
) -> Empirical:
    """Back-propagate from one unit of the last spatial row (see the module docstring);
    ``progress`` hears of each pass, layer and kernel compile."""
    if not 0 < mass <= 1:
        raise UsageError(f"--mass={mass}: must be in (0, 1]")
    spatial_rank = len(a.input_shape) - 1
    if spatial_rank not in (1, 2, 3):
        raise SpecError(
            "the empirical field is measured on 1-D, 2-D and 3-D inputs only", where="input"
        )
    target = target_row(a).index
    rows = _ancestors(a, target)
    plan = plan_from(a)
    notes: list[str] = []
    shape, enlarged_from = a.input_shape, None
    chosen = unit
    if unit is not None:
        out = plan[target].out_shape
        if len(unit) != len(out) or any(not 0 <= u < n for u, n in zip(unit, out)):
            raise UsageError(
                f"--unit={','.join(map(str, unit))}: outside the output "
                f"{shape_text(out)} of {plan[target].row.where}"
            )
    else:
        unit = _centre_unit(plan[target].out_shape)
        lo, hi = _unit_box(plan, target, unit[1:])
        if any(_clipped(lo, hi, shape[1:])):
            found = _enlarge(a, target, rows)
            if found is not None and _memory_need(found[1], rows, found[0]) > _memory_limit():
                from cnncalc.report import human_bytes

                big = shape_text(found[0])
                notes.append(
                    f"the field would fit in a {big} input, but measuring it there "
                    f"needs about {human_bytes(_memory_need(found[1], rows, found[0]))}"
                    "; measured on the spec's input instead"
                )
            elif found is None:
                notes.append(
                    "the input could not be enlarged enough for the field to fit "
                    "(a layer refuses larger inputs, or the field grows with them)"
                )
            else:
                enlarged_from, (shape, plan) = shape, found
                unit = _centre_unit(plan[target].out_shape)
                notes.append(
                    f"input enlarged from {shape_text(enlarged_from)} to "
                    f"{shape_text(shape)} so that the field is not clipped"
                )
    lo, hi = _unit_box(plan, target, unit[1:])
    clipped = _clipped(lo, hi, shape[1:])
    if any(clipped):
        notes.append(
            "the field is clipped by the input's border; the measured boxes are "
            "compared with the analytic one clipped to the input"
        )
    _guard_memory(plan, rows, shape)
    from cnncalc import kernels as K

    with K.on_compile(progress.compiling):
        return _measure(
            plan,
            rows,
            target,
            shape,
            unit,
            chosen,
            lo,
            hi,
            clipped,
            enlarged_from,
            mass,
            seed,
            notes,
            progress,
        )


def _measure(
    plan,
    rows,
    target,
    shape,
    unit,
    chosen,
    lo,
    hi,
    clipped,
    enlarged_from,
    mass,
    seed,
    notes,
    progress: Progress,
) -> Empirical:
    node = plan[target]
    seconds = {}
    progress.phase("preparing weights")
    rng = np.random.default_rng(seed)
    steps = steps_for(plan, rows, Context(False, rng, np.float32))
    x = rng.standard_normal(batched(shape)).astype(np.float32)
    t0 = time.perf_counter()
    progress.phase("forward pass", len(rows))
    y = _forward(plan, rows, steps, x, target, progress)
    seconds["forward"] = time.perf_counter() - t0
    if chosen is None:  # the most active channel at the centre: a dead unit has no gradient
        unit = (int(np.argmax(y[(0, slice(None), *unit[1:])])), *unit[1:])
    t0 = time.perf_counter()
    progress.phase("theoretical field: backward pass (float64)", len(_ancestor_rows(plan, target)))
    tbox, _ = _theoretical_box(plan, rows, target, unit, seed, progress)
    seconds["theoretical"] = time.perf_counter() - t0
    first = None
    if not _agrees(tbox, lo, hi, shape[1:]):
        progress.phase("locating the first layer that disagrees")
        first = _first_disagreement(plan, rows, target, shape[1:], seed)
    t0 = time.perf_counter()
    progress.phase("effective field: backward pass", len(rows))
    g = _backward(plan, rows, steps, target, unit, np.float32, normalise=False, progress=progress)
    seconds["effective"] = time.perf_counter() - t0
    gmap = np.abs(g[0]).astype(np.float64).sum(axis=0)
    centre = tuple((low + h) / 2 for low, h in zip(lo, hi))
    ebox, share = (None, 0.0)
    if tbox is not None and gmap.any():
        ebox, share = _effective_box(gmap, centre, tbox, mass)
    elif tbox is not None:
        notes.append(
            "the unit is inactive on this input (its gradient is zero): no effective "
            "field; choose another --unit or --seed"
        )
    return Empirical(
        shape,
        enlarged_from,
        node.row,
        tuple(unit),
        seed,
        lo,
        hi,
        clipped,
        tbox,
        first,
        mass,
        ebox,
        share,
        gmap,
        seconds,
        tuple(notes),
    )


def _memory_need(plan: dict[int, Node], rows: list[int], shape: Shape) -> int:
    """Bytes, roughly: float32 activations kept for the backward, float64 gradients of the
    widest rows, the input and its gradients."""
    acts = sum(math.prod(plan[i].out_shape) for i in rows) * 4
    widest = sorted((math.prod(plan[i].out_shape) for i in rows), reverse=True)[:2]
    return acts + sum(widest) * 8 * 3 + math.prod(shape) * 12


def _memory_limit() -> int:
    from cnncalc.run import available_memory

    return available_memory() // 2


def _guard_memory(plan: dict[int, Node], rows: list[int], shape: Shape) -> None:
    from cnncalc.run import MemoryLimitError

    need, limit = _memory_need(plan, rows, shape), _memory_limit()
    if need > limit:
        from cnncalc.report import human_bytes

        raise MemoryLimitError(
            f"measuring the field on {shape_text(shape)} would need "
            f"about {human_bytes(need)}, above half the available memory "
            f"({human_bytes(limit)})"
        )


# --------------------------------------------------------------------------- rendering


def _num(v) -> int | float:
    return exact(v)


def _txt(v) -> str:
    v = exact(v)
    return str(v) if isinstance(v, int) else f"{v:g}"


def _axes(values, sep: str = "×") -> str:
    return sep.join(_txt(v) for v in values)


def to_json_obj(result: RFResult) -> dict[str, Any]:
    """Stable snake_case keys; exact integers; fractions as floats."""
    a = result.analysis
    layers = []
    for lf in result.layers:
        r, f = lf.row, lf.field
        layers.append(
            {
                "index": r.index,
                "name": r.name,
                "type": r.type,
                "output_shape": list(r.output_shape),
                "receptive_field": None
                if f is None
                else {**f.to_dict(), "centre": [_num(c) for c in lf.centre]},
            }
        )
    obj: dict[str, Any] = {
        "name": a.name,
        "input_shape": list(a.input_shape),
        "layers": layers,
        "empirical": None,
    }
    e = result.empirical
    if e is not None:

        def box(b: Box | None):
            return (
                None
                if b is None
                else {"start": list(b.lo), "end": list(b.hi), "size": list(b.size)}
            )

        obj["empirical"] = {
            "input_shape": list(e.input_shape),
            "enlarged_from": None if e.enlarged_from is None else list(e.enlarged_from),
            "layer": {"index": e.row.index, "name": e.row.name, "type": e.row.type},
            "unit": list(e.unit),
            "seed": e.seed,
            "analytic": {
                "start": [_num(v) for v in e.analytic_lo],
                "end": [_num(v) for v in e.analytic_hi],
                "size": [_num(v) for v in e.analytic_size],
                "centre": [_num(v) for v in e.centre],
            },
            "clipped": list(e.clipped),
            "theoretical": {
                **(box(e.theoretical) or {"start": None, "end": None, "size": None}),
                "agrees": e.agrees,
                "first_disagreement": None
                if e.first_disagreement is None
                else {"index": e.first_disagreement.index, "where": e.first_disagreement.where},
            },
            "effective": {
                **(box(e.effective) or {"start": None, "end": None, "size": None}),
                "mass": e.mass,
                "mass_in_box": e.mass_in_box,
                "ratio": None if e.ratio is None else list(e.ratio),
                "area_ratio": e.area_ratio,
            },
            "seconds": e.seconds,
            "notes": list(e.notes),
        }
    return obj


LAYER_HEADERS = ("#", "name", "type", "output", "RF", "jump", "start", "centre")
AXIS_HEADERS = (
    "axis",
    "analytic start",
    "analytic size",
    "theoretical start",
    "theoretical size",
    "agrees",
    "effective size",
    "ratio",
)


def layer_cells(lf: LayerField, sep: str = "×") -> list[str]:
    r, f = lf.row, lf.field
    dims = sep.join(map(str, r.output_shape))
    name = printable(r.name or "")  # from the spec: control characters escaped
    if f is None:
        return [str(r.index), name, r.type, dims, "—", "—", "—", "—"]
    return [
        str(r.index),
        name,
        r.type,
        dims,
        _axes(f.size, sep),
        _axes(f.jump, sep),
        _axes(f.start, ","),
        _axes(lf.centre, ","),
    ]


def axis_cells(e: Empirical) -> list[list[str]]:
    names = ("z", "y", "x")[-len(e.analytic_lo) :] if len(e.analytic_lo) <= 3 else ()
    out = []
    for k, axis in enumerate(names):
        t, eb = e.theoretical, e.effective
        out.append(
            [
                axis,
                _txt(e.analytic_lo[k]),
                _txt(e.analytic_size[k]),
                "—" if t is None else str(t.lo[k]),
                "—" if t is None else str(t.size[k]),
                "yes" if e.agrees else "no",
                "—" if eb is None else str(eb.size[k]),
                "—" if e.ratio is None else f"{e.ratio[k]:.2f}",
            ]
        )
    return out


def summary_lines(e: Empirical) -> list[str]:
    r = e.row
    where = f"#{r.index} {r.name or r.type}"
    lines = [
        f"unit {','.join(map(str, e.unit))} of {where}, input "
        f"{'×'.join(map(str, e.input_shape))}, seed {e.seed}"
    ]
    if e.agrees:
        lines.append(
            "theoretical field (positive weights, max pooling passing any element) "
            "= analytic size and position"
        )
    else:
        f = e.first_disagreement
        lines.append(
            f"theoretical field differs from the analytic one; they first part at {f.where}"
        )
    if e.effective is not None:
        lines.append(
            f"effective field (Luo et al. 2016, random weights): "
            f"{'×'.join(map(str, e.effective.size))} holds "
            f"{e.mass_in_box:.1%} of the gradient mass (target {e.mass:.0%}); "
            f"area {e.area_ratio:.1%} of the theoretical field"
        )
    secs = ", ".join(f"{k} {v:.2f} s" for k, v in e.seconds.items())
    lines.append(f"time: {secs}")
    return lines + list(e.notes)


def render(result: RFResult, fmt: str) -> str:
    """JSON, CSV or Markdown text (the Rich table is built by :func:`tables`)."""
    from cnncalc.report import csv_text, dump_json, markdown_text

    e = result.empirical
    if fmt == "json":
        return dump_json(to_json_obj(result)) + "\n"
    if fmt == "csv":
        if e is None:
            return csv_text(LAYER_HEADERS, (layer_cells(lf, "x") for lf in result.layers))
        return csv_text(AXIS_HEADERS, axis_cells(e))
    if fmt == "markdown":
        if e is None:
            return markdown_text(LAYER_HEADERS, [layer_cells(lf) for lf in result.layers])
        return markdown_text(AXIS_HEADERS, axis_cells(e), notes=summary_lines(e))
    raise ValueError(f"{fmt} is rendered by tables()")


def tables(result: RFResult) -> list[Any]:
    """Rich renderables for the terminal: the per-layer table, or the measurement."""
    from rich.table import Table

    a, e = result.analysis, result.empirical
    if e is None:
        t = Table(
            title=f"{a.name} — receptive field" if a.name else "receptive field",
            header_style="bold",
        )
        for h in LAYER_HEADERS:
            t.add_column(h, justify="left" if h in ("name", "type") else "right", no_wrap=True)
        for lf in result.layers:
            t.add_row(*layer_cells(lf))
        return [t]
    t = Table(title="measured receptive field", header_style="bold")
    for h in AXIS_HEADERS:
        t.add_column(h, justify="left" if h == "axis" else "right", no_wrap=True)
    for row in axis_cells(e):
        row[5] = "[green]yes[/]" if row[5] == "yes" else "[bold red]no[/]"
        t.add_row(*row)
    return [t]


_PALETTE = np.array(
    [
        (0, 0, 4),
        (40, 11, 84),
        (101, 21, 110),
        (159, 42, 99),
        (212, 72, 66),
        (245, 125, 21),
        (250, 193, 39),
        (252, 255, 164),
    ],
    float,
)  # inferno-like


def _colours(v: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB uint8 through the palette."""
    pos = np.clip(v, 0, 1) * (len(_PALETTE) - 1)
    i = np.minimum(pos.astype(int), len(_PALETTE) - 2)
    t = (pos - i)[..., None]
    return (_PALETTE[i] * (1 - t) + _PALETTE[i + 1] * t).astype(np.uint8)


def _as_2d(e: Empirical) -> np.ndarray:
    g = e.gradient
    if g.ndim == 3:  # a volume: its largest value along depth (the box drawn is H×W)
        return g.max(axis=0)
    return g[None, :] if g.ndim == 1 else g


def _scaled(g: np.ndarray) -> np.ndarray:
    top = g.max()
    return np.sqrt(g / top) if top > 0 else g  # sqrt: the tails stay visible


_RAMP = " .:-=+*#%@"


def heatmap(e: Empirical, width: int, colour: bool = True, max_rows: int = 40) -> Any:
    """A Rich Text picture of |input gradient| (sqrt-scaled, block-averaged to fit ``width``
    columns and ``max_rows`` lines), the theoretical box outlined.

    In colour: two pixels per character ('▀', foreground over background); without colour
    (a pipe, NO_COLOR): one character of an ASCII ramp per two pixel rows, the box in '+'.
    """
    from rich.text import Text

    g = _as_2d(e)
    H, W = g.shape
    rows_per_line = 2
    f = max(1, math.ceil(W / max(8, width)), math.ceil(H / (rows_per_line * max_rows)))
    fy = f if colour or H == 1 else 2 * f  # a character is about twice as tall as wide
    h, w = -(-H // fy), -(-W // f)
    pad = np.zeros((h * fy, w * f))
    pad[:H, :W] = g
    small = _scaled(pad.reshape(h, fy, w, f).mean(axis=(1, 3)))
    edge = np.zeros((h, w), bool)
    box = e.theoretical
    if box is not None:
        lo, hi = ((0, 0) + box.lo)[-2:], ((0, 0) + box.hi)[-2:]
        y0, y1, x0, x1 = lo[0] // fy, hi[0] // fy, lo[1] // f, hi[1] // f
        edge[y0 : y1 + 1, [x0, x1]] = True
        if H > 1:
            edge[[y0, y1], x0 : x1 + 1] = True
    text = Text()
    if not colour:
        for y in range(h):
            text.append(
                "".join(
                    "+" if edge[y, x] else _RAMP[min(len(_RAMP) - 1, int(small[y, x] * len(_RAMP)))]
                    for x in range(w)
                )
                + "\n"
            )
        return text
    rgb = _colours(small)
    rgb[edge] = (0, 200, 255)
    if h == 1:
        for x in range(w):
            text.append("█", style=f"rgb({','.join(map(str, rgb[0, x]))})")
        return text
    for y in range(0, h, 2):
        for x in range(w):
            top = rgb[y, x]
            bottom = rgb[y + 1, x] if y + 1 < h else (0, 0, 0)
            text.append(
                "▀", style=f"rgb({','.join(map(str, top))}) on rgb({','.join(map(str, bottom))})"
            )
        text.append("\n")
    return text


def write_png(e: Empirical, path: str) -> None:
    """The |input gradient| as a PNG (sqrt-scaled, inferno-like colours) with the theoretical
    box in cyan and the effective box in white. Needs Pillow (the ``png`` extra)."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        raise UsageError("--png needs Pillow: pip install 'cnncalc[png]'") from None
    g = _as_2d(e)
    rgb = _colours(_scaled(g))
    H, W = g.shape
    scale = max(1, math.ceil(256 / max(1, min(H, W) if H > 1 else 32)))
    img = Image.fromarray(rgb, "RGB").resize(
        (W * scale, (H if H > 1 else 32) * scale), Image.NEAREST
    )
    draw = ImageDraw.Draw(img)
    for box, colour in ((e.theoretical, (0, 200, 255)), (e.effective, (255, 255, 255))):
        if box is None:
            continue
        (y0, x0), (y1, x1) = ((0, 0) + box.lo)[-2:], ((0, 0) + box.hi)[-2:]
        if H == 1:
            y0, y1 = 0, img.height // scale - 1
        draw.rectangle(
            [x0 * scale, y0 * scale, (x1 + 1) * scale - 1, (y1 + 1) * scale - 1],
            outline=colour,
            width=max(1, scale // 2),
        )
    try:
        img.save(path, format="PNG")
    except OSError as exc:
        raise UsageError(f"--png {path}: {exc.strerror or exc}") from None


__all__ = [
    "Box",
    "Empirical",
    "LayerField",
    "RFResult",
    "analytic",
    "heatmap",
    "measure",
    "parse_unit",
    "receptive_fields",
    "render",
    "tables",
    "target_row",
    "to_json_obj",
    "write_png",
]
