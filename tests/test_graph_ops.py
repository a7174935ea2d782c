"""Typed merges (add, concat, mul with broadcasting), channel splits, side outputs and
branches that start at a named output — checked against hand formulas and, when installed,
against PyTorch modules written the same way."""

import pytest

from cnncalc.analysis import analyze, nodes_of, unit_field
from cnncalc.errors import ShapeError, SpecError
from cnncalc.spec import parse_text

SE = """
input: [16, 8, 8]
layers:
  - name: se
    mul:
      - []
      - - {type: adaptive_avgpool2d, output_size: 1, name: avgpool}
        - {type: conv2d, out_channels: 4, kernel_size: 1, name: fc1}
        - {type: relu, name: activation}
        - {type: conv2d, out_channels: 16, kernel_size: 1, name: fc2}
        - {type: sigmoid, name: scale_activation}
"""

SHUFFLE = """
input: [16, 8, 8]
layers:
  - name: unit
    split: 2
    concat:
      - []
      - - {type: conv2d, out_channels: 8, kernel_size: 1, bias: false}
        - {type: batchnorm2d}
        - {type: conv2d, out_channels: 8, kernel_size: 3, padding: 1, groups: 8, bias: false}
"""

HEADS = """
input: [3, 32, 32]
layers:
  - {type: conv2d, out_channels: 8, kernel_size: 3, stride: 2, padding: 1, name: low}
  - {type: conv2d, out_channels: 16, kernel_size: 3, stride: 2, padding: 1, name: high}
  - name: aux
    output: true
    layers:
      - {type: adaptive_avgpool2d, output_size: 1}
      - {type: flatten}
      - {type: linear, out_features: 10}
  - {type: conv2d, out_channels: 4, kernel_size: 1, name: head_high}
  - {type: upsample, scale_factor: 2, name: up}
  - name: head_low
    from: low
    layers: [{type: conv2d, out_channels: 4, kernel_size: 1, name: proj}]
  - add: [up, head_low]
"""


def test_squeeze_excitation_params_and_shapes():
    a = analyze(parse_text(SE))
    # fc1: 16·4 + 4, fc2: 4·16 + 16
    assert a.totals.params == 16 * 4 + 4 + 4 * 16 + 16
    gate = a.rows[-1]
    assert (gate.type, gate.output_shape) == ("mul", (16, 8, 8))
    assert gate.input_shape == (16, 8, 8)
    assert [a.rows[i].output_shape for i in gate.inputs] == [(16, 8, 8), (16, 1, 1)]
    assert gate.inputs[0] == -1
    assert a.warnings == ()  # a broadcast gate is not a misaligned branch


def test_se_gate_reads_the_whole_map():
    a = analyze(parse_text(SE))
    gate = a.rows[-1]
    # every unit of the output reads every input position through the pooled branch
    assert unit_field(nodes_of(a), gate.index, (3, 5)) == ((0, 0), (7, 7))


def test_mul_refuses_shapes_that_do_not_broadcast():
    bad = SE.replace(
        "out_channels: 16, kernel_size: 1, name: fc2", "out_channels: 8, kernel_size: 1, name: fc2"
    )
    with pytest.raises(ShapeError, match=r"mul needs shapes that broadcast.*16x8x8.*8x1x1"):
        analyze(parse_text(bad))


def test_channel_split_is_torch_chunk():
    a = analyze(parse_text(SHUFFLE))
    names = [(r.name, r.type, r.output_shape) for r in a.rows]
    assert names[:2] == [
        ("unit.split.0", "narrow", (8, 8, 8)),
        ("unit.split.1", "narrow", (8, 8, 8)),
    ]
    assert a.rows[-1].output_shape == (16, 8, 8)
    assert a.totals.params == 8 * 8 + 2 * 8 + 8 * 9
    # chunk(2) of 7 channels is 4 + 3, as torch.chunk gives
    odd = analyze(
        parse_text(
            SHUFFLE.replace("split: 2", "split: 2")
            .replace("[16, 8, 8]", "[7, 8, 8]")
            .replace("out_channels: 8", "out_channels: 3")
            .replace("groups: 8", "groups: 3")
        )
    )
    assert [r.output_shape[0] for r in odd.rows[:2]] == [4, 3]


