"""Training memory of the padding layers, fold/unfold, the 3-D layers and every interpolation
mode: what autograd saves (``saved_tensors_hooks``, tests/torch_memory.py) and the output
bytes, against torch.nn modules written out by hand here, in float32 and under CPU autocast
(bfloat16); skipped without torch. Two hand counts run everywhere.
"""

from __future__ import annotations

import pytest

from cnncalc.analysis import analyze
from cnncalc.memory import memory
from cnncalc.spec import load, parse_text


def ours(a, batch=2, amp=None) -> tuple[int, int]:
    t = memory(a, batch, "adam", amp).totals
    return t.saved_activation_bytes, t.output_bytes


# --------------------------------------------------------------------------- by hand


def test_reflection_pad_keeps_its_input_circular_and_constant_nothing():
    """conv (keeps the network input) → reflection pad (keeps the conv's output) → circular
    and constant pads (keep nothing) → unfold and fold (keep nothing): batch 2, float32."""
    a = analyze(
        load(
            "conv2d(3, 4, 1) reflection_pad2d(1) circular_pad2d(1) "
            "constant_pad2d(1, 0.5) unfold(2) fold((11, 12), 2)"
        ),
        (3, 5, 6),
    )
    x = 2 * 3 * 5 * 6 * 4  # the input, kept by the conv for its weight's gradient
    conv_out = 2 * 4 * 5 * 6 * 4  # kept by the reflection pad
    assert ours(a) == (x + conv_out, 2 * 4 * 11 * 12 * 4)
    # first, on the network input (no gradient wanted): the pad keeps nothing
    first = analyze(load("reflection_pad2d(1) conv2d(3, 4, 1)"), (3, 5, 6))
    assert ours(first)[0] == 2 * 3 * 7 * 8 * 4  # only the conv's (padded) input


def test_autocast_runs_3d_pooling_and_replication_pad_in_float32():
    """Under CPU autocast (bfloat16): the conv keeps bfloat16 copies of its input and weight;
    max_pool3d and replication_pad3d are on autocast's float32 list: each keeps a float32 copy
    of its bfloat16 input (max-pool also int64 indices), and its output is float32."""
    a = analyze(
        load("conv3d(2, 4, 1) maxpool3d(2) replication_pad3d(1) conv3d(4, 2, 1)"), (2, 4, 4, 4)
    )
    n = 2  # batch
    conv1 = n * 2 * 64 * 2 + 4 * 2 * 2  # input and weight in bfloat16
    pool = n * 4 * 64 * 4 + n * 4 * 8 * 8  # float32 copy of the conv's output, int64 indices
    pad = n * 4 * 8 * 4  # its input as it is: the pool's output, already float32
    conv2 = n * 4 * 64 * 2 + 2 * 4 * 2  # a bfloat16 copy of the pad's float32 output, weight
    assert ours(a, amp="bfloat16") == (conv1 + pool + pad + conv2, n * 2 * 64 * 2)


# --------------------------------------------------------------------------- against torch


class _Interp:
    """Builders of the torch modules for the graphs below (size_of needs a forward)."""

    @staticmethod
    def size_of():
        import torch.nn.functional as F
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Conv2d(2, 3, 3, padding=1)
                self.pool = nn.MaxPool2d(2)
                self.conv = nn.Conv2d(3, 3, 1)

            def forward(self, x):
                s = self.stem(x)
                y = self.conv(self.pool(s))
                y = F.interpolate(y, size=s.shape[2:], mode="bilinear", align_corners=False)
                return F.interpolate(y, size=x.shape[2:], mode="nearest-exact")

        return Net()


SIZE_OF = """
layers:
  - {type: conv2d, in_channels: 2, out_channels: 3, kernel_size: 3, padding: 1, name: stem}
  - {type: maxpool2d, kernel_size: 2}
  - {type: conv2d, in_channels: 3, out_channels: 3, kernel_size: 1}
  - {type: upsample, size_of: stem, mode: bilinear, align_corners: false}
  - {type: upsample, size_of: input, mode: nearest-exact}
"""


