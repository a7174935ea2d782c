"""Segmentation zoo (issue 9): fcn_resnet50, deeplabv3_resnet50, lraspp_mobilenet_v3_large,
and mobilenet_v3_large, against torchvision.

Parameter counts are torchvision's published ``meta["num_params"]`` (the aux head included for
FCN and DeepLabV3, whose published weights carry it), and the counts without the aux head
measured with ``aux_loss=False``. MACs are ``torch.utils.flop_counter.FlopCounterMode``'s
convolution + addmm FLOPs ÷ 2 measured with torch 2.13 / torchvision 0.28 on the stated input
(weights=None, weights_backbone=None, num_classes=21), pinned here; ``test_against_torchvision``
measures them again when torch and torchvision are installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnncalc.analysis import analyze, nodes_of, unit_field
from cnncalc.cli import main
from cnncalc.spec import load

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# model -> (params as published, params without the aux head)
PARAMS = {
    "fcn_resnet50": (35_322_218, 32_957_013),
    "deeplabv3_resnet50": (42_004_074, 39_638_869),
    "lraspp_mobilenet_v3_large": (3_221_538, 3_221_538),
    "mobilenet_v3_large": (5_483_032, 5_483_032),
}
# (model, input) -> (MACs with the aux head, MACs without): flop_counter's FLOPs / 2
MACS = {
    ("fcn_resnet50", (3, 520, 520)): (152_716_512_000, 142_725_772_800),
    ("fcn_resnet50", (3, 480, 640)): (173_500_416_000, 162_149_990_400),
    ("deeplabv3_resnet50", (3, 520, 520)): (178_721_945_088, 168_731_205_888),
    ("deeplabv3_resnet50", (3, 480, 640)): (203_044_978_688, 191_694_553_088),
    ("lraspp_mobilenet_v3_large", (3, 520, 520)): (2_086_219_688, 2_086_219_688),
    ("lraspp_mobilenet_v3_large", (3, 480, 640)): (2_313_780_480, 2_313_780_480),
    ("mobilenet_v3_large", (3, 224, 224)): (216_589_760, 216_589_760),
}
SEGMENTATION = ("fcn_resnet50", "deeplabv3_resnet50", "lraspp_mobilenet_v3_large")


def analysis(model, shape=None):
    return analyze(load(str(EXAMPLES / f"{model}.yaml")), shape)


def aux_rows(a):
    return [r for r in a.rows if r.name and r.name.startswith("aux_classifier")]


@pytest.mark.parametrize("model", sorted(PARAMS))
def test_params_equal_torchvision(model):
    a = analysis(model)
    with_aux, without = PARAMS[model]
    assert a.totals.params == with_aux
    assert a.totals.params - sum(r.params for r in aux_rows(a)) == without
    assert a.totals.trainable_params == with_aux
    assert a.totals.non_trainable_params == a.totals.buffers


@pytest.mark.parametrize(("model", "shape"), sorted(MACS))
def test_macs_equal_flop_counter(model, shape):
    a = analysis(model, shape)
    with_aux, without = MACS[(model, shape)]
    assert a.totals.macs == with_aux
    assert a.totals.macs - sum(r.macs for r in aux_rows(a)) == without


@pytest.mark.parametrize("model", SEGMENTATION)
@pytest.mark.parametrize("shape", [(3, 520, 520), (3, 480, 640), (3, 97, 131)])
def test_segmentation_output_is_the_input_size(model, shape):
    a = analysis(model, shape)
    assert a.totals.output_shape == (21, *shape[1:])
    assert a.totals.params == PARAMS[model][0]  # fully convolutional: any size
    if model != "lraspp_mobilenet_v3_large":
        assert [(o.name, o.shape) for o in a.side_outputs] == [("aux_classifier", (21, *shape[1:]))]


def test_default_input_and_side_output_in_json(capsys):
    assert main(["shapes", str(EXAMPLES / "fcn_resnet50.yaml"), "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_shape"] == [3, 520, 520]
    assert data["totals"]["output_shape"] == [21, 520, 520]
    assert data["totals"]["params"] == 35_322_218


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            "fcn_resnet50",
            [
                "backbone.conv1",
                "backbone.layer3.0.downsample.0",
                "backbone.layer4.2.conv3",
                "classifier.0",
                "classifier.4",
                "aux_classifier.0",
                "aux_classifier.4",
            ],
        ),
        (
            "deeplabv3_resnet50",
            [
                "classifier.0.convs.0.0",
                "classifier.0.convs.3.0",
                "classifier.0.convs.4.1",
                "classifier.0.project.0",
                "classifier.1",
                "classifier.4",
                "aux_classifier.4",
            ],
        ),
        (
            "lraspp_mobilenet_v3_large",
            [
                "backbone.0.0",
                "backbone.1.block.0.0",
                "backbone.4.block.2.fc1",
                "backbone.13.block.1.0",
                "backbone.16.0",
                "classifier.cbr.0",
                "classifier.scale.1",
                "classifier.low_classifier",
                "classifier.high_classifier",
            ],
        ),
        (
            "mobilenet_v3_large",
            [
                "features.0.0",
                "features.4.block.2.scale_activation",
                "features.15.block.3.0",
                "features.16.1",
                "classifier.0",
                "classifier.3",
            ],
        ),
    ],
)
def test_rows_carry_torchvision_names(model, expected):
    present = {r.name for r in analysis(model).rows}
    assert [n for n in expected if n not in present] == []


def test_dilated_stages_keep_output_stride_8_and_16():
    outs = {r.name: r.output_shape for r in analysis("fcn_resnet50").rows if r.name}
    assert outs["backbone.layer2.3.relu"] == (512, 65, 65)
    assert outs["backbone.layer4.2.relu"] == (2048, 65, 65)  # 520 / 8
    lr = {r.name: r.output_shape for r in analysis("lraspp_mobilenet_v3_large").rows if r.name}
    assert lr["backbone.4.block.3.1"] == (40, 65, 65)  # "low": stride 8
    assert lr["backbone.16.2"] == (960, 33, 33)  # "high": stride 16 (dilated last stage)
    assert lr["classifier.interpolate"] == (128, 65, 65)  # resized to the low map


def test_unit_field_through_the_bilinear_head():
    a = analysis("lraspp_mobilenet_v3_large", (3, 64, 64))
    last = len(a.rows) - 1
    # the head's global pooling branch makes every output unit read the whole input
    assert unit_field(nodes_of(a), last, (10, 20)) is not None


def test_cnncalc_run_small(capsys):
    """Executed with the kernels at a small input (tests/test_run.py runs every zoo spec the
    same way; this one goes through the CLI)."""
    model = "lraspp_mobilenet_v3_large"
    code = main(["run", str(EXAMPLES / f"{model}.yaml"), "-i", "3x40x56", "-f", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["totals"]["all_match"]


def test_against_torchvision():
    torch = pytest.importorskip("torch")
    import sys
    import types

    try:
        import torchvision  # noqa: F401
    except Exception:  # compiled ops missing beside a CPU torch: the models need none of them
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType("stub")
        try:
            import torchvision  # noqa: F401
        except Exception:
            pytest.skip("torchvision does not import")
    from torch.utils.flop_counter import FlopCounterMode
    from torchvision.models import mobilenet_v3_large
    from torchvision.models import segmentation as seg

    builders = {
        "fcn_resnet50": lambda aux: seg.fcn_resnet50(
            weights=None, weights_backbone=None, aux_loss=aux, num_classes=21
        ),
        "deeplabv3_resnet50": lambda aux: seg.deeplabv3_resnet50(
            weights=None, weights_backbone=None, aux_loss=aux, num_classes=21
        ),
        "lraspp_mobilenet_v3_large": lambda aux: seg.lraspp_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=21
        ),
        "mobilenet_v3_large": lambda aux: mobilenet_v3_large(),
    }
    shape = (3, 97, 131)  # small and odd: the spec must hold at any size
    for model, build in builders.items():
        for aux, index in ((True, 0), (False, 1)):
            m = build(aux).eval()
            assert sum(p.numel() for p in m.parameters()) == PARAMS[model][index], model
            with FlopCounterMode(display=False) as fc, torch.no_grad():
                out = m(torch.zeros(1, *shape))
            a = analysis(model, shape)
            macs = a.totals.macs - (0 if aux else sum(r.macs for r in aux_rows(a)))
            assert macs * 2 == fc.get_total_flops(), (model, aux)
            y = out["out"] if isinstance(out, dict) else out
            assert tuple(y.shape[1:]) == a.totals.output_shape
