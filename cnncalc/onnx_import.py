"""An ONNX graph read as a spec: ``cnncalc shapes model.onnx``, ``cnncalc import model.onnx``.

The graph (a DAG, nodes in topological order) becomes a flat list of layers in that order.
A layer whose input is not the previous layer's output starts with a jump,
``{name: ~3, from: <earlier layer>, layers: []}``; joins become ``add``/``concat``/``mul``
merges whose branches name earlier layers. Layer names come from the exporter's scopes:
PyTorch names a node ``/layer1/layer1.0/conv1/Conv``, so the row reads ``layer1.0.conv1``.

What is counted is what the graph holds: a Conv followed by a BatchNormalization stays two
layers, and a batch-norm the exporter folded into its conv (PyTorch does in eval mode) is
a conv with a bias. Weights are read for their shapes only, so external data files are not
needed; small constants (shapes, pads, scales) are read and folded.

Each ONNX operator has one converter in :data:`CONVERTERS`, ``fn(imp, node, ins, at) ->
value``: ``ins`` are the node's inputs (a :class:`Tensor` flowing through the network, a
:class:`Const`, or None for an omitted input), ``at`` its attributes; it calls
``imp.layer(node, x, {type: ..., ...})`` or ``imp.merge(node, kind, xs)`` and returns the
output value. A few multi-node patterns (x·σ(x) = SiLU, the erf form of GELU, MatMul + Add =
Linear, ...) are matched first by :func:`_patterns`. An operator without a converter is one
line naming the node, the operator and the opset. ``onnx`` is imported only here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnncalc.errors import SpecError, UsageError
from cnncalc.spec import Shape, Spec


@dataclass(frozen=True)
class Tensor:
    """A value flowing through the network: the spec name that refers to it, its shape."""

    ref: str | None  # None: the network input
    shape: Shape


class Const:
    """A constant (initializer, Constant node or folded subgraph); values read on demand."""

    def __init__(
        self,
        shape: tuple[int, ...],
        array: np.ndarray | None = None,
        proto: Any = None,
        name: str = "",
    ) -> None:
        self.shape, self._array, self.proto, self.name = tuple(shape), array, proto, name

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            from onnx import numpy_helper
            from onnx.external_data_helper import uses_external_data

            if uses_external_data(self.proto):
                raise SpecError(
                    f"initializer '{self.name}' is in an external data file; its "
                    "values are needed here"
                )
            self._array = numpy_helper.to_array(self.proto)
        return self._array


Value = Tensor | Const | None


def load_onnx(path: Any, input_shape: Shape | None = None) -> Spec:
    """The spec of the ONNX model at ``path`` (or a loaded ``ModelProto``); ``input_shape``
    (C,H,W) sets the sizes the graph leaves symbolic."""
    from cnncalc.spec import spec_from_data

    return spec_from_data(import_onnx(path, input_shape))


def import_onnx(path: Any, input_shape: Shape | None = None) -> dict[str, Any]:
    """The spec data (what a YAML file would hold) of the ONNX model at ``path`` (or a loaded
    ``ModelProto``)."""
    if not isinstance(path, str | Path):
        return _Importer(path, input_shape, path.graph.name or "network").run()
    try:
        import onnx
    except ImportError:
        raise UsageError(
            f"reading {path} needs the onnx package: pip install 'cnncalc[onnx]'"
        ) from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise SpecError(
            f"not a readable ONNX model ({type(exc).__name__}: {exc})", where=str(path)
        ) from None
    return _Importer(model, input_shape, Path(path).stem).run()


def to_yaml(data: dict[str, Any], origin: str) -> str:
    """The imported spec as readable YAML: one layer per line, in flow style."""
    import yaml

    def line(value: Any) -> str:
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False)
        return text.removesuffix("\n...\n").strip()

    out = [
        f"# Imported by cnncalc from {origin}. Parameters are what the graph holds: a",
        "# BatchNormalization the exporter folded into its Conv counts as the conv's bias.",
        f"name: {line(data['name'])}",
        f"input: {line(data['input'])}",
        "layers:",
    ]
    out += [f"  - {line(item)}" for item in data["layers"]]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the walk


def _scope(node: Any) -> str:
    """``/layer2/layer2.0/downsample/downsample.0/Conv`` -> ``layer2.0.downsample.0``."""
    for prop in node.metadata_props:  # the dynamo exporter's module path
        if prop.key == "pkg.torch.onnx.name_scopes":
            parts = [p for p in re.findall(r"'([^']*)'", prop.value) if p]
            return ".".join(parts)
    name = node.name
    if not name.startswith("/"):
        return ""
    path: list[str] = []
    last = ""
    for comp in name.strip("/").split("/")[:-1]:
        if last and comp.startswith(last + "."):  # "layer1" then "layer1.0"
            path.append(comp[len(last) + 1 :])
        else:
            path.append(comp)
        last = comp
    return ".".join(p for p in path if p)


def _clean(text: str) -> str:
    text = re.sub(r"[^\w.]+", "_", text).strip("_.")
    return text or "node"


class _Importer:
    def __init__(self, model: Any, input_shape: Shape | None, stem: str) -> None:
        from onnx import helper

        self.helper = helper
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.stem = stem
        self.values: dict[str, Value] = {"": None}
        self.items: list[dict[str, Any]] = []
        self.current: str | None = None
        self.used: set[str] = set()
        self.jumps = 0
        inits = self.inits = {t.name for t in self.graph.initializer}
        for t in self.graph.initializer:
            self.values[t.name] = Const(tuple(t.dims), proto=t, name=t.name)
        inputs = [i for i in self.graph.input if i.name not in inits]
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise SpecError(
                f"the graph has {len(inputs)} inputs ({names}); cnncalc networks take one",
                where=stem,
            )
        self.input = inputs[0]
        self.input_shape = self._input_shape(input_shape)
        self.values[self.input.name] = Tensor(None, self.input_shape)
        self.nodes = list(self.graph.node)
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.readers: dict[str, list[Any]] = {}
        for n in self.nodes:
            for i in n.input:
                self.readers.setdefault(i, []).append(n)
        self.absorbed: set[int] = set()
        self.anchors: dict[int, Callable[[], Value]] = {}

    def _input_shape(self, given: Shape | None) -> Shape:
        dims = self.input.type.tensor_type.shape.dim
        if given is not None:
            if len(given) != len(dims) - 1:
                raise UsageError(
                    f"--input has {len(given)} dimensions; the graph input "
                    f"'{self.input.name}' has {len(dims) - 1} besides the batch"
                )
            return tuple(given)
        shape = []
        for axis, d in enumerate(dims[1:], start=1):
            if d.HasField("dim_value") and d.dim_value > 0:
                shape.append(d.dim_value)
            else:
                what = d.dim_param or "unknown"
                raise SpecError(
                    f"input '{self.input.name}' has a symbolic size '{what}' on axis "
                    f"{axis}; give the shape with --input (e.g. 3x224x224)",
                    where=self.stem,
                )
        return tuple(shape)

    # ----------------------------------------------------------------------- emitting

    def fail(self, node: Any, reason: str) -> SpecError:
        name = node.name or (node.output[0] if node.output else "?")
        return SpecError(f"node '{name}' ({node.op_type}, opset {self.opset}): {reason}")

    def _name(self, node: Any, suffix: str = "") -> str:
        scope = self.scopes[id(node)]
        own = scope and scope not in self.parents and not suffix  # a module's own op
        base = scope if own else ".".join(p for p in (scope, suffix or node.op_type.lower()) if p)
        if not scope and not suffix and not node.name.startswith("/") and node.name:
            base = _clean(node.name)
        return self._unique(base)

    def _unique(self, base: str) -> str:
        name, n = base, 0
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name

    def _ref(self, x: Tensor) -> str:
        """The name of ``x``; the network input is named by an identity row ``input``, put
        first the first time it is read again."""
        if x.ref is not None:
            return x.ref
        if "input" not in self.used or self.items[:1] != [{"type": "identity", "name": "input"}]:
            self.used.add("input")
            self.items.insert(0, {"type": "identity", "name": "input"})
            if self.current is None:
                self.current = "input"
        return "input"

    def _goto(self, x: Tensor) -> None:
        at_input = self.current is None or (self.current == "input" and x.ref is None)
        if x.ref == self.current or (x.ref is None and at_input):
            return
        ref = self._ref(x)
        self.jumps += 1
        self.items.append({"name": f"~{self.jumps}", "from": ref, "layers": []})
        self.current = ref

    def layer(
        self,
        node: Any,
        x: Value,
        data: dict[str, Any],
        suffix: str = "",
        shape: Shape | None = None,
    ) -> Tensor:
        """Append ``data`` (a layer mapping) reading ``x``; ``shape``: the output shape when
        the type is not known to this version of cnncalc (it is then written anyway)."""
        from cnncalc.arithmetic import LayerProblem, infer
        from cnncalc.layers import BY_KEY, type_key
        from cnncalc.spec import parse_layer

        x = self.tensor(node, x)
        self._goto(x)
        name = self._name(node, suffix)
        data = {
            "type": data["type"],
            "name": name,
            **{k: v for k, v in data.items() if k != "type"},
        }
        known = type_key(data["type"]) in BY_KEY
        if known and shape is not None:  # a setting this version may lack (bilinear mode)
            try:
                parse_layer(data, "")
            except SpecError:
                known = False
        if known:
            layer = parse_layer(data, f"layer {len(self.items)} (node '{node.name}')")
            try:
                out = infer(layer, x.shape).output_shape
            except LayerProblem as p:
                field = f"{p.field}={p.value}: " if p.field else ""
                raise self.fail(node, f"{data['type']}: {field}{p.reason}") from None
        elif shape is None:
            raise self.fail(
                node, f"needs the layer type {data['type']}, which this version of cnncalc lacks"
            )
        else:
            out = shape
        self.items.append(data)
        self.current = name
        return Tensor(name, out)

    def merge(self, node: Any, kind: str, xs: list[Value]) -> Tensor:
        from cnncalc import layers as L
        from cnncalc.arithmetic import LayerProblem, infer

        tensors = [self.tensor(node, x) for x in xs]
        scope = self.scopes[id(node)]
        base = scope or kind
        name = base if base not in self.used and f"{base}.{kind}" not in self.used else None
        name = name or self._unique(f"{base}.{kind}" if scope else kind)
        self.used |= {name, f"{name}.{kind}"}
        op = L.model(kind)()
        try:
            out = infer(op, *(t.shape for t in tensors)).output_shape
        except LayerProblem as p:
            raise self.fail(node, p.reason) from None
        self.items.append({"name": name, kind: [self._ref(t) for t in tensors]})
        self.current = name
        return Tensor(name, out)

    def source_name(self, c: Const) -> str | None:
        """The parameter name behind a constant (through Identity nodes), if it reads like a
        PyTorch state_dict key."""
        name = c.name
        for key, v in self.values.items():
            if v is c:
                name = key
                break
        while name in self.producer and self.producer[name].op_type == "Identity":
            name = self.producer[name].input[0]
        ok = re.fullmatch(r"[A-Za-z_][\w]*(\.[\w]+)*", name or "")
        return name if ok and not name.startswith("onnx") else None

    def tensor(self, node: Any, x: Value) -> Tensor:
        if not isinstance(x, Tensor):
            raise self.fail(
                node, "expects a tensor computed from the network input here, got a constant"
            )
        return x

    def is_param(self, name: str) -> bool:
        """Whether a norm's scale or shift is a parameter: an initializer (perhaps unsqueezed
        or reshaped), not a Constant node — PyTorch's exporter writes the fixed ones and zeros
        of a norm without affine weights (or without bias) as Constant nodes."""
        while name not in self.inits:
            p = self.producer.get(name)
            if p is None or p.op_type not in ("Unsqueeze", "Reshape", "Identity", "Cast"):
                return False
            name = p.input[0]
        return True

    def const(self, node: Any, x: Value, what: str) -> np.ndarray:
        if not isinstance(x, Const):
            raise self.fail(node, f"{what} must be a constant")
        return x.array

    # ----------------------------------------------------------------------- the run

    def run(self) -> dict[str, Any]:
        outputs = [o.name for o in self.graph.output]
        live = self._live(outputs)
        self.nodes = [n for n in self.nodes if id(n) in live]
        _patterns(self)
        _layout_patterns(self)
        kept = [n for n in self.nodes if id(n) not in self.absorbed]
        self.scopes = {id(n): _scope(n) for n in self.nodes}
        self.parents = {self.scopes[id(n)].rpartition(".")[0] for n in kept}
        self.parents |= {p.rpartition(".")[0] for p in self.parents}
        for p in list(self.parents):
            while p:
                self.parents.add(p)
                p = p.rpartition(".")[0]
        for node in self.nodes:
            if id(node) in self.absorbed:
                continue
            ins = [self.values.get(i) if i else None for i in node.input]
            for i in node.input:
                if i and i not in self.values and id(node) not in self.anchors:
                    raise self.fail(node, f"input '{i}' is not produced by any earlier node")
            if id(node) in self.anchors:
                out = self.anchors[id(node)]()
            elif (
                ins
                and all(isinstance(v, Const) or v is None for v in ins)
                and node.op_type not in ("Shape",)
            ):
                out = self._fold(node, ins)
            else:
                out = self._convert(node, ins)
            if isinstance(out, list):
                for name, v in zip(node.output, out):
                    self.values[name] = v
            else:
                self.values[node.output[0]] = out
        main, *side = outputs
        for k, name in enumerate(side, start=1):
            v = self.values[name]
            if isinstance(v, Tensor) and v.ref is not None:
                self.items.append(
                    {"name": f"output_{k}", "from": v.ref, "output": True, "layers": []}
                )
        v = self.values[main]
        if not isinstance(v, Tensor):
            raise SpecError(f"the graph output '{main}' is a constant", where=self.stem)
        if v.ref is not None:
            self._goto(v)
        if not self.items:
            self.items.append({"type": "identity", "name": "input"})
        generic = {"", "main_graph", "torch_jit", "torch-jit-export", "graph"}
        name = self.stem if self.graph.name in generic else self.graph.name
        return {"name": name, "input": list(self.input_shape), "layers": self.items}

    def _live(self, outputs: list[str]) -> set[int]:
        producer = {o: n for n in self.nodes for o in n.output}
        live: set[int] = set()
        stack = [producer[o] for o in outputs if o in producer]
        while stack:
            n = stack.pop()
            if id(n) in live:
                continue
            live.add(id(n))
            stack += [producer[i] for i in n.input if i in producer]
        return live

    def _convert(self, node: Any, ins: list[Value]) -> Value | list[Value]:
        fn = CONVERTERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if fn is None:
            raise self.fail(node, "cnncalc has no layer for this operator")
        at = {a.name: _attr(self.helper.get_attribute_value(a)) for a in node.attribute}
        return fn(self, node, ins, at)

    def _fold(self, node: Any, ins: list[Value]) -> Value | list[Value]:
        """Evaluate a node whose inputs are all constants (shape arithmetic, casts)."""
        from onnx.reference import ReferenceEvaluator

        feeds = {name: v.array for name, v in zip(node.input, ins) if name and v is not None}
        try:
            results = ReferenceEvaluator(node).run(None, feeds)
        except Exception as exc:
            raise self.fail(node, f"cannot fold this constant ({exc})") from None
        out = [Const(np.shape(r), np.asarray(r)) for r in results]
        return out if len(out) > 1 else out[0]


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    return value


# --------------------------------------------------------------------------- conversions


def _tup(values: Any) -> Any:
    """A size as a spec writes it: one int when every axis agrees."""
    values = [int(v) for v in values]
    return values[0] if len(set(values)) == 1 else values


def _axis(axis: int, rank: int) -> int:
    """An ONNX axis (counting the batch, maybe negative) as a non-negative index."""
    return axis + rank if axis < 0 else axis


def _split_pads(pads: list[int], dims: int) -> tuple[list[int], list[int]]:
    return list(pads[:dims]), list(pads[dims:])


def _auto_pads(
    at: dict[str, Any], shape: Shape, k: list[int], s: list[int], d: list[int]
) -> list[int] | None:
    mode = at.get("auto_pad", "NOTSET")
    if mode in ("NOTSET", "VALID"):
        return None if mode == "NOTSET" else [0] * (2 * len(k))
    before, after = [], []
    for n, ki, si, di in zip(shape[1:], k, s, d):
        total = max((-(-n // si) - 1) * si + di * (ki - 1) + 1 - n, 0)
        small = total // 2
        before.append(small if mode == "SAME_UPPER" else total - small)
        after.append(total - before[-1])
    return before + after


def _window(
    imp: _Importer, node: Any, x: Tensor, at: dict[str, Any], k: list[int]
) -> tuple[list[int], list[int], list[int], list[int]]:
    dims = len(k)
    s = list(at.get("strides", [1] * dims))
    d = list(at.get("dilations", [1] * dims))
    pads = _auto_pads(at, x.shape, k, s, d) or list(at.get("pads", [0] * 2 * dims))
    before, after = _split_pads(pads, dims)
    return s, d, before, after


def _pad_layer(imp: _Importer, node: Any, x: Tensor, before: list[int], after: list[int]) -> Tensor:
    """Asymmetric padding ('same' on an even kernel): a zero-pad layer before the op."""
    pairs = []
    for a, b in reversed(list(zip(before, after))):  # PyTorch lists the last axis first
        pairs += [a, b]
    return imp.layer(node, x, {"type": f"zeropad{len(before)}d", "padding": pairs}, "pad")


def _conv(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    w = ins[1]
    if not isinstance(w, Const):
        raise imp.fail(node, "the weight must be an initializer")
    connections = _connections(imp, node)
    k = list(at.get("kernel_shape", w.shape[2:]))
    dims = len(k)
    s, d, before, after = _window(imp, node, x, at, k)
    if before != after:
        x = _pad_layer(imp, node, x, before, after)
        before = [0] * dims
    g = int(at.get("group", 1))
    data: dict[str, Any] = {
        "type": f"conv{dims}d",
        "in_channels": x.shape[0],
        "out_channels": w.shape[0],
        "kernel_size": _tup(k),
    }
    _put(
        data,
        stride=(_tup(s), 1),
        padding=(_tup(before), 0),
        dilation=(_tup(d), 1),
        groups=(g, 1),
        bias=(len(ins) > 2 and ins[2] is not None, True),
    )
    if connections is not None:
        data["connections"] = connections
    return imp.layer(node, x, data)


def _connections(imp: _Importer, node: Any) -> list[list[int]] | None:
    """cnncalc's own export of a partial connection table: Gather(Concat(w, [0]), index)."""
    gather = imp.producer.get(node.input[1])
    if gather is None or gather.op_type != "Gather":
        return None
    index = imp.values.get(gather.input[1])
    concat = imp.producer.get(gather.input[0])
    if concat is None or concat.op_type != "Concat" or not isinstance(index, Const):
        return None
    flat = imp.values.get(concat.input[0])
    if not isinstance(flat, Const) or len(flat.shape) != 1:
        return None
    pad = flat.shape[0]
    table = index.array
    return [
        [c for c in range(table.shape[1]) if table[j, c].flat[0] != pad]
        for j in range(table.shape[0])
    ]