def _cases():
    from torch import nn

    return {
        "pads1d": (
            "conv1d(2, 3, 1) reflection_pad1d(2) replication_pad1d((1, 3)) "
            "constant_pad1d(1, 0.5) circular_pad1d((2, -1)) relu",
            (2, 9),
            lambda: nn.Sequential(
                nn.Conv1d(2, 3, 1),
                nn.ReflectionPad1d(2),
                nn.ReplicationPad1d((1, 3)),
                nn.ConstantPad1d(1, 0.5),
                nn.CircularPad1d((2, -1)),
                nn.ReLU(),
            ),
        ),
        "pads2d": (
            "conv2d(2, 3, 1) reflection_pad2d((1, 2, 0, 1)) replication_pad2d(1) "
            "constant_pad2d((1, -1, 2, 0), 2.0) circular_pad2d((1, 0, -1, 2)) sigmoid",
            (2, 5, 6),
            lambda: nn.Sequential(
                nn.Conv2d(2, 3, 1),
                nn.ReflectionPad2d((1, 2, 0, 1)),
                nn.ReplicationPad2d(1),
                nn.ConstantPad2d((1, -1, 2, 0), 2.0),
                nn.CircularPad2d((1, 0, -1, 2)),
                nn.Sigmoid(),
            ),
        ),
        "pads3d": (
            "conv3d(2, 3, 1) reflection_pad3d(1) replication_pad3d((1, 0, 0, 1, 1, 1)) "
            "constant_pad3d(1, 1.0) circular_pad3d((1, 1, 0, 1, 1, 0)) tanh",
            (2, 3, 4, 5),
            lambda: nn.Sequential(
                nn.Conv3d(2, 3, 1),
                nn.ReflectionPad3d(1),
                nn.ReplicationPad3d((1, 0, 0, 1, 1, 1)),
                nn.ConstantPad3d(1, 1.0),
                nn.CircularPad3d((1, 1, 0, 1, 1, 0)),
                nn.Tanh(),
            ),
        ),
        "pads_first": (
            "reflection_pad2d(1) replication_pad2d(1) conv2d(2, 3, 1)",
            (2, 5, 6),
            lambda: nn.Sequential(
                nn.ReflectionPad2d(1), nn.ReplicationPad2d(1), nn.Conv2d(2, 3, 1)
            ),
        ),
        "folds": (
            "conv2d(2, 3, 1) unfold(2, stride=2) fold(6, 2, stride=2) "
            "unfold((2, 3), dilation=(1, 2), padding=1) relu",
            (2, 6, 6),
            lambda: nn.Sequential(
                nn.Conv2d(2, 3, 1),
                nn.Unfold(2, stride=2),
                nn.Fold(6, 2, stride=2),
                nn.Unfold((2, 3), dilation=(1, 2), padding=1),
                nn.ReLU(),
            ),
        ),
        "family3d": (
            "conv3d(2, 4, 3, padding=1) batchnorm3d relu maxpool3d(2) "
            "conv_transpose3d(4, 3, 2, stride=2) avgpool3d(2) adaptive_maxpool3d(2) "
            "upsample(scale_factor=2, mode='trilinear') adaptive_avgpool3d((2, 3, 3)) "
            "zeropad3d(1) adaptive_avgpool3d(1) flatten linear(3, 2)",
            (2, 6, 8, 8),
            lambda: nn.Sequential(
                nn.Conv3d(2, 4, 3, padding=1),
                nn.BatchNorm3d(4),
                nn.ReLU(),
                nn.MaxPool3d(2),
                nn.ConvTranspose3d(4, 3, 2, stride=2),
                nn.AvgPool3d(2),
                nn.AdaptiveMaxPool3d(2),
                nn.Upsample(scale_factor=2, mode="trilinear"),
                nn.AdaptiveAvgPool3d((2, 3, 3)),
                nn.ZeroPad3d(1),
                nn.AdaptiveAvgPool3d(1),
                nn.Flatten(),
                nn.Linear(3, 2),
            ),
        ),
        "modes2d": (
            "conv2d(2, 3, 1) upsample(scale_factor=2, mode='bilinear') "
            "upsample(size=(7, 9), mode='bicubic', align_corners=True) "
            "upsample(scale_factor=1.5, mode='nearest-exact') upsample(size=5) "
            "upsample(size=(6, 4), mode='bilinear', align_corners=True) relu",
            (2, 5, 6),
            lambda: nn.Sequential(
                nn.Conv2d(2, 3, 1),
                nn.Upsample(scale_factor=2, mode="bilinear"),
                nn.Upsample(size=(7, 9), mode="bicubic", align_corners=True),
                nn.Upsample(scale_factor=1.5, mode="nearest-exact"),
                nn.Upsample(size=5),
                nn.Upsample(size=(6, 4), mode="bilinear", align_corners=True),
                nn.ReLU(),
            ),
        ),
        "modes1d": (
            "conv1d(2, 3, 1) upsample(scale_factor=2, mode='linear') "
            "upsample(size=7, mode='linear', align_corners=True) "
            "upsample(scale_factor=3, mode='nearest-exact') upsample(size=4)",
            (2, 5),
            lambda: nn.Sequential(
                nn.Conv1d(2, 3, 1),
                nn.Upsample(scale_factor=2, mode="linear"),
                nn.Upsample(size=7, mode="linear", align_corners=True),
                nn.Upsample(scale_factor=3, mode="nearest-exact"),
                nn.Upsample(size=4),
            ),
        ),
        "size_of": (SIZE_OF, (2, 6, 8), _Interp.size_of),
    }


