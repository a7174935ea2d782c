"""Issue 9's layer types (padding layers, fold/unfold, 3-D pools and transposed conv, the
interpolating upsample modes and ``size_of``): shapes, parameters and refusals as PyTorch.

The expected shapes and parameter counts in ``TABLE`` were measured once with torch 2.13
(``nn.<Layer>(...)(torch.zeros(1, *input))``) and pinned; ``test_table_against_torch``
re-measures them when torch is installed. Refusals are the conditions PyTorch raises on
(its messages quoted beside each case).
"""

from __future__ import annotations

import json

import pytest

from cnncalc.analysis import analyze, nodes_of, unit_field
from cnncalc.cli import main
from cnncalc.errors import ShapeError, SpecError
from cnncalc.explain import explain, render
from cnncalc.layers import BY_KEY, model, type_key
from cnncalc.spec import load, parse_text

# (inline spec, input without batch, PyTorch's output shape, PyTorch's parameter count)
TABLE = [
    ("constant_pad1d((2, -1), 3.5)", (2, 7), (2, 8), 0),
    ("constant_pad2d(1, 0.5)", (3, 5, 6), (3, 7, 8), 0),
    ("constant_pad3d((1, 0, 2, 1, 0, 3), -1.0)", (2, 3, 4, 5), (2, 6, 7, 6), 0),
    ("reflection_pad1d((3, 1))", (2, 4), (2, 8), 0),
    ("reflection_pad2d((1, 2, 3, 0))", (2, 4, 5), (2, 7, 8), 0),
    ("reflection_pad3d(2)", (1, 3, 4, 5), (1, 7, 8, 9), 0),
    ("reflection_pad2d((-1, 2, 0, 1))", (2, 4, 5), (2, 5, 6), 0),
    ("replication_pad1d((5, 0))", (2, 3), (2, 8), 0),
    ("replication_pad2d(4)", (1, 2, 3), (1, 10, 11), 0),
    ("replication_pad3d((1, 1, 0, 2, 3, -1))", (1, 3, 4, 5), (1, 5, 6, 7), 0),
    ("circular_pad1d((3, 3))", (2, 3), (2, 9), 0),
    ("circular_pad2d((1, -1, 2, 0))", (2, 4, 5), (2, 6, 5), 0),
    ("circular_pad3d(1)", (2, 2, 3, 4), (2, 4, 5, 6), 0),
    ("zeropad3d((1, 2, 0, 0, -1, 1))", (2, 3, 4, 5), (2, 3, 4, 8), 0),
    ("unfold(3)", (2, 5, 6), (18, 12), 0),
    ("unfold((2, 3), (2, 1), 1, (2, 3))", (3, 9, 10), (18, 20), 0),
    ("fold((5, 6), 3)", (18, 12), (2, 5, 6), 0),
    ("fold((9, 10), (2, 3), (2, 1), 1, (2, 3))", (18, 20), (3, 9, 10), 0),
    ("maxpool3d(3, 2, 1)", (2, 7, 8, 9), (2, 4, 4, 5), 0),
    (
        "maxpool3d((2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 1, 1), ceil_mode=True)",
        (2, 7, 8, 9),
        (2, 7, 5, 5),
        0,
    ),
    ("avgpool3d(2, ceil_mode=True)", (2, 5, 7, 9), (2, 3, 4, 5), 0),
    ("avgpool3d((3, 1, 3), 2, (1, 0, 1), count_include_pad=False)", (2, 5, 7, 9), (2, 3, 4, 5), 0),
    ("adaptive_avgpool3d((2, None, 3))", (4, 5, 6, 7), (4, 2, 6, 3), 0),
    ("adaptive_maxpool3d(1)", (4, 5, 6, 7), (4, 1, 1, 1), 0),
    ("conv_transpose3d(4, 6, 3, 2, 1, 1)", (4, 3, 5, 6), (6, 6, 10, 12), 654),
    (
        "conv_transpose3d(4, 6, (3, 2, 1), (1, 2, 3), 0, 0, 2, False, (2, 1, 1))",
        (4, 3, 5, 6),
        (6, 7, 10, 16),
        72,
    ),
    ("upsample(scale_factor=2.5, mode='bilinear')", (3, 5, 7), (3, 12, 17), 0),
    (
        "upsample(scale_factor=(0.5, 1.7), mode='bicubic', align_corners=True)",
        (3, 5, 7),
        (3, 2, 11),
        0,
    ),
    ("upsample((9, 4, 3), mode='trilinear')", (2, 3, 5, 7), (2, 9, 4, 3), 0),
    (
        "upsample(scale_factor=1.37, mode='linear', recompute_scale_factor=True)",
        (2, 11),
        (2, 15),
        0,
    ),
    ("upsample(scale_factor=0.3, mode='nearest-exact')", (2, 11, 13), (2, 3, 3), 0),
]


