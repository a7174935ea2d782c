"""The model zoo (issue 4): every spec in examples/ against the published torchvision numbers.

The expected totals are literals copied from torchvision's documentation (the weights tables
of torchvision.models, "num_params"); none is read back from cnncalc. The U-Net total is the
paper's architecture with padding=1, counted by a hand-built torch module (see the torch
section at the end, which also rebuilds torchvision's blocks by hand and compares them, name
by name, with cnncalc's rows).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from cnncalc.analysis import analyze, collapse
from cnncalc.cli import main
from cnncalc.errors import ShapeError
from cnncalc.spec import load, parse_text

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# torchvision.models.*_Weights.IMAGENET1K_V1.meta["num_params"]
PUBLISHED = {
    "alexnet": 61_100_840,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    "squeezenet1_0": 1_248_424,
    "googlenet": 6_624_904,
    "densenet121": 7_978_856,
}
UNET_PARAMS = 31_030_658  # Ronneberger et al. 2015 with padding=1, 1 -> 2 channels
ZOO = {**PUBLISHED, "unet": UNET_PARAMS}


def spec_path(model: str) -> Path:
    return EXAMPLES / f"{model}.yaml"


def analysis(model: str, shape=None):
    return analyze(load(str(spec_path(model))), shape)


# --------------------------------------------------------------------------- totals


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_classifier_totals_match_torchvision(model):
    a = analysis(model)
    assert a.input_shape == (3, 224, 224)
    assert a.totals.params == PUBLISHED[model]
    assert a.totals.trainable_params == a.totals.params
    # nothing is frozen: the non-trainable count is exactly the BN buffers
    assert a.totals.non_trainable_params == a.totals.buffers
    assert a.totals.output_shape == (1000,)


@pytest.mark.parametrize("model", sorted(ZOO))
def test_cli_json_totals(capsys, model):
    code = main(["params", str(spec_path(model)), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    totals = json.loads(out)["totals"]
    assert totals["params"] == ZOO[model]
    assert totals["trainable_params"] == ZOO[model]


@pytest.mark.parametrize("model", sorted(ZOO))
def test_header_cites_source_and_total(model):
    text = spec_path(model).read_text(encoding="utf-8")
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    assert header, f"{model}.yaml must start with a comment citing its source"
    header_text = "\n".join(header)
    assert re.search(r"\(\w*\s*\d{4}\)|arXiv", header_text), "cite the paper (with year)"
    assert f"{ZOO[model]:,}" in header_text, "state the expected total"
    if model in PUBLISHED:
        assert "torchvision.models." in header_text


def test_batchnorm_buffers_vgg16_bn():
    # 13 BatchNorm2d over 4,224 channels: weight + bias are parameters (8,448), running
    # mean + var (8,448) and one num_batches_tracked each (13) are buffers
    a = analysis("vgg16_bn")
    assert a.totals.params - analysis("vgg16").totals.params == 2 * 4224
    assert a.totals.buffers == 2 * 4224 + 13


def test_analysis_is_fast():
    """Parsing + analysing every zoo spec once; well under a second each (bench elsewhere)."""
    worst = {}
    for model in ZOO:
        start = time.perf_counter()
        analysis(model)
        worst[model] = time.perf_counter() - start
    slow = {m: round(t, 3) for m, t in worst.items() if t >= 2.0}
    assert not slow, f"analysis too slow (s): {slow}"


# --------------------------------------------------------------------------- structure


def names(model: str) -> list[str | None]:
    return [r.name for r in analysis(model).rows]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("alexnet", ["features.0", "features.10", "avgpool", "classifier.1", "classifier.6"]),
        ("vgg16", ["features.28", "avgpool", "classifier.0", "classifier.6"]),
        ("vgg16_bn", ["features.41", "features.43", "classifier.6"]),
        (
            "resnet18",
            [
                "conv1",
                "layer1.0.conv1",
                "layer2.0.downsample.0",
                "layer2.0.downsample.1",
                "layer4.1.bn2",
                "fc",
            ],
        ),
        ("resnet50", ["layer1.0.downsample.0", "layer3.5.conv3", "layer4.2.bn3", "fc"]),
        (
            "mobilenet_v2",
            [
                "features.0.0",
                "features.1.conv.0.0",
                "features.1.conv.2",
                "features.17.conv.3",
                "features.18.0",
                "classifier.1",
            ],
        ),
        (
            "squeezenet1_0",
            [
                "features.3.squeeze",
                "features.3.expand1x1",
                "features.3.expand3x3_activation",
                "features.12.squeeze",
                "classifier.1",
            ],
        ),
        (
            "googlenet",
            [
                "conv1.conv",
                "conv3.bn",
                "inception3a.branch1.conv",
                "inception3a.branch2.0.conv",
                "inception4e.branch4.1.bn",
                "inception5b.branch3.1.conv",
                "fc",
            ],
        ),
        (
            "densenet121",
            [
                "features.conv0",
                "features.denseblock4.denselayer16.conv2",
                "features.transition3.conv",
                "features.norm5",
                "classifier",
            ],
        ),
        ("unet", ["enc1.conv1", "bottleneck.conv2", "dec4.upconv", "dec1.conv.conv2", "out"]),
    ],
)
def test_rows_carry_module_names(model, expected):
    present = set(names(model))
    assert [n for n in expected if n not in present] == []


def test_repeats_and_stage_sizes():
    a = analysis("resnet50")
    blocks = {
        n.split(".")[0] + "." + n.split(".")[1]
        for n in names("resnet50")
        if n and n.startswith("layer")
    }
    per_stage = {
        s: sum(b.startswith(s + ".") for b in blocks)
        for s in ("layer1", "layer2", "layer3", "layer4")
    }
    assert per_stage == {"layer1": 3, "layer2": 4, "layer3": 6, "layer4": 3}
    stage_out = {r.blocks[0]: r.output_shape for r in a.rows if r.blocks}
    assert stage_out == {
        "layer1": (256, 56, 56),
        "layer2": (512, 28, 28),
        "layer3": (1024, 14, 14),
        "layer4": (2048, 7, 7),
    }
    dense = analysis("densenet121")
    outs = {r.name: r.output_shape for r in dense.rows if r.name}
    assert outs["features.denseblock1.denselayer6.concat"] == (256, 56, 56)
    assert outs["features.transition1.pool"] == (128, 28, 28)
    assert outs["features.denseblock3.denselayer24.concat"] == (1024, 14, 14)
    assert outs["features.norm5"] == (1024, 7, 7)


def test_googlenet_inception_outputs():
    outs = {r.name: r.output_shape for r in analysis("googlenet").rows if r.name}
    # channel sums of the four branches, Szegedy et al. Table 1
    assert outs["inception3a.concat"] == (256, 28, 28)
    assert outs["inception3b.concat"] == (480, 28, 28)
    assert outs["inception4e.concat"] == (832, 14, 14)
    assert outs["maxpool4"] == (832, 7, 7)
    assert outs["inception5b.concat"] == (1024, 7, 7)


def test_squeezenet_ceil_mode_pools():
    outs = {r.name: r.output_shape for r in analysis("squeezenet1_0").rows if r.name}
    # (109 - 3) / 2 + 1 = 54, ceil((54 - 3) / 2) + 1 = 27, ceil((27 - 3) / 2) + 1 = 13
    assert outs["features.2"] == (96, 54, 54)
    assert outs["features.6"] == (256, 27, 27)
    assert outs["features.11"] == (512, 13, 13)


def test_depth_fold_keeps_totals():
    """At every depth the folded rows still sum to the total (each parameter counted once)."""
    for model in ("resnet18", "googlenet", "densenet121", "unet"):
        a = analysis(model)
        for depth in range(1, 5):
            folded = collapse(a, depth)
            assert sum(r.params for r in folded.rows) == a.totals.params, (model, depth)


def test_resnet18_depth1_rows_are_stages(capsys):
    code = main(["params", str(spec_path("resnet18")), "--depth", "1", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = {r["name"]: r["params"] for r in json.loads(out)["layers"]}
    stages = [n for n in rows if n and n.startswith("layer")]
    assert stages == ["layer1", "layer2", "layer3", "layer4"]
    # torchvision: layer1 147,968; layer2 525,568; layer3 2,099,712; layer4 8,393,728
    assert [rows[s] for s in stages] == [147_968, 525_568, 2_099_712, 8_393_728]
    assert sum(rows.values()) == PUBLISHED["resnet18"]


def test_resnet18_stage_subtotals():
    a = analysis("resnet18")
    per_stage: dict[str, int] = {}
    for r in a.rows:
        if r.blocks:
            per_stage[r.blocks[0]] = per_stage.get(r.blocks[0], 0) + r.params
    assert per_stage == {
        "layer1": 147_968,
        "layer2": 525_568,
        "layer3": 2_099_712,
        "layer4": 8_393_728,
    }
    # the rest: conv1 9,408 + bn1 128 + fc 513,000
    assert a.totals.params - sum(per_stage.values()) == 9_408 + 128 + 513_000


# --------------------------------------------------------------------------- U-Net


@pytest.mark.parametrize(
    ("shape", "out"),
    [
        ((1, 512, 512), (2, 512, 512)),  # the spec's default input
        ((1, 256, 256), (2, 256, 256)),
        ((1, 96, 160), (2, 96, 160)),
    ],
)
def test_unet_is_fully_convolutional(shape, out):
    a = analysis("unet", shape)
    assert a.totals.output_shape == out
    assert a.totals.params == UNET_PARAMS  # parameters do not depend on the image size
    rows = {r.name: r.output_shape for r in a.rows if r.name}
    h, w = shape[1:]
    assert rows["bottleneck.relu2"] == (1024, h // 16, w // 16)
    assert rows["dec4.concat"] == (1024, h // 8, w // 8)  # 512 skip + 512 up-sampled


def test_unet_default_input_is_its_spec():
    assert analysis("unet").input_shape == (1, 512, 512)


def test_unet_rejects_sizes_not_divisible_by_16():
    # 572 -> 286 -> 143 -> 71 -> 35 -> up-sampled to 70, the skip is 71: PyTorch refuses too
    with pytest.raises(ShapeError) as info:
        analysis("unet", (1, 572, 572))
    message = str(info.value)
    assert "concat" in message and "512x71x71" in message and "512x70x70" in message


# --------------------------------------------------------------------------- details


@pytest.mark.parametrize(
    ("model", "p"),
    [
        ("alexnet", 0.5),
        ("vgg16", 0.5),
        ("vgg16_bn", 0.5),
        ("squeezenet1_0", 0.5),
        ("mobilenet_v2", 0.2),
        ("googlenet", 0.2),
    ],
)
def test_dropout_rates_as_torchvision(model, p):
    rates = {r.layer.p for r in analysis(model).rows if r.type == "dropout"}
    assert rates == {p}


def test_repeat_copies_can_be_named_by_index():
    spec = parse_text(
        "input: [8, 4, 4]\n"
        "layers:\n"
        "  - {name: denseblock1, layers: [{repeat: 2, name: 'denselayer${i + 1}',"
        " type: conv2d, out_channels: 8, kernel_size: 1}]}\n"
    )
    assert [r.name for r in analyze(spec).rows] == [
        "denseblock1.denselayer1",
        "denseblock1.denselayer2",
    ]


# --------------------------------------------------------------------------- torch

# Hand-built copies of torchvision's modules (torchvision itself is not installed), made on
# the meta device (no memory, no init cost). Their per-module parameter counts, keyed by
# named_modules() names, must equal cnncalc's rows with the same names.


def _torch():
    return pytest.importorskip("torch")


def _module_params(model) -> dict[str, int]:
    out = {}
    for name, module in model.named_modules():
        n = sum(p.numel() for p in module.parameters(recurse=False))
        if n:
            out[name] = n
    return out


def _row_params(model: str) -> dict[str, int]:
    return {r.name: r.params for r in analysis(model).rows if r.params}


def _resnet(torch, block: str, layers: list[int]):
    nn = torch.nn

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

    cls = BasicBlock if block == "basic" else Bottleneck
    model = nn.Module()
    model.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    model.bn1 = nn.BatchNorm2d(64)
    inplanes = 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
        stride = 1 if i == 0 else 2
        blocks = []
        for k in range(n):
            s = stride if k == 0 else 1
            down = None
            if s != 1 or inplanes != planes * cls.expansion:
                down = nn.Sequential(
                    nn.Conv2d(inplanes, planes * cls.expansion, 1, s, bias=False),
                    nn.BatchNorm2d(planes * cls.expansion),
                )
            blocks.append(cls(inplanes, planes, s, down))
            inplanes = planes * cls.expansion
        setattr(model, f"layer{i + 1}", nn.Sequential(*blocks))
    model.fc = nn.Linear(512 * cls.expansion, 1000)
    return model


def _mobilenet_v2(torch):
    nn = torch.nn

    def cbr(i, o, k=1, s=1, g=1):
        return nn.Sequential(
            nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False),
            nn.BatchNorm2d(o),
            nn.ReLU6(inplace=True),
        )

    class InvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride, t):
            super().__init__()
            hidden = inp * t
            layers = [cbr(inp, hidden)] if t != 1 else []
            layers += [
                cbr(hidden, hidden, 3, stride, hidden),
                nn.Conv2d(hidden, oup, 1, bias=False),
                nn.BatchNorm2d(oup),
            ]
            self.conv = nn.Sequential(*layers)

    features = [cbr(3, 32, 3, 2)]
    inp = 32
    for t, c, n, s in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]:
        for k in range(n):
            features.append(InvertedResidual(inp, c, s if k == 0 else 1, t))
            inp = c
    features.append(cbr(320, 1280))
    model = nn.Module()
    model.features = nn.Sequential(*features)
    model.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))
    return model


def _googlenet(torch):
    nn = torch.nn

    class BasicConv2d(nn.Module):
        def __init__(self, i, o, **kw):
            super().__init__()
            self.conv = nn.Conv2d(i, o, bias=False, **kw)
            self.bn = nn.BatchNorm2d(o, eps=0.001)

    class Inception(nn.Module):
        def __init__(self, i, c1, c3r, c3, c5r, c5, pp):
            super().__init__()
            self.branch1 = BasicConv2d(i, c1, kernel_size=1)
            self.branch2 = nn.Sequential(
                BasicConv2d(i, c3r, kernel_size=1), BasicConv2d(c3r, c3, kernel_size=3, padding=1)
            )
            self.branch3 = nn.Sequential(
                BasicConv2d(i, c5r, kernel_size=1), BasicConv2d(c5r, c5, kernel_size=3, padding=1)
            )
            self.branch4 = nn.Sequential(
                nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(i, pp, kernel_size=1)
            )

    m = nn.Module()
    m.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
    m.conv2 = BasicConv2d(64, 64, kernel_size=1)
    m.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
    m.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
    m.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
    m.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
    m.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
    m.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
    m.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
    m.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
    m.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
    m.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
    m.fc = nn.Linear(1024, 1000)
    return m


@pytest.mark.parametrize(
    ("model", "build"),
    [
        ("resnet18", lambda t: _resnet(t, "basic", [2, 2, 2, 2])),
        ("resnet50", lambda t: _resnet(t, "bottleneck", [3, 4, 6, 3])),
        ("mobilenet_v2", _mobilenet_v2),
        ("googlenet", _googlenet),
    ],
)
def test_torch_modules_match_rows_by_name(model, build):
    torch = _torch()
    with torch.device("meta"):
        module = build(torch)
    expected = _module_params(module)
    assert sum(expected.values()) == PUBLISHED[model]
    assert _row_params(model) == expected


def test_torch_fire_and_dense_layer():
    """SqueezeNet's Fire and DenseNet's _DenseLayer, rebuilt by hand, against cnncalc."""
    torch = _torch()
    nn = torch.nn
    with torch.device("meta"):
        # Fire(128, 32, 128, 128): features.5 of SqueezeNet 1.0
        fire = nn.ModuleList(
            [nn.Conv2d(128, 32, 1), nn.Conv2d(32, 128, 1), nn.Conv2d(32, 128, 3, padding=1)]
        )
        # denselayer7 of denseblock2 (input 128 + 6 * 32 = 320 channels)
        dense = nn.ModuleList(
            [
                nn.BatchNorm2d(320),
                nn.Conv2d(320, 128, 1, bias=False),
                nn.BatchNorm2d(128),
                nn.Conv2d(128, 32, 3, padding=1, bias=False),
            ]
        )
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    squeeze = _row_params("squeezenet1_0")
    assert sum(v for k, v in squeeze.items() if k.startswith("features.5.")) == count(fire)
    densenet = _row_params("densenet121")
    assert sum(
        v for k, v in densenet.items() if k.startswith("features.denseblock2.denselayer7.")
    ) == count(dense)


def test_torch_unet_params_and_shapes():
    torch = _torch()
    nn = torch.nn

    def double(i, o):
        return nn.Sequential(
            nn.Conv2d(i, o, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(o, o, 3, padding=1),
            nn.ReLU(inplace=True),
        )

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            ch = [64, 128, 256, 512, 1024]
            self.enc = nn.ModuleList([double(1, 64)] + [double(ch[k], ch[k + 1]) for k in range(4)])
            self.ups = nn.ModuleList(
                [nn.ConvTranspose2d(ch[k + 1], ch[k], 2, 2) for k in reversed(range(4))]
            )
            self.dec = nn.ModuleList([double(ch[k + 1], ch[k]) for k in reversed(range(4))])
            self.out = nn.Conv2d(64, 2, 1)

        def forward(self, x):
            skips = []
            for k, enc in enumerate(self.enc):
                x = enc(x)
                if k < 4:
                    skips.append(x)
                    x = nn.functional.max_pool2d(x, 2)
            for up, dec in zip(self.ups, self.dec):
                x = dec(torch.cat([skips.pop(), up(x)], 1))
            return self.out(x)

    with torch.device("meta"):
        net = UNet()
        assert sum(p.numel() for p in net.parameters()) == UNET_PARAMS
        for shape in ((1, 256, 256), (1, 96, 160)):
            y = net(torch.empty(1, *shape))
            assert tuple(y.shape[1:]) == analysis("unet", shape).totals.output_shape
