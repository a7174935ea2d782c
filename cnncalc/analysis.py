"""Walk a spec through the arithmetic: per-layer rows, totals and warnings (no printing)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Literal

from cnncalc.arithmetic import (
    NOT_FLAT,
    SEMANTICS,
    Facts,
    LayerProblem,
    Window,
    infer,
    input_span,
)
from cnncalc.errors import ShapeError, SpecError, bad_option, closest, shape_text
from cnncalc.layers import Layer
from cnncalc.spec import AutoShortcut, Block, LayerNode, Merge, Ref, Shape, Spec

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}
Number = int | float


def exact(value: Fraction | int) -> Number:
    """Integers stay integers; a fractional jump/start (after upsampling) becomes a float."""
    if not isinstance(value, Fraction):
        return value  # int (or an already-float measurement)
    return value.numerator if value.denominator == 1 else float(value)


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
    # after a permute or an unflatten: which axis of the C×H×W start each tensor axis holds
    # (0 the channels, k spatial axis k); None while they are in place
    order: tuple[int, ...] | None = None

    @property
    def channels_last(self) -> bool:
        """The last tensor axis holds the channels (ConvNeXt's LayerNorm and Linear)."""
        return self.order is not None and self.order[-1] == 0

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
        if action in ("mix", "permute", "unflatten"):
            return self._moved(facts, in_shape)
        if action == "windows":
            if (
                self.layout != "spatial"
                or self.order is not None
                or len(facts.windows) != len(self.field.size)
            ):
                return RFState(None, "none")
            # an axis of size 1 (a global pool's output, resized back up by DeepLab's image
            # pooling): every output unit reads that one position, so they share one field
            # (an upsampling or a transposed conv: only real positions are read, no padding)
            windows = tuple(
                replace(w, stride=Fraction(0)) if n == 1 and w.stride < 1 else w
                for w, n in zip(facts.windows, in_shape[1:])
            )
            return RFState(self.field.step(windows))
        if self.order is not None:  # channels-last: a linear over the channels keeps positions
            return self if action == "dense" and self.channels_last else RFState(None, "none")
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

    def _moved(self, facts: Facts, in_shape: Shape) -> RFState:
        """A norm reading whole axes ("mix": those axes' fields become the whole map, jump 0,
        every unit sharing it), a permute, an unflatten: followed through ``order``."""
        if self.layout == "flat":
            if facts.rf == "mix":  # a norm over the features of flattened maps: a dense read
                return self.advance(replace(facts, rf="dense"), in_shape)
            if facts.rf == "unflatten" and facts.output_shape[1:] == self.pending:
                return RFState(self.field)  # the maps the flatten folded, restored
            return RFState(None, "none")
        if self.layout != "spatial":
            return RFState(None, "none")
        order = self.order or tuple(range(len(in_shape)))
        if facts.rf == "permute":
            new = tuple(order[p] for p in facts.axes)
            return replace(self, order=None if new == tuple(range(len(new))) else new)
        if facts.rf == "unflatten":
            axis, parts = facts.axes
            if order[axis] != 0:  # a spatial axis split: positions no longer line up
                return RFState(None, "none")
            return replace(self, order=order[:axis] + (0,) * parts + order[axis + 1 :])
        windows = [Window() for _ in self.field.size]
        for a in facts.axes:
            if order[a] > 0:
                windows[order[a] - 1] = Window(in_shape[a], Fraction(0))
        return replace(self, field=self.field.step(tuple(windows)))


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
    where: str = ""  # how errors and warnings name it: ``layer 3 (conv2d 'c3')``
    inputs: tuple[int, ...] = (-1,)  # rows whose outputs it reads; -1 is the network input
    blocks: tuple[str, ...] = ()  # paths of the enclosing named blocks, outermost first
    layer: Layer | None = None  # the layer or merge; None only for --depth's block rows
    drops_input: bool = False  # floor mode leaves real input rows/columns unread

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
    def depth(self) -> int:
        return len(self.blocks)

    @property
    def differs_from_pytorch(self) -> bool:
        """Under --semantics tensorflow: PyTorch would give another shape or refuse."""
        return any(n.startswith(DIFFERS) for n in self.notes)


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
class Output:
    """A network output besides the main one (an auxiliary head): its block and row."""

    name: str
    shape: Shape
    row: int


@dataclass(frozen=True)
class Analysis:
    name: str | None
    input_shape: Shape
    batch: int
    dtype: str
    rows: tuple[Row, ...]
    totals: Totals
    warnings: tuple[str, ...] = field(default=())
    block_kinds: dict[str, str] = field(default_factory=dict)  # path -> template/'block'/mode
    semantics: str = "pytorch"
    side_outputs: tuple[Output, ...] = ()  # auxiliary heads; the main output is the totals'
    output_row: int = -1  # the row whose output is the network's (-1: the input itself)


def _row(
    index: int,
    layer: Layer,
    in_shape: Shape,
    facts: Facts,
    rf: RFState,
    batch: int,
    itemsize: int,
    **wiring,
) -> Row:
    params = facts.weights + facts.bias
    in_volume, out_volume = math.prod(in_shape), math.prod(facts.output_shape)
    return Row(
        index=index,
        type=layer.kind,
        input_shape=in_shape,
        output_shape=facts.output_shape,
        weights=facts.weights,
        bias=facts.bias,
        trainable_params=params - facts.frozen,
        non_trainable_params=facts.frozen + facts.buffers,
        buffers=facts.buffers,
        # a dense layer from the input volume to the output volume, one bias per output
        fc_equivalent_params=in_volume * out_volume + out_volume
        if facts.dense_comparable
        else None,
        receptive_field=rf.field,
        macs=facts.macs * batch,
        activation_bytes=out_volume * batch * itemsize,
        param_bytes=(params + facts.buffers) * itemsize,
        notes=facts.notes,
        layer=layer,
        drops_input=facts.drops_input,
        **wiring,
    )


def check_options(batch: int, dtype: str) -> int:
    if batch < 1:
        raise bad_option("--batch", batch, "must be at least 1")
    if dtype not in DTYPE_BYTES:
        raise bad_option("--dtype", dtype, f"must be one of {', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]


SEMANTICS_CHOICES = ("pytorch", "tensorflow")


def analyze(
    spec: Spec,
    input_shape: Shape | None = None,
    batch: int = 1,
    dtype: str = "float32",
    semantics: str = "pytorch",
) -> Analysis:
    """Analyse ``spec`` on ``input_shape`` (default: the spec's own ``input``).

    Raises :class:`ShapeError` naming the first layer that cannot be applied.
    MACs and activation bytes are for the whole batch; parameters do not depend on it.
    ``semantics="tensorflow"`` applies Keras/TF rules ('same' = ⌈n/s⌉ for any stride, no
    ceil_mode) and notes every layer whose result differs from PyTorch's.
    """
    if semantics not in SEMANTICS_CHOICES:
        raise bad_option("--semantics", semantics, f"must be one of {', '.join(SEMANTICS_CHOICES)}")
    token = SEMANTICS.set(semantics)
    try:
        return _analyze(spec, input_shape, batch, dtype)
    finally:
        SEMANTICS.reset(token)


def _analyze(spec: Spec, input_shape: Shape | None, batch: int, dtype: str) -> Analysis:
    itemsize = check_options(batch, dtype)
    shape = input_shape or spec.input
    if shape is None:
        raise SpecError(
            "no input shape: give 'input: [C, H, W]' in the spec or --input CxHxW",
            where="spec",
            field="input",
        )
    walker = _Walker(batch, itemsize)
    walker.input = _Value(-1, shape, RFState.initial(shape))
    out = walker.nodes(spec.nodes, walker.input, None, ())
    rows = walker.rows
    warnings = [f"{r.where}: {note}" for r in rows for note in r.notes]
    return Analysis(
        name=spec.name,
        input_shape=shape,
        batch=batch,
        dtype=dtype,
        rows=tuple(rows),
        totals=total(rows, out.shape),
        warnings=tuple(warnings + walker.warnings),
        block_kinds=walker.block_kinds,
        semantics=SEMANTICS.get(),
        side_outputs=tuple(Output(name, v.shape, v.row) for name, v in walker.side_outputs),
        output_row=out.row,
    )


def collapse(a: Analysis, depth: int) -> Analysis:
    """Rows nested deeper than ``depth`` folded into their enclosing block, like torchinfo's
    depth: 1 shows only the top level (``features``, ``layer1`` …), 2 one level below.

    A block row sums its rows' parameters, MACs and activation memory, and shows the block's
    output shape and receptive field; totals are unchanged (every parameter counted once).
    """
    if depth < 1:
        raise bad_option("--depth", depth, "must be >= 1")
    level = depth - 1  # top-level rows are depth 1, as in torchinfo
    out: list[Row] = []
    groups: dict[str, list[Row]] = {}
    for row in a.rows:
        if row.depth <= level:
            out.append(row)
            continue
        key = row.blocks[level]
        if key not in groups:
            groups[key] = []
            out.append(row)  # placeholder, replaced below
        groups[key].append(row)
    result = []
    for row in out:
        if row.depth <= level:
            result.append(row)
            continue
        group = groups[row.blocks[level]]
        result.append(_block_row(row.blocks[level], group, a.block_kinds, level))
    return replace(a, rows=tuple(result))


def _block_row(path: str, rows: list[Row], kinds: dict[str, str], depth: int) -> Row:
    first, last = rows[0], rows[-1]
    fc = [r.fc_equivalent_params for r in rows if r.fc_equivalent_params is not None]
    return Row(
        index=first.index,
        name=path,
        type=kinds.get(path, "block"),
        input_shape=first.input_shape,
        output_shape=last.output_shape,
        weights=sum(r.weights for r in rows),
        bias=sum(r.bias for r in rows),
        trainable_params=sum(r.trainable_params for r in rows),
        non_trainable_params=sum(r.non_trainable_params for r in rows),
        buffers=sum(r.buffers for r in rows),
        fc_equivalent_params=sum(fc) if fc else None,
        receptive_field=last.receptive_field,
        macs=sum(r.macs for r in rows),
        activation_bytes=sum(r.activation_bytes for r in rows),
        param_bytes=sum(r.param_bytes for r in rows),
        notes=(),
        where=path,
        inputs=first.inputs,
        blocks=first.blocks[:depth],
    )


@dataclass(frozen=True)
class _Value:
    """A tensor flowing through the graph: which row made it, its shape and field."""

    row: int
    shape: Shape
    rf: RFState


def _join(prefix: str | None, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


class _Walker:
    """Walks the node tree in execution order, appending one row per layer and per merge."""

    def __init__(self, batch: int, itemsize: int) -> None:
        self.batch, self.itemsize = batch, itemsize
        self.rows: list[Row] = []
        self.warnings: list[str] = []
        self.named: dict[str, list[_Value]] = {}
        self.block_kinds: dict[str, str] = {}
        self.side_outputs: list[tuple[str, _Value]] = []
        self.input: _Value | None = None  # referable as 'input'

    def nodes(self, nodes, x: _Value, prefix: str | None, blocks: tuple[str, ...]) -> _Value:
        for node in nodes:
            x = self.node(node, x, prefix, blocks)
        return x

    def _register(self, path: str | None, name: str | None, value: _Value) -> None:
        for key in {path, name} - {None}:
            self.named.setdefault(key, []).append(value)

    def node(self, node, x: _Value, prefix: str | None, blocks: tuple[str, ...]) -> _Value:
        if isinstance(node, LayerNode):
            path = _join(prefix, node.key) if prefix else node.layer.name
            # nested: name the row as the table does, and where it is written in the spec
            where = f"{path} ({node.layer.kind}) at {node.place}" if prefix else node.where
            xs = [x]
            source = getattr(node.layer, "size_of", None)
            if source is not None:  # read for its shape (F.interpolate(x, size=y.shape[-2:]))
                xs.append(self._lookup(Ref(source, where)))
            return self.apply(node.layer, where, xs, path, blocks)
        if isinstance(node, Block):
            return self.block(node, x, prefix, blocks)
        if isinstance(node, Merge):
            return self.merge(node, x, prefix, blocks)
        raise TypeError(f"unknown node {node!r}")

    def block(self, node: Block, x: _Value, prefix: str | None, blocks: tuple[str, ...]) -> _Value:
        start = self._lookup(node.source) if node.source is not None else x
        if node.key is None:  # transparent
            out = self.nodes(node.nodes, start, prefix, blocks)
            path = prefix
        else:
            path = _join(prefix, node.key)
            self.block_kinds[path] = node.template or "block"
            out = self.nodes(node.nodes, start, path, blocks + (path,))
            self._register(path, node.key, out)
        if node.side:  # an auxiliary head: reported as an output; the main flow goes on
            self.side_outputs.append((path or node.where, out))
            return x
        return out

    def apply(
        self, layer: Layer, where: str, xs: list[_Value], path: str | None, blocks: tuple[str, ...]
    ) -> _Value:
        """One row: ``layer`` (or a merge) applied to the values ``xs``."""
        shapes = tuple(v.shape for v in xs)
        try:
            facts = infer(layer, *shapes)
        except LayerProblem as p:
            raise ShapeError(
                p.reason,
                where=where,
                field=p.field,
                value=p.value,
                has_value=p.field is not None and p.value is not None,
            ) from None
        if SEMANTICS.get() != "pytorch":
            facts = _compare_with_pytorch(layer, shapes, facts)
        if len(xs) == 1 and xs[0].rf.channels_last:  # a per-position linear, as in ConvNeXt
            facts = replace(facts, notes=tuple(n for n in facts.notes if NOT_FLAT not in n))
        rf, note = next_field(facts, [v.rf for v in xs], shapes)
        if note:
            facts = replace(facts, notes=facts.notes + (note,))
        row = _row(
            len(self.rows),
            layer,
            shapes[0],
            facts,
            rf,
            self.batch,
            self.itemsize,
            name=path,
            where=where,
            inputs=tuple(v.row for v in xs),
            blocks=blocks,
        )
        self.rows.append(row)
        value = _Value(row.index, facts.output_shape, rf)
        self._register(path, layer.name, value)
        return value

    def merge(self, node: Merge, x: _Value, prefix: str | None, blocks: tuple[str, ...]) -> _Value:
        path = _join(prefix, node.key) if node.key else prefix
        inner = blocks + (path,) if node.key else blocks
        kind = node.op.kind
        if node.key:
            self.block_kinds[path] = kind
        starts = (
            self._split(node, x, path, inner)
            if node.split is not None
            else ([x] * len(node.branches))
        )
        outs: list[_Value | None] = []
        for branch, start in zip(node.branches, starts):
            if isinstance(branch, Block):
                if branch.key is None:
                    outs.append(self.nodes(branch.nodes, start, path, inner))
                else:
                    sub = _join(path, branch.key)
                    self.block_kinds[sub] = "branch"
                    outs.append(self.nodes(branch.nodes, start, sub, inner + (sub,)))
            elif isinstance(branch, Ref):
                outs.append(self._lookup(branch))
            elif isinstance(branch, AutoShortcut):
                outs.append(None)  # needs the other branches' shape first
            else:
                raise TypeError(f"unknown branch {branch!r}")
        for i, branch in enumerate(node.branches):
            if isinstance(branch, AutoShortcut):
                target = next(o for o in outs if o is not None)
                outs[i] = self._auto_shortcut(branch, starts[i], target.shape, path, inner)
        values = [o for o in outs if o is not None]
        where = f"{_join(path, kind)} at {node.place}" if path else node.where
        value = self.apply(node.op, where, values, _join(path, kind), inner)
        if node.key:
            self._register(path, node.key, value)
        return value

    def _split(
        self, node: Merge, x: _Value, path: str | None, blocks: tuple[str, ...]
    ) -> list[_Value]:
        """The input cut along channels, one ``narrow`` row per branch (torch.chunk/split)."""
        from cnncalc import layers as L

        channels, parts = x.shape[0], node.split
        where = f"{_join(path, 'split')} at {node.place}" if path else node.where
        if isinstance(parts, int):  # torch.chunk: ⌈C/n⌉ each, the last one smaller
            size = -(-channels // parts)
            sizes = [min(size, channels - i * size) for i in range(parts)]
            if sizes[-1] < 1:
                raise ShapeError(
                    f"{channels} channels do not make {parts} chunks "
                    "(torch.chunk would return fewer)",
                    where=where,
                    field="split",
                    value=parts,
                    has_value=True,
                )
        else:
            sizes = list(parts)
            if sum(sizes) != channels:
                raise ShapeError(
                    f"parts add up to {sum(sizes)}, but the input has {channels} channels",
                    where=where,
                    field="split",
                    value=parts,
                    has_value=True,
                )
        out, offset = [], 0
        for i, size in enumerate(sizes):
            part = L.Narrow(dim=1, start=offset, length=size)
            out.append(self.apply(part, where, [x], _join(path, f"split.{i}"), blocks))
            offset += size
        return out

    def _lookup(self, ref: Ref) -> _Value:
        target = ref.target if isinstance(ref.target, str) else str(ref.target)
        found = self.named.get(target, [])
        if not found and target == "input" and self.input is not None:
            return self.input  # the network input, unless a layer took the name
        if not found:
            known = ", ".join(sorted(self.named)) or "none yet"
            hint = closest(target, self.named)
            extra = f"did you mean '{hint[0]}'? " if hint else ""
            raise SpecError(
                f"no earlier output is named '{target[:100]}' ({extra}named so far: {known[:500]})",
                where=ref.where,
            )
        if len(found) > 1:
            raise SpecError(
                f"'{target[:100]}' names {len(found)} outputs; use the full path "
                "(e.g. stage.block.name)",
                where=ref.where,
            )
        return found[0]

    def _auto_shortcut(
        self,
        branch: AutoShortcut,
        x: _Value,
        want: Shape,
        path: str | None,
        blocks: tuple[str, ...],
    ) -> _Value:
        """torchvision's ResNet ``downsample``: 1×1 conv with the stride, no bias, then BN."""
        if want == x.shape:
            return x
        dims = len(x.shape) - 1
        if len(want) != len(x.shape) or dims not in (1, 2):
            raise ShapeError(
                f"cannot project {_dims(x.shape)} to {_dims(want)}", where=branch.where
            )
        strides = []
        for n, m in zip(x.shape[1:], want[1:]):
            # the smallest s with ⌊(n−1)/s⌋ + 1 = m, i.e. (m−1)·s <= n−1 < m·s (closed form:
            # the input may be 10**12 long)
            s = (n - 1) // m + 1 if m >= 1 else None
            if s is None or s * (m - 1) > n - 1:
                raise ShapeError(f"no 1×1 stride maps {n} to {m}", where=branch.where)
            strides.append(s)
        from cnncalc import layers as L

        conv_cls, bn_cls = (L.Conv1d, L.BatchNorm1d) if dims == 1 else (L.Conv2d, L.BatchNorm2d)
        conv = conv_cls(out_channels=want[0], kernel_size=1, stride=tuple(strides), bias=False)
        sub = _join(path, "downsample")
        inner = blocks + (sub,)
        self.block_kinds[sub] = "shortcut"
        # named as the table names the rows (torchvision's downsample.0/.1), then where
        y = self.apply(conv, f"{sub}.0 (conv{dims}d) at {branch.where}", [x], f"{sub}.0", inner)
        return self.apply(
            bn_cls(), f"{sub}.1 (batchnorm{dims}d) at {branch.where}", [y], f"{sub}.1", inner
        )


def _compare_with_pytorch(layer: Layer, shapes: tuple[Shape, ...], facts: Facts) -> Facts:
    """Add a note when PyTorch would give another shape for the same layer, or refuse it."""
    token = SEMANTICS.set("pytorch")
    try:
        theirs = infer(layer, *shapes).output_shape
        why = None if theirs == facts.output_shape else f"PyTorch gives {_dims(theirs)}"
    except LayerProblem as p:
        why = f"PyTorch refuses it ({p.field + ': ' if p.field else ''}{p.reason})"
    finally:
        SEMANTICS.reset(token)
    if why is None:
        return facts
    return replace(facts, notes=facts.notes + (f"{DIFFERS}: {why}",))


DIFFERS = "differs from PyTorch"


_dims = shape_text


def next_field(
    facts: Facts, states: list[RFState], shapes: tuple[Shape, ...]
) -> tuple[RFState, str | None]:
    """The field after a row: a layer advances its input's; a merge unites its branches'."""
    if facts.rf == "merge":
        # a branch broadcast from size 1 (a squeeze-and-excitation gate) reads the whole map
        # for every unit: it widens the field but is not a misaligned path
        spatial = facts.output_shape[1:]
        gates = [len(sh) > 1 and all(n == 1 for n in sh[1:]) and sh[1:] != spatial for sh in shapes]
        # nor is a branch whose units all share one field (jump 0: gated by such a gate, or
        # after a whole-map norm): it is global context, centred nowhere in particular
        aligned = [st for st, gate in zip(states, gates) if not gate and not _shared(st)]
        field, note = merged_field(states)
        if any(gates) and field.field is not None:  # every unit reads the whole gated map
            f = field.field
            field = replace(field, field=replace(f, jump=tuple(Fraction(0) for _ in f.jump)))
        return field, note if note and merged_field(aligned or states)[1] else None
    return states[0].advance(facts, shapes[0]), None


def _shared(state: RFState) -> bool:
    """Every unit reads the same field (jump 0 on every axis)."""
    f = state.field
    return f is not None and bool(f.jump) and all(j == 0 for j in f.jump)


def merged_field(states: list[RFState]) -> tuple[RFState, str | None]:
    """Araujo et al. (Distill 2019) through branches: the union of the paths' fields.

    Paths that disagree on jump or centre are "unaligned"; the merge is flagged.
    """
    fields = [s.field for s in states]
    if any(f is None for f in fields) or any(s.layout != states[0].layout for s in states):
        return RFState(None, "none"), None
    if any(s.order != states[0].order for s in states):
        return RFState(None, "none"), None
    n = len(fields[0].size)
    start = tuple(min(f.start[a] for f in fields) for a in range(n))
    end = tuple(max(f.start[a] + f.size[a] for f in fields) for a in range(n))
    jump = tuple(min(f.jump[a] for f in fields) for a in range(n))
    merged = ReceptiveField(tuple(e - s for s, e in zip(start, end)), jump, start)
    note = None
    jumps = {f.jump for f in fields}
    centres = {tuple(f.start[a] + (f.size[a] - 1) / 2 for a in range(n)) for f in fields}
    if len(jumps) > 1 or len(centres) > 1:
        what = "jumps" if len(jumps) > 1 else "centres"
        note = (
            f"branches are not aligned (different {what}); the receptive field reported "
            "is the union of their fields"
        )
    return RFState(merged, states[0].layout, states[0].pending, states[0].order), note


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


__all__ = [
    "Analysis",
    "ReceptiveField",
    "Row",
    "Totals",
    "analyze",
    "collapse",
    "exact",
    "input_shapes",
    "merged_field",
    "next_field",
    "nodes_of",
    "unit_field",
]


def unit_field(
    nodes, target: int, pos: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The exact field of the unit at spatial position ``pos`` of row ``target``: (first, last)
    input position per spatial axis,
    unclipped (outside the input: padding), by walking the graph back from ``target``.

    ``nodes`` maps a row index to ``(layer, inputs, input shapes)``;
    :func:`nodes_of` builds it from an analysis. The recurrence's ``start + i·jump`` agrees
    with this for every unit while jumps are whole; after upsampling or a transposed
    convolution units differ by phase, and this is the one to trust. None where a dense
    layer mixes all positions on the way, or where the unit reads no input at all (odd
    outputs of a 1-wide stride-2 transposed convolution: only its bias).
    """
    spans: dict[int, list[tuple[int, int]]] = {target: [(p, p) for p in pos]}
    for index in sorted((i for i in nodes if i <= target), reverse=True):
        if index not in spans:
            continue
        layer, inputs, in_shapes = nodes[index]
        out = spans.pop(index)
        used = layer.data_inputs or len(inputs)  # the others are read for their shape only
        for i, in_shape in zip(inputs[:used], in_shapes[:used]):
            mapped = []
            for axis, (lo, hi) in enumerate(out):
                span = input_span(layer, in_shape, axis, lo, hi, *in_shapes[used:])
                if span is None:
                    return None
                mapped.append(span)
            old = spans.get(i)
            spans[i] = (
                mapped
                if old is None
                else [(min(a, c), max(b, d)) for (a, b), (c, d) in zip(old, mapped)]
            )
    result = spans.get(-1)
    if result is None:
        return None
    return tuple(a for a, _ in result), tuple(b for _, b in result)


def nodes_of(a: Analysis) -> dict[int, tuple[Layer, tuple[int, ...], tuple[Shape, ...]]]:
    """Row index -> (layer, inputs, input shapes), as :func:`unit_field` takes it."""
    return {r.index: (r.layer, r.inputs, input_shapes(a, r)) for r in a.rows}


def input_shapes(a: Analysis, row: Row) -> tuple[Shape, ...]:
    """The shapes of every input of ``row`` (one per branch for a merge)."""
    return tuple(a.input_shape if i < 0 else a.rows[i].output_shape for i in row.inputs)
