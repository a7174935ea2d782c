"""Today's CNNs in examples/ (issue 9): EfficientNet B0/B3/V2-S, ConvNeXt-Tiny, ShuffleNet V2,
MobileNetV3-Small and MNASNet, against torchvision.

The pinned totals are literals: parameters from torchvision's weights tables
(``*_Weights.IMAGENET1K_V1.meta["num_params"]``), buffers and MACs measured once with
torchvision 0.28 / torch 2.13 (``sum(b.numel() for b in model.buffers())`` and
``torch.utils.flop_counter.FlopCounterMode`` totals of aten.convolution + aten.addmm, ÷ 2,
batch 1). None is read back from cnncalc. With torch and torchvision installed, the torch
section rebuilds each model and compares module by module.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from cnncalc.analysis import analyze
from cnncalc.cli import main
from cnncalc.spec import load

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# model -> (input size, params, buffers, conv + linear MACs at that size)
PINNED = {
    "efficientnet_b0": (224, 5_288_548, 42_065, 385_814_752),
    "efficientnet_b3": (300, 12_233_232, 87_374, 1_827_141_392),
    "efficientnet_v2_s": (224, 21_458_488, 153_982, 2_849_895_872),
    "convnext_tiny": (224, 28_589_128, 0, 4_455_531_264),
    "shufflenet_v2_x1_0": (224, 2_278_604, 16_236, 144_907_992),
    "mobilenet_v3_small": (224, 2_542_856, 12_146, 56_510_400),
    "mnasnet1_0": (224, 4_383_312, 37_972, 314_415_872),
}
# (model, size) -> MACs at another input size
OTHER_SIZES = {("efficientnet_b3", 224): 962_708_240}


def analysis(model: str, size: int | None = None):
    shape = None if size is None else (3, size, size)
    return analyze(load(str(EXAMPLES / f"{model}.yaml")), shape)


# --------------------------------------------------------------------------- totals


@pytest.mark.parametrize("model", sorted(PINNED))
def test_totals_match_torchvision(model):
    size, params, buffers, macs = PINNED[model]
    a = analysis(model)
    assert a.input_shape == (3, size, size)  # the spec's default is torchvision's
    assert a.totals.params == params
    assert a.totals.trainable_params == params
    assert a.totals.buffers == buffers
    assert a.totals.non_trainable_params == buffers
    assert a.totals.macs == macs
    assert a.totals.output_shape == (1000,)
    assert a.warnings == ()


@pytest.mark.parametrize(("model", "size"), sorted(OTHER_SIZES))
def test_totals_at_another_size(model, size):
    a = analysis(model, size)
    assert a.totals.macs == OTHER_SIZES[model, size]
    assert a.totals.params == PINNED[model][1]  # parameters do not depend on the input


@pytest.mark.parametrize("model", sorted(PINNED))
def test_cli_json_and_header(capsys, model):
    assert main(["params", str(EXAMPLES / f"{model}.yaml"), "-f", "json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    assert (totals["params"], totals["macs"]) == (PINNED[model][1], PINNED[model][3])
    header = []
    for line in (EXAMPLES / f"{model}.yaml").read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    assert f"torchvision.models.{model}" in text
    assert f"{PINNED[model][1]:,}" in text and f"{PINNED[model][3]:,}" in text


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            "efficientnet_b0",
            [
                "features.0.0",
                "features.1.0.block.1.fc1",
                "features.2.1.block.2.scale_activation",
                "features.2.1.stochastic_depth",
                "features.6.3.block.3.1",
                "features.8.0",
                "classifier.1",
            ],
        ),
        (
            "efficientnet_v2_s",
            [
                "features.1.1.block.0.0",
                "features.3.3.block.1.0",
                "features.6.14.block.2.fc2",
                "features.7.0",
            ],
        ),
        (
            "convnext_tiny",
            [
                "features.0.1",
                "features.1.0.block.0",
                "features.1.0.block.2",
                "features.1.0.layer_scale",
                "features.4.1",
                "features.7.2.block.5",
                "classifier.0",
                "classifier.2",
            ],
        ),
        (
            "shufflenet_v2_x1_0",
            [
                "conv1.0",
                "stage2.0.branch1.0",
                "stage2.0.branch2.7",
                "stage3.7.branch2.5",
                "conv5.0",
                "fc",
            ],
        ),
        (
            "mobilenet_v3_small",
            [
                "features.1.block.1.fc1",
                "features.3.block.2.0",
                "features.11.block.2.fc2",
                "features.12.0",
                "classifier.3",
            ],
        ),
        (
            "mnasnet1_0",
            [
                "layers.0",
                "layers.8.0.layers.3",
                "layers.12.3.layers.7",
                "layers.14",
                "classifier.1",
            ],
        ),
    ],
)
def test_rows_carry_module_names(model, expected):
    present = {r.name for r in analysis(model).rows}
    assert [n for n in expected if n not in present] == []


def test_convnext_block_reads_channels_last():
    a = analysis("convnext_tiny")
    rows = {r.name: r for r in a.rows}
    assert rows["features.1.0.block.1"].output_shape == (56, 56, 96)  # permute (0, 2, 3, 1)
    assert rows["features.1.0.block.3"].output_shape == (56, 56, 384)  # Linear(96, 384)
    assert rows["features.1.0.block.3"].macs == 56 * 56 * 96 * 384
    assert rows["features.1.0.layer_scale"].params == 96
    # LayerNorm over channels and per-position linears keep the spatial field: the 7×7 conv
    # on a stride-4 map adds (7 − 1)·4 = 24 to the stem's 4
    field = rows["features.1.0.block.5"].receptive_field
    assert [int(v) for v in field.size] == [28, 28] and [int(v) for v in field.jump] == [4, 4]


def test_squeeze_excitation_field_is_the_whole_map():
    # after the first SE gate every unit reads the whole input (jump 0, no misalignment)
    a = analysis("efficientnet_b0")
    rows = {r.name: r for r in a.rows}
    f = rows["features.1.0.block.1.mul"].receptive_field
    assert f.jump == (0, 0) and f.start[0] <= 0 and f.start[0] + f.size[0] >= 224


def test_shufflenet_split_and_shuffle_rows():
    rows = {r.name: r for r in analysis("shufflenet_v2_x1_0").rows}
    assert rows["stage2.1.split.0"].output_shape == (58, 28, 28)  # x.chunk(2, dim=1)
    assert rows["stage2.0.concat"].output_shape == (116, 28, 28)
    assert rows["stage4.3.channel_shuffle"].output_shape == (464, 7, 7)


def test_cnncalc_run_executes_convnext_small_input(capsys):
    code = main(
        ["run", str(EXAMPLES / "convnext_tiny.yaml"), "-i", "3x64x64", "-b", "1", "-f", "json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["totals"]["all_match"] and result["layers"][-1]["measured_shape"] == [1000]


# --------------------------------------------------------------------------- torch


def _torchvision():
    torch = pytest.importorskip("torch")
    # the CPU wheel of torch may lack the compiled ops torchvision registers on import
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("stub"))
    tv = pytest.importorskip("torchvision")
    return torch, tv


def _module_params(model) -> dict[str, int]:
    out = {}
    for name, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            # ConvNeXt's bare nn.Parameter `layer_scale` is its own row
            key = f"{name}.{pname}" if pname == "layer_scale" else name
            out[key] = out.get(key, 0) + p.numel()
    return out


@pytest.mark.parametrize("model", sorted(PINNED))
def test_torch_modules_match_rows_by_name(model):
    torch, tv = _torchvision()
    with torch.device("meta"):
        module = getattr(tv.models, model)()
    expected = _module_params(module)
    assert sum(expected.values()) == PINNED[model][1]
    assert sum(b.numel() for b in module.buffers()) == PINNED[model][2]
    rows = {r.name: r.params for r in analysis(model).rows if r.params}
    assert rows == expected


@pytest.mark.parametrize(
    ("model", "size"), [(m, PINNED[m][0]) for m in sorted(PINNED)] + sorted(OTHER_SIZES)
)
def test_torch_flop_counter_conv_and_linear(model, size):
    torch, tv = _torchvision()
    from torch.utils.flop_counter import FlopCounterMode

    module = getattr(tv.models, model)().eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = module(torch.zeros(1, 3, size, size))
    counts = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    assert set(counts) <= {"aten.convolution", "aten.addmm", "aten.mm"}
    assert out.shape == (1, 1000)
    assert sum(counts.values()) // 2 == analysis(model, size).totals.macs
