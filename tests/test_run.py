"""`cnncalc run`: every spec executes with the kernels and every shape is checked.

The oracle for shapes is the analysis *and* PyTorch's semantics as the other test modules pin
them; here the point is that the executed kernels agree with the prediction on real specs,
that disagreement is caught and named, and that the memory guard refuses before allocating.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnncalc.analysis import analyze
from cnncalc.cli import main
from cnncalc.errors import CnncalcError
from cnncalc.run import peak_estimate, run
from cnncalc.spec import load

EXAMPLES = Path(__file__).parents[1] / "examples"

# small inputs keep the suite fast; each still passes every layer type of the spec
SMALL = {
    "alexnet": (3, 64, 64),
    "vgg16": (3, 32, 32),
    "vgg16_bn": (3, 32, 32),
    "resnet18": (3, 32, 32),
    "resnet50": (3, 32, 32),
    "mobilenet_v2": (3, 32, 32),
    "squeezenet1_0": (3, 64, 64),
    "googlenet": (3, 32, 32),
    "densenet121": (3, 32, 32),
    "unet": (1, 32, 32),
    # today's CNNs (total stride 32): 64×64 leaves a 2×2 map before the global pool
    "efficientnet_b0": (3, 64, 64),
    "efficientnet_b3": (3, 64, 64),
    "efficientnet_v2_s": (3, 64, 64),
    "convnext_tiny": (3, 64, 64),
    "shufflenet_v2_x1_0": (3, 64, 64),
    "mobilenet_v3_small": (3, 64, 64),
    "mnasnet1_0": (3, 64, 64),
    "fcn_resnet50": (3, 40, 56),
    "deeplabv3_resnet50": (3, 40, 56),
    "lraspp_mobilenet_v3_large": (3, 40, 56),
    "mobilenet_v3_large": (3, 32, 32),
}


# run at batch 1 and their smallest input by tests/test_zoo_classic.py (issue 9)
RUN_ELSEWHERE = {
    "resnet34",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "vgg11",
    "vgg19_bn",
    "squeezenet1_1",
    "densenet161",
    "densenet201",
    "inception_v3",
    "regnet_x_1_6gf",
    "regnet_y_400mf",
}


@pytest.mark.parametrize(
    "path",
    sorted(p for p in EXAMPLES.glob("*.yaml") if p.stem not in RUN_ELSEWHERE),
    ids=lambda p: p.stem,
)
def test_every_example_runs_and_matches(path):
    spec = load(str(path))
    result = run(spec, SMALL.get(path.stem), batch=2, seed=1)
    assert result.all_match, [(r.row.where, r.measured_shape) for r in result.mismatches]
    assert len(result.rows) == len(result.analysis.rows)


def test_same_seed_same_output_different_seed_differs(monkeypatch):
    """Input and weights come from default_rng(seed): the network's output is reproducible."""
    from cnncalc import kernels as K

    spec = load("conv2d(1, 4, 3, padding=1) relu maxpool2d(2) flatten linear(out_features=5)")
    outs = []
    real = K.linear

    def spy(*args, **kwargs):
        y = real(*args, **kwargs)
        outs.append(y)
        return y

    monkeypatch.setattr(K, "linear", spy)
    for seed in (7, 7, 8):
        run(spec, (1, 8, 8), seed=seed)
    assert len(outs) == 6  # warm-up call + one timed call per run
    assert np.array_equal(outs[1], outs[3])
    assert not np.array_equal(outs[1], outs[5])


def test_mismatch_is_exit_1_naming_the_layer(monkeypatch, capsys):
    """A kernel that returns the wrong shape must be caught and named."""
    from cnncalc import kernels as K

    real = K.max_pool2d

    def wrong(x, *args, **kwargs):
        y = real(x, *args, **kwargs)
        return y[..., :-1]  # one column short

    monkeypatch.setattr(K, "max_pool2d", wrong)
    code = main(
        ["run", "-i", "1x8x8", "conv2d(1, 2, 3, padding=1) maxpool2d(2, name='p')", "-f", "json"]
    )
    out, err = capsys.readouterr()
    assert code == 1
    data = json.loads(out)
    assert [layer["match"] for layer in data["layers"]] == [True, False]
    assert data["layers"][1]["measured_shape"] == [2, 4, 3]
    assert data["totals"]["all_match"] is False
    assert err.count("\n") == 1 and "layer 1 (maxpool2d 'p')" in err and "2x4x3" in err


