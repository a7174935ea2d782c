"""The doors (PyTorch and ONNX export, ONNX import) for padding, fold/unfold, the 3-D layers
and every interpolation mode: each spec exports to a PyTorch file that torch builds with the
spec's named parameters and output shape, and to an ONNX graph that passes onnx.checker, runs
in onnxruntime with the same output as the PyTorch file given the same weights, and reads back
(``cnncalc shapes model.onnx``) with the spec's shapes, parameters and MACs. The segmentation
zoo runs at a small input. PyTorch's own exports of these layers import as the same types.
"""

from __future__ import annotations

import contextlib
import io
import runpy
from pathlib import Path

import numpy as np
import pytest

from cnncalc.analysis import analyze
from cnncalc.cli import main
from cnncalc.export_torch import export_pytorch
from cnncalc.spec import load, parse_text

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SPEC_3D = """
name: small3d
input: [2, 6, 8, 8]
layers:
  - {type: conv3d, out_channels: 4, kernel_size: 3, padding: 1, name: stem}
  - {type: batchnorm3d, name: bn}
  - {type: relu}
  - {type: maxpool3d, kernel_size: 2, name: pool}
  - {type: zeropad3d, padding: 1}
  - {type: constant_pad3d, padding: [1, 0, 0, 1, 1, 0], value: 0.5}
  - {type: reflection_pad3d, padding: 1}
  - {type: replication_pad3d, padding: [0, 1, 1, 0, -1, 1]}
  - {type: circular_pad3d, padding: [1, 1, 0, 2, 1, -1]}
  - {type: avgpool3d, kernel_size: 2, stride: 2}
  - {type: conv_transpose3d, out_channels: 3, kernel_size: 2, stride: 2, name: up}
  - {type: upsample, scale_factor: 0.5, mode: trilinear}
  - {type: upsample, size_of: pool, mode: nearest}
  - {type: upsample, size: [5, 6, 7], mode: trilinear, align_corners: true}
  - {type: adaptive_maxpool3d, output_size: [5, 3, 7]}
  - {type: adaptive_avgpool3d, output_size: 1}
  - {type: flatten}
  - {type: linear, out_features: 4, name: head}
"""

SPEC_2D = """
name: pads-and-modes
input: [3, 12, 12]
layers:
  - {type: conv2d, out_channels: 4, kernel_size: 3, padding: 1, name: stem}
  - {type: zeropad2d, padding: [1, 0, 2, 1]}
  - {type: constant_pad2d, padding: [-1, 2, 1, -2], value: -1.5}
  - {type: reflection_pad2d, padding: [2, 1, 0, 3]}
  - {type: replication_pad2d, padding: 1}
  - {type: circular_pad2d, padding: [3, -1, 2, 0]}
  - {type: maxpool2d, kernel_size: 2, name: half}
  - {type: upsample, scale_factor: 2, mode: bilinear}
  - {type: upsample, size: [13, 17], mode: bilinear, align_corners: true}
  - {type: upsample, scale_factor: 1.5, mode: bicubic}
  - {type: upsample, size: 9, mode: bicubic, align_corners: true}
  - {type: upsample, scale_factor: 1.7, mode: nearest-exact, recompute_scale_factor: true}
  - {type: upsample, size: [7, 11], mode: nearest-exact}
  - {type: upsample, scale_factor: 2, mode: nearest}
  - {type: upsample, size_of: half, mode: bilinear}
  - {type: unfold, kernel_size: 2, stride: 2}
  - {type: fold, output_size: [10, 10], kernel_size: 2, stride: 2}
  - {type: unfold, kernel_size: [2, 3], dilation: [1, 2], padding: 1, stride: [2, 1]}
  - {type: fold, output_size: [11, 10], kernel_size: [2, 3], dilation: [1, 2], padding: 1,
     stride: [2, 1]}
  - {type: upsample, size_of: input, mode: bilinear, align_corners: false, name: interpolate}
"""

SPEC_1D = """
name: pads-1d
input: [2, 16]
layers:
  - {type: conv1d, out_channels: 3, kernel_size: 3, name: stem}
  - {type: constant_pad1d, padding: [2, -1], value: 1.0}
  - {type: reflection_pad1d, padding: 3}
  - {type: replication_pad1d, padding: [0, 2]}
  - {type: circular_pad1d, padding: [4, 1]}
  - {type: upsample, scale_factor: 1.5, mode: linear}
  - {type: upsample, size: 20, mode: linear, align_corners: true}
  - {type: upsample, scale_factor: 2, mode: nearest-exact}
"""

