"""ONNX out: every example exports to a valid graph (onnx.checker), runs in onnxruntime, and
reads back through the importer with the same shapes, parameters, buffers and MACs, row by
row."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from cnncalc.analysis import analyze  # noqa: E402
from cnncalc.cli import main  # noqa: E402
from cnncalc.errors import SpecError  # noqa: E402
from cnncalc.onnx_export import export_onnx, save_onnx  # noqa: E402
from cnncalc.onnx_import import load_onnx  # noqa: E402
from cnncalc.spec import load, parse_text  # noqa: E402

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))
IDS = [p.stem for p in EXAMPLES]
# dense_vs_conv's 655M-weight dense layer at 3x256x256 is a 2.6 GB file: same layers, smaller
SMALLER = {"dense_vs_conv": (3, 32, 32)}


# ONNX has no adaptive pooling: an even-binned one is written as the plain pool it equals;
# every dropout is ONNX's Dropout; stochastic depth is the identity at inference (PyTorch's
# exporter writes Identity too)
LOSSY = {
    "adaptive_avgpool2d": "avgpool2d",
    "adaptive_maxpool2d": "maxpool2d",
    "dropout2d": "dropout",
    "dropout1d": "dropout",
    "dropout3d": "dropout",
    "alpha_dropout": "dropout",
    "stochastic_depth": "identity",
}


def _facts(a):
    return _facts_of(a.rows)


def _facts_of(rows):
    return [(r.output_shape, r.weights, r.bias, r.buffers, r.macs) for r in rows]


def _types(a, back=None):
    return [
        r.type if back is None or r.type == back.rows[i].type else LOSSY.get(r.type, r.type)
        for i, r in enumerate(a.rows)
    ]


def _without_input_row(b):
    """``b`` without the leading ``identity`` row that names the input (rows are compared by
    their facts, types and names only)."""
    row = b.rows[0]
    assert row.type == "identity" and row.params == 0
    totals = replace(b.totals, activation_bytes=b.totals.activation_bytes - row.activation_bytes)
    return replace(b, rows=b.rows[1:], totals=totals)


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_every_example_round_trips(path, tmp_path):
    spec = load(str(path))
    shape = SMALLER.get(path.stem)
    a = analyze(spec, shape)
    model = export_onnx(spec, shape, weights="zeros")  # checked by onnx.checker
    if a.totals.params < 50_000_000:  # through a file; the giants' ~0.5 GB stay in memory
        out = str(tmp_path / "m.onnx")
        save_onnx(model, out)
        model = out
    b = analyze(load_onnx(model))
    if b.rows[0].name == "input" and (not a.rows or a.rows[0].name != "input"):
        b = _without_input_row(b)  # the importer names an input that is read twice
    assert _facts(b) == _facts(a)
    assert _types(a, b) == _types(b)
    assert b.totals == a.totals
    # names survive (a module applied twice, like ResNet's relu, is relu then relu_1)
    named = [r.name for r in a.rows if r.name and r.params]
    if a.side_outputs:  # another order: the same names
        assert sorted(r.name for r in b.rows if r.params) == sorted(named)
    else:
        assert [q.name for r, q in zip(a.rows, b.rows) if r.name and r.params] == named


@pytest.mark.parametrize(
    "name",
    [
        "lenet5",
        "lenet5_1998",
        "resnet18",
        "googlenet",
        "squeezenet1_0",
        "densenet121",
        "mobilenet_v2",
    ],
)
def test_onnxruntime_runs_the_export(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    spec = load(str(EXAMPLES[IDS.index(name)]))
    a = analyze(spec)
    out = str(tmp_path / "m.onnx")
    save_onnx(export_onnx(spec, seed=1), out)
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, *a.input_shape)).astype(np.float32)
    (y,) = session.run(None, {"input": x})
    assert y.shape == (2, *a.totals.output_shape)
    assert np.isfinite(y).all()


def test_onnx_matches_the_pytorch_export_numerically(tmp_path):
    """The same weights through both doors give the same output."""
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    import runpy

    from onnx import numpy_helper

    from cnncalc.export_torch import export_pytorch

    spec = load(str(EXAMPLES[IDS.index("lenet5")]))
    model_proto = export_onnx(spec, seed=3)
    file = tmp_path / "m.py"
    file.write_text(export_pytorch(spec))
    model = runpy.run_path(str(file))["build"]().eval()
    weights = {t.name: numpy_helper.to_array(t) for t in model_proto.graph.initializer}
    with torch.no_grad():
        for key, p in model.named_parameters():
            p.copy_(torch.from_numpy(weights[key]).reshape(p.shape))
    out = str(tmp_path / "m.onnx")
    save_onnx(model_proto, out)
    x = np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32)
    (y,) = ort.InferenceSession(out, providers=["CPUExecutionProvider"]).run(None, {"input": x})
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert np.allclose(y, want, rtol=1e-4, atol=1e-5)


def test_merges_split_and_side_outputs(tmp_path):
    text = """
input: [8, 12, 12]
layers:
  - {type: conv2d, out_channels: 8, kernel_size: 3, padding: 1, name: stem}
  - name: aux
    output: true
    layers:
      - {type: adaptive_avgpool2d, output_size: 1}
      - {type: flatten}
      - {type: linear, out_features: 3}
  - {name: body, residual: [{type: conv2d, out_channels: 8, kernel_size: 3, padding: 1}]}
  - {name: mix, split: [3, 5], concat: [[{type: conv2d, out_channels: 4, kernel_size: 1}], []]}
  - {name: se, mul: [[], [{type: adaptive_avgpool2d, output_size: 1}, {type: sigmoid}]]}
  - {type: upsample, size: [17, 17]}