NAMES = [
    "pads1d",
    "pads2d",
    "pads3d",
    "pads_first",
    "folds",
    "family3d",
    "modes2d",
    "modes1d",
    "size_of",
]


@pytest.mark.parametrize("amp", [None, "bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_saved_bytes_equal_pytorch_cpu(name, amp):
    pytest.importorskip("torch")
    from torch_memory import measure

    text, shape, build = _cases()[name]
    spec = parse_text(text) if "\n" in text else load(text)
    a = analyze(spec, shape)
    got = measure(build(), a.input_shape, 2, "adam", amp=amp)
    assert ours(a, 2, amp) == (got.saved_activation_bytes, got.output_bytes)


# --------------------------------------------------------------------------- the segmentation zoo


def _torchvision(name: str, device: str):
    import sys
    import types

    torch = pytest.importorskip("torch")
    from torch import nn

    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("stub"))
    try:
        import torchvision.models as tvm
    except Exception as exc:  # noqa: BLE001 - any import problem means: no torchvision
        pytest.skip(f"torchvision unusable here: {exc}")
    seg = {"weights": None, "weights_backbone": None}
    build = {
        "fcn_resnet50": lambda: tvm.segmentation.fcn_resnet50(**seg, aux_loss=True),
        "deeplabv3_resnet50": lambda: tvm.segmentation.deeplabv3_resnet50(**seg, aux_loss=True),
        "lraspp_mobilenet_v3_large": lambda: tvm.segmentation.lraspp_mobilenet_v3_large(**seg),
        "mobilenet_v3_large": lambda: tvm.mobilenet_v3_large(weights=None),
    }[name]

    class Outputs(nn.Module):
        """The dict of a segmentation model as one tensor: out + aux (an add keeps nothing,
        and every head gets its gradients, as the spec's side output does)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = build()

        def forward(self, x):
            y = self.model(x)
            return y if not isinstance(y, dict) else sum(y.values())

    with torch.device(device):
        return Outputs()


@pytest.mark.parametrize(
    "name",
    ["fcn_resnet50", "deeplabv3_resnet50", "lraspp_mobilenet_v3_large", "mobilenet_v3_large"],
)
def test_segmentation_zoo_equals_pytorch(name):
    """Bilinear interpolation to another tensor's size (size_of), dilated convolutions, the
    auxiliary heads: saved activations, gradients, Adam's state and the output to the byte
    (the meta device keeps what the CPU keeps, tests/test_memory_torch.py)."""
    from pathlib import Path

    pytest.importorskip("torch")
    from torch_memory import measure

    a = analyze(
        load(str(Path(__file__).resolve().parent.parent / "examples" / f"{name}.yaml")), (3, 64, 64)
    )
    got = measure(_torchvision(name, "meta"), a.input_shape, 2, "adam")
    t = memory(a, 2, "adam").totals
    assert (t.saved_activation_bytes, t.gradient_bytes, t.optimizer_bytes, t.output_bytes) == (
        got.saved_activation_bytes,
        got.gradient_bytes,
        got.optimizer_bytes,
        got.output_bytes,
    )


def test_lraspp_under_autocast_equals_pytorch_cpu():
    from pathlib import Path

    pytest.importorskip("torch")
    from torch_memory import measure

    name = "lraspp_mobilenet_v3_large"
    a = analyze(
        load(str(Path(__file__).resolve().parent.parent / "examples" / f"{name}.yaml")), (3, 64, 64)
    )
    got = measure(_torchvision(name, "cpu"), a.input_shape, 2, "adam", amp="bfloat16")
    assert ours(a, 2, "bfloat16") == (got.saved_activation_bytes, got.output_bytes)