def shape_text(shape) -> str:
    return "x".join(map(str, shape))


@pytest.mark.parametrize(("text", "shape", "out", "params"), TABLE, ids=[t[0] for t in TABLE])
def test_shapes_and_params_as_pytorch(text, shape, out, params):
    a = analyze(load(text), shape)
    assert a.rows[0].output_shape == out
    assert a.totals.params == params
    assert a.rows[0].macs == (0 if params == 0 else a.rows[0].macs)


def test_conv_transpose3d_macs_over_input_positions():
    # flop_counter counts a transposed conv over its input: C_in·D·H·W·(C_out/g)·k³
    a = analyze(load("conv_transpose3d(4, 6, 3, 2, 1, 1)"), (4, 3, 5, 6))
    assert a.totals.macs == 4 * 3 * 5 * 6 * 6 * 27


def test_table_against_torch():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    def build(text):
        kind, _, args = text.partition("(")
        names = {
            "constant_pad": "ConstantPad",
            "reflection_pad": "ReflectionPad",
            "replication_pad": "ReplicationPad",
            "circular_pad": "CircularPad",
            "zeropad3d": "ZeroPad3d",
            "unfold": "Unfold",
            "fold": "Fold",
            "maxpool3d": "MaxPool3d",
            "avgpool3d": "AvgPool3d",
            "adaptive_avgpool3d": "AdaptiveAvgPool3d",
            "adaptive_maxpool3d": "AdaptiveMaxPool3d",
            "upsample": "Upsample",
        }
        if kind == "conv_transpose3d":  # written as PyTorch writes it
            return eval(f"nn.ConvTranspose3d({args}", {"nn": nn})  # noqa: S307
        cls = next(
            v + kind[len(k) :] if k.endswith("pad") else v
            for k, v in names.items()
            if kind.startswith(k) and (k.endswith("pad") or kind == k)
        )
        return eval(f"nn.{cls}({args}", {"nn": nn})  # noqa: S307

    for text, shape, out, params in TABLE:
        m = build(text)
        y = m(torch.zeros(1, *shape))
        assert (tuple(y.shape[1:]), sum(p.numel() for p in m.parameters())) == (out, params), text


# (inline spec, input, substrings of the one-line error) — PyTorch's own refusal beside each
REFUSALS = [
    # "Padding size should be less than the corresponding input dimension"
    ("reflection_pad2d((4, 0, 0, 0))", "1x4x4", ["padding", "smaller than the input size 4"]),
    ("reflection_pad1d(3)", "1x3", ["padding=(3, 3)", "smaller than the input size 3"]),
    # "Padding value causes wrapping around more than once."
    ("circular_pad2d((0, 0, 5, 0))", "1x4x4", ["padding", "at most the input size 4"]),
    ("circular_pad1d((-1, 4))", "1x4", ["padding", "at most the input size 3"]),
    # "Trying to create tensor with negative dimension"
    ("replication_pad2d((-3, -2, 0, 0))", "1x4x4", ["padding", "leaves"]),
    # "calculated shape of the array of sliding blocks as (0, 2), but its components must be
    # at least one"
    ("unfold(4)", "1x3x5", ["sliding blocks", "0x2", "at least one"]),
    # "Expected size of input's dimension 1 to be divisible by the product of kernel_size"
    ("fold(4, 2)", "7x9", ["kernel_size", "not divisible", "7"]),
    # "expected size of input's dimension 2 to match the calculated number of sliding blocks"
    ("fold(4, 2)", "8x8", ["output_size", "9 sliding blocks", "L = 8"]),
    # "pad should be at most half of effective kernel size"
    ("maxpool3d(2, padding=2)", "1x4x4x4", ["padding", "at most half"]),
    # "Got 3D input, but bilinear mode needs 4D input"
    ("upsample(scale_factor=2, mode='bilinear')", "2x5", ["mode='bilinear'", "2 spatial"]),
    ("upsample(scale_factor=2, mode='trilinear')", "2x5x5", ["mode='trilinear'", "3 spatial"]),
    # "align_corners option can only be set with the interpolating modes"
    ("upsample(size=4, align_corners=True)", "2x5x5", ["align_corners", "interpolating"]),
    # "recompute_scale_factor is not meaningful with an explicit size."
    (
        "upsample(size=4, mode='bilinear', recompute_scale_factor=True)",
        "2x5x5",
        ["recompute_scale_factor", "explicit size"],
    ),
    # "Calculated output size per channel: (-4 x -4 x -4). Output size is too small"
    ("conv_transpose3d(1, 2, 3, 1, 4)", "1x2x2x2", ["padding", "not positive"]),
    ("upsample(size_of='nowhere')", "2x5x5", ["no earlier output is named 'nowhere'"]),
]


