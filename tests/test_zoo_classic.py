"""The classic half of the model zoo (issue 9, part 3): torchvision's ResNets, ResNeXt, Wide
ResNet, VGG, SqueezeNet 1.1, DenseNets, Inception v3 and two RegNets, each against torchvision.

The pinned totals were computed once with torch 2.13.0 / torchvision 0.28.0 and are literals
here (none is read back from cnncalc): for ``m = torchvision.models.<builder>(weights=None)``
(Inception v3: ``aux_logits=True, init_weights=False``) in eval mode, at batch 1,

- params   = sum(p.numel() for p in m.parameters()), equal to torchvision's published
             ``num_params``; every parameter is trainable;
- buffers  = sum(b.numel() for b in m.buffers()) (BatchNorm running mean/var and
             num_batches_tracked);
- macs     = torch.utils.flop_counter.FlopCounterMode's total ÷ 2 (aten.convolution and
             aten.addmm only) on a 1×3×224×224 input (Inception v3: 1×3×299×299);
- output   = the logits' shape without the batch.

With torch installed, the torch section rebuilds every model (on the meta device) and checks
the same figures, and that the modules owning parameters are exactly cnncalc's rows that have
parameters, name by name and count by count.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import types
from pathlib import Path

import pytest

from cnncalc.analysis import analyze, collapse
from cnncalc.cli import main
from cnncalc.errors import ShapeError
from cnncalc.spec import load

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# torch 2.13.0 / torchvision 0.28.0, computed as the module docstring says
TORCHVISION = {
    #                   params        buffers  MACs (conv + linear)
    "resnet34": (21_797_672, 17_060, 3_663_761_408),
    "resnet101": (44_549_160, 105_448, 7_801_405_440),
    "resnet152": (60_192_808, 151_579, 11_513_626_624),
    "resnext50_32x4d": (25_028_904, 68_277, 4_230_479_872),
    "wide_resnet50_2": (68_883_240, 68_277, 11_398_021_120),
    "vgg11": (132_863_336, 0, 7_609_090_048),
    "vgg19_bn": (143_678_248, 11_024, 19_632_062_464),
    "squeezenet1_1": (1_235_496, 0, 349_151_936),
    "densenet161": (28_681_000, 220_097, 7_727_907_072),
    "densenet201": (20_013_928, 229_257, 4_291_365_888),
    # with the aux head (torchvision counts it); MACs of the eval-mode forward + AuxLogits
    "inception_v3": (27_161_264, 36_320, 5_713_216_096 + 5_683_200),
    "regnet_x_1_6gf": (9_190_136, 43_563, 1_602_849_792),
    "regnet_y_400mf": (4_344_144, 27_205, 401_842_848),
}
# Inception v3's AuxLogits alone: params, buffers, MACs on Mixed_6e's 768×17×17 output
INCEPTION_AUX = (3_326_696, 1_794, 5_683_200)
INCEPTION_MAIN_MACS = 5_713_216_096  # eval mode (no aux): torchvision's "_ops" 5.713 GMACs

MODELS = sorted(TORCHVISION)


def input_of(model: str) -> tuple[int, int, int]:
    return (3, 299, 299) if model == "inception_v3" else (3, 224, 224)


def spec_path(model: str) -> Path:
    return EXAMPLES / f"{model}.yaml"


@functools.cache
def analysis(model: str, shape=None):
    return analyze(load(str(spec_path(model))), shape)  # immutable: safe to share


def outputs(model: str) -> dict[str, tuple[int, ...]]:
    return {r.name: r.output_shape for r in analysis(model).rows if r.name}


# --------------------------------------------------------------------------- totals


@pytest.mark.parametrize("model", MODELS)
def test_totals_match_torchvision(model):
    a = analysis(model)
    params, buffers, macs = TORCHVISION[model]
    assert a.input_shape == input_of(model)
    assert a.totals.params == params
    assert a.totals.trainable_params == params
    assert a.totals.buffers == buffers
    assert a.totals.non_trainable_params == buffers  # nothing frozen: only the BN buffers
    assert a.totals.macs == macs
    assert a.totals.output_shape == (1000,)


@pytest.mark.parametrize("model", MODELS)
def test_cli_json_totals(capsys, model):
    code = main(["params", str(spec_path(model)), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    totals = json.loads(out)["totals"]
    assert (totals["params"], totals["buffers"], totals["macs"]) == TORCHVISION[model]
    assert totals["output_shape"] == [1000]


@pytest.mark.parametrize("model", MODELS)
def test_header_cites_source_and_total(model):
    header = []
    for line in spec_path(model).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    assert re.search(r"\((CVPR|ICLR|BMVC) \d{4}\)|arXiv", text), "cite the paper (with year)"
    assert f"torchvision.models.{model}" in text
    assert f"{TORCHVISION[model][0]:,}" in text, "state the expected total"


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("resnet34", ["layer1.2.conv2", "layer2.0.downsample.0", "layer3.5.bn2", "layer4.2.conv2"]),
        ("resnet101", ["layer1.0.downsample.1", "layer3.22.conv3", "layer4.2.bn3", "fc"]),
        ("resnet152", ["layer2.7.conv3", "layer3.35.bn3", "layer4.0.downsample.0"]),
        ("resnext50_32x4d", ["layer1.0.conv2", "layer4.2.conv3", "fc"]),
        ("wide_resnet50_2", ["layer1.0.downsample.0", "layer4.2.bn3"]),
        ("vgg11", ["features.0", "features.18", "classifier.6"]),
        ("vgg19_bn", ["features.49", "features.50", "features.52", "classifier.0"]),
        (
            "squeezenet1_1",
            ["features.0", "features.3.expand3x3", "features.12.squeeze", "classifier.1"],
        ),
        (
            "densenet161",
            [
                "features.conv0",
                "features.denseblock3.denselayer36.conv2",
                "features.transition3.conv",
                "features.norm5",
                "classifier",
            ],
        ),
        (
            "densenet201",
            [
                "features.denseblock3.denselayer48.conv1",
                "features.denseblock4.denselayer32.norm2",
                "classifier",
            ],
        ),
        (
            "inception_v3",
            [
                "Conv2d_1a_3x3.conv",
                "Mixed_5b.branch5x5_2.bn",
                "Mixed_6e.branch7x7dbl_5.conv",
                "Mixed_7c.branch3x3dbl_3b.conv",
                "AuxLogits.conv0.conv",
                "AuxLogits.conv1.bn",
                "AuxLogits.fc",
                "fc",
            ],
        ),
        (
            "regnet_x_1_6gf",
            [
                "stem.0",
                "trunk_output.block1.block1-0.proj.0",
                "trunk_output.block3.block3-9.f.b.0",
                "trunk_output.block4.block4-1.f.c.1",
                "fc",
            ],
        ),
        (
            "regnet_y_400mf",
            [
                "trunk_output.block1.block1-0.f.se.fc1",
                "trunk_output.block4.block4-5.f.se.fc2",
                "trunk_output.block4.block4-5.f.se.scale_activation",
                "trunk_output.block4.block4-5.activation",
            ],
        ),
    ],
)
def test_rows_carry_module_names(model, expected):
    present = set(outputs(model))
    assert [n for n in expected if n not in present] == []


def test_bottleneck_widths_and_groups():
    """torchvision: width = int(planes · width_per_group / 64) · groups."""
    for model, width, groups in (
        ("resnext50_32x4d", 4 * 64 // 64 * 32, 32),
        ("wide_resnet50_2", 128 * 64 // 64, 1),
    ):
        rows = {r.name: r for r in analysis(model).rows}
        conv2 = rows["layer1.0.conv2"]
        assert conv2.output_shape == (width, 56, 56)
        assert conv2.layer.groups == groups
        # (width / groups) · 3 · 3 weights per output channel, no bias
        assert conv2.params == width * (width // groups) * 9
        assert rows["layer4.2.conv3"].output_shape == (2048, 7, 7)


def test_resnet_stage_depths():
    for model, depths in (
        ("resnet34", [3, 4, 6, 3]),
        ("resnet101", [3, 4, 23, 3]),
        ("resnet152", [3, 8, 36, 3]),
    ):
        blocks = {".".join(n.split(".")[:2]) for n in outputs(model) if n.startswith("layer")}
        assert [sum(b.startswith(f"layer{s}.") for b in blocks) for s in (1, 2, 3, 4)] == depths


def test_vgg_batchnorm_and_receptive_field():
    # vgg19_bn: 16 BatchNorm2d over 2·64 + 2·128 + 4·256 + 8·512 = 5,504 channels
    a = analysis("vgg19_bn")
    assert a.totals.params - 2 * 5504 == 143_667_240  # torchvision's vgg19 (no BN)
    assert a.totals.buffers == 2 * 5504 + 16
    # vgg11's last pool (features.20), by the Araujo et al. recurrence over
    # c3 p2 c3 p2 c3 c3 p2 c3 c3 p2 c3 c3 p2 (padding 1): size 150, jump 32, start -59
    rf = {r.name: r.receptive_field for r in analysis("vgg11").rows if r.name}["features.20"]
    assert rf.to_dict() == {"size": [150, 150], "jump": [32, 32], "start": [-59, -59]}


def test_squeezenet1_1_pools():
    outs = outputs("squeezenet1_1")
    # ⌊(224 - 3)/2⌋ + 1 = 111; ceil-mode pools: ⌈(111 - 3)/2⌉ + 1 = 55, 27, 13
    assert outs["features.0"] == (64, 111, 111)
    assert outs["features.2"] == (64, 55, 55)
    assert outs["features.5"] == (128, 27, 27)
    assert outs["features.8"] == (256, 13, 13)
    assert outs["features.12.concat"] == (512, 13, 13)


@pytest.mark.parametrize(
    ("model", "channels"),
    [
        # init + n·growth after each block; transitions halve
        ("densenet161", [96 + 6 * 48, 192 + 12 * 48, 384 + 36 * 48, 1056 + 24 * 48]),
        ("densenet201", [64 + 6 * 32, 128 + 12 * 32, 256 + 48 * 32, 896 + 32 * 32]),
    ],
)
def test_densenet_block_channels(model, channels):
    outs = outputs(model)
    last = {
        1: 6,
        2: 12,
        3: 36 if model == "densenet161" else 48,
        4: 24 if model == "densenet161" else 32,
    }
    got = [outs[f"features.denseblock{b}.denselayer{last[b]}.concat"][0] for b in (1, 2, 3, 4)]
    assert got == channels
    assert outs["features.norm5"][0] == channels[-1]


def test_inception_v3_block_outputs():
    outs = outputs("inception_v3")  # a block's outer concat is its last row of that name
    # Szegedy et al. 2016, Table 1 (and torchvision's shape comments in Inception3._forward)
    assert outs["Conv2d_1a_3x3.relu"] == (32, 149, 149)
    assert outs["maxpool1"] == (64, 73, 73)
    assert outs["maxpool2"] == (192, 35, 35)
    assert outs["Mixed_5b.concat"] == (64 + 64 + 96 + 32, 35, 35)
    assert outs["Mixed_5d.concat"] == (288, 35, 35)
    assert outs["Mixed_6a.concat"] == (384 + 96 + 288, 17, 17)
    assert outs["Mixed_6e.concat"] == (768, 17, 17)
    assert outs["Mixed_7a.concat"] == (320 + 192 + 768, 8, 8)
    assert outs["Mixed_7c.concat"] == (320 + 2 * 384 + 2 * 384 + 192, 8, 8)


def test_inception_v3_aux_head_is_a_side_output():
    a = analysis("inception_v3")
    assert [(o.name, o.shape) for o in a.side_outputs] == [("AuxLogits", (1000,))]
    rows = {r.name: r for r in a.rows if r.name}
    # its F.avg_pool2d reads Mixed_6e's output, and the main flow (Mixed_7a) goes on from there
    mixed_6e = rows["Mixed_6e.concat"].index
    pool = a.rows[rows["AuxLogits.conv0.conv"].inputs[0]]
    assert (pool.type, pool.inputs, pool.output_shape) == ("avgpool2d", (mixed_6e,), (768, 5, 5))
    assert rows["Mixed_7a.branch3x3_1.conv"].inputs == (mixed_6e,)
    # F.avg_pool2d(5, 3): ⌊(17 - 5)/3⌋ + 1 = 5, then the 5×5 conv1 leaves 1×1
    assert rows["AuxLogits.conv1.conv"].output_shape == (768, 1, 1)
    aux = [r for r in a.rows if r.blocks and r.blocks[0] == "AuxLogits"]
    assert (
        sum(r.params for r in aux),
        sum(r.buffers for r in aux),
        sum(r.macs for r in aux),
    ) == INCEPTION_AUX
    assert a.totals.params - INCEPTION_AUX[0] == 23_834_568  # aux_logits=False
    assert a.totals.macs - INCEPTION_AUX[2] == INCEPTION_MAIN_MACS


def test_inception_v3_with_aux_needs_299():
    # at 224 Mixed_6e is 12×12, the aux pool gives 3×3 and conv1's 5×5 kernel does not fit
    # (PyTorch refuses too, in training mode where AuxLogits runs)
    with pytest.raises(
        ShapeError,
        match=r"AuxLogits\.conv1\.conv.*kernel 5x5 is larger than "
        r"the padded input 3x3",
    ):
        analysis("inception_v3", (3, 224, 224))


def test_regnet_stages():
    # widths and depths from torchvision's BlockParams.from_init_params (see the headers)
    for model, widths, depths, group_width in (
        ("regnet_x_1_6gf", [72, 168, 408, 912], [2, 4, 10, 2], 24),
        ("regnet_y_400mf", [48, 104, 208, 440], [1, 3, 6, 6], 8),
    ):
        rows = {r.name: r for r in analysis(model).rows if r.name}
        for s, (w, d) in enumerate(zip(widths, depths), start=1):
            first = rows[f"trunk_output.block{s}.block{s}-0.f.b.0"]
            assert first.layer.groups == w // group_width
            assert first.output_shape == (w, 112 // 2**s, 112 // 2**s)
            assert f"trunk_output.block{s}.block{s}-{d - 1}.activation" in rows
            assert f"trunk_output.block{s}.block{s}-{d}.activation" not in rows
            assert f"trunk_output.block{s}.block{s}-1.proj.0" not in rows


def test_regnet_y_squeeze_excitation():
    rows = {r.name: r for r in analysis("regnet_y_400mf").rows if r.name}
    # squeeze to round(0.25 · the block's input width): block2-0 reads 48, block2-1 reads 104
    se = "trunk_output.block2.block2-{}.f.se.{}"
    assert rows[se.format(0, "fc1")].output_shape == (12, 1, 1)
    assert rows[se.format(1, "fc1")].output_shape == (26, 1, 1)
    assert rows[se.format(1, "fc1")].params == 104 * 26 + 26
    assert rows[se.format(1, "fc2")].params == 26 * 104 + 104
    gate = rows[se.format(1, "mul")]
    assert gate.output_shape == (104, 28, 28)


@pytest.mark.parametrize("model", ["inception_v3", "regnet_y_400mf", "resnext50_32x4d"])
def test_depth_fold_keeps_totals(model):
    """Folded at any depth, the rows (aux head and SE gates included) still sum to the totals."""
    a = analysis(model)
    for depth in range(1, 6):
        folded = collapse(a, depth)
        assert sum(r.params for r in folded.rows) == a.totals.params, depth
        assert sum(r.macs for r in folded.rows) == a.totals.macs, depth


def test_inception_v3_depth_1_reads_like_torchvision_children():
    names = [r.name for r in collapse(analysis("inception_v3"), 1).rows]
    # Inception3's children in forward order (AuxLogits where it is applied), then the
    # functional flatten (unnamed) before fc
    assert names == [
        "Conv2d_1a_3x3",
        "Conv2d_2a_3x3",
        "Conv2d_2b_3x3",
        "maxpool1",
        "Conv2d_3b_1x1",
        "Conv2d_4a_3x3",
        "maxpool2",
        "Mixed_5b",
        "Mixed_5c",
        "Mixed_5d",
        "Mixed_6a",
        "Mixed_6b",
        "Mixed_6c",
        "Mixed_6d",
        "Mixed_6e",
        "AuxLogits",
        "Mixed_7a",
        "Mixed_7b",
        "Mixed_7c",
        "avgpool",
        "dropout",
        None,
        "fc",
    ]


# --------------------------------------------------------------------------- CLI: rf and run


@pytest.mark.parametrize("model", MODELS)
def test_rf_analytic(capsys, model):
    code = main(["rf", str(spec_path(model)), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    layers = json.loads(out)["layers"]
    assert len(layers) == len(analysis(model).rows)


# batch 1 and a small input keep these fast; 32×32 is the smallest input the five stride-2
# stages of the 224 models divide exactly; Inception v3 with its aux head needs 299×299.
# (tests/test_run.py leaves these specs to this module.)
RUN_INPUT = {model: "3x32x32" for model in MODELS} | {"inception_v3": "3x299x299"}
RUN_MODELS = MODELS  # every spec runs (weights are drawn in float32: VGG in ~1.5 s)


@pytest.fixture
def one_thread():
    """Runs on one kernel thread (tiny maps: thread start-up would dominate); restored after."""
    from cnncalc import kernels as K

    before = K.get_num_threads()
    yield
    K.set_num_threads(before)


@pytest.mark.parametrize("model", RUN_MODELS)
def test_run_executes_and_matches(capsys, one_thread, model):
    code = main(
        [
            "run",
            str(spec_path(model)),
            "--input",
            RUN_INPUT[model],
            "--batch",
            "1",
            "--threads",
            "1",
            "--format",
            "json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["totals"]["all_match"] is True
    assert result["totals"]["output_shape"] == [1000]
    assert all(row["match"] for row in result["layers"])
    assert result["totals"]["params"] == TORCHVISION[model][0]


# --------------------------------------------------------------------------- torch


def _torchvision_models():
    """torchvision.models, with its compiled-ops registrations stubbed if they fail to load
    beside a CPU torch (only the model definitions are needed)."""
    pytest.importorskip("torch")
    try:
        import torchvision.models as models
    except Exception:  # noqa: BLE001 - e.g. "operator torchvision::nms does not exist"
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType("stub")
        try:
            import torchvision.models as models
        except Exception as exc:  # noqa: BLE001
            pytest.skip(f"torchvision does not import: {exc}")
    return models


@functools.cache  # eval mode on the meta device: the tests only read it
def _build(model: str):
    torch = pytest.importorskip("torch")

    models = _torchvision_models()
    kwargs = {"aux_logits": True, "init_weights": False} if model == "inception_v3" else {}
    try:
        with torch.device("meta"):
            module = getattr(models, model)(weights=None, **kwargs)
    except NotImplementedError:  # RegNet computes its widths with tensors: build on the CPU
        module = getattr(models, model)(weights=None, **kwargs).to("meta")
    return module.eval()


@pytest.mark.parametrize("model", MODELS)
def test_torchvision_params_and_owners(model):
    module = _build(model)
    owners: dict[str, int] = {}
    for name, p in module.named_parameters():
        owner = name.rsplit(".", 1)[0]
        owners[owner] = owners.get(owner, 0) + p.numel()
    params, buffers, _ = TORCHVISION[model]
    assert sum(owners.values()) == params
    assert sum(b.numel() for b in module.buffers()) == buffers
    rows = {r.name: r.params for r in analysis(model).rows if r.params}
    assert set(rows) == set(owners)
    assert rows == owners


@pytest.mark.parametrize("model", MODELS)
def test_torchvision_macs_and_output(model):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    module = _build(model)
    x = torch.empty(1, *input_of(model), device="meta")
    with FlopCounterMode(display=False) as counter:
        y = module(x)
    macs = counter.get_total_flops() // 2
    if model == "inception_v3":  # eval mode skips the aux head: count it on Mixed_6e's shape
        assert macs == INCEPTION_MAIN_MACS
        with FlopCounterMode(display=False) as aux:
            module.AuxLogits(torch.empty(1, 768, 17, 17, device="meta"))
        macs += aux.get_total_flops() // 2
    assert macs == TORCHVISION[model][2] == analysis(model).totals.macs
    assert tuple(y.shape[1:]) == analysis(model).totals.output_shape
