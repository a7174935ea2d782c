"""Walk a spec through the arithmetic: per-layer rows, totals and warnings (no printing)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Literal

from cnncalc.arithmetic import Facts, LayerProblem, Window, infer
from cnncalc.errors import ShapeError, SpecError
from cnncalc.layers import Layer
from cnncalc.spec import Shape, Spec, label

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}
Number = int | float


def exact(value: Fraction | int) -> Number:
    """Integers stay integers; a fractional jump/start (after upsampling) becomes a float."""
    value = Fraction(value)
    return int(value) if value.denominator == 1 else float(value)


@dataclass(frozen=True)
class ReceptiveField:
    """Per spatial axis of the network input: size, jump (effective stride), start.

    ``start`` is the input coordinate of the first output unit's field; negative values lie
    in the padding. The centre of unit ``i`` is ``start + (size − 1)/2 + i·jump``.
    """

    size: tuple[Fraction, ...]
    jump: tuple[Fraction, ...]
    start: tuple[Fraction, ...]

    def to_dict(self) -> dict[str, list[Number]]:
        return {k: [exact(v) for v in getattr(self, k)] for k in ("size", "jump", "start")}

    def step(self, windows: tuple[Window, ...]) -> ReceptiveField:
        """One layer of the Araujo–Norris–Sim recurrence (Distill 2019), per axis."""
        return ReceptiveField(
            tuple(r + (w.kernel - 1) * j for r, j, w in zip(self.size, self.jump, windows)),
            tuple(j * w.stride for j, w in zip(self.jump, windows)),
            tuple(s - w.pad * j for s, j, w in zip(self.start, self.jump, windows)),
        )


Layout = Literal["spatial", "flat", "none"]


@dataclass(frozen=True)
class RFState:
    """The receptive field so far, and whether spatial axes are still where they started."""

    field: ReceptiveField | None
    layout: Layout = "spatial"
    pending: tuple[int, ...] = ()  # positions per axis folded into features by a flatten

    @classmethod
    def initial(cls, input_shape: Shape) -> RFState:
        n = len(input_shape) - 1
        one = (Fraction(1),) * n
        return cls(ReceptiveField(one, one, (Fraction(0),) * n))

    def advance(self, facts: Facts, in_shape: Shape) -> RFState:
        if self.field is None:
            return self
        action = facts.rf
        if action == "keep":
            return self
        if action == "windows":
            if self.layout != "spatial" or len(facts.windows) != len(self.field.size):
                return RFState(None, "none")
            return RFState(self.field.step(facts.windows))
        if action == "flatten":
            if self.layout == "spatial":
                return RFState(self.field, "flat", in_shape[1:])
            return self
        if action == "dense":
            if self.layout == "flat":
                # a dense layer over flattened maps is a conv whose kernel covers them all
                wins = tuple(Window(n, Fraction(n)) for n in self.pending)
                return RFState(self.field.step(wins), "flat", (1,) * len(self.pending))
            if self.layout == "spatial" and self.field.size:
                n = in_shape[-1]  # mixes the last axis only
                wins = tuple(Window(1) for _ in self.field.size[:-1]) + (Window(n, Fraction(n)),)
                return RFState(self.field.step(wins), "none")
            return self
        return RFState(None, "none")


@dataclass(frozen=True)
class Row:
    """Everything cnncalc reports about one layer."""

    index: int
    name: str | None
    type: str
    input_shape: Shape
    output_shape: Shape
    weights: int
    bias: int
    trainable_params: int
    non_trainable_params: int
    buffers: int
    fc_equivalent_params: int | None
    receptive_field: ReceptiveField | None
    macs: int
    activation_bytes: int
    param_bytes: int
    notes: tuple[str, ...] = ()

    @property
    def params(self) -> int:
        """Parameters as PyTorch's ``parameters()`` counts them (buffers excluded)."""
        return self.weights + self.bias

    @property
    def flops(self) -> int:
        """FLOPs = 2 × MACs (one multiply and one add per multiply-accumulate)."""
        return 2 * self.macs

    @property
    def sharing_ratio(self) -> float | None:
        """Dense-equivalent parameters per actual parameter (weight sharing at work)."""
        if self.fc_equivalent_params is None or self.params == 0:
            return None
        return self.fc_equivalent_params / self.params

    @property
    def label(self) -> str:
        return label(self.index, self.type, self.name)