@pytest.mark.parametrize(("text", "shape", "needles"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_are_one_line(capsys, text, shape, needles):
    code = main(["shapes", "-i", shape, text])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("cnncalc: error: layer")
    for needle in needles:
        assert needle in err, err


def test_refusal_conditions_match_torch():
    torch = pytest.importorskip("torch")
    for text, shape, _ in REFUSALS[:-1]:
        kind = text.split("(")[0]
        cls = {
            "reflection_pad2d": "ReflectionPad2d",
            "reflection_pad1d": "ReflectionPad1d",
            "circular_pad2d": "CircularPad2d",
            "circular_pad1d": "CircularPad1d",
            "replication_pad2d": "ReplicationPad2d",
            "unfold": "Unfold",
            "fold": "Fold",
            "maxpool3d": "MaxPool3d",
            "upsample": "Upsample",
            "conv_transpose3d": "ConvTranspose3d",
        }[kind]
        args = text[len(kind) + 1 :]
        if kind == "conv_transpose3d":
            args = "1, " + args
        dims = tuple(int(v) for v in shape.split("x"))
        with pytest.raises((RuntimeError, ValueError, NotImplementedError)):
            eval(f"torch.nn.{cls}({args}")(torch.zeros(1, *dims))  # noqa: S307


def test_inline_positional_order_is_pytorchs():
    expected = {
        "constant_pad2d": ("padding", "value"),
        "reflection_pad3d": ("padding",),
        "fold": ("output_size", "kernel_size", "dilation", "padding", "stride"),
        "unfold": ("kernel_size", "dilation", "padding", "stride"),
        "upsample": ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor"),
        "maxpool3d": (
            "kernel_size",
            "stride",
            "padding",
            "dilation",
            "return_indices",
            "ceil_mode",
        ),
    }
    for kind, order in expected.items():
        assert model(BY_KEY[type_key(kind)]).positional == order
    # PyTorch class names and the interpolate alias are accepted spellings
    for spelling in (
        "ConstantPad2d",
        "ReflectionPad1d",
        "CircularPad3d",
        "ConvTranspose3d",
        "AdaptiveMaxPool3d",
        "interpolate",
        "Fold",
    ):
        assert type_key(spelling) in BY_KEY


def test_schema_lists_the_new_types(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    text = json.dumps(schema)
    for kind in (
        "constant_pad3d",
        "circular_pad1d",
        "fold",
        "unfold",
        "maxpool3d",
        "conv_transpose3d",
        "nearest-exact",
        "size_of",
    ):
        assert f'"{kind}"' in text


# --------------------------------------------------------------------------- size_of


SEG = """
input: [3, 33, 47]
layers:
  - {type: conv2d, out_channels: 4, kernel_size: 3, stride: 2, padding: 1, name: low}
  - {type: conv2d, out_channels: 4, kernel_size: 3, stride: 2, padding: 1}
  - {type: upsample, size_of: low, mode: bilinear}
  - {type: upsample, size_of: input, mode: bicubic, align_corners: true, name: out}
"""


@pytest.mark.parametrize("shape", [(3, 33, 47), (3, 8, 200), (3, 520, 520)])
def test_size_of_follows_the_named_tensor(shape):
    a = analyze(parse_text(SEG), shape)
    low = -(-shape[1] // 2), -(-shape[2] // 2)  # ⌊(n + 2 − 3)/2⌋ + 1 = ⌈n/2⌉
    assert a.rows[2].output_shape == (4, *low)
    assert a.totals.output_shape == (4, *shape[1:])
    # the shape-only input is wired (its row or -1: the network input) but not read for values
    assert a.rows[2].inputs == (1, 0) and a.rows[3].inputs == (2, -1)


def test_size_of_needs_the_same_spatial_rank():
    spec = parse_text("""
input: [2, 5, 5]
layers:
  - {name: flat, output: true, layers: [{type: flatten}]}
  - {type: upsample, size_of: flat}
""")
    with pytest.raises(
        ShapeError,
        match=r"size_of='flat': names a tensor of shape 50, which "
        r"does not have 2 spatial dimensions",
    ):
        analyze(spec)


def test_input_is_referable_unless_a_layer_takes_the_name():
    spec = parse_text(
        SEG.replace("name: low}", "name: input}").replace("size_of: low", "size_of: input")
    )
    a = analyze(spec)
    assert a.totals.output_shape == (4, 17, 24)  # 'input' now names the first conv


def test_explain_shows_size_of_and_modes():
    text = render(explain(parse_text(SEG)))
    assert "out = the spatial size of 'low' = 17×24 (size_of)" in text
    assert "mode bicubic: src = dst·(in − 1)/(out − 1)" in text
    assert "scale on W = (24 − 1)/(47 − 1) (align_corners)" in text


def test_receptive_field_of_bilinear_upsampling():
    # 2× bilinear (align_corners=False): output j reads ⌊(j + ½)/2 − ½⌋ and the next input;
    # output 0 reads input 0 only (the source index is clamped at 0)
    a = analyze(load("upsample(scale_factor=2, mode='bilinear')"), (1, 8, 8))
    rf = a.rows[0].receptive_field.to_dict()
    assert rf == {"size": [2, 2], "jump": [0.5, 0.5], "start": [0, 0]}
    nodes = nodes_of(a)
    assert unit_field(nodes, 0, (0, 0)) == ((0, 0), (0, 0))
    assert unit_field(nodes, 0, (5, 15)) == ((2, 7), (3, 7))  # 5 → 2.25; 15 → 7.25 clamped


def test_tensorflow_semantics_refuses_ceil_mode_3d():
    with pytest.raises(ShapeError, match="ceil_mode"):
        analyze(load("maxpool3d(2, ceil_mode=True)"), (1, 5, 5, 5), semantics="tensorflow")
    same = analyze(
        load("reflection_pad2d(1) upsample(scale_factor=2, mode='bilinear')"),
        (1, 5, 5),
        semantics="tensorflow",
    )
    assert not any(r.differs_from_pytorch for r in same.rows)


def test_bad_mode_is_a_spec_error():
    with pytest.raises(SpecError, match="mode"):
        load("upsample(scale_factor=2, mode='area')")
    with pytest.raises(SpecError, match="exactly one of size, scale_factor and size_of"):
        load("upsample(4, size_of='input')")


# --------------------------------------------------------------------------- measured fields


VOLUME = """
input: [2, 12, 14, 16]
layers:
  - {type: conv3d, out_channels: 4, kernel_size: 3, padding: 1, stride: 2}
  - {type: reflection_pad3d, padding: 1}
  - {type: maxpool3d, kernel_size: 3, stride: 1}
  - {type: conv_transpose3d, out_channels: 3, kernel_size: 3, stride: 2, padding: 1}
  - {type: avgpool3d, kernel_size: 2, stride: 1}
  - {type: upsample, scale_factor: 1.5, mode: trilinear}
"""

RESIZED = """
input: [3, 40, 40]
layers:
  - {type: conv2d, out_channels: 4, kernel_size: 3, stride: 2, padding: 1, name: a}
  - {type: conv2d, out_channels: 4, kernel_size: 3, stride: 2, padding: 1}
  - {type: upsample, size_of: a, mode: bicubic}
  - {type: replication_pad2d, padding: 2}
  - {type: conv2d, out_channels: 4, kernel_size: 5}
  - {type: circular_pad2d, padding: [1, 0, 0, 1]}
  - {type: upsample, size_of: input, mode: bilinear, align_corners: true}
  - {type: conv2d, out_channels: 2, kernel_size: 3, padding: 1}
"""


@pytest.mark.parametrize("text", [VOLUME, RESIZED], ids=["3-d", "resized"])
def test_measured_field_equals_the_analytic_one(text):
    """rf --empirical: back-propagation through conv3d_backward, the 3-D pools, the copying
    pads and every interpolation reaches exactly the analytic field (unit_field)."""
    from cnncalc.rf import measure

    e = measure(analyze(parse_text(text)))
    assert e.theoretical is not None and e.agrees, (e.theoretical, e.analytic_lo, e.analytic_hi)


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("upsample(size=(3, 3, 3))", "8x5x5"),
        ("upsample(scale_factor=0.1)", "8x5x5"),
        ("fold(4, 2)", "8x8"),
        ("unfold(9)", "8x5x5"),
        ("reflection_pad2d(7)", "8x5x5"),
        ("circular_pad3d(9)", "1x4x4x4"),
        ("conv_transpose3d(1, 2, 3, 1, 4)", "1x2x2x2"),
    ],
)
def test_explain_a_refused_layer_is_a_clean_error(capsys, text, shape):
    code = main(["explain", "-i", shape, text])
    _, err = capsys.readouterr()
    assert code == 1 and err.startswith("cnncalc: error: layer 0") and err.count("\n") == 1


def test_explain_every_new_type(capsys):
    for text, shape, _, _ in TABLE:
        assert main(["explain", "-i", shape_text(shape), text]) == 0, text
    out = capsys.readouterr().out
    assert "new entries are mirrored about the border element" in out
    assert "L = 12 blocks, each C·k_H·k_W = 2·3·3 = 18 values" in out
    assert "C_out = rows / (k_H·k_W) = 18 / (3·3) = 2" in out
