"""Training memory against PyTorch itself: saved activations (distinct storages seen by
``torch.autograd.graph.saved_tensors_hooks``), gradients and optimizer state after one
``step()``, to the byte. Skipped cleanly without torch.

The zoo runs on the ``meta`` device (autograd keeps the same tensors without computing; a
test checks that meta and CPU agree); mixed precision and half dtypes run on the CPU, whose
kernels are the oracle (the meta device ignores CPU autocast and keeps batch-norm statistics
of half models in float32, as CUDA does).
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch_memory import build, measure, torchvision_model  # noqa: E402

from cnncalc.analysis import analyze  # noqa: E402
from cnncalc.memory import memory  # noqa: E402
from cnncalc.spec import load, parse_text  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TORCHVISION = [
    "alexnet",
    "vgg16",
    "vgg16_bn",
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "squeezenet1_0",
    "googlenet",
    "densenet121",
]
# today's CNNs: layer/group norms, layer scale, stochastic depth, channel shuffle, SE gates
TORCHVISION += [
    "convnext_tiny",
    "efficientnet_b0",
    "efficientnet_b3",
    "efficientnet_v2_s",
    "shufflenet_v2_x1_0",
    "mobilenet_v3_small",
    "mnasnet1_0",
]
HAND_BUILT = ["lenet5", "unet"]  # built row by row from the spec with torch.nn modules


def _torchvision_or_skip():
    try:
        torchvision_model("squeezenet1_0", "meta")
    except Exception as exc:  # noqa: BLE001 - any import problem means: no torchvision
        pytest.skip(f"torchvision unusable here: {exc}")


def module_for(model: str, a, device: str):
    if model in TORCHVISION:
        _torchvision_or_skip()
        return torchvision_model(model, device)
    return build(a, device)


def ours(a, batch, optimizer="adam", amp=None):
    t = memory(a, batch, optimizer, amp).totals
    return (t.saved_activation_bytes, t.gradient_bytes, t.optimizer_bytes, t.output_bytes)


def theirs(m):
    return (m.saved_activation_bytes, m.gradient_bytes, m.optimizer_bytes, m.output_bytes)


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("model", TORCHVISION + HAND_BUILT)
def test_zoo_equals_pytorch_to_the_byte(model, batch):
    a = analyze(load(str(EXAMPLES / f"{model}.yaml")))
    got = measure(module_for(model, a, "meta"), a.input_shape, batch, "adam")
    assert ours(a, batch) == theirs(got)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adamw"])
def test_optimizers_equal_pytorch(optimizer):
    a = analyze(load(str(EXAMPLES / "resnet18.yaml")))
    got = measure(module_for("resnet18", a, "meta"), a.input_shape, 2, optimizer)
    assert ours(a, 2, optimizer) == theirs(got)


@pytest.mark.parametrize(
    "model, shape",
    [
        ("lenet5", None),
        ("resnet18", (3, 32, 32)),
        ("efficientnet_b0", (3, 32, 32)),
        ("shufflenet_v2_x1_0", (3, 32, 32)),
    ],
)
def test_meta_device_keeps_what_the_cpu_keeps(model, shape):
    a = analyze(load(str(EXAMPLES / f"{model}.yaml")), shape)
    cpu = measure(module_for(model, a, "cpu"), a.input_shape, 2, "adam")
    meta = measure(module_for(model, a, "meta"), a.input_shape, 2, "adam")
    assert theirs(cpu) == theirs(meta) == ours(a, 2)


@pytest.mark.parametrize(
    "model, shape, amp",
    [
        ("resnet18", (3, 32, 32), "bfloat16"),
        ("mobilenet_v2", (3, 32, 32), "bfloat16"),
        ("googlenet", (3, 32, 32), "float16"),
        ("densenet121", (3, 32, 32), "bfloat16"),
        ("alexnet", (3, 64, 64), "bfloat16"),
        ("unet", (1, 16, 16), "bfloat16"),
        ("lenet5", None, "float16"),
        ("convnext_tiny", (3, 32, 32), "bfloat16"),  # layer scale: float32 (the parameter's)
        ("mobilenet_v3_small", (3, 32, 32), "float16"),
        ("shufflenet_v2_x1_0", (3, 32, 32), "bfloat16"),
    ],
)
def test_mixed_precision_equals_pytorch_cpu_autocast(model, shape, amp):
    a = analyze(load(str(EXAMPLES / f"{model}.yaml")), shape)
    got = measure(module_for(model, a, "cpu"), a.input_shape, 2, "adam", amp=amp)
    assert ours(a, 2, amp=amp) == theirs(got)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float64"])
def test_half_and_double_models_equal_pytorch_cpu(dtype):
    a = analyze(load(str(EXAMPLES / "resnet18.yaml")), (3, 32, 32), dtype=dtype)
    got = measure(module_for("resnet18", a, "cpu"), a.input_shape, 2, "adam", dtype=dtype)
    assert ours(a, 2) == theirs(got)


# every layer type and merge, in place or not, measured on the CPU
TYPES = [
    "conv2d(out_channels=4, kernel_size=3) relu conv2d(out_channels=4, kernel_size=3, stride=2, groups=2, bias=False) relu(True)",
    "conv2d(out_channels=4, kernel_size=3) batchnorm2d relu maxpool2d(2, ceil_mode=True) flatten linear(out_features=5)",
    "conv2d(out_channels=4, kernel_size=3) batchnorm2d(affine=False) hardtanh(inplace=True) avgpool2d(2)",
    "conv2d(out_channels=4, kernel_size=3) batchnorm2d(track_running_stats=False) relu6(True) adaptive_maxpool2d(2)",
    "conv2d(out_channels=4, kernel_size=3) prelu(4) adaptive_avgpool2d(3) adaptive_avgpool2d(1) flatten",
    "conv2d(out_channels=4, kernel_size=3) elu(inplace=True) selu celu(inplace=True) gelu silu(True) mish",
    "conv2d(out_channels=4, kernel_size=3) leaky_relu(inplace=True) hardswish(True) hardsigmoid sigmoid tanh",
    "conv2d(out_channels=4, kernel_size=3) softplus softmax(1) log_softmax(1) identity dropout(0.3)",
    "conv2d(out_channels=4, kernel_size=3) dropout2d(inplace=True) alpha_dropout dropout(0.0) dropout(1.0)",
    "conv2d(3, 4, 3) upsample(scale_factor=2) zeropad2d(1) conv_transpose2d(4, 3, 3, 2)",
    "conv2d(out_channels=4, kernel_size=3, padding=1, padding_mode='reflect') conv2d(out_channels=4, kernel_size=3, padding='same', "
    "padding_mode='replicate') conv2d(out_channels=4, kernel_size=3, padding=1, padding_mode='circular')",
    "conv2d(3, 6, 5) subsample2d(2) flatten rbf(24, 10)",
    "flatten(2) conv1d(out_channels=4, kernel_size=3) batchnorm1d maxpool1d(2) avgpool1d(2) adaptive_maxpool1d(2) "
    "adaptive_avgpool1d(1) flatten batchnorm1d dropout linear(out_features=3)",
    "flatten(2) conv_transpose1d(3, 4, 3, 2) relu6 zeropad1d(2) dropout1d flatten "
    "linear(out_features=3)",
]
# today's CNNs: norms with and without weights (their statistics follow the weights' dtype
# under autocast), on the network input too, shape layers, stochastic depth, layer scale
TYPES += [
    "conv2d(3, 4, 3) group_norm(2) relu group_norm(4, affine=False) layer_norm2d "
    "layer_norm2d(elementwise_affine=False)",
    "conv2d(3, 4, 3) instance_norm2d instance_norm2d(affine=True) "
    "instance_norm2d(track_running_stats=True) instance_norm2d(4, 1e-5, 0.1, True, True)",
    "conv2d(3, 4, 3) layer_norm(7) permute((0, 2, 3, 1)) layer_norm(4, elementwise_affine=False) "
    "layer_norm(4, bias=False) linear(4, 6) permute((0, 3, 1, 2)) layer_scale "
    "stochastic_depth(0.5, 'row') relu stochastic_depth(0.5, 'batch') "
    "stochastic_depth(0.0, 'row') stochastic_depth(1.0, 'row') layer_norm((6, 7, 7))",
    "conv2d(3, 8, 3) channel_shuffle(2) pixel_shuffle(2) conv2d(2, 4, 1) pixel_unshuffle(2) "
    "channel_shuffle(1) pixel_shuffle(1) unflatten(1, (4, 4)) flatten(1, 2) layer_norm((7, 7))",
    "flatten(2) conv1d(3, 4, 3) instance_norm1d group_norm(2) layer_norm(79) relu "
    "unflatten(2, (1, 1, -1)) instance_norm3d(affine=True)",
    "unflatten(1, (1, 3)) conv3d(1, 4, 3, padding=1) batchnorm3d instance_norm3d(affine=True) "
    "group_norm(2) relu batchnorm3d(affine=False, track_running_stats=False)",
    "group_norm(3) conv2d(3, 4, 3) batchnorm2d(affine=False, track_running_stats=False) "
    "layer_scale conv2d(4, 4, 3)",
    "layer_scale instance_norm2d(3, affine=True) layer_norm(9, elementwise_affine=False) "
    "stochastic_depth(0.5, 'row') pixel_unshuffle(3) conv2d(27, 4, 1)",
]
GRAPHS = [
    """
