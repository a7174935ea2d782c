"""Layer types of today's CNNs (issue 9): group/layer/instance norms, LayerNorm2d, BatchNorm3d,
stochastic depth, layer scale, channel shuffle, permute, unflatten, pixel (un)shuffle.

Shapes, parameters and buffers are checked against hand formulas, and against the PyTorch
module built with the same arguments when torch is installed; refusals against PyTorch's own
errors for the same configuration.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from cnncalc import layers as L
from cnncalc.analysis import analyze, nodes_of, unit_field
from cnncalc.cli import main
from cnncalc.explain import explain, render
from cnncalc.spec import parse_text

# inline spec, input (no batch), torch module builder, output shape, params, buffers
CASES = [
    ("group_norm(4)", (16, 8, 8), lambda nn: nn.GroupNorm(4, 16), (16, 8, 8), 2 * 16, 0),
    (
        "group_norm(2, 6, 1e-3, False)",
        (6, 5),
        lambda nn: nn.GroupNorm(2, 6, 1e-3, False),
        (6, 5),
        0,
        0,
    ),
    ("group_norm(3)", (6,), lambda nn: nn.GroupNorm(3, 6), (6,), 12, 0),
    ("layer_norm(8)", (4, 8), lambda nn: nn.LayerNorm(8), (4, 8), 16, 0),
    ("layer_norm((3, 5, 5))", (3, 5, 5), lambda nn: nn.LayerNorm((3, 5, 5)), (3, 5, 5), 150, 0),
    (
        "layer_norm((5, 5), bias=False)",
        (3, 5, 5),
        lambda nn: nn.LayerNorm((5, 5), bias=False),
        (3, 5, 5),
        25,
        0,
    ),
    ("layer_norm(5, 1e-5, False)", (3, 5), lambda nn: nn.LayerNorm(5, 1e-5, False), (3, 5), 0, 0),
    ("layer_norm2d(96, 1e-6)", (96, 7, 7), None, (96, 7, 7), 192, 0),
    ("instance_norm1d", (4, 10), lambda nn: nn.InstanceNorm1d(4), (4, 10), 0, 0),
    (
        "instance_norm2d(4, affine=True)",
        (4, 6, 6),
        lambda nn: nn.InstanceNorm2d(4, affine=True),
        (4, 6, 6),
        8,
        0,
    ),
    (
        "instance_norm3d(4, 1e-5, 0.1, True, True)",
        (4, 3, 3, 3),
        lambda nn: nn.InstanceNorm3d(4, 1e-5, 0.1, True, True),
        (4, 3, 3, 3),
        8,
        9,
    ),
    ("batchnorm3d(8)", (8, 2, 4, 4), lambda nn: nn.BatchNorm3d(8), (8, 2, 4, 4), 16, 17),
    (
        "batchnorm3d(affine=False, track_running_stats=False)",
        (8, 2, 4, 4),
        lambda nn: nn.BatchNorm3d(8, affine=False, track_running_stats=False),
        (8, 2, 4, 4),
        0,
        0,
    ),
    ("channel_shuffle(4)", (8, 3, 3), lambda nn: nn.ChannelShuffle(4), (8, 3, 3), 0, 0),
    ("channel_shuffle(2)", (4, 3), lambda nn: nn.ChannelShuffle(2), (4, 3), 0, 0),
    ("pixel_shuffle(3)", (18, 4, 5), lambda nn: nn.PixelShuffle(3), (2, 12, 15), 0, 0),
    ("pixel_unshuffle(2)", (3, 8, 6), lambda nn: nn.PixelUnshuffle(2), (12, 4, 3), 0, 0),
    ("unflatten(1, (2, -1))", (12, 5), lambda nn: nn.Unflatten(1, (2, -1)), (2, 6, 5), 0, 0),
    ("unflatten(-1, (5, 1))", (12, 5), lambda nn: nn.Unflatten(-1, (5, 1)), (12, 5, 1), 0, 0),
    ("permute((0, 2, 3, 1))", (3, 4, 5), None, (4, 5, 3), 0, 0),
    ("permute((0, -1, 1, 2))", (3, 4, 5), None, (5, 3, 4), 0, 0),
    ("stochastic_depth(0.2, 'row')", (3, 4, 5), None, (3, 4, 5), 0, 0),
    ("layer_scale(3, 1e-6)", (3, 4, 5), None, (3, 4, 5), 3, 0),
]


@pytest.mark.parametrize(
    ("text", "shape", "build", "out", "params", "buffers"), CASES, ids=[c[0] for c in CASES]
)
def test_shape_params_buffers(text, shape, build, out, params, buffers):
    row = analyze(parse_text(text), shape).rows[0]
    assert (row.output_shape, row.params, row.buffers, row.macs) == (out, params, buffers, 0)
    assert row.non_trainable_params == buffers and row.fc_equivalent_params is None


@pytest.mark.parametrize(
    ("text", "shape", "build", "out", "params", "buffers"),
    [c for c in CASES if c[2] is not None],
    ids=[c[0] for c in CASES if c[2] is not None],
)
def test_against_torch(text, shape, build, out, params, buffers):
    torch = pytest.importorskip("torch")
    module = build(torch.nn).eval()
    y = module(torch.zeros(2, *shape))
    assert tuple(y.shape) == (2, *out)
    assert sum(p.numel() for p in module.parameters()) == params
    assert sum(b.numel() for b in module.buffers()) == buffers


def test_torchvision_ops_against_torch():
    """torchvision's Permute, LayerNorm2d, StochasticDepth and CNBlock.layer_scale, rebuilt
    from their definitions (torchvision/ops/misc.py, models/convnext.py)."""
    torch = pytest.importorskip("torch")
    x = torch.zeros(2, 96, 7, 7)
    assert tuple(x.permute(0, 2, 3, 1).shape[1:]) == (7, 7, 96)
    ln = torch.nn.LayerNorm(96, eps=1e-6)  # LayerNorm2d's parameters are LayerNorm's
    y = ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    assert tuple(y.shape[1:]) == (96, 7, 7) and sum(p.numel() for p in ln.parameters()) == 192
    scale = torch.nn.Parameter(torch.ones(96, 1, 1) * 1e-6)
    assert tuple((scale * x).shape[1:]) == (96, 7, 7) and scale.numel() == 96


def test_flop_counter_counts_nothing_for_these_layers():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    nn = torch.nn
    for module, x in [
        (nn.GroupNorm(2, 8), (1, 8, 4, 4)),
        (nn.LayerNorm(8), (1, 4, 8)),
        (nn.InstanceNorm2d(8, affine=True), (1, 8, 4, 4)),
        (nn.PixelShuffle(2), (1, 8, 4, 4)),
        (nn.ChannelShuffle(2), (1, 8, 4, 4)),
    ]:
        with FlopCounterMode(display=False) as counter:
            module(torch.zeros(x))
        assert counter.get_total_flops() == 0, module


# --------------------------------------------------------------------------- refusals

# inline spec, input, field named in the message, torch call that refuses the same (or None)
REFUSALS = [
    ("group_norm(3)", "8x4x4", "num_groups", lambda nn, t: nn.GroupNorm(3, 8)),
    (
        "group_norm(2, 6)",
        "8x4x4",
        "num_channels",
        lambda nn, t: nn.GroupNorm(2, 6)(t.zeros(1, 8, 4, 4)),
    ),
    # PyTorch's own words: "num_channels (8) must be divisible by num_groups (3)"
    ("group_norm(3, 8)", "8x4x4", None, lambda nn, t: nn.GroupNorm(3, 8)),
    ("layer_norm(5)", "3x4", "normalized_shape", lambda nn, t: nn.LayerNorm(5)(t.zeros(1, 3, 4))),
    ("layer_norm2d(8)", "6x4x4", "normalized_shape", None),
    (
        "instance_norm2d(4, affine=True)",
        "3x4x4",
        "num_features",
        lambda nn, t: nn.InstanceNorm2d(4, affine=True)(t.zeros(1, 3, 4, 4)),
    ),
    (
        "instance_norm2d",
        "4x1x1",
        None,
        lambda nn, t: nn.InstanceNorm2d(4).eval()(t.zeros(2, 4, 1, 1)),
    ),
    ("instance_norm2d", "4x5", None, lambda nn, t: nn.InstanceNorm2d(4)(t.zeros(4, 5))),
    ("batchnorm3d", "4x3x3", None, lambda nn, t: nn.BatchNorm3d(4)(t.zeros(2, 4, 3, 3))),
    (
        "channel_shuffle(3)",
        "8x4x4",
        "groups",
        lambda nn, t: nn.ChannelShuffle(3)(t.zeros(1, 8, 4, 4)),
    ),
    ("channel_shuffle(2)", "8", None, lambda nn, t: nn.ChannelShuffle(2)(t.zeros(1, 8))),
    (
        "pixel_shuffle(2)",
        "6x4x4",
        "upscale_factor",
        lambda nn, t: nn.PixelShuffle(2)(t.zeros(1, 6, 4, 4)),
    ),
    (
        "pixel_unshuffle(2)",
        "3x5x4",
        "downscale_factor",
        lambda nn, t: nn.PixelUnshuffle(2)(t.zeros(1, 3, 5, 4)),
    ),
    ("permute((0, 2, 1))", "3x4x5", "dims", lambda nn, t: t.zeros(1, 3, 4, 5).permute(0, 2, 1)),
    (
        "permute((0, 2, 2, 1))",
        "3x4x5",
        "dims",
        lambda nn, t: t.zeros(1, 3, 4, 5).permute(0, 2, 2, 1),
    ),
    ("permute((1, 0, 2, 3))", "3x4x5", "dims", None),  # legal in torch: the batch moves
    (
        "unflatten(1, (2, 3))",
        "5x4",
        "unflattened_size",
        lambda nn, t: nn.Unflatten(1, (2, 3))(t.zeros(1, 5, 4)),
    ),
    (
        "unflatten(3, (2, -1))",
        "6x4",
        "dim",
        lambda nn, t: nn.Unflatten(3, (2, -1))(t.zeros(1, 6, 4)),
    ),
    (
        "unflatten(1, (-1, -1))",
        "6x4",
        "unflattened_size",
        lambda nn, t: nn.Unflatten(1, (-1, -1))(t.zeros(1, 6, 4)),
    ),
    ("stochastic_depth(1.5, 'row')", "3x4x4", "p", None),
    ("stochastic_depth(0.1, 'sample')", "3x4x4", "mode", None),
    ("layer_scale(4)", "3x4x4", "dim", None),
]


@pytest.mark.parametrize(
    ("text", "shape", "field", "torch_call"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_refusals_are_one_line(capsys, text, shape, field, torch_call):
    code = main(["shapes", "-i", shape, text])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("cnncalc: error: layer 0")
    if field:
        assert f" {field}=" in err or f" {field}:" in err, err


@pytest.mark.parametrize(
    ("text", "shape", "field", "torch_call"),
    [r for r in REFUSALS if r[3] is not None],
    ids=[r[0] for r in REFUSALS if r[3] is not None],
)
def test_torch_refuses_the_same(text, shape, field, torch_call):
    torch = pytest.importorskip("torch")
    with pytest.raises((RuntimeError, ValueError, IndexError)):
        torch_call(torch.nn, torch)


def test_stochastic_depth_needs_p_and_mode_as_torchvision(capsys):
    assert main(["shapes", "-i", "3x4x4", "stochastic_depth"]) == 1
    assert "p: required field is missing" in capsys.readouterr().err


def test_instance_norm_feature_mismatch_without_affine_is_a_warning(capsys):
    # PyTorch only warns: nothing is sized by num_features
    assert main(["shapes", "-i", "3x4x4", "instance_norm2d(4)", "-f", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "num_features 4 does not match the input's 3 channels" in err
    assert out.splitlines()[1].startswith("0,,instance_norm2d,3x4x4")


# --------------------------------------------------------------------------- inline, schema


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        (
            "group_norm(4, 16, 1e-3, False)",
            {"num_groups": 4, "num_channels": 16, "eps": 1e-3, "affine": False},
        ),
        (
            "layer_norm((4, 4), 1e-6, True, False)",
            {"normalized_shape": (4, 4), "eps": 1e-6, "elementwise_affine": True, "bias": False},
        ),
        ("layer_norm2d(96, 1e-6)", {"normalized_shape": 96, "eps": 1e-6}),
        (
            "instance_norm2d(16, 1e-3, 0.2, True, True)",
            {
                "num_features": 16,
                "eps": 1e-3,
                "momentum": 0.2,
                "affine": True,
                "track_running_stats": True,
            },
        ),
        ("batchnorm3d(8, 1e-3)", {"num_features": 8, "eps": 1e-3}),
        ("stochastic_depth(0.1, 'batch')", {"p": 0.1, "mode": "batch"}),
        ("layer_scale(16, 0.1)", {"dim": 16, "init_value": 0.1}),
        ("channel_shuffle(2)", {"groups": 2}),
        ("permute((0, 2, 3, 1))", {"order": (0, 2, 3, 1)}),
        ("unflatten(1, (2, 8))", {"dim": 1, "unflattened_size": (2, 8)}),
        ("pixel_shuffle(2)", {"upscale_factor": 2}),
        ("pixel_unshuffle(4)", {"downscale_factor": 4}),
    ],
)
def test_inline_positional_order_is_pytorchs(text, fields):
    layer = parse_text(text).layers[0]
    assert {k: getattr(layer, k) for k in fields} == fields


def test_spellings_of_the_pytorch_class_names():
    spec = parse_text(
        "GroupNorm(2) LayerNorm(8) InstanceNorm2d BatchNorm3d ChannelShuffle(2) "
        "PixelShuffle(2) PixelUnshuffle(2) StochasticDepth(0.1, 'row') "
        "Permute((0,1))"
    )
    assert [type(x) for x in spec.layers] == [
        L.GroupNorm,
        L.LayerNorm,
        L.InstanceNorm2d,
        L.BatchNorm3d,
        L.ChannelShuffle,
        L.PixelShuffle,
        L.PixelUnshuffle,
        L.StochasticDepth,
        L.Permute,
    ]


def test_yaml_permute_uses_pytorchs_argument_name():
    spec = parse_text("layers: [{type: permute, dims: [0, 2, 3, 1]}]")
    assert spec.layers[0].order == (0, 2, 3, 1)


# --------------------------------------------------------------------------- receptive field


def _rows(text, shape):
    return analyze(parse_text(text), shape).rows


@pytest.mark.parametrize(
    "text", ["group_norm(2)", "instance_norm2d", "layer_norm((8, 10))", "layer_norm((4, 8, 10))"]
)
def test_norm_over_positions_reads_the_whole_map(text):
    rows = _rows(
        f"conv2d(out_channels=4, kernel_size=3, padding=1) {text} conv2d(out_channels=4, kernel_size=3, padding=1)",
        (4, 8, 10),
    )
    f = rows[1].receptive_field
    # the conv's units cover −1..8 and −1..10; the norm's every unit reads all of them
    assert f.size == (10, 12) and f.jump == (0, 0) and f.start == (-1, -1)
    assert rows[2].receptive_field == f  # a later conv adds nothing: every input is one field


@pytest.mark.parametrize(
    "text",
    [
        "layer_norm2d",
        "batchnorm2d",
        "instance_norm2d(track_running_stats=True)",
        "permute((0, 2, 3, 1)) layer_norm(4) linear(4, 8) gelu linear(8, 4) permute((0, 3, 1, 2))",
        "layer_scale stochastic_depth(0.5, 'row')",
        "channel_shuffle(2)",
    ],
)
def test_norm_over_channels_keeps_positions(text):
    rows = _rows(f"conv2d(out_channels=4, kernel_size=3, padding=1) {text}", (4, 8, 10))
    assert rows[-1].receptive_field == rows[0].receptive_field
    assert rows[-1].notes == ()  # a per-position linear is not "a flatten missing"


def test_layer_norm_over_width_only():
    f = _rows("layer_norm(10)", (4, 8, 10))[0].receptive_field
    assert f.size == (1, 10) and f.jump == (1, 0)


def test_pixel_shuffle_field_steps():
    rows = _rows(
        "conv2d(out_channels=8, kernel_size=3) pixel_shuffle(2) pixel_unshuffle(2)", (1, 9, 9)
    )
    assert rows[1].receptive_field.jump == (Fraction(1, 2),) * 2
    assert rows[1].receptive_field.size == (3, 3)
    # unshuffle reads a 2×2 block of half-steps: 3 + (2−1)·½
    assert rows[2].receptive_field.size == (Fraction(7, 2),) * 2
    assert rows[2].receptive_field.jump == (1, 1)


def test_unit_fields_are_exact():
    a = analyze(parse_text("conv2d(out_channels=8, kernel_size=3) pixel_shuffle(2)"), (1, 9, 9))
    # output row 5 reads conv row ⌊5/2⌋ = 2, which reads input rows 2..4
    assert unit_field(nodes_of(a), 1, (5, 0)) == ((2, 0), (4, 2))
    a = analyze(parse_text("conv2d(out_channels=2, kernel_size=3) group_norm(1)"), (1, 9, 9))
    assert unit_field(nodes_of(a), 1, (3, 3)) == ((0, 0), (8, 8))


def test_flatten_unflatten_round_trip_keeps_the_field():
    rows = _rows(
        "conv2d(out_channels=4, kernel_size=3) flatten unflatten(1, (4, 6, 6)) conv2d(out_channels=4, kernel_size=3)",
        (1, 8, 8),
    )
    assert rows[3].receptive_field.size == (5, 5)


def test_permuted_layout_loses_the_field_for_spatial_layers():
    rows = _rows("permute((0, 2, 3, 1)) conv2d(out_channels=4, kernel_size=3)", (4, 8, 8))
    assert rows[0].receptive_field is not None and rows[1].receptive_field is None


# --------------------------------------------------------------------------- explain


def test_explain_states_the_conventions():
    text = render(
        explain(
            parse_text(
                "group_norm(2) layer_norm2d instance_norm2d(affine=True) "
                "pixel_shuffle(2) layer_scale"
            ),
            (8, 6, 6),
        )
    )
    assert "statistics over each of 2 groups of C/groups = 8/2 = 4 channels" in text
    assert "the field becomes the whole map's, jump 0" in text
    assert "receptive field: unchanged (over channels only" in text
    assert "params = 2·C (γ and β) = 2·8 = 16" in text
    assert "C_out = C/r² = 8/2² = 2, H_out = H·r = 6·2 = 12" in text
    assert "params = C = 2" in text
    assert "MACs = 0" in text


def test_tensorflow_semantics_changes_nothing_here():
    spec = parse_text("group_norm(2) layer_norm(6) pixel_shuffle(2) channel_shuffle(2)")
    a = analyze(spec, (8, 6, 6), semantics="tensorflow")
    assert not any(r.differs_from_pytorch for r in a.rows)


def test_gradient_of_norms_is_dense_in_the_group():
    """The convention has a reason: ∂y_i/∂x_j ≠ 0 for every j of the group (hand-derived
    dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g a one-hot gradient)."""
    x = [0.5, -1.0, 2.0, 0.0]
    mean = sum(x) / 4
    rstd = 1 / math.sqrt(sum((v - mean) ** 2 for v in x) / 4 + 1e-5)
    xhat = [(v - mean) * rstd for v in x]
    g = [1.0, 0.0, 0.0, 0.0]
    dx = [rstd * (g[j] - 0.25 - xhat[j] * xhat[0] / 4) for j in range(4)]
    assert all(abs(v) > 1e-3 for v in dx)


# --------------------------------------------------------------------------- measured field


@pytest.mark.parametrize(
    "text",
    [
        "conv2d(out_channels=4, kernel_size=3, padding=1) pixel_unshuffle(2) conv2d(out_channels=8, kernel_size=3) pixel_shuffle(2) conv2d(out_channels=2, kernel_size=3)",
        "conv2d(out_channels=4, kernel_size=3) group_norm(2) conv2d(out_channels=4, kernel_size=3)",
        "conv2d(out_channels=4, kernel_size=3) layer_norm2d conv2d(out_channels=4, kernel_size=3, stride=2) channel_shuffle(2) "
        "instance_norm2d(track_running_stats=True) layer_scale conv2d(out_channels=4, kernel_size=3)",
    ],
)
def test_theoretical_field_equals_the_analytic_one(text):
    """Back-propagated through the new backward kernels (cnncalc rf --empirical)."""
    from cnncalc import rf
    from cnncalc.spec import load

    e = rf.receptive_fields(load(text), (2, 16, 16), empirical=True).empirical
    assert e.agrees, e