SPECS = {"3d": SPEC_3D, "2d": SPEC_2D, "1d": SPEC_1D}
ZOO = ["fcn_resnet50", "deeplabv3_resnet50", "lraspp_mobilenet_v3_large", "mobilenet_v3_large"]
SMALL = (3, 64, 64)


def _spec(key: str):
    return parse_text(SPECS[key]) if key in SPECS else load(str(EXAMPLES / f"{key}.yaml"))


def _shape(key: str):
    return None if key in SPECS else SMALL


def test_the_specs_use_every_mode():
    kinds = {r.type for k in SPECS for r in analyze(_spec(k)).rows}
    for dims in (1, 2, 3):
        for pad in ("constant_pad", "reflection_pad", "replication_pad", "circular_pad"):
            assert f"{pad}{dims}d" in kinds
    modes = {
        (r.layer.mode, r.layer.align_corners, r.layer.size_of is not None)
        for k in SPECS
        for r in analyze(_spec(k)).rows
        if r.type == "upsample"
    }
    for mode in ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear"):
        assert any(m == mode for m, _, _ in modes)
    assert ("bilinear", True, False) in modes and ("bicubic", True, False) in modes
    assert any(size_of for _, _, size_of in modes)


# --------------------------------------------------------------------------- PyTorch file


def _torch_model(spec, shape, tmp_path):
    torch = pytest.importorskip("torch")
    file = tmp_path / "model.py"
    file.write_text(export_pytorch(spec, shape))
    with torch.device("cpu"):
        return runpy.run_path(str(file))["build"]().eval()


def test_the_pytorch_file_names_the_torch_classes():
    source = export_pytorch(_spec("3d"))
    for cls in (
        "nn.Conv3d(2, 4, 3, padding=1)",
        "nn.BatchNorm3d(4)",
        "nn.MaxPool3d(2)",
        "nn.ZeroPad3d(1)",
        "nn.ConstantPad3d((1, 0, 0, 1, 1, 0), 0.5)",
        "nn.ReflectionPad3d(1)",
        "nn.ReplicationPad3d((0, 1, 1, 0, -1, 1))",
        "nn.CircularPad3d((1, 1, 0, 2, 1, -1))",
        "nn.AvgPool3d(2)",
        "nn.ConvTranspose3d(4, 3, 2, stride=2)",
        "nn.Upsample(scale_factor=0.5, mode='trilinear')",
        "nn.Upsample(size=(5, 6, 7), mode='trilinear', align_corners=True)",
        "nn.AdaptiveMaxPool3d((5, 3, 7))",
        "nn.AdaptiveAvgPool3d(1)",
    ):
        assert cls in source
    assert "nn.functional.interpolate(x, size=x3.shape[2:])" in source
    source = export_pytorch(_spec("2d"))
    for cls in (
        "nn.Unfold(2, stride=2)",
        "nn.Fold(10, 2, stride=2)",
        "nn.Unfold((2, 3), dilation=(1, 2), padding=1, stride=(2, 1))",
        "nn.Upsample(scale_factor=1.7, mode='nearest-exact', recompute_scale_factor=True)",
        "nn.Upsample(scale_factor=1.5, mode='bicubic')",
    ):
        assert cls in source
    assert (
        "nn.functional.interpolate(x, size=x_in.shape[2:], mode='bilinear', "
        "align_corners=False)  # interpolate"
    ) in source
    assert "nn.AvgPool3d(2, divisor_override=3)" in export_pytorch(
        load("avgpool3d(2, divisor_override=3)"), (1, 4, 4, 4)
    )


@pytest.mark.parametrize("key", [*SPECS, *ZOO])
def test_pytorch_export_builds_the_spec(key, tmp_path):
    torch = pytest.importorskip("torch")
    from test_export_torch import expected

    spec, shape = _spec(key), _shape(key)
    a, want = expected(spec, shape)
    model = _torch_model(spec, shape, tmp_path)
    got: dict[str, list[int]] = {}
    for name, p in model.named_parameters():
        got.setdefault(name.rpartition(".")[0], [0, 0])[0] += p.numel()
    for name, b in model.named_buffers():
        got.setdefault(name.rpartition(".")[0], [0, 0])[1] += b.numel()
    assert {k: tuple(v) for k, v in got.items()} == want
    with torch.no_grad():
        y = model(torch.randn(2, *a.input_shape))
    y, *side = y if isinstance(y, tuple) else (y,)
    assert tuple(y.shape) == (2, *a.totals.output_shape)
    assert [tuple(s.shape[1:]) for s in side] == [o.shape for o in a.side_outputs]