layers:
  - {type: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - residual: [{type: conv2d, out_channels: 4, kernel_size: 3, padding: 1}, {type: relu}]
  - {type: relu, inplace: true}
  - mul: [[{type: adaptive_avgpool2d, output_size: 1}, {type: sigmoid}], []]
  - concat: [[{type: conv2d, out_channels: 2, kernel_size: 1}], [], []]
  - add: [[{type: conv2d, out_channels: 10, kernel_size: 1}], []]
  - {type: flatten}
  - {type: linear, out_features: 3}
""",
    """
layers:
  - {type: conv2d, out_channels: 4, kernel_size: 1}
  - concat: [[{type: conv2d, out_channels: 2, kernel_size: 1}], [{type: relu}]]
    split: 2
  - mul: [[{type: conv2d, out_channels: 4, kernel_size: 1}], [], [{type: tanh}]]
  - {type: batchnorm2d}
""",
]

# a float32 layer-scale product times a bfloat16 branch under autocast: mul keeps the tensors
# it was given (autocast casts only the inputs of the ops on its lists)
GRAPHS += [
    """
layers:
  - {type: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - mul: [[{type: layer_scale}], [{type: conv2d, out_channels: 4, kernel_size: 1}]]
  - add: [[{type: layer_scale}], []]
""",
]


@pytest.mark.parametrize(
    "text",
    TYPES + GRAPHS,
    ids=[f"types{i}" for i in range(len(TYPES))] + [f"graph{i}" for i in range(len(GRAPHS))],
)
@pytest.mark.parametrize("amp", [None, "bfloat16"])
def test_every_type_equals_pytorch_cpu(text, amp):
    a = analyze(parse_text(text), (3, 9, 9))
    if amp and "padding_mode" in text:
        pytest.skip("non-zero padding modes under autocast: see the README")
    if amp and "subsample2d" in text:
        pytest.skip(
            "LeNet-1998's layers are not torch layers: under autocast their dtype "
            "depends on how they are written"
        )
    got = measure(build(a, "cpu"), a.input_shape, 2, "adam", amp=amp)
    assert ours(a, 2, amp=amp)[0] == got.saved_activation_bytes
    assert ours(a, 2, amp=amp)[3] == got.output_bytes


# Known gap: cnncalc assumes every op reads a contiguous tensor (what convolutions, norms and
# linear layers make). After a permute or layer_norm2d (and elementwise ops on their output,
# which keep its strides), group_norm and instance_norm keep a contiguous *copy* of their
# input and flatten copies instead of viewing; counted once here when another op keeps the
# original too. PyTorch's figures, measured: 5,112, 7,496 and 5,080 bytes.
NON_CONTIGUOUS = [
    "conv2d(3, 4, 3) relu permute((0, 1, 3, 2)) group_norm(2)",
    "conv2d(3, 4, 3) relu layer_norm2d(4) relu instance_norm2d",
    "conv2d(3, 4, 3) relu permute((0, 2, 3, 1)) flatten linear(196, 3)",
]


@pytest.mark.xfail(
    strict=True,
    reason="strides are not modelled: copies of non-contiguous "
    "inputs are not counted (see the README)",
)
@pytest.mark.parametrize("text", NON_CONTIGUOUS)
def test_copies_of_non_contiguous_inputs(text):
    a = analyze(parse_text(text), (3, 9, 9))
    got = measure(build(a, "cpu"), a.input_shape, 2, "adam")
    assert ours(a, 2)[0] == got.saved_activation_bytes
