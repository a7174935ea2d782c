"""Exact per-unit receptive fields (analysis.unit_field) against a brute-force reference.

The reference propagates explicit sets of positions backwards, one layer at a time, straight
from each layer's definition (which inputs an output reads), with positions outside a map
treated as padding positions — the Araujo et al. convention that puts ``start`` in the
padding — and a field is a box, so each layer's set is filled to its hull. Its hull must
equal unit_field for every unit; with whole jumps it must also equal the recurrence's
``start + i·jump`` and ``size``.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from cnncalc.analysis import analyze, nodes_of, unit_field
from cnncalc.spec import spec_from_data


def reads(layer: dict, n: int, o: int) -> set[int]:
    """Input positions output ``o`` reads, from the layer's definition (1-D)."""
    kind = layer["type"]
    if kind in ("conv1d", "maxpool1d", "avgpool1d"):
        k, s = layer["kernel_size"], layer.get("stride", layer["kernel_size"])
        p, d = layer.get("padding", 0), layer.get("dilation", 1)
        return {o * s - p + t * d for t in range(k)}
    if kind == "conv_transpose1d":
        k, s, p, d = layer["kernel_size"], layer["stride"], layer["padding"], layer["dilation"]
        # input i writes outputs i·s − p + t·d: search a window wide enough for any o
        lo, hi = (o + p - (k - 1) * d) // s - 1, (o + p) // s + 1
        return {i for i in range(lo, hi + 1) for t in range(k) if i * s - p + t * d == o}
    if kind == "upsample":
        return {math.floor(o / layer["scale_factor"])}
    if kind == "adaptive_avgpool1d":
        out = layer["output_size"]
        return set(range(o * n // out, -(-(o + 1) * n // out)))
    if kind == "zeropad1d":
        return {o - layer["padding"][0]}
    raise AssertionError(kind)


layers_1d = st.one_of(
    st.builds(
        lambda k, s, p, d: {
            "type": "conv1d",
            "out_channels": 1,
            "kernel_size": k,
            "stride": s,
            "padding": min(p, k // 2 + 1),
            "dilation": d,
        },
        st.integers(1, 5),
        st.integers(1, 3),
        st.integers(0, 3),
        st.integers(1, 3),
    ),
    st.builds(
        lambda k, s, p: {
            "type": "maxpool1d",
            "kernel_size": k,
            "stride": s,
            "padding": min(p, k // 2),
        },
        st.integers(1, 4),
        st.integers(1, 3),
        st.integers(0, 2),
    ),
    st.builds(
        lambda k, s, p, d: {
            "type": "conv_transpose1d",
            "out_channels": 1,
            "kernel_size": k,
            "stride": s,
            "padding": p,
            "dilation": d,
        },
        st.integers(1, 4),
        st.integers(1, 3),
        st.integers(0, 2),
        st.integers(1, 2),
    ),
    st.builds(lambda f: {"type": "upsample", "scale_factor": f}, st.integers(2, 3)),
    st.builds(
        lambda a, b: {"type": "zeropad1d", "padding": [a, b]}, st.integers(0, 3), st.integers(0, 3)
    ),
    st.builds(lambda o: {"type": "adaptive_avgpool1d", "output_size": o}, st.integers(1, 6)),
)


@settings(max_examples=300, deadline=None)
@given(chain=st.lists(layers_1d, min_size=1, max_size=5), n=st.integers(8, 40))
def test_unit_field_equals_brute_force(chain, n):
    try:
        a = analyze(spec_from_data({"input": [1, n], "layers": chain}))
    except Exception:  # the chain does not fit this input; other cases cover it
        return
    sizes = [n] + [r.output_shape[1] for r in a.rows]
    last = len(a.rows) - 1
    nodes = nodes_of(a)
    for o in range(sizes[-1]):
        positions = {o}
        for layer, size_in in zip(reversed(chain), reversed(sizes[:-1])):
            positions = set().union(*(reads(layer, size_in, p) for p in positions))
            if positions:  # a field is a box: the hull at each layer (Araujo et al.)
                positions = set(range(min(positions), max(positions) + 1))
        got = unit_field(nodes, last, (o,))
        if not positions:  # e.g. a stride-2, 1-wide transposed conv: odd outputs read nothing
            assert got is None
            continue
        lo, hi = got
        assert (lo[0], hi[0]) == (min(positions), max(positions)), (chain, n, o)
        rf = a.rows[last].receptive_field
        if all(j.denominator == 1 for j in rf.jump) and all(
            layer["type"] in ("conv1d", "maxpool1d", "zeropad1d") for layer in chain
        ):
            # whole jumps: the recurrence is exact for every unit
            assert lo[0] == rf.start[0] + o * rf.jump[0]
            assert hi[0] - lo[0] + 1 == rf.size[0]


def test_graph_union_through_branches():
    """A concat of a 1×1 and a 5×5 branch: the unit's field is the wider branch's."""
    a = analyze(
        spec_from_data(
            {
                "input": [1, 20, 20],
                "layers": [
                    {
                        "concat": [
                            [{"type": "conv2d", "out_channels": 1, "kernel_size": 1}],
                            [{"type": "conv2d", "out_channels": 1, "kernel_size": 5, "padding": 2}],
                        ]
                    },
                ],
            }
        )
    )
    assert unit_field(nodes_of(a), len(a.rows) - 1, (7, 9)) == ((5, 7), (9, 11))


def test_dense_layer_has_no_unit_field():
    a = analyze(
        spec_from_data({"input": [1, 4, 4], "layers": [{"type": "linear", "out_features": 3}]})
    )
    assert unit_field(nodes_of(a), 0, (0, 0)) is None