# --------------------------------------------------------------------------- ONNX


# ONNX pools only by a fixed window: an even-binned adaptive pool is written as that pool
# (a global one reads back as adaptive); types are compared through this map on both sides
LOSSY = {
    "adaptive_maxpool3d": "maxpool3d",
    "adaptive_avgpool3d": "avgpool3d",
    "adaptive_maxpool2d": "maxpool2d",
    "adaptive_avgpool2d": "avgpool2d",
}


def _csv_rows(args: list[str], capsys) -> list[list[str]]:
    assert main(["shapes", *args, "-f", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    # every column but the row's name: type, output, params, RF, jump, start, MACs
    return [[LOSSY.get(t, t), *rest] for _, _, t, *rest in (ln.split(",") for ln in lines[1:])]


@pytest.mark.parametrize("key", [*SPECS, *ZOO])
def test_onnx_export_runs_and_reads_back(key, tmp_path, capsys):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from cnncalc.onnx_export import export_onnx, save_onnx
    from cnncalc.onnx_import import load_onnx

    spec, shape = _spec(key), _shape(key)
    a = analyze(spec, shape)
    out = str(tmp_path / "m.onnx")
    save_onnx(export_onnx(spec, shape, seed=1), out)  # onnx.checker inside
    b = analyze(load_onnx(out))

    def facts(x):
        return [
            (LOSSY.get(r.type, r.type), r.output_shape, r.weights, r.bias, r.buffers, r.macs)
            for r in x.rows
        ]

    assert facts(b) == facts(a)
    assert b.totals == a.totals
    # the command line: `cnncalc shapes model.onnx` against `cnncalc shapes SPEC`
    text = tmp_path / "spec.yaml"
    text.write_text(SPECS[key] if key in SPECS else (EXAMPLES / f"{key}.yaml").read_text())
    size = ["-i", "x".join(map(str, shape))] if shape else []
    assert _csv_rows([out], capsys) == _csv_rows([str(text), *size], capsys)
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, *a.input_shape)).astype(np.float32)
    ys = session.run(None, {"input": x})
    assert [y.shape[1:] for y in ys] == [a.totals.output_shape, *(o.shape for o in a.side_outputs)]


@pytest.mark.parametrize("key", [*SPECS, *ZOO])
def test_onnx_and_pytorch_exports_compute_the_same(key, tmp_path):
    """The same weights through both doors: the ONNX forms (Resize attributes per mode, Pad
    modes, circular Slice/Concat, one-hot Conv for unfold and fold) compute what torch.nn
    computes."""
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from onnx import numpy_helper

    from cnncalc.onnx_export import export_onnx, save_onnx

    spec, shape = _spec(key), _shape(key)
    a = analyze(spec, shape)
    proto = export_onnx(spec, shape, seed=3)
    weights = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    model = _torch_model(spec, shape, tmp_path)
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if name in weights:
                t.copy_(torch.from_numpy(weights[name].copy()).reshape(t.shape))
    out = str(tmp_path / "m.onnx")
    save_onnx(proto, out)
    x = np.random.default_rng(0).standard_normal((2, *a.input_shape)).astype(np.float32)
    ys = ort.InferenceSession(out, providers=["CPUExecutionProvider"]).run(None, {"input": x})
    with torch.no_grad():
        want = model(torch.from_numpy(x))
    want = want if isinstance(want, tuple) else (want,)
    assert len(ys) == len(want)
    for y, w in zip(ys, want):
        w = w.numpy()
        assert y.shape == w.shape
        assert np.allclose(y, w, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(w).max()))


def _nodes(key: str) -> list[tuple[str, dict]]:
    pytest.importorskip("onnx")
    from onnx import helper

    from cnncalc.onnx_export import export_onnx

    out = []
    for n in export_onnx(_spec(key), _shape(key)).graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        out.append(
            (n.op_type, {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()})
        )
    return out


