"""PyTorch's shape arithmetic, checked against the direct implementation in ``reference.py``.

Hypothesis draws layer configurations; the reference enumerates windows, bins and scatter
targets (never the closed forms cnncalc uses) and propagates explicit index sets for the
receptive field. Parameters and MACs follow PyTorch's weight shapes and the counting rule of
``torch.utils.flop_counter`` (conv: output elements × C_in/groups × kernel area; transposed
conv: input positions × C_in × C_out/groups × kernel area).
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import reference as ref
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cnncalc.analysis import analyze
from cnncalc.errors import ShapeError, SpecError
from cnncalc.spec import parse_text

PROPS = settings(max_examples=200, deadline=None)
FEW = settings(max_examples=80, deadline=None)


def run(text: str, shape: tuple[int, ...], batch: int = 1):
    return analyze(parse_text(text), shape, batch=batch)


def tup(values) -> str:
    values = tuple(values)
    return "(" + ", ".join(map(str, values)) + ("," if len(values) == 1 else "") + ")"


# --------------------------------------------------------------------------- convolutions


@st.composite
def conv_cfg(draw, dims: int):
    g = draw(st.integers(1, 3))
    c_in = g * draw(st.integers(1, 3))
    c_out = g * draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 5)) for _ in range(dims))
    d = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    kind = draw(st.sampled_from(["int", "same", "valid"]))
    s = (1,) * dims if kind == "same" else tuple(draw(st.integers(1, 4)) for _ in range(dims))
    p = tuple(draw(st.integers(0, 4)) for _ in range(dims)) if kind == "int" else kind
    n = tuple(draw(st.integers(1, 14 if dims < 3 else 8)) for _ in range(dims))
    bias = draw(st.booleans())
    return c_in, c_out, k, s, p, d, g, n, bias


def _conv_expectation(cfg):
    c_in, c_out, k, s, p, d, g, n, bias = cfg
    outs = []
    for i in range(len(n)):
        if p == "same":
            pl, pr = ref.same_pads(k[i], d[i])
        elif p == "valid":
            pl = pr = 0
        else:
            pl = pr = p[i]
        outs.append(ref.conv_out(n[i], k[i], s[i], pl, pr, d[i]))
    return outs


@pytest.mark.parametrize("dims", [1, 2, 3])
@PROPS
@given(data=st.data())
def test_conv_against_reference(dims, data):
    cfg = data.draw(conv_cfg(dims))
    c_in, c_out, k, s, p, d, g, n, bias = cfg
    pad = repr(p) if isinstance(p, str) else tup(p)
    text = (
        f"conv{dims}d({c_in}, {c_out}, kernel_size={tup(k)}, stride={tup(s)}, padding={pad}, "
        f"dilation={tup(d)}, groups={g}, bias={bias})"
    )
    outs = _conv_expectation(cfg)
    if min(outs) < 1:
        with pytest.raises(ShapeError):
            run(text, (c_in, *n))
        return
    row = run(text, (c_in, *n), batch=2).rows[0]
    assert row.output_shape == (c_out, *outs)
    if p == "same":
        assert tuple(outs) == n  # what 'same' promises
    assert row.params == ref.conv_params(c_in, c_out, k, g, bias)
    assert row.macs == 2 * ref.conv_macs((c_out, *outs), c_in, k, g)
    assert row.flops == 2 * row.macs


@pytest.mark.parametrize("dims", [1, 2])
@PROPS
@given(data=st.data())
def test_conv_transpose_against_scatter(dims, data):
    g = data.draw(st.integers(1, 3))
    c_in, c_out = g * data.draw(st.integers(1, 3)), g * data.draw(st.integers(1, 3))
    k = tuple(data.draw(st.integers(1, 5)) for _ in range(dims))
    s = tuple(data.draw(st.integers(1, 4)) for _ in range(dims))
    d = tuple(data.draw(st.integers(1, 3)) for _ in range(dims))
    p = tuple(data.draw(st.integers(0, 3)) for _ in range(dims))
    op = tuple(data.draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d))
    n = tuple(data.draw(st.integers(1, 10)) for _ in range(dims))
    text = (
        f"conv_transpose{dims}d({c_in}, {c_out}, kernel_size={tup(k)}, stride={tup(s)}, "
        f"padding={tup(p)}, output_padding={tup(op)}, dilation={tup(d)}, groups={g})"
    )
    outs = [ref.conv_transpose_out(*a) for a in zip(n, k, s, p, op, d)]
    if min(outs) < 1:
        with pytest.raises(ShapeError):
            run(text, (c_in, *n))
        return
    row = run(text, (c_in, *n)).rows[0]
    assert row.output_shape == (c_out, *outs)
    assert row.params == ref.conv_transpose_params(c_in, c_out, k, g)
    assert row.macs == ref.conv_transpose_scatter_count(n, k) * c_in * (c_out // g)


# --------------------------------------------------------------------------- pooling


@st.composite
def pool_cfg(draw, dims: int, dilation: bool):
    k = tuple(draw(st.integers(1, 6)) for _ in range(dims))
    s = tuple(draw(st.integers(1, 5)) for _ in range(dims))
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    d = tuple(draw(st.integers(1, 3)) for _ in range(dims)) if dilation else (1,) * dims
    n = tuple(draw(st.integers(1, 20)) for _ in range(dims))
    ceil = draw(st.booleans())
    return k, s, p, d, n, ceil


@pytest.mark.parametrize("kind", ["maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d"])
@PROPS
@given(data=st.data())
def test_pool_against_reference(kind, data):
    dims = int(kind[-2])
    is_max = kind.startswith("max")
    k, s, p, d, n, ceil = data.draw(pool_cfg(dims, is_max))
    extra = f", dilation={tup(d)}" if is_max else ""
    text = f"{kind}({tup(k)}, stride={tup(s)}, padding={tup(p)}, ceil_mode={ceil}{extra})"
    outs = [ref.pool_out(*a, ceil) for a in zip(n, k, s, p, d)]
    if min(outs) < 1:
        with pytest.raises(ShapeError):
            run(text, (3, *n))
        return
    a = run(text, (3, *n))
    assert a.rows[0].output_shape == (3, *outs)
    assert a.rows[0].params == 0 and a.rows[0].macs == 0
    dropped = ceil and any(ref.pool_ceil_dropped(*x) for x in zip(n, k, s, p, d))
    assert any("ceil" in w for w in a.warnings) == dropped


def test_pool_stride_defaults_to_kernel():
    assert run("maxpool2d(3)", (1, 10, 10)).rows[0].output_shape == (1, 3, 3)
    assert run("avgpool1d(4)", (2, 17)).rows[0].output_shape == (2, 4)


@pytest.mark.parametrize(
    "n,k,s,p,expected",
    [
        (5, 2, 2, 0, 3),  # ceil keeps a window overhanging the end
        (5, 2, 2, 1, 3),  # ceil: 4th window would start in the right padding -> dropped
        (5, 3, 2, 1, 3),  # ceil and floor agree
        (6, 2, 2, 1, 4),  # ceil: the window starting at the last real element is kept
        (3, 4, 2, 0, 1),  # kernel longer than the input: one overhanging window
    ],
)
def test_pool_ceil_mode_cases(n, k, s, p, expected):
    assert ref.pool_out(n, k, s, p, 1, True) == expected
    text = f"maxpool1d({k}, stride={s}, padding={p}, ceil_mode=True)"
    a = run(text, (1, n))
    assert a.rows[0].output_shape == (1, expected)
    assert any("ceil" in w for w in a.warnings) == ref.pool_ceil_dropped(n, k, s, p)


@PROPS
@given(
    n=st.integers(1, 40),
    k=st.integers(1, 6),
    s=st.integers(1, 6),
    p=st.integers(0, 3),
    d=st.integers(1, 3),
)
def test_floor_warning_when_real_input_is_never_read(n, k, s, p, d):
    """A conv1d warns exactly when its windows tile the input (span >= stride) and some real
    input element after the last window is never read. (With span < stride the gaps between
    windows are skipped by design, so cnncalc does not flag the tail either.)"""
    assume(ref.conv_out(n, k, s, p, p, d) >= 1)
    a = run(f"conv1d(1, 1, {k}, stride={s}, padding={p}, dilation={d})", (1, n))
    unread = ref.floor_unread(n, k, s, p, p, d)
    tiles = d * (k - 1) + 1 >= s
    assert any("floor" in w for w in a.warnings) == (tiles and unread > 0)


# --------------------------------------------------------------------------- adaptive pooling


@pytest.mark.parametrize(
    "kind", ["adaptive_avgpool1d", "adaptive_maxpool1d", "adaptive_avgpool2d", "adaptive_maxpool2d"]
)
@FEW
@given(data=st.data())
def test_adaptive_pools(kind, data):
    dims = int(kind[-2])
    n = tuple(data.draw(st.integers(1, 30)) for _ in range(dims))
    out = tuple(data.draw(st.integers(1, 30)) for _ in range(dims))
    a = run(f"{kind}({tup(out)})", (4, *n))
    assert a.rows[0].output_shape == (4, *out)
    assert a.rows[0].params == 0
    rf = a.rows[0].receptive_field
    for axis in range(dims):
        bins = ref.adaptive_bins(n[axis], out[axis])
        assert len(bins) == out[axis]
        assert bins[0][0] == 0 and bins[-1][1] == n[axis]  # the bins cover the input
        widths = {e - b for b, e in bins}
        # the field reported is a real bin width large enough for every unit's bin
        assert rf.size[axis] in widths and rf.size[axis] == max(widths)


def test_adaptive_none_keeps_size():
    assert run("adaptive_avgpool2d((None, 3))", (2, 9, 10)).rows[0].output_shape == (2, 9, 3)


# --------------------------------------------------------------------------- other layers


@FEW
@given(n=st.integers(1, 30), m=st.integers(1, 30), scale=st.sampled_from([0.5, 1.5, 2, 3, 2.5]))
def test_upsample_nearest(n, m, scale):
    expected = (ref.nearest_out(n, scale), ref.nearest_out(m, scale))
    if min(expected) < 1:
        with pytest.raises(ShapeError):
            run(f"upsample(scale_factor={scale})", (2, n, m))
        return
    assert run(f"upsample(scale_factor={scale})", (2, n, m)).rows[0].output_shape == (2, *expected)
    assert run(f"upsample(size=({n + 3}, {m}))", (2, n, m)).rows[0].output_shape == (2, n + 3, m)


@FEW
@given(c=st.integers(1, 64), h=st.integers(1, 20), w=st.integers(1, 20))
def test_batchnorm_counts(c, h, w):
    row = run("batchnorm2d", (c, h, w)).rows[0]
    assert row.output_shape == (c, h, w)
    assert row.params == row.trainable_params == 2 * c  # weight and bias
    assert row.buffers == 2 * c + 1  # running_mean, running_var, num_batches_tracked
    assert row.non_trainable_params == 2 * c + 1
    assert row.macs == 0
    row = run("batchnorm1d(affine=False, track_running_stats=False)", (c,)).rows[0]
    assert row.params == 0 and row.buffers == 0


@FEW
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3), out=st.integers(1, 50))
def test_linear_acts_on_last_dim(shape, out):
    shape = tuple(shape)
    a = run(f"linear({shape[-1]}, {out})", shape)
    row = a.rows[0]
    assert row.output_shape == shape[:-1] + (out,)
    assert row.params == shape[-1] * out + out
    assert row.macs == math.prod(shape) * out
    assert bool(a.warnings) == (len(shape) > 1)


@pytest.mark.parametrize(
    "text,shape,expected",
    [
        ("flatten", (3, 4, 5), (60,)),
        ("flatten(2)", (3, 4, 5), (3, 20)),
        ("flatten(1, 2)", (3, 4, 5), (12, 5)),
        ("flatten(start_dim=-2)", (3, 4, 5), (3, 20)),
        ("zeropad2d((1, 2, 3, 4))", (2, 5, 6), (2, 5 + 3 + 4, 6 + 1 + 2)),
        ("zeropad2d(-1)", (2, 5, 6), (2, 3, 4)),
        ("relu", (3, 7), (3, 7)),
        ("dropout(0.3)", (3, 7, 7), (3, 7, 7)),
    ],
)
def test_shape_layers(text, shape, expected):
    assert run(text, shape).rows[0].output_shape == expected


def test_prelu_counts():
    assert run("prelu", (8, 4, 4)).rows[0].params == 1
    assert run("prelu(8)", (8, 4, 4)).rows[0].params == 8
    with pytest.raises((ShapeError, SpecError)):
        run("prelu(3)", (8, 4, 4))


# --------------------------------------------------------------------------- receptive fields


@st.composite
def window_layer(draw):
    kind = draw(st.sampled_from(["conv", "max", "avg"]))
    k = draw(st.integers(1, 5))
    s = draw(st.integers(1, 3))
    if kind == "avg":
        d = 1
    else:
        d = draw(st.integers(1, 3))
    p = draw(st.integers(0, k // 2 if kind != "conv" else 3))
    return kind, k, s, p, d


def _layer_text(kind: str, k, s, p, d, dims: int) -> str:
    if kind == "conv":
        return f"conv{dims}d(2, 2, {k}, stride={s}, padding={p}, dilation={d})"
    if kind == "max":
        return f"maxpool{dims}d({k}, stride={s}, padding={p}, dilation={d})"
    return f"avgpool{dims}d({k}, stride={s}, padding={p})"


def _chain_fits(n: int, chain) -> bool:
    for _kind, k, s, p, d in chain:
        n = ref.conv_out(n, k, s, p, p, d)
        if n < 2:  # units 0 and 1 must both exist for the brute-force jump
            return False
    return True


@PROPS
@given(chain=st.lists(window_layer(), min_size=1, max_size=4), n=st.integers(8, 120))
def test_receptive_field_1d_brute_force(chain, n):
    assume(_chain_fits(n, chain))
    text = " ".join(_layer_text(*layer, dims=1) for layer in chain)
    rf = run(text, (2, n)).rows[-1].receptive_field
    size, jump, start = ref.receptive_field_1d([ref.Win1d(k, s, p, d) for _, k, s, p, d in chain])
    assert rf.size == (size,)
    assert rf.jump == (jump,)
    assert rf.start == (start,)
    for value in (*rf.size, *rf.jump, *rf.start):
        assert isinstance(value, (int, Fraction))


@st.composite
def window_layer_2d(draw):
    kind = draw(st.sampled_from(["conv", "max"]))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = tuple(draw(st.integers(0, ki // 2 if kind == "max" else 2)) for ki in k)
    return kind, k, s, p, d


@FEW
@given(
    chain=st.lists(window_layer_2d(), min_size=1, max_size=3),
    h=st.integers(8, 60),
    w=st.integers(8, 60),
)
def test_receptive_field_2d_brute_force(chain, h, w):
    for axis, n in ((0, h), (1, w)):
        assume(
            _chain_fits(n, [(kd, k[axis], s[axis], p[axis], d[axis]) for kd, k, s, p, d in chain])
        )
    text = " ".join(
        f"conv2d(out_channels=2, kernel_size={tup(k)}, stride={tup(s)}, padding={tup(p)}, "
        f"dilation={tup(d)})"
        if kind == "conv"
        else f"maxpool2d({tup(k)}, stride={tup(s)}, padding={tup(p)}, dilation={tup(d)})"
        for kind, k, s, p, d in chain
    )
    rf = run(text, (1, h, w)).rows[-1].receptive_field
    wins = [tuple(ref.Win1d(k[a], s[a], p[a], d[a]) for a in (0, 1)) for _, k, s, p, d in chain]
    size, jump, start = ref.receptive_field_2d(wins)
    assert rf.size == size
    assert rf.jump == jump
    assert rf.start == start


@FEW
@given(k=st.integers(1, 7), d=st.integers(1, 3), n=st.integers(1, 30))
def test_same_padding_receptive_field_start(k, d, n):
    """padding='same' puts the smaller half on the left: start = -left."""
    assume(n >= 1)
    rf = run(f"conv1d(1, 1, {k}, padding='same', dilation={d})", (1, n)).rows[0].receptive_field
    left, _ = ref.same_pads(k, d)
    size, jump, start = ref.receptive_field_1d([ref.Win1d(k, 1, left, d)])
    assert (rf.size, rf.jump, rf.start) == ((size,), (jump,), (start,))


def test_receptive_field_after_padding_layer_is_shifted():
    rf = run("zeropad1d((2, 0)) conv1d(1, 1, 3)", (1, 10)).rows[-1].receptive_field
    assert rf.start == (-2,)
    assert rf.size == (3,)


def test_receptive_field_after_dense_covers_whole_input():
    a = run("conv2d(1, 4, 3, padding=1) maxpool2d(2) flatten linear(4 * 4 * 4, 10)", (1, 8, 8))
    rf = a.rows[-1].receptive_field
    start, size = rf.start, rf.size
    for axis in range(2):
        assert start[axis] <= 0
        assert start[axis] + size[axis] >= 8


# --------------------------------------------------------------------------- huge sizes


def test_huge_sizes_are_exact():
    n = 100_000
    a = run("conv2d(3, 8, 3, stride=2, padding=1) maxpool2d(2) conv2d(8, 16, 5)", (3, n, n))
    h1 = ref.conv_out(n, 3, 2, 1)
    assert h1 == 50_000
    h2 = h1 // 2
    h3 = h2 - 4
    assert [r.output_shape for r in a.rows] == [(8, h1, h1), (8, h2, h2), (16, h3, h3)]
    assert a.rows[0].macs == 8 * h1 * h1 * 3 * 9
    assert a.rows[2].macs == 16 * h3 * h3 * 8 * 25
    assert a.totals.macs == a.rows[0].macs + a.rows[2].macs
    assert a.rows[0].fc_equivalent_params == 3 * n * n * 8 * h1 * h1 + 8 * h1 * h1