def _put(data: dict[str, Any], **values: tuple[Any, Any]) -> None:
    """Set each field whose value differs from its default (value, default)."""
    for key, (value, default) in values.items():
        if value != default:
            data[key] = value


def _conv_transpose(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    w = ins[1]
    if not isinstance(w, Const):
        raise imp.fail(node, "the weight must be an initializer")
    if "output_shape" in at:
        raise imp.fail(node, "output_shape is not supported; export with pads/output_padding")
    k = list(at.get("kernel_shape", w.shape[2:]))
    dims = len(k)
    s, d, before, after = _window(imp, node, x, at, k)
    if before != after:
        raise imp.fail(node, f"asymmetric pads {before + after} have no PyTorch equivalent")
    g = int(at.get("group", 1))
    data: dict[str, Any] = {
        "type": f"conv_transpose{dims}d",
        "in_channels": x.shape[0],
        "out_channels": w.shape[1] * g,
        "kernel_size": _tup(k),
    }
    _put(
        data,
        stride=(_tup(s), 1),
        padding=(_tup(before), 0),
        output_padding=(_tup(at.get("output_padding", [0] * dims)), 0),
        groups=(g, 1),
        bias=(len(ins) > 2 and ins[2] is not None, True),
        dilation=(_tup(d), 1),
    )
    return imp.layer(node, x, data)


def _pool(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    if len(node.output) > 1 and node.output[1] and imp.readers.get(node.output[1]):
        raise imp.fail(node, "the Indices output is not supported")
    k = list(at["kernel_shape"])
    dims = len(k)
    s, d, before, after = _window(imp, node, x, at, k)
    if before != after:
        raise imp.fail(node, f"asymmetric pads {before + after} have no PyTorch pooling equivalent")
    avg = node.op_type == "AveragePool"
    data: dict[str, Any] = {"type": f"{'avg' if avg else 'max'}pool{dims}d", "kernel_size": _tup(k)}
    _put(data, stride=(_tup(s), _tup(k)), padding=(_tup(before), 0))
    if not avg:
        _put(data, dilation=(_tup(d), 1))
    _put(data, ceil_mode=(bool(at.get("ceil_mode", 0)), False))
    if avg and any(before):  # ONNX's default is 0, PyTorch's True; only matters with padding
        _put(data, count_include_pad=(bool(at.get("count_include_pad", 0)), True))
    return imp.layer(node, x, data)


def _global_pool(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    kind = "avg" if node.op_type == "GlobalAveragePool" else "max"
    return imp.layer(
        node,
        x,
        {"type": f"adaptive_{kind}pool{len(x.shape) - 1}d", "output_size": 1},
        shape=(x.shape[0],) + (1,) * (len(x.shape) - 1),
    )


def _axes_of(
    imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any], default: list[int]
) -> list[int]:
    """A node's axes: the attribute (older opsets), the second input (opset 13/18 on), or
    ``default``."""
    if "axes" in at:
        return list(at["axes"])
    if len(ins) > 1 and ins[1] is not None:
        return [int(a) for a in imp.const(node, ins[1], "axes")]
    return default


def _reduce(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    rank = len(x.shape) + 1
    axes = sorted(_axis(a, rank) for a in _axes_of(imp, node, ins, at, list(range(rank))))
    if axes != list(range(2, rank)):
        raise imp.fail(
            node, f"reduces axes {axes}; only the spatial axes (global pooling) map to a layer"
        )
    kind = "avg" if node.op_type == "ReduceMean" else "max"
    y = imp.layer(
        node,
        x,
        {"type": f"adaptive_{kind}pool{rank - 2}d", "output_size": 1},
        shape=(x.shape[0],) + (1,) * (rank - 2),
    )
    if not at.get("keepdims", 1):
        y = imp.layer(node, y, {"type": "flatten"}, "flatten")
    return y


def _gemm(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    w = ins[1]
    if at.get("transA", 0) or not isinstance(w, Const) or len(w.shape) != 2:
        raise imp.fail(node, "only x·Wᵀ + b with a constant W (nn.Linear) is supported")
    if len(x.shape) != 1:
        raise imp.fail(node, f"expects a flat input, got {'x'.join(map(str, x.shape))}")
    out = w.shape[0] if at.get("transB", 0) else w.shape[1]
    data: dict[str, Any] = {"type": "linear", "in_features": x.shape[0], "out_features": out}
    _put(data, bias=(len(ins) > 2 and ins[2] is not None, True))
    return imp.layer(node, x, data)


def _matmul(
    imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any], bias: bool = False
) -> Value:
    x, w = ins[0], ins[1]
    if not isinstance(w, Const) or len(w.shape) != 2:
        raise imp.fail(node, "only a product with a constant matrix (nn.Linear) is supported")
    x = imp.tensor(node, x)
    data: dict[str, Any] = {"type": "linear", "in_features": w.shape[0], "out_features": w.shape[1]}
    _put(data, bias=(bias, True))
    return imp.layer(node, x, data)


def _batchnorm(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    n = {1: "1", 2: "1", 3: "2", 4: "3"}.get(len(x.shape))
    if n is None:
        raise imp.fail(node, f"a {len(x.shape) + 1}-d input has no PyTorch batch-norm")
    data: dict[str, Any] = {"type": f"batchnorm{n}d"}
    _put(
        data,
        eps=(float(f"{at.get('epsilon', 1e-5):.6g}"), 1e-5),
        affine=(imp.is_param(node.input[1]) or imp.is_param(node.input[2]), True),
    )
    return imp.layer(node, x, data, shape=x.shape)


def _simple(kind: str, **fields: str) -> Callable[..., Value]:
    """An ONNX operator that is one PyTorch layer; ``fields``: layer field <- attribute."""

    def convert(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
        data: dict[str, Any] = {"type": kind}
        for field, attr in fields.items():
            if attr in at:
                data[field] = float(f"{at[attr]:.6g}")
        return imp.layer(node, ins[0], data)

    return convert


def _clip(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    low, high = at.get("min"), at.get("max")
    if len(ins) > 1 and ins[1] is not None:
        low = float(imp.const(node, ins[1], "min"))
    if len(ins) > 2 and ins[2] is not None:
        high = float(imp.const(node, ins[2], "max"))
    if low == 0 and high == 6:
        return imp.layer(node, ins[0], {"type": "relu6"})
    if low == 0 and high is None:
        return imp.layer(node, ins[0], {"type": "relu"})
    if low is None or high is None:
        raise imp.fail(node, "a one-sided clip other than ReLU has no PyTorch layer")
    return imp.layer(node, ins[0], {"type": "hardtanh", "min_val": low, "max_val": high})


def _hardsigmoid(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    alpha, beta = at.get("alpha", 0.2), at.get("beta", 0.5)
    if abs(alpha - 1 / 6) > 1e-6 or abs(beta - 0.5) > 1e-6:
        raise imp.fail(
            node,
            f"alpha={alpha:.6g}, beta={beta:.6g}: PyTorch's Hardsigmoid is alpha=1/6, beta=0.5",
        )
    return imp.layer(node, ins[0], {"type": "hardsigmoid"})


def _prelu(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    slope = ins[1]
    if not isinstance(slope, Const):
        raise imp.fail(node, "the slope must be an initializer")
    n = math.prod(slope.shape)
    return imp.layer(node, ins[0], {"type": "prelu", **({"num_parameters": n} if n > 1 else {})})


def _gelu(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    data: dict[str, Any] = {"type": "gelu"}
    _put(data, approximate=(at.get("approximate", "none"), "none"))
    return imp.layer(node, ins[0], data)


def _softmax(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    rank = len(x.shape) + 1
    axis = _axis(at.get("axis", -1 if imp.opset >= 13 else 1), rank)
    if imp.opset < 13 and axis != rank - 1:
        raise imp.fail(
            node,
            "before opset 13 Softmax flattens from its axis; only the last axis maps to nn.Softmax",
        )
    kind = "softmax" if node.op_type == "Softmax" else "log_softmax"
    return imp.layer(node, x, {"type": kind, "dim": axis})


def _identity(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    return imp.layer(node, ins[0], {"type": "identity"})


def _dropout(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    p = at.get("ratio", 0.5)
    if len(ins) > 1 and ins[1] is not None:
        p = float(imp.const(node, ins[1], "ratio"))
    data: dict[str, Any] = {"type": "dropout"}
    _put(data, p=(float(f"{p:.6g}"), 0.5))
    return [imp.layer(node, ins[0], data), None]


def _cast(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    return ins[0]  # a float tensor stays what it is for shapes


def _join(kind: str) -> Callable[..., Value]:
    def convert(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
        if kind == "mul" and len(ins) == 2 and any(isinstance(v, Const) for v in ins):
            return _layer_scale(imp, node, ins)
        if any(isinstance(v, Const) for v in ins):
            raise imp.fail(
                node,
                f"{node.op_type} with a constant operand (a bias or scale "
                "outside a layer) has no spec layer",
            )
        if len(ins) == 1:  # torch.cat([x], 1): x itself
            return ins[0]
        return imp.merge(node, kind, ins)

    return convert


def _layer_scale(imp: _Importer, node: Any, ins: list[Value]) -> Value:
    """x · γ with γ a C×1×1 parameter: ConvNeXt's layer scale."""
    gamma = next(v for v in ins if isinstance(v, Const))
    x = imp.tensor(node, next(v for v in ins if not isinstance(v, Const)))
    if gamma.shape != (x.shape[0],) + (1,) * (len(x.shape) - 1):
        raise imp.fail(
            node,
            f"a product with a constant of shape {list(gamma.shape)} has no "
            "spec layer (a per-channel C×1×1 scale is layer_scale)",
        )
    source = imp.source_name(gamma)
    suffix = source.rpartition(".")[2] if source else ""
    return imp.layer(
        node, x, {"type": "layer_scale", "dim": x.shape[0]}, suffix or "", shape=x.shape
    )


def _concat(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    if _axis(at.get("axis", 1), len(x.shape) + 1) != 1:
        raise imp.fail(
            node, f"concatenates on axis {at.get('axis')}; spec merges join channels (axis 1)"
        )
    return _join("concat")(imp, node, ins, at)


def _split(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> list[Value]:
    x = imp.tensor(node, ins[0])
    rank = len(x.shape) + 1
    axis = _axis(at.get("axis", 0), rank)
    if axis == 0:
        raise imp.fail(node, "splits the batch")
    n = x.shape[axis - 1]
    if len(ins) > 1 and ins[1] is not None:
        sizes = [int(v) for v in imp.const(node, ins[1], "split")]
    elif "split" in at:
        sizes = list(at["split"])
    else:
        parts = len(node.output)
        size = -(-n // parts)
        sizes = [min(size, n - i * size) for i in range(parts)]
    outs: list[Value] = []
    start = 0
    for i, size in enumerate(sizes):
        outs.append(
            imp.layer(
                node,
                x,
                {"type": "narrow", "dim": axis, "start": start, "length": size},
                f"split.{i}",
            )
        )
        start += size
    return outs


def _slice(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    rank = len(x.shape) + 1
    if len(ins) > 1:
        starts, ends = (list(imp.const(node, v, w)) for v, w in zip(ins[1:3], ("starts", "ends")))
        axes = (
            list(imp.const(node, ins[3], "axes"))
            if len(ins) > 3 and ins[3] is not None
            else list(range(len(starts)))
        )
        steps = (
            list(imp.const(node, ins[4], "steps"))
            if len(ins) > 4 and ins[4] is not None
            else [1] * len(starts)
        )
    else:
        starts, ends = list(at["starts"]), list(at["ends"])
        axes, steps = list(at.get("axes", range(len(starts)))), [1] * len(starts)
    y = x
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = _axis(int(axis), rank)
        if step != 1 or axis == 0:
            raise imp.fail(node, "only a contiguous slice of one non-batch axis maps to narrow")
        n = y.shape[axis - 1]
        a = min(max(int(start) + (n if start < 0 else 0), 0), n)
        b = min(max(int(end) + (n if end < 0 else 0), 0), n)
        if (a, b) == (0, n):
            continue
        y = imp.layer(
            node,
            y,
            {"type": "narrow", "dim": axis, "start": a, "length": b - a},
            "narrow" if y is x else f"narrow{axis}",
        )
    return y


def _flatten(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    axis = _axis(at.get("axis", 1), len(x.shape) + 1)
    if axis != 1:
        raise imp.fail(
            node, f"axis={axis} folds dimensions into the batch; only axis 1 maps to nn.Flatten"
        )
    return imp.layer(node, x, {"type": "flatten"})


def _reshape_to(imp: _Importer, node: Any, x: Tensor, out: Shape) -> Value:
    """A reshape as flatten (merging a run of axes), unflatten (splitting one) or nothing."""
    shape = x.shape
    if out == shape:
        return x
    lead = 0
    while lead < min(len(shape), len(out)) and shape[lead] == out[lead]:
        lead += 1
    tail = 0
    while tail < min(len(shape), len(out)) - lead and shape[-1 - tail] == out[-1 - tail]:
        tail += 1
    mid_in, mid_out = shape[lead : len(shape) - tail], out[lead : len(out) - tail]
    if len(mid_out) == 1 and math.prod(mid_in) == mid_out[0]:
        data: dict[str, Any] = {"type": "flatten"}
        _put(data, start_dim=(lead + 1, 1), end_dim=(lead + len(mid_in), len(shape)))
        if data.get("end_dim") == len(shape):
            data.pop("end_dim")
        return imp.layer(node, x, data)
    if len(mid_in) == 1 and math.prod(mid_out) == mid_in[0]:
        return imp.layer(
            node,
            x,
            {"type": "unflatten", "dim": lead + 1, "unflattened_size": list(mid_out)},
            shape=out,
        )
    raise imp.fail(
        node,
        f"reshapes {'x'.join(map(str, shape))} to {'x'.join(map(str, out))}, "
        "which is neither a flatten nor an unflatten",
    )


def _reshape(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    return _reshape_to(imp, node, x, _target(imp, node, ins[1], (1, *x.shape), at)[1:])


def _target(imp: _Importer, node: Any, shape: Value, full: Shape, at: dict[str, Any]) -> Shape:
    """A Reshape's target for an input of shape ``full`` (the batch counted as 1): ``0``
    copies a size, ``-1`` takes the rest; the batch must stay."""
    target = [int(v) for v in imp.const(node, shape, "the target shape")]
    dims = [full[i] if v == 0 and not at.get("allowzero", 0) else v for i, v in enumerate(target)]
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1)
        dims[dims.index(-1)] = math.prod(full) // max(known, 1)
    if math.prod(dims) != math.prod(full) or dims[0] != 1:
        raise imp.fail(node, f"reshape to {target} does not keep the batch dimension")
    return tuple(dims)


def _squeeze(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    rank = len(x.shape) + 1
    ones = [i + 1 for i, n in enumerate(x.shape) if n == 1]
    axes = {_axis(a, rank) - 1 for a in _axes_of(imp, node, ins, at, ones)}
    out = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return _reshape_to(imp, node, x, out)


def _unsqueeze(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    if "axes" in at:
        axes = list(at["axes"])
    else:
        axes = [int(a) for a in imp.const(node, ins[1], "axes")]
    rank = len(x.shape) + 1 + len(axes)
    out = list(x.shape)
    for a in sorted(_axis(a, rank) for a in axes):
        out.insert(a - 1, 1)
    return _reshape_to(imp, node, x, tuple(out))


def _transpose(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    perm = list(at.get("perm", reversed(range(len(x.shape) + 1))))
    if perm[0] != 0:
        raise imp.fail(node, "moves the batch dimension")
    out = tuple(x.shape[p - 1] for p in perm[1:])
    return imp.layer(node, x, {"type": "permute", "dims": perm}, shape=out)


def _layer_norm2d(imp: _Importer, first: Any, ln: Any) -> Value:
    """Transpose → LayerNormalization(last axis) → Transpose back: torchvision's LayerNorm2d."""
    x = imp.tensor(ln, imp.values[first.input[0]])
    at = {a.name: imp.helper.get_attribute_value(a) for a in ln.attribute}
    data: dict[str, Any] = {"type": "layer_norm2d", "normalized_shape": x.shape[0]}
    _put(data, eps=(float(f"{at.get('epsilon', 1e-5):.6g}"), 1e-5), **_ln_affine(imp, ln))
    return imp.layer(ln, x, data, shape=x.shape)


def _ln_affine(imp: _Importer, ln: Any) -> dict[str, tuple[bool, bool]]:
    """LayerNormalization's elementwise_affine and bias, as ``_put`` takes them."""
    weight = imp.is_param(ln.input[1])
    bias = len(ln.input) > 2 and imp.is_param(ln.input[2])
    return {"elementwise_affine": (weight, True), "bias": (bias if weight else True, True)}


_PAD_TYPES = {"reflect": "reflection_pad", "edge": "replication_pad", "wrap": "circular_pad"}


def _pad(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    rank = len(x.shape) + 1
    pads = [int(p) for p in (imp.const(node, ins[1], "pads") if len(ins) > 1 else at["pads"])]
    if len(ins) > 3 and ins[3] is not None:  # axes (opset 18)
        axes = [_axis(int(a), rank) for a in imp.const(node, ins[3], "axes")]
        full = [0] * (2 * rank)
        for i, a in enumerate(axes):
            full[a], full[rank + a] = pads[i], pads[len(axes) + i]
        pads = full
    before, after = pads[:rank], pads[rank:]
    if before[:2] != [0, 0] or after[:2] != [0, 0]:
        raise imp.fail(node, "pads the batch or channel axis")
    dims = rank - 2
    pairs: list[int] = []
    for a, b in reversed(list(zip(before[2:], after[2:]))):  # PyTorch lists the last axis first
        pairs += [a, b]
    mode = at.get("mode", "constant")
    value = 0.0
    if len(ins) > 2 and ins[2] is not None and ins[2].shape != (0,):
        value = float(imp.const(node, ins[2], "constant_value"))
    out = (x.shape[0], *(n + a + b for n, a, b in zip(x.shape[1:], before[2:], after[2:])))
    if mode == "constant" and value == 0:
        return imp.layer(node, x, {"type": f"zeropad{dims}d", "padding": pairs}, shape=out)
    if mode == "constant":
        return imp.layer(
            node, x, {"type": f"constant_pad{dims}d", "padding": pairs, "value": value}, shape=out
        )
    return imp.layer(node, x, {"type": f"{_PAD_TYPES[mode]}{dims}d", "padding": pairs}, shape=out)


_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _resize(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    dims = len(x.shape) - 1
    scales = sizes = None
    if len(ins) > 2 and ins[2] is not None and ins[2].shape != (0,):
        scales = [float(v) for v in imp.const(node, ins[2], "scales")]
    if len(ins) > 3 and ins[3] is not None:
        sizes = [int(v) for v in imp.const(node, ins[3], "sizes")]
    if (scales and scales[:2] != [1.0, 1.0]) or (sizes and sizes[1] != x.shape[0]):
        raise imp.fail(node, "resizes the batch or channel axis")
    mode = at.get("mode", "nearest")
    ctm = at.get("coordinate_transformation_mode", "half_pixel")
    data: dict[str, Any] = {"type": "upsample"}
    if sizes:
        data["size"] = _tup(sizes[2:])
        out = tuple(sizes[2:])
    else:
        factors = [float(f"{f:.6g}") for f in scales[2:]]
        data["scale_factor"] = factors[0] if len(set(factors)) == 1 else factors
        out = tuple(math.floor(n * f) for n, f in zip(x.shape[1:], scales[2:]))
    if mode == "nearest":
        legacy = ctm == "asymmetric" and at.get("nearest_mode", "round_prefer_floor") == "floor"
        if not legacy:
            data["mode"] = "nearest-exact"
    else:
        data["mode"] = _LINEAR_MODES[dims] if mode == "linear" else "bicubic"
        if ctm == "align_corners":
            data["align_corners"] = True
    return imp.layer(node, x, data, shape=(x.shape[0], *out))


def _layernorm(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    rank = len(x.shape) + 1
    axis = _axis(at.get("axis", -1), rank)
    data: dict[str, Any] = {"type": "layer_norm", "normalized_shape": list(x.shape[axis - 1 :])}
    _put(data, eps=(float(f"{at.get('epsilon', 1e-5):.6g}"), 1e-5), **_ln_affine(imp, node))
    return imp.layer(node, x, data, shape=x.shape)


def _groupnorm(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    data: dict[str, Any] = {
        "type": "group_norm",
        "num_groups": int(at["num_groups"]),
        "num_channels": x.shape[0],
    }
    _put(data, eps=(float(f"{at.get('epsilon', 1e-5):.6g}"), 1e-5))
    return imp.layer(node, x, data, shape=x.shape)


def _instancenorm(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = imp.tensor(node, ins[0])
    if not 2 <= len(x.shape) <= 4:
        raise imp.fail(node, f"a {len(x.shape) + 1}-d input has no PyTorch instance norm")
    data: dict[str, Any] = {"type": f"instance_norm{len(x.shape) - 1}d", "num_features": x.shape[0]}
    _put(
        data,
        eps=(float(f"{at.get('epsilon', 1e-5):.6g}"), 1e-5),
        affine=(imp.is_param(node.input[1]) or imp.is_param(node.input[2]), False),
    )
    return imp.layer(node, x, data, shape=x.shape)


def _depth_to_space(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    if at.get("mode", "DCR") != "CRD":
        raise imp.fail(
            node,
            "mode DCR reads the block position before the channel, as no "
            "PyTorch layer does (nn.PixelShuffle is mode CRD)",
        )
    return imp.layer(
        node, ins[0], {"type": "pixel_shuffle", "upscale_factor": int(at["blocksize"])}
    )


def _space_to_depth(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    raise imp.fail(
        node,
        "puts the block position before the channel, as no PyTorch layer does "
        "(nn.PixelUnshuffle exports as Reshape → Transpose → Reshape)",
    )


def _shape(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    x = ins[0]
    full = np.array((1, *x.shape), dtype=np.int64)  # the batch counts as 1 for shape arithmetic
    start, end = at.get("start", 0), at.get("end", len(full))
    part = full[start:end]
    return Const(part.shape, part)


def _constant(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    from onnx import numpy_helper

    for a in node.attribute:
        if a.name == "value":
            arr = numpy_helper.to_array(a.t)
            return Const(arr.shape, arr)
        if a.name in ("value_float", "value_int", "value_floats", "value_ints"):
            arr = np.asarray(imp.helper.get_attribute_value(a))
            return Const(arr.shape, arr)
    raise imp.fail(node, "a Constant without a value")


CONVERTERS: dict[str, Callable[..., Any]] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "ReduceMean": _reduce,
    "ReduceMax": _reduce,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "BatchNormalization": _batchnorm,
    "Relu": _simple("relu"),
    "Sigmoid": _simple("sigmoid"),
    "Tanh": _simple("tanh"),
    "HardSwish": _simple("hardswish"),
    "Selu": _simple("selu"),
    "Mish": _simple("mish"),
    "Softplus": _simple("softplus"),
    "Elu": _simple("elu", alpha="alpha"),
    "Celu": _simple("celu", alpha="alpha"),
    "LeakyRelu": _simple("leaky_relu", negative_slope="alpha"),
    "HardSigmoid": _hardsigmoid,
    "Clip": _clip,
    "PRelu": _prelu,
    "Gelu": _gelu,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "Identity": _identity,
    "Dropout": _dropout,
    "Cast": _cast,
    "Add": _join("add"),
    "Sum": _join("add"),
    "Mul": _join("mul"),
    "Concat": _concat,
    "Split": _split,
    "Slice": _slice,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": _transpose,
    "Pad": _pad,
    "Resize": _resize,
    "LayerNormalization": _layernorm,
    "GroupNormalization": _groupnorm,
    "InstanceNormalization": _instancenorm,
    "DepthToSpace": _depth_to_space,
    "SpaceToDepth": _space_to_depth,
    "Shape": _shape,
    "Constant": _constant,
}


# --------------------------------------------------------------------------- patterns


def _patterns(imp: _Importer) -> None:
    """Multi-node forms of one PyTorch layer, matched before the walk: the inner nodes are
    absorbed and the last node emits the layer."""
    prod = imp.producer

    def only_read_by(name: str, node: Any) -> bool:
        return all(r is node for r in imp.readers.get(name, []))

    memo: dict[str, bool] = {}

    def static(name: str) -> bool:
        """A constant: an initializer, or computed from constants only."""
        if name not in memo:
            p = prod.get(name)
            if name in imp.values:
                memo[name] = isinstance(imp.values[name], Const)
            elif p is None or p.op_type == "Shape":
                memo[name] = False
            else:
                memo[name] = all(static(i) for i in p.input if i)
        return memo[name]

    def value(name: str) -> float | None:
        v = imp.values.get(name)
        p = prod.get(name)
        try:
            if isinstance(v, Const):
                arr = v.array
            elif p is not None and p.op_type == "Constant":
                from onnx import numpy_helper

                arr = numpy_helper.to_array(p.attribute[0].t)
            else:
                return None
        except Exception:
            return None
        return float(arr.reshape(-1)[0]) if arr.size == 1 else None

    def other(node: Any, name: str) -> str:
        a, b = node.input[0], node.input[1]
        return b if a == name else a

    def absorb(anchor: Any, inner: list[Any], fn: Callable[[], Value]) -> None:
        imp.absorbed.update(id(n) for n in inner)
        imp.anchors[id(anchor)] = fn

    def gate(anchor: Any, x: str, kind: str, inner: list[Any]) -> None:
        absorb(anchor, inner, lambda: imp.layer(anchor, imp.values[x], {"type": kind}))

    for node in imp.nodes:
        op = node.op_type
        if op == "Mul" and len(node.input) == 2:
            for a in node.input:
                p = prod.get(a)
                x = other(node, a)
                if p is None or not only_read_by(a, node):
                    continue
                if p.op_type == "Sigmoid" and p.input[0] == x:
                    gate(node, x, "silu", [p])
                elif p.op_type == "HardSigmoid" and p.input[0] == x:
                    gate(node, x, "hardswish", [p])
                elif (
                    p.op_type == "Tanh"
                    and (q := prod.get(p.input[0])) is not None
                    and q.op_type == "Softplus"
                    and q.input[0] == x
                    and only_read_by(p.input[0], p)
                ):
                    gate(node, x, "mish", [p, q])
                else:
                    continue
                break
            # GELU, erf form: ((x · (erf(x / √2) + 1)) · 0.5
            for a in node.input:
                if value(other(node, a)) != 0.5 or (m := prod.get(a)) is None:
                    continue
                if m.op_type != "Mul" or not only_read_by(a, node):
                    continue
                for b in m.input:
                    add = prod.get(b)
                    x = other(m, b)
                    if add is None or add.op_type != "Add" or not only_read_by(b, m):
                        continue
                    erf = next(
                        (
                            prod.get(i)
                            for i in add.input
                            if prod.get(i) is not None and prod[i].op_type == "Erf"
                        ),
                        None,
                    )
                    if erf is None or (div := prod.get(erf.input[0])) is None:
                        continue
                    if (
                        div.op_type == "Div"
                        and div.input[0] == x
                        and abs((value(div.input[1]) or 0) - math.sqrt(2)) < 1e-3
                    ):
                        gate(node, x, "gelu", [m, add, erf, div])
                        break
        elif op == "Add" and len(node.input) == 2:
            for a in node.input:
                p, b = prod.get(a), other(node, a)
                if p is None or not static(b) or not only_read_by(a, node):
                    continue
                if p.op_type == "MatMul" and static(p.input[1]):  # nn.Linear on N-d input
                    mm = p
                    absorb(
                        node,
                        [p],
                        lambda mm=mm: _matmul(
                            imp,
                            mm,
                            [imp.values[mm.input[0]], imp.values[mm.input[1]]],
                            {},
                            bias=True,
                        ),
                    )
                    break
                if (
                    p.op_type == "Mul"
                    and (q := prod.get(p.input[0])) is not None
                    and q.op_type == "AveragePool"
                    and static(p.input[1])
                    and only_read_by(p.input[0], p)
                ):  # cnncalc's subsample2d
                    pool = q

                    def sub(pool=pool) -> Value:
                        at = {a.name: imp.helper.get_attribute_value(a) for a in pool.attribute}
                        data: dict[str, Any] = {
                            "type": "subsample2d",
                            "kernel_size": _tup(at["kernel_shape"]),
                        }
                        stride = _tup(at.get("strides", [1, 1]))
                        _put(data, stride=(stride, data["kernel_size"]))
                        return imp.layer(pool, imp.values[pool.input[0]], data)

                    absorb(node, [p, q], sub)
                    break
        elif op == "Transpose":  # LayerNorm2d: Transpose → LayerNormalization → Transpose
            ln = prod.get(node.input[0])
            first = prod.get(ln.input[0]) if ln is not None else None
            if (
                ln is None
                or first is None
                or ln.op_type != "LayerNormalization"
                or first.op_type != "Transpose"
                or not only_read_by(node.input[0], node)
                or not only_read_by(ln.input[0], ln)
            ):
                continue
            perms = [
                list(next((a.ints for a in n.attribute if a.name == "perm"), []))
                for n in (first, node)
            ]
            axis = next((a.i for a in ln.attribute if a.name == "axis"), -1)
            if perms == [[0, 2, 3, 1], [0, 3, 1, 2]] and axis in (-1, 3):
                absorb(node, [ln, first], lambda first=first, ln=ln: _layer_norm2d(imp, first, ln))
        elif op == "ReduceSum":  # cnncalc's rbf: Σ (unsqueeze(x) − W)²
            m = prod.get(node.input[0])
            if m is None or m.op_type != "Mul" or m.input[0] != m.input[1]:
                continue
            sub_ = prod.get(m.input[0])
            if sub_ is None or sub_.op_type != "Sub" or not static(sub_.input[1]):
                continue
            un = prod.get(sub_.input[0])
            if un is None or un.op_type != "Unsqueeze":
                continue
            w = sub_.input[1]
            absorb(
                node,
                [m, sub_, un],
                lambda un=un, w=w: imp.layer(
                    un,
                    imp.values[un.input[0]],
                    {"type": "rbf", "out_features": imp.values[w].shape[0]},
                ),
            )
        elif op == "InstanceNormalization":  # GroupNorm: Reshape → this → Reshape (· w + b)
            r1 = prod.get(node.input[0])
            after = imp.readers.get(node.output[0], [])
            if (
                r1 is None
                or r1.op_type != "Reshape"
                or not only_read_by(node.input[0], node)
                or len(after) != 1
                or after[0].op_type != "Reshape"
            ):
                continue
            inner, last, affine = [r1, node], after[0], False
            mul = imp.readers.get(last.output[0], [])
            if (
                len(mul) == 1
                and mul[0].op_type == "Mul"
                and static(w := other(mul[0], last.output[0]))
            ):
                add = imp.readers.get(mul[0].output[0], [])
                if (
                    len(add) == 1
                    and add[0].op_type == "Add"
                    and static(b := other(add[0], mul[0].output[0]))
                ):
                    affine = imp.is_param(w) or imp.is_param(b)
                    inner += [last, mul[0]]
                    last = add[0]
            absorb(last, inner, lambda r1=r1, n=node, a=affine: _group_norm(imp, r1, n, a))
        elif op == "Reshape":  # channel or pixel shuffle: Reshape → Transpose → this
            tr = prod.get(node.input[0])
            r1 = prod.get(tr.input[0]) if tr is not None and tr.op_type == "Transpose" else None
            if (
                r1 is None
                or r1.op_type != "Reshape"
                or not only_read_by(node.input[0], node)
                or not only_read_by(tr.input[0], tr)
            ):
                continue
            absorb(node, [r1, tr], lambda r1=r1, tr=tr, r2=node: _shuffle(imp, r1, tr, r2))


# --------------------------------------------------------------------------- padding and fold forms
# Forms that exporters write for layers ONNX (at their opset) has no operator for: a circular
# pad as Concat(tail, x, head) of Slice nodes per axis (PyTorch below opset 19, and cnncalc);
# nn.Unfold as a grouped Conv with a constant one-hot kernel then a Reshape to (N, C·K, L), and
# nn.Fold as a Reshape to the blocks then the transposed Conv with that kernel (cnncalc below
# opset 18). They are matched by structure before the walk and checked by value when their
# inputs are known; a form that does not check out is converted node by node as before.


def _layout_patterns(imp: _Importer) -> None:
    def read_only_by(name: str, nodes: set[int]) -> bool:
        return all(id(r) in nodes for r in imp.readers.get(name, []))

    for node in imp.nodes:
        if id(node) in imp.absorbed:
            continue
        op = node.op_type
        if op == "Concat":
            found = _circular_levels(imp, node, read_only_by)
            if found is not None:
                root, levels = found
                inner = [n for concat, slices in levels for n in (concat, *slices) if n is not node]
                imp.absorbed.update(id(n) for n in inner)
                imp.anchors.pop(id(node), None)
                imp.anchors[id(node)] = lambda node=node, root=root, levels=levels: _circular_pad(
                    imp, node, root, levels
                )
        elif (
            op == "Reshape"
            and (conv := imp.producer.get(node.input[0])) is not None
            and conv.op_type == "Conv"
            and len([i for i in conv.input if i]) == 2
            and read_only_by(node.input[0], {id(node)})
            and id(conv) not in imp.anchors
            and id(conv) not in imp.absorbed
        ):
            imp.absorbed.add(id(conv))
            imp.anchors[id(node)] = lambda conv=conv, node=node: _unfold_form(imp, conv, node)
        elif (
            op == "ConvTranspose"
            and (r := imp.producer.get(node.input[0])) is not None
            and r.op_type == "Reshape"
            and len([i for i in node.input if i]) == 2
            and read_only_by(node.input[0], {id(node)})
            and id(r) not in imp.anchors
            and id(r) not in imp.absorbed
        ):
            imp.absorbed.add(id(r))
            imp.anchors[id(node)] = lambda r=r, node=node: _fold_form(imp, r, node)


def _attrs(imp: _Importer, node: Any) -> dict[str, Any]:
    return {a.name: _attr(imp.helper.get_attribute_value(a)) for a in node.attribute}


def _group_norm(imp: _Importer, r1: Any, norm: Any, affine: bool) -> Value:
    """nn.GroupNorm as PyTorch exports it below opset 21: InstanceNormalization over the
    input reshaped to [N, G, -1], reshaped back, then the per-channel weight and bias."""
    x = imp.tensor(r1, imp.values[r1.input[0]])
    t = _target(imp, r1, imp.values[r1.input[1]], (1, *x.shape), _attrs(imp, r1))
    if len(t) != 3 or x.shape[0] % t[1]:
        raise imp.fail(
            norm,
            f"normalises the input reshaped to {list(t)}, which is not a "
            f"group norm of {x.shape[0]} channels",
        )
    data: dict[str, Any] = {"type": "group_norm", "num_groups": t[1], "num_channels": x.shape[0]}
    _put(
        data,
        eps=(float(f"{_attrs(imp, norm).get('epsilon', 1e-5):.6g}"), 1e-5),
        affine=(affine, True),
    )
    return imp.layer(norm, x, data, shape=x.shape)


def _shuffle(imp: _Importer, r1: Any, tr: Any, r2: Any) -> Value:
    """Reshape → Transpose → Reshape: nn.ChannelShuffle (torchvision's channel_shuffle),
    nn.PixelUnshuffle, or nn.PixelShuffle as written before DepthToSpace; any other is the
    three layers it reads as."""
    x = imp.tensor(r1, imp.values[r1.input[0]])
    full = (1, *x.shape)
    t1 = _target(imp, r1, imp.values[r1.input[1]], full, _attrs(imp, r1))
    perm = list(_attrs(imp, tr).get("perm", reversed(range(len(t1)))))
    data = None
    if perm[:1] == [0]:  # else the transpose moves the batch: the plain converters say so
        mid = tuple(t1[p] for p in perm)
        data = _shuffle_layer(
            full, t1, perm, _target(imp, r2, imp.values[r2.input[1]], mid, _attrs(imp, r2))
        )
    if data is None:
        y = _reshape(imp, r1, [x, imp.values[r1.input[1]]], _attrs(imp, r1))
        y = _transpose(imp, tr, [y], _attrs(imp, tr))
        return _reshape(imp, r2, [y, imp.values[r2.input[1]]], _attrs(imp, r2))
    scope = imp.scopes[id(r2)]  # a module of its own (nn.ChannelShuffle), or a function's ops
    own = scope and scope not in imp.parents
    return imp.layer(r2, x, data, "" if own else data["type"])


def _shuffle_layer(full: Shape, t1: Shape, perm: list[int], t2: Shape) -> dict[str, Any] | None:
    rank, c = len(full), full[1]
    if (
        perm == [0, 2, 1, *range(3, rank + 1)]
        and len(t1) == rank + 1
        and t2 == full
        and t1[1] * t1[2] == c
        and t1[3:] == full[2:]
        and t1[1] > 1
    ):
        return {"type": "channel_shuffle", "groups": t1[1]}  # (N, g, C/g, *) → (N, C/g, g, *)
    if rank != 4 or len(t1) != 6:
        return None
    _, _, h, w = full
    r = t1[3]
    if (
        perm == [0, 1, 3, 5, 2, 4]
        and t1 == (1, c, h // r, r, w // r, r)
        and t2 == (1, c * r * r, h // r, w // r)
    ):
        return {"type": "pixel_unshuffle", "downscale_factor": r}
    r = t1[2]
    if (
        perm == [0, 1, 4, 2, 5, 3]
        and t1 == (1, c // (r * r), r, r, h, w)
        and t2 == (1, c // (r * r), h * r, w * r)
    ):
        return {"type": "pixel_shuffle", "upscale_factor": r}
    return None


def _circular_levels(
    imp: _Importer, concat: Any, read_only_by: Callable[..., bool]
) -> tuple[str, list[tuple[Any, list[Any]]]] | None:
    """A Concat on a spatial axis whose inputs are Slice chains of one tensor (read by nothing
    else): (that tensor, [(concat, slices)]), innermost first; a Concat of the same form
    underneath (the previous axis) is taken in."""
    axis = next((a.i for a in concat.attribute if a.name == "axis"), 1)
    if axis < 2:
        return None
    slices: list[Any] = []
    roots = set()
    for name in concat.input:
        while (
            (p := imp.producer.get(name)) is not None and p.op_type == "Slice" and len(p.input) >= 3
        ):
            if p not in slices:
                slices.append(p)
            name = p.input[0]
        roots.add(name)
    if len(roots) != 1 or not slices:
        return None
    inner = {id(n) for n in slices} | {id(concat)}
    if not all(read_only_by(s.output[0], inner) for s in slices):
        return None
    root = roots.pop()
    levels = [(concat, slices)]
    below = imp.producer.get(root)
    if below is not None and below.op_type == "Concat" and read_only_by(root, inner):
        deeper = _circular_levels(imp, below, read_only_by)
        if deeper is not None:
            root, more = deeper
            levels = more + levels
    return root, levels


def _circular_pad(
    imp: _Importer, anchor: Any, root: str, levels: list[tuple[Any, list[Any]]]
) -> Value:
    from cnncalc.arithmetic import copy_pad_source

    x = imp.tensor(anchor, imp.values[root])
    rank = len(x.shape) + 1
    pads: dict[int, tuple[int, int]] = {}
    source = root
    for concat, _ in levels:
        axis = _axis(_attrs(imp, concat)["axis"], rank)
        n = x.shape[axis - 1]
        index: list[int] = []
        for name in concat.input:
            chain = []
            while name != source:
                chain.append(imp.producer[name])
                name = chain[-1].input[0]
            positions = list(range(n))
            for s in reversed(chain):
                positions = _sliced(imp, s, positions, axis, rank)
                if positions is None:
                    break
            if positions is None:
                break
            index += positions
        else:
            m = len(index)
            for a in range(-n + 1, m + 1):
                b = m - n - a
                kept = n - max(-a, 0) - max(-b, 0)
                if (
                    kept >= 1
                    and max(a, b) <= kept
                    and axis not in pads
                    and index == [copy_pad_source("circular", n, a, b, j) for j in range(m)]
                ):
                    pads[axis] = (a, b)
                    break
        if axis not in pads:
            raise imp.fail(
                concat, f"concatenates on axis {axis}; spec merges join channels (axis 1)"
            )
        source = concat.output[0]
    pairs: list[int] = []
    for axis in range(rank - 1, 1, -1):  # PyTorch lists the last axis first
        pairs += pads.get(axis, (0, 0))
    return imp.layer(anchor, x, {"type": f"circular_pad{rank - 2}d", "padding": pairs})


def _sliced(
    imp: _Importer, node: Any, positions: list[int], axis: int, rank: int
) -> list[int] | None:
    """``positions`` through a static Slice of ``axis`` with step 1 (None: another form)."""
    parts = [imp.values.get(i) if i else None for i in node.input[1:5]]
    if not all(isinstance(v, Const) for v in parts[:2]) or not all(
        v is None or isinstance(v, Const) for v in parts[2:]
    ):
        return None
    starts, ends = (v.array.reshape(-1).tolist() for v in parts[:2])
    axes = (
        parts[2].array.reshape(-1).tolist()
        if len(parts) > 2 and parts[2] is not None
        else list(range(len(starts)))
    )
    steps = (
        parts[3].array.reshape(-1).tolist()
        if len(parts) > 3 and parts[3] is not None
        else [1] * len(starts)
    )
    if len(starts) != 1 or _axis(int(axes[0]), rank) != axis or steps != [1]:
        return None
    n = len(positions)
    start = min(int(starts[0]), n)  # INT64_MAX and friends: clamped as ONNX clamps
    end = min(int(ends[0]), n)
    return positions[start:end]


def _one_hot(w: Const, groups: int, k: list[int]) -> bool:
    """Whether ``w`` is (groups·K, 1, *k) with channel c·K + j picking kernel position j."""
    area = math.prod(k)
    if w.shape != (groups * area, 1, *k):
        return False
    try:
        values = w.array.reshape(groups, area, area)
    except SpecError:
        return False
    return bool((values == np.eye(area, dtype=values.dtype)).all())


def _unfold_form(imp: _Importer, conv: Any, reshape: Any) -> Value:
    ins = [imp.values.get(i) if i else None for i in conv.input]
    at = _attrs(imp, conv)
    x, w = ins[0], ins[1]
    target = imp.values.get(reshape.input[1])
    if (
        isinstance(x, Tensor)
        and isinstance(w, Const)
        and isinstance(target, Const)
        and len(x.shape) == 3
        and at.get("auto_pad", "NOTSET") == "NOTSET"
    ):
        c = x.shape[0]
        k = list(at.get("kernel_shape", w.shape[2:]))
        s, d, before, after = _window(imp, conv, x, at, k)
        t = target.array.reshape(-1).tolist()
        if (
            int(at.get("group", 1)) == c
            and before == after
            and _one_hot(w, c, k)
            and len(t) == 3
            and t[1] in (0, c * math.prod(k))
        ):
            data: dict[str, Any] = {"type": "unfold", "kernel_size": _tup(k)}
            _put(data, dilation=(_tup(d), 1), padding=(_tup(before), 0), stride=(_tup(s), 1))
            return imp.layer(reshape, x, data)
    y = imp._convert(conv, ins)  # a convolution and a reshape after all
    imp.values[conv.output[0]] = y
    return imp._convert(reshape, [y, target])


def _fold_form(imp: _Importer, reshape: Any, convt: Any) -> Value:
    x, target = imp.values.get(reshape.input[0]), imp.values.get(reshape.input[1])
    ins = [imp.values.get(i) if i else None for i in convt.input]
    w = ins[1]
    at = _attrs(imp, convt)
    if (
        isinstance(x, Tensor)
        and isinstance(w, Const)
        and isinstance(target, Const)
        and len(x.shape) == 2
        and "output_shape" not in at
        and at.get("auto_pad", "NOTSET") == "NOTSET"
    ):
        g = int(at.get("group", 1))
        k = list(at.get("kernel_shape", w.shape[2:]))
        t = target.array.reshape(-1).tolist()
        blocks = t[2:]
        dims = len(k)
        s = list(at.get("strides", [1] * dims))
        d = list(at.get("dilations", [1] * dims))
        before, after = _split_pads(list(at.get("pads", [0] * 2 * dims)), dims)
        extra = list(at.get("output_padding", [0] * dims))
        if (
            _one_hot(w, g, k)
            and before == after
            and len(blocks) == dims
            and t[1] in (0, x.shape[0])
            and math.prod(blocks) == x.shape[1]
            and x.shape[0] == g * math.prod(k)
        ):
            out = [
                (b - 1) * si - 2 * p + di * (ki - 1) + 1 + e
                for b, si, p, di, ki, e in zip(blocks, s, before, d, k, extra)
            ]
            data: dict[str, Any] = {
                "type": "fold",
                "output_size": _tup(out),
                "kernel_size": _tup(k),
            }
            _put(data, dilation=(_tup(d), 1), padding=(_tup(before), 0), stride=(_tup(s), 1))
            return imp.layer(convt, x, data)
    y = imp._convert(reshape, [x, target])  # a reshape and a transposed convolution after all
    imp.values[reshape.output[0]] = y
    return imp._convert(convt, [y, *ins[1:]])


def _col2im(imp: _Importer, node: Any, ins: list[Value], at: dict[str, Any]) -> Value:
    """ONNX Col2Im (opset 18; torch.onnx writes nn.Fold so): nn.Fold."""
    x = imp.tensor(node, ins[0])
    image = [int(v) for v in imp.const(node, ins[1], "image_shape")]
    block = [int(v) for v in imp.const(node, ins[2], "block_shape")]
    dims = len(block)
    before, after = _split_pads(list(at.get("pads", [0] * 2 * dims)), dims)
    if before != after:
        raise imp.fail(node, f"asymmetric pads {before + after} have no nn.Fold equivalent")
    data: dict[str, Any] = {"type": "fold", "output_size": _tup(image), "kernel_size": _tup(block)}
    _put(
        data,
        dilation=(_tup(at.get("dilations", [1] * dims)), 1),
        padding=(_tup(before), 0),
        stride=(_tup(at.get("strides", [1] * dims)), 1),
    )
    return imp.layer(node, x, data)


CONVERTERS["Col2Im"] = _col2im