def test_resize_attributes_per_mode():
    """As torch.onnx writes them (its TorchScript exporter, opset 17): asymmetric + floor for
    nearest, half_pixel for the linear modes and bicubic, align_corners when set; nearest-exact
    (which torch.onnx refuses) as half_pixel + round_prefer_ceil."""
    resizes = [at for op, at in _nodes("2d") + _nodes("3d") + _nodes("1d") if op == "Resize"]
    seen = {
        (at["mode"], at["coordinate_transformation_mode"], at.get("nearest_mode")) for at in resizes
    }
    assert seen == {
        ("nearest", "asymmetric", "floor"),
        ("linear", "half_pixel", None),
        ("linear", "align_corners", None),
        ("cubic", "half_pixel", None),
        ("cubic", "align_corners", None),
        ("nearest", "half_pixel", "round_prefer_ceil"),
    }


def test_size_of_is_a_resize_to_another_tensors_shape():
    ops = [op for op, _ in _nodes("2d")]
    end = len(ops) - 1 - ops[::-1].index("Resize")  # the last row: size_of the input
    assert ops[end - 5 : end + 1] == ["Shape", "Slice", "Shape", "Slice", "Concat", "Resize"]


def test_padding_modes_and_folds_in_onnx():
    ops = _nodes("2d")
    pads = [at["mode"] for op, at in ops if op == "Pad"]
    assert pads == ["constant", "constant", "reflect", "edge"]  # circular: Slice + Concat
    assert [at["axis"] for op, at in ops if op == "Concat" and at["axis"] > 1] == [2, 3]
    assert [at["group"] for op, at in ops if op in ("Conv", "ConvTranspose")] == [1, 4, 4, 4, 4]


# --------------------------------------------------------------------------- torch.onnx in


def _torch_onnx(module, shape, path, opset=17):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        torch.onnx.export(
            module,
            (torch.randn(1, *shape),),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=["x"],
            dynamic_axes={"x": {0: "N"}},
        )
    with torch.no_grad():
        return tuple(module(torch.randn(1, *shape)).shape[1:])


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_pytorch_exports_of_the_padding_layers_import(dims, tmp_path):
    pytest.importorskip("torch")
    from torch import nn

    from cnncalc.onnx_import import load_onnx

    pad = {1: (2, 1), 2: (1, 2, 0, 1), 3: (1, 0, 2, 1, 0, 1)}[dims]
    cls = {1: "1d", 2: "2d", 3: "3d"}[dims]
    model = nn.Sequential(
        getattr(nn, f"Conv{cls}")(2, 3, 1),
        getattr(nn, f"ReflectionPad{cls}")(pad),
        getattr(nn, f"ReplicationPad{cls}")(1),
        getattr(nn, f"ConstantPad{cls}")(pad, 2.5),
        getattr(nn, f"CircularPad{cls}")(pad),
        nn.ReLU(),
    )
    shape = (2, *(6,) * dims)
    want = _torch_onnx(model, shape, tmp_path / "m.onnx")
    a = analyze(load_onnx(str(tmp_path / "m.onnx")))
    assert [r.type for r in a.rows] == [
        f"conv{cls}",
        f"reflection_pad{cls}",
        f"replication_pad{cls}",
        f"constant_pad{cls}",
        f"circular_pad{cls}",
        "relu",
    ]
    assert a.totals.output_shape == want
    assert a.rows[3].layer.value == 2.5


@pytest.mark.filterwarnings("ignore")
def test_pytorch_fold_exports_as_col2im_and_imports(tmp_path):
    pytest.importorskip("torch")
    from torch import nn

    from cnncalc.onnx_import import load_onnx

    want = _torch_onnx(
        nn.Fold((5, 6), 2, stride=2, padding=1), (12, 12), tmp_path / "m.onnx", opset=18
    )
    (row,) = analyze(load_onnx(str(tmp_path / "m.onnx"))).rows
    assert (row.type, row.output_shape) == ("fold", want) == ("fold", (3, 5, 6))
    assert row.layer.stride == (2, 2) and row.layer.padding == (1, 1)


def test_a_conv_that_is_not_one_hot_stays_a_conv(tmp_path):
    """The unfold form is checked by value: a learned grouped conv before a reshape is not it."""
    pytest.importorskip("onnx")
    from cnncalc.onnx_export import export_onnx, save_onnx
    from cnncalc.onnx_import import load_onnx

    spec = load("conv2d(4, 8, 2, groups=4, bias=False) flatten(2)")
    out = str(tmp_path / "m.onnx")
    save_onnx(export_onnx(spec, (4, 5, 5)), out)
    assert [r.type for r in analyze(load_onnx(out)).rows] == ["conv2d", "flatten"]