@dataclass(frozen=True)
class Totals:
    params: int
    trainable_params: int
    non_trainable_params: int
    buffers: int
    fc_equivalent_params: int
    macs: int
    param_bytes: int
    activation_bytes: int
    output_shape: Shape

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass(frozen=True)
class Analysis:
    name: str | None
    input_shape: Shape
    batch: int
    dtype: str
    rows: tuple[Row, ...]
    totals: Totals
    warnings: tuple[str, ...] = field(default=())


def _row(index: int, layer: Layer, in_shape: Shape, facts: Facts, rf: RFState, batch: int,
         itemsize: int) -> Row:
    params = facts.weights + facts.bias
    in_volume, out_volume = math.prod(in_shape), math.prod(facts.output_shape)
    return Row(
        index=index,
        name=layer.name,
        type=layer.kind,
        input_shape=in_shape,
        output_shape=facts.output_shape,
        weights=facts.weights,
        bias=facts.bias,
        trainable_params=params - facts.frozen,
        non_trainable_params=facts.frozen + facts.buffers,
        buffers=facts.buffers,
        # a dense layer from the input volume to the output volume, one bias per output
        fc_equivalent_params=in_volume * out_volume + out_volume if facts.dense_comparable
        else None,
        receptive_field=rf.field,
        macs=facts.macs * batch,
        activation_bytes=out_volume * batch * itemsize,
        param_bytes=(params + facts.buffers) * itemsize,
        notes=facts.notes,
    )


def check_options(batch: int, dtype: str) -> int:
    if batch < 1:
        raise SpecError("must be at least 1", where="option", field="--batch", value=batch,
                        has_value=True)
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"must be one of {', '.join(DTYPE_BYTES)}", where="option",
                        field="--dtype", value=dtype, has_value=True)
    return DTYPE_BYTES[dtype]


def analyze(spec: Spec, input_shape: Shape | None = None, batch: int = 1,
            dtype: str = "float32") -> Analysis:
    """Analyse ``spec`` on ``input_shape`` (default: the spec's own ``input``).

    Raises :class:`ShapeError` naming the first layer that cannot be applied.
    MACs and activation bytes are for the whole batch; parameters do not depend on it.
    """
    itemsize = check_options(batch, dtype)
    shape = input_shape or spec.input
    if shape is None:
        raise SpecError("no input shape: give 'input: [C, H, W]' in the spec or --input CxHxW",
                        where="spec", field="input")
    rf = RFState.initial(shape)
    rows: list[Row] = []
    current = shape
    for index, layer in enumerate(spec.layers):
        try:
            facts = infer(layer, current)
        except LayerProblem as p:
            raise ShapeError(p.reason, where=label(index, layer.kind, layer.name), field=p.field,
                             value=p.value, has_value=p.field is not None and p.value is not None
                             ) from None
        rf = rf.advance(facts, current)
        rows.append(_row(index, layer, current, facts, rf, batch, itemsize))
        current = facts.output_shape
    return Analysis(
        name=spec.name,
        input_shape=shape,
        batch=batch,
        dtype=dtype,
        rows=tuple(rows),
        totals=total(rows, current),
        warnings=tuple(f"{r.label}: {note}" for r in rows for note in r.notes),
    )


def total(rows: list[Row] | tuple[Row, ...], output_shape: Shape) -> Totals:
    """Sums over rows; each parameter is counted once because each row owns its own."""
    return Totals(
        params=sum(r.params for r in rows),
        trainable_params=sum(r.trainable_params for r in rows),
        non_trainable_params=sum(r.non_trainable_params for r in rows),
        buffers=sum(r.buffers for r in rows),
        fc_equivalent_params=sum(r.fc_equivalent_params or 0 for r in rows),
        macs=sum(r.macs for r in rows),
        param_bytes=sum(r.param_bytes for r in rows),
        activation_bytes=sum(r.activation_bytes for r in rows),
        output_shape=output_shape,
    )


__all__ = ["Analysis", "ReceptiveField", "Row", "Totals", "analyze", "exact", "replace"]