def test_json_contract_of_run(capsys):
    code = main(
        ["run", str(EXAMPLES / "lenet5.yaml"), "--repeat", "2", "--seed", "3", "-f", "json"]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    for layer in data["layers"]:
        assert {"predicted_shape", "measured_shape", "match", "ms"} <= set(layer)
        assert layer["predicted_shape"] == layer["output_shape"] == layer["measured_shape"]
        assert layer["ms"] >= 0
    assert data["totals"]["all_match"] is True
    assert data["totals"]["ms"] == pytest.approx(sum(x["ms"] for x in data["layers"]))
    assert data["seed"] == 3


def test_memory_guard_refuses_before_allocating(capsys):
    # 3×100000×100000 float32 input alone is 120 GB
    code = main(["run", "-i", "3x100000x100000", "conv2d(3, 4, 3)"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert "--max-memory" in err and "largest tensor" in err and "conv2d" in err


def test_memory_guard_limit_option(capsys):
    code = main(["run", "-i", "3x64x64", "conv2d(3, 16, 3)", "--max-memory", "100k"])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and "97.7 KiB" in err  # 100k = 100,000 bytes
    code = main(["run", "-i", "3x64x64", "conv2d(3, 16, 3)", "--max-memory", "lots"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1


def test_peak_estimate_counts_live_tensors():
    """Input + weights + the largest pair of live activations, computed by hand."""
    spec = load("conv2d(out_channels=8, kernel_size=3, padding=1, bias=False) relu")
    a = analyze(spec, (2, 10, 10))
    peak, name, size = peak_estimate(a)
    x = 2 * 10 * 10 * 4
    y = 8 * 10 * 10 * 4
    w = 8 * 2 * 3 * 3 * 4
    # each step: the live inputs, the output, and the workspace: a padded copy of the
    # inputs (+25%) and, for a windowed layer with weights, its im2col matrix (kernel area ×
    # the input); the conv weights twice (as drawn and packed)
    conv = x + y + (x + x // 4 + 9 * x)
    relu = y + y + (y + y // 4)  # the input x is freed after the conv
    assert peak == max(conv, relu) + 2 * w
    assert size == y and "layer 0 (conv2d)" in name


def test_run_refuses_other_dtypes():
    with pytest.raises(CnncalcError, match="float32 or float64"):
        run(load("relu"), (1, 4, 4), dtype="float16")


def test_float64_run():
    result = run(
        load("conv2d(1, 2, 3) avgpool2d(2) flatten linear(2 * 3 * 3, 3)"),
        (1, 9, 9),
        dtype="float64",
    )
    assert result.all_match


def test_every_layer_family_runs():
    """Layer types no example uses: 3-D and 1-D convs, transposed, padding modes, upsample,
    adaptive max, zero-pad, prelu, softmax, the LeNet-1998 layers."""
    specs = [
        ("conv3d(2, 4, 3, padding=1) relu conv3d(4, 2, (1, 3, 3), stride=2)", (2, 6, 8, 8)),
        (
            "conv1d(3, 4, 5, padding='same', padding_mode='reflect') maxpool1d(2, ceil_mode=True) "
            "avgpool1d(3, 2, 1, count_include_pad=False) adaptive_maxpool1d(3) "
            "conv_transpose1d(4, 2, 3, stride=2, output_padding=1)",
            (3, 17),
        ),
        (
            "zeropad2d((1, 2, 0, 3)) conv2d(2, 4, 3, groups=1, dilation=2, padding_mode='circular', "
            "padding=2) prelu(4) upsample(scale_factor=2) adaptive_maxpool2d((2, 3)) flatten "
            "linear(4 * 2 * 3, 6) softmax(1) log_softmax(1)",
            (2, 9, 7),
        ),
        (
            "conv2d(1, 6, 5) tanh subsample2d(2) conv2d(6, 4, 3, connections=[[0, 1], [2, 3], "
            "[4, 5], [0, 5]]) flatten rbf(4 * 4 * 4, 3)",
            (1, 16, 16),
        ),
    ]
    for text, shape in specs:
        result = run(load(text), shape, batch=2)
        assert result.all_match, (
            text,
            [(r.row.where, r.measured_shape) for r in result.mismatches],
        )


def test_bad_run_options_are_usage_errors(capsys):
    for args in (["--dtype", "float16"], ["--repeat", "0"], ["--threads", "0"]):
        code = main(["run", "-i", "3x8x8", "relu", *args])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and err.count("\n") == 1, args
        assert args[0] in err