def test_split_sizes_must_add_up():
    with pytest.raises(
        ShapeError,
        match=r"split=\(10, 10\): parts add up to 20, but the input "
        r"has 16 channels",
    ):
        analyze(parse_text(SHUFFLE.replace("split: 2", "split: [10, 10]")))
    with pytest.raises(SpecError, match="split=3: gives 3 parts for 2 branches"):
        parse_text(SHUFFLE.replace("split: 2", "split: 3"))


def test_side_output_and_branch_from_a_named_output():
    a = analyze(parse_text(HEADS))
    assert [(o.name, o.shape) for o in a.side_outputs] == [("aux", (10,))]
    assert a.totals.output_shape == (4, 16, 16)
    rows = {r.name: r for r in a.rows}
    # the main flow goes on from `high`, not from the aux head
    assert rows["head_high"].inputs == (rows["high"].index,)
    assert rows["head_low.proj"].inputs == (rows["low"].index,)
    # every parameter counted once, the aux head included
    assert a.totals.params == (3 * 9 * 8 + 8) + (8 * 9 * 16 + 16) + (16 * 10 + 10) + (
        16 * 4 + 4
    ) + (8 * 4 + 4)


def test_from_an_unknown_name_is_one_line():
    with pytest.raises(SpecError, match="no earlier output is named 'lo'.*did you mean 'low'"):
        analyze(parse_text(HEADS.replace("from: low", "from: lo")))


def test_output_flag_must_be_boolean():
    with pytest.raises(SpecError, match="output='yes': must be true or false"):
        parse_text(HEADS.replace("output: true", "output: 'yes'"))


def _torch_modules():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class SE(nn.Module):
        def __init__(self):
            super().__init__()
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc1, self.activation = nn.Conv2d(16, 4, 1), nn.ReLU()
            self.fc2, self.scale_activation = nn.Conv2d(4, 16, 1), nn.Sigmoid()

        def forward(self, x):
            s = self.avgpool(x)
            return x * self.scale_activation(self.fc2(self.activation(self.fc1(s))))

    class Unit(nn.Module):
        def __init__(self):
            super().__init__()
            self.branch = nn.Sequential(
                nn.Conv2d(8, 8, 1, bias=False),
                nn.BatchNorm2d(8),
                nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
            )

        def forward(self, x):
            a, b = x.chunk(2, dim=1)
            return torch.cat((a, self.branch(b)), dim=1)

    return torch, {"se": (SE(), SE, (16, 8, 8)), "shuffle": (Unit(), SHUFFLE, (16, 8, 8))}


def test_against_torch():
    torch, modules = _torch_modules()
    for key, (module, _, shape) in modules.items():
        spec = SE if key == "se" else SHUFFLE
        a = analyze(parse_text(spec))
        out = module(torch.zeros(1, *shape))
        assert tuple(out.shape[1:]) == a.totals.output_shape, key
        assert sum(p.numel() for p in module.parameters()) == a.totals.params, key


ASPP_POOL = """
input: [4, 12, 12]
layers:
  - concat:
      - [{type: conv2d, out_channels: 4, kernel_size: 3, padding: 2, dilation: 2}]
      - [{type: adaptive_avgpool2d, output_size: 1},
         {type: conv2d, out_channels: 4, kernel_size: 1},
         {type: upsample, size: [12, 12], mode: bilinear}]
"""


def test_image_pooling_branch_is_global_context_not_misaligned():
    """DeepLabV3's image pooling: pooled to 1×1 and resized back, every unit of that branch
    reads the whole map (one shared field, jump 0): no alignment warning, and the union is
    the whole 12×12 input for every unit."""
    a = analyze(parse_text(ASPP_POOL))
    assert a.warnings == ()
    up = a.rows[-2]
    assert up.type == "upsample" and up.receptive_field.jump == (0, 0)
    assert unit_field(nodes_of(a), a.rows[-1].index, (5, 7)) == ((0, 0), (11, 11))