"""
    spec = parse_text(text)
    out = str(tmp_path / "m.onnx")
    save_onnx(export_onnx(spec), out)
    a, b = analyze(spec), analyze(load_onnx(out))
    assert _facts(b) == _facts(a)
    assert [o.shape for o in b.side_outputs] == [(3,)]
    graph = onnx.load(out).graph
    assert [o.name for o in graph.output] == ["output", "output_1"]


def test_a_setting_onnx_cannot_express_is_one_line():
    spec = load("avgpool2d(2, divisor_override=3)")
    with pytest.raises(
        SpecError,
        match=r"^layer 0 \(avgpool2d\): cannot be written in ONNX: "
        "divisor_override",
    ):
        export_onnx(spec, (1, 4, 4))


def test_cli_export_onnx(tmp_path, capsys):
    out = tmp_path / "lenet.onnx"
    assert main(["export", str(EXAMPLES[IDS.index("lenet5")]), "--to", "onnx", "-o", str(out)]) == 0
    assert main(["shapes", str(out), "-f", "csv"]) == 0
    text = capsys.readouterr().out
    assert "c1,conv2d,6x28x28,156" in text and "output,linear,10,850" in text
    assert main(["export", "conv2d(3, 4, 3)", "-i", "3x8x8", "--to", "onnx"]) == 2
    assert "needs -o FILE" in capsys.readouterr().err


def test_large_weights_go_to_external_data(tmp_path, monkeypatch):
    from cnncalc import onnx_export

    monkeypatch.setattr(onnx_export, "_PROTO_LIMIT", 1000)
    out = tmp_path / "big.onnx"
    save_onnx(export_onnx(load("conv2d(3, 64, 3) flatten linear(2304, 10)"), (3, 8, 8)), str(out))
    assert (tmp_path / "big.onnx.data").stat().st_size >= 4 * (64 * 27 + 64 * 36 * 10)
    (tmp_path / "big.onnx.data").unlink()  # the analysis reads shapes only
    assert analyze(load_onnx(str(out))).totals.params == 64 * 28 + 64 * 36 * 10 + 10


# --------------------------------------------------------------------------- today's CNNs

from test_export_torch import NEW_TYPES, NEW_TYPES_1D, NEW_TYPES_3D  # noqa: E402

# an instance norm that tracks running statistics normalises by them at inference: ONNX's
# BatchNormalization, which reads back as a batch-norm (same parameters and buffers)
TRACKED = {
    "instance_norm1d": "batchnorm1d",
    "instance_norm2d": "batchnorm2d",
    "instance_norm3d": "batchnorm3d",
}
NEW = {"2d": NEW_TYPES, "1d": NEW_TYPES_1D, "3d": NEW_TYPES_3D}


def _run(model, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y, *_) = session.run(None, {"input": x})
    return y


@pytest.mark.parametrize("text", NEW.values(), ids=NEW.keys())
def test_new_types_round_trip_and_run(text):
    spec = parse_text(text)
    a = analyze(spec)
    model = export_onnx(spec)  # checked by onnx.checker
    b = analyze(load_onnx(model))
    assert _facts(b) == _facts(a)
    assert b.totals == a.totals
    tracked = [getattr(r.layer, "track_running_stats", False) for r in a.rows]
    assert [TRACKED.get(t, t) if k else t for t, k in zip(_types(a, b), tracked)] == _types(b)
    named = [r.name for r in a.rows if r.name and r.params]
    assert [q.name for r, q in zip(a.rows, b.rows) if r.name and r.params] == named
    x = np.random.default_rng(0).standard_normal((2, *a.input_shape)).astype(np.float32)
    assert _run(model, x).shape == (2, *a.totals.output_shape)


def _both_doors(spec, shape=None, seed=3):
    """The ONNX export and the PyTorch export of ``spec`` with the ONNX export's weights."""
    pytest.importorskip("torch")
    from onnx import numpy_helper

    from cnncalc.export_torch import export_pytorch

    proto = export_onnx(spec, shape, seed=seed)
    ns: dict = {"__name__": "export"}
    exec(compile(export_pytorch(spec, shape), "export.py", "exec"), ns)
    model = ns["build"]().eval()
    weights = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    matmul = {n.input[1] for n in proto.graph.node if n.op_type == "MatMul"}  # x · W: (in, out)
    import torch

    with torch.no_grad():
        for key, p in model.named_parameters():
            w = weights[key].T if key in matmul else weights[key]
            p.copy_(torch.from_numpy(np.ascontiguousarray(w)).reshape(p.shape))
    return proto, model


@pytest.mark.parametrize("text", NEW.values(), ids=NEW.keys())
def test_new_types_match_the_pytorch_export_numerically(text):
    """Group norm's decomposition, DepthToSpace's CRD order, the shuffles' Reshape-Transpose-
    Reshape, permute, unflatten and layer scale compute what PyTorch's modules compute."""
    torch = pytest.importorskip("torch")

    spec = parse_text(text)
    proto, model = _both_doors(spec)
    a = analyze(spec)
    x = np.random.default_rng(0).standard_normal((2, *a.input_shape)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert np.allclose(_run(proto, x), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("convnext_tiny", (3, 32, 32)),
        ("shufflenet_v2_x1_0", (3, 64, 64)),
        ("efficientnet_b0", (3, 64, 64)),
    ],
)
def test_examples_match_the_pytorch_export_numerically(name, shape):
    torch = pytest.importorskip("torch")

    spec = load(str(EXAMPLES[IDS.index(name)]))
    proto, model = _both_doors(spec, shape)
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    y = _run(proto, x)
    assert np.abs(want).max() > 0
    assert np.allclose(y, want, rtol=1e-3, atol=1e-5 * np.abs(want).max())
