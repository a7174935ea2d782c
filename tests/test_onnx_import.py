"""ONNX in: small graphs built with onnx.helper, checked against hand formulas; real PyTorch
exports of torchvision models against torch's own parameter count, flop_counter and output
shape (when torch is installed)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from cnncalc.analysis import analyze  # noqa: E402
from cnncalc.cli import main  # noqa: E402
from cnncalc.errors import SpecError  # noqa: E402
from cnncalc.layers import BY_KEY, type_key  # noqa: E402
from cnncalc.onnx_import import import_onnx, load_onnx  # noqa: E402


def _init(name, shape, value=None):
    arr = np.full(shape, 0.5 if value is None else value, dtype=np.float32)
    return numpy_helper.from_array(arr, name)


def _model(nodes, inits, shape=(1, 3, 8, 8), out="y", opset=17, batch="N"):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, *shape[1:]])
    y = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _save(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    onnx.save(model, str(path))
    return str(path)


def _small_cnn():
    nodes = [
        helper.make_node(
            "Conv",
            ["x", "conv1.weight", "conv1.bias"],
            ["c1"],
            name="/conv1/Conv",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node(
            "BatchNormalization",
            ["c1", "bn.w", "bn.b", "bn.m", "bn.v"],
            ["b1"],
            name="/bn1/BatchNormalization",
        ),
        helper.make_node("Relu", ["b1"], ["r1"], name="/relu/Relu"),
        helper.make_node(
            "MaxPool", ["r1"], ["p1"], name="/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("GlobalAveragePool", ["p1"], ["g"], name="/avgpool/GlobalAveragePool"),
        helper.make_node("Flatten", ["g"], ["f"], name="/Flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="/fc/Gemm", transB=1),
    ]
    inits = [
        _init("conv1.weight", (16, 3, 3, 3)),
        _init("conv1.bias", (16,)),
        _init("bn.w", (16,)),
        _init("bn.b", (16,)),
        _init("bn.m", (16,)),
        _init("bn.v", (16,), 1.0),
        _init("fc.weight", (10, 16)),
        _init("fc.bias", (10,)),
    ]
    return _model(nodes, inits)


def test_a_small_cnn_by_hand(tmp_path):
    a = analyze(load_onnx(_save(tmp_path, _small_cnn())))
    rows = [(r.name, r.type, r.output_shape, r.params) for r in a.rows]
    assert rows == [
        ("conv1", "conv2d", (16, 8, 8), 16 * 3 * 9 + 16),
        ("bn1", "batchnorm2d", (16, 8, 8), 32),
        ("relu", "relu", (16, 8, 8), 0),
        ("pool", "maxpool2d", (16, 4, 4), 0),
        ("avgpool", "adaptive_avgpool2d", (16, 1, 1), 0),
        ("flatten", "flatten", (16,), 0),
        ("fc", "linear", (10,), 170),
    ]
    assert a.totals.macs == 16 * 8 * 8 * 27 + 160
    assert a.rows[1].buffers == 33  # running mean, var and num_batches_tracked, as PyTorch


def test_residual_names_and_jumps_from_pytorch_scopes(tmp_path):
    nodes = [
        helper.make_node(
            "Conv",
            ["x", "w1"],
            ["a"],
            name="/layer1/layer1.0/conv1/Conv",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node(
            "Conv",
            ["x", "w2"],
            ["d"],
            name="/layer1/layer1.0/downsample/downsample.0/Conv",
            kernel_shape=[1, 1],
        ),
        helper.make_node("Add", ["a", "d"], ["s"], name="/layer1/layer1.0/Add"),
        helper.make_node("Relu", ["s"], ["y"], name="/layer1/layer1.0/relu_1/Relu"),
    ]
    path = _save(tmp_path, _model(nodes, [_init("w1", (3, 3, 3, 3)), _init("w2", (3, 3, 1, 1))]))
    a = analyze(load_onnx(path))
    assert [r.name for r in a.rows] == [
        "input",
        "layer1.0.conv1",
        "layer1.0.downsample.0",
        "layer1.0.add",
        "layer1.0.relu_1",
    ]
    assert a.rows[2].inputs == (0,) and a.rows[3].inputs == (1, 2)
    data = import_onnx(path)
    assert {"name": "~1", "from": "input", "layers": []} in data["layers"]


def test_an_unknown_operator_is_one_line_naming_node_op_and_opset(tmp_path, capsys):
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", kernel_shape=[1, 1]),
        helper.make_node("Einsum", ["c"], ["y"], name="/mix/Einsum", equation="nchw->nchw"),
    ]
    path = _save(tmp_path, _model(nodes, [_init("w", (4, 3, 1, 1))], opset=13))
    with pytest.raises(SpecError, match=r"node '/mix/Einsum' \(Einsum, opset 13\)"):
        load_onnx(path)
    assert main(["shapes", path]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("cnncalc: error: node '/mix/Einsum' (Einsum, opset 13): ")


def test_symbolic_spatial_size_needs_input(tmp_path, capsys):
    model = _small_cnn()
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "H", "W"
    path = _save(tmp_path, model)
    assert main(["shapes", path]) == 1
    assert "symbolic size 'H' on axis 2; give the shape with --input" in capsys.readouterr().err
    assert main(["shapes", path, "-i", "3x32x32", "-f", "csv"]) == 0
    assert "16x32x32" in capsys.readouterr().out


def test_external_weights_are_not_needed(tmp_path):
    model = _small_cnn()
    path = tmp_path / "ext.onnx"
    onnx.save_model(
        model, str(path), save_as_external_data=True, location="ext.data", size_threshold=0
    )
    (tmp_path / "ext.data").unlink()
    assert analyze(load_onnx(str(path))).totals.params == 448 + 32 + 170


def test_patterns_silu_gelu_linear_and_clip(tmp_path):
    c = helper.make_node
    nodes = [
        c("Sigmoid", ["x"], ["s"], name="/act/Sigmoid"),
        c("Mul", ["x", "s"], ["a"], name="/act/Mul"),
        c("Div", ["a", "sqrt2"], ["d"], name="/gelu/Div"),
        c("Erf", ["d"], ["e"], name="/gelu/Erf"),
        c("Add", ["e", "one"], ["e1"], name="/gelu/Add"),
        c("Mul", ["a", "e1"], ["m"], name="/gelu/Mul"),
        c("Mul", ["m", "half"], ["g"], name="/gelu/Mul_1"),
        c("MatMul", ["g", "fc.weight"], ["mm"], name="/fc/MatMul"),
        c("Add", ["fc.bias", "mm"], ["l"], name="/fc/Add"),
        c("Clip", ["l", "zero", "six"], ["y"], name="/r6/Clip"),
    ]
    inits = [
        _init("sqrt2", (), 2**0.5),
        _init("one", (), 1.0),
        _init("half", (), 0.5),
        _init("fc.weight", (8, 5)),
        _init("fc.bias", (5,)),
        _init("zero", (), 0.0),
        _init("six", (), 6.0),
    ]
    a = analyze(load_onnx(_save(tmp_path, _model(nodes, inits))))
    assert [(r.name, r.type, r.output_shape, r.params) for r in a.rows] == [
        ("act", "silu", (3, 8, 8), 0),
        ("gelu", "gelu", (3, 8, 8), 0),
        ("fc", "linear", (3, 8, 5), 45),
        ("r6", "relu6", (3, 8, 5), 0),
    ]


def test_split_concat_reshape_pad_resize(tmp_path):
    c = helper.make_node
    nodes = [
        c("Split", ["x", "sizes"], ["a", "b"], name="/Split", axis=1),
        c("Concat", ["b", "a"], ["cat"], name="/Concat", axis=1),
        c("Pad", ["cat", "pads"], ["p"], name="/pad/Pad", mode="constant"),
        c(
            "Resize",
            ["p", "", "scales"],
            ["r"],
            name="/up/Resize",
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        ),
        c("Reshape", ["r", "shape"], ["y"], name="/Reshape"),
    ]
    inits = [
        numpy_helper.from_array(np.array([1, 2], np.int64), "sizes"),
        numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 1, 2], np.int64), "pads"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(np.array([0, -1], np.int64), "shape"),
    ]
    a = analyze(load_onnx(_save(tmp_path, _model(nodes, inits))))
    assert [(r.type, r.output_shape) for r in a.rows] == [
        ("identity", (3, 8, 8)),  # the input, named: both parts read it
        ("narrow", (1, 8, 8)),
        ("narrow", (2, 8, 8)),
        ("concat", (3, 8, 8)),
        ("zeropad2d", (3, 10, 12)),
        ("upsample", (3, 20, 24)),
        ("flatten", (3 * 20 * 24,)),
    ]
    assert a.rows[4].layer.padding == (2, 2, 1, 1)  # PyTorch order: left, right, top, bottom


def test_shapes_of_a_yaml_spec_never_imports_onnx():
    code = (
        "import sys; from cnncalc.cli import main; main(['shapes', "
        "'conv2d(out_channels=4, kernel_size=3)', '-i', '3x8x8', '-f', 'json']); "
        "assert 'onnx' not in sys.modules, 'onnx imported'"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_import_writes_readable_yaml(tmp_path, capsys):
    path = _save(tmp_path, _small_cnn())
    out = tmp_path / "m.yaml"
    assert main(["import", path, "-o", str(out)]) == 0
    text = out.read_text()
    assert (
        "  - {type: conv2d, name: conv1, in_channels: 3, out_channels: 16, kernel_size: 3, "
        "padding: 1}" in text
    )
    assert main(["shapes", str(out), "-f", "csv"]) == 0
    assert "conv1,conv2d,16x8x8,448" in capsys.readouterr().out


def test_not_an_onnx_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x08\x07garbage")
    assert main(["shapes", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "not a readable ONNX model" in err


# --------------------------------------------------------------------------- real exports


def _has(*types: str) -> bool:
    return all(type_key(t) in BY_KEY for t in types)


# torchvision model, input, layer types it needs beyond this branch's
TORCHVISION = {
    "resnet18": ((3, 224, 224), ()),
    "mobilenet_v3_small": ((3, 224, 224), ()),
    "efficientnet_b0": ((3, 224, 224), ()),
    "densenet121": ((3, 224, 224), ()),
    "googlenet": ((3, 224, 224), ()),
    "inception_v3": ((3, 299, 299), ()),
    "convnext_tiny": ((3, 224, 224), ()),
    "shufflenet_v2_x1_0": ((3, 224, 224), ()),  # channel_shuffle: Reshape-Transpose-Reshape
    "fcn_resnet50": ((3, 224, 224), ()),  # bilinear Resize to the input's size
    "r3d_18": ((3, 8, 112, 112), ()),
}


def _torchvision(name):
    import types

    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("stub"))
    tv = pytest.importorskip("torchvision")
    return {
        "googlenet": lambda: tv.models.googlenet(aux_logits=False, init_weights=False),
        "inception_v3": lambda: tv.models.inception_v3(aux_logits=False, init_weights=False),
        "fcn_resnet50": lambda: tv.models.segmentation.fcn_resnet50(
            weights=None, weights_backbone=None, aux_loss=False
        ),
        "r3d_18": lambda: tv.models.video.r3d_18(),
    }.get(name, lambda: getattr(tv.models, name)())()


# exported as in training (batch-norms kept: torchvision's own parameter count) and, for a
# few, as eval mode exports by default (batch-norms after convs folded into them)
CASES = [(name, False) for name in sorted(TORCHVISION)] + [
    (name, True) for name in ("resnet18", "mobilenet_v3_small", "densenet121", "r3d_18")
]


@pytest.mark.parametrize(
    ("name", "fold"), CASES, ids=[f"{n}-{'folded' if f else 'bn'}" for n, f in CASES]
)
def test_torchvision_exports(name, fold, tmp_path):
    torch = pytest.importorskip("torch")
    shape, needs = TORCHVISION[name]
    if not _has(*needs):
        pytest.xfail(f"needs layer types from a parallel branch: {', '.join(needs)}")
    from torch.onnx import TrainingMode
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = _torchvision(name).eval()
    x = torch.randn(1, *shape)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = model(x)
    y = y["out"] if isinstance(y, dict) else y
    path = str(tmp_path / f"{name}.onnx")
    keep_bn = {} if fold else dict(training=TrainingMode.PRESERVE, do_constant_folding=False)
    torch.onnx.export(
        model,
        (x,),
        path,
        dynamo=False,
        opset_version=17,
        input_names=["x"],
        dynamic_axes={"x": {0: "N"}},
        **keep_bn,
    )
    a = analyze(load_onnx(path))
    assert a.totals.output_shape == tuple(y.shape[1:])
    assert a.totals.macs == counter.get_total_flops() // 2  # conv + linear, as flop_counter
    params = sum(p.numel() for p in model.parameters())
    if fold:  # a batch-norm after a conv is folded: its weight and bias go, the conv gains a bias
        torch_bn = sum(
            2 * m.num_features
            for m in model.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        )
        torch_conv_bias = sum(
            m.bias.numel()
            for m in model.modules()
            if isinstance(m, torch.nn.modules.conv._ConvNd) and m.bias is not None
        )
        kept_bn = sum(r.params for r in a.rows if r.type.startswith("batchnorm"))
        conv_bias = sum(r.bias for r in a.rows if r.type.startswith("conv"))
        assert conv_bias > torch_conv_bias
        assert a.totals.params == params - (torch_bn - kept_bn) + (conv_bias - torch_conv_bias)
    else:
        assert a.totals.params == params


# --------------------------------------------------------------------------- today's CNNs
# The forms PyTorch's exporter (opset 17) writes, built by hand: a norm's fixed ones and zeros
# are Constant nodes, its parameters initializers (perhaps unsqueezed).


def _const(name, values, dtype=np.int64):
    return helper.make_node(
        "Constant",
        [],
        [name],
        name=f"/{name}",
        value=numpy_helper.from_array(np.asarray(values, dtype), name),
    )


def _rows(tmp_path, nodes, inits, shape=(1, 8, 4, 4)):
    a = analyze(load_onnx(_save(tmp_path, _model(nodes, inits, shape))))
    return [(r.name, r.type, r.output_shape, r.params, r.buffers) for r in a.rows]


@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_as_pytorch_exports_it(tmp_path, affine):
    c = helper.make_node
    scale = "gn.weight" if affine else "one"
    shift = "gn.bias" if affine else "zero"
    nodes = [
        _const("target", [0, 2, -1]),
        c("Reshape", ["x", "target"], ["r"], name="/gn/Reshape"),
        _const("ones", [1.0, 1.0], np.float32),
        _const("zeros", [0.0, 0.0], np.float32),
        c(
            "InstanceNormalization",
            ["r", "ones", "zeros"],
            ["n"],
            name="/gn/InstanceNormalization",
            epsilon=1e-5,
        ),
        c("Shape", ["x"], ["s"], name="/gn/Shape"),
        c("Reshape", ["n", "s"], ["b"], name="/gn/Reshape_1"),
        _const("axes", [1, 2]),
        c("Unsqueeze", [scale, "axes"], ["w"], name="/gn/Unsqueeze"),
        c("Mul", ["b", "w"], ["m"], name="/gn/Mul"),
        c("Unsqueeze", [shift, "axes"], ["bb"], name="/gn/Unsqueeze_1"),
        c("Add", ["m", "bb"], ["y"], name="/gn/Add"),
    ]
    if affine:
        inits = [_init("gn.weight", (8,)), _init("gn.bias", (8,))]
    else:
        inits = []
        nodes[7:7] = [_const("one", [1.0], np.float32), _const("zero", [0.0], np.float32)]
    assert _rows(tmp_path, nodes, inits) == [
        ("gn", "group_norm", (8, 4, 4), 16 if affine else 0, 0)
    ]


def test_shuffles_from_reshape_transpose_reshape(tmp_path):
    c = helper.make_node
    nodes = [  # torchvision's channel_shuffle(x, 2), then nn.PixelUnshuffle(2) as PyTorch writes
        _const("t1", [0, 2, 4, 4, 4]),
        c("Reshape", ["x", "t1"], ["a"], name="/cs/Reshape"),
        c("Transpose", ["a"], ["b"], name="/cs/Transpose", perm=[0, 2, 1, 3, 4]),
        _const("t2", [0, 8, 4, 4]),
        c("Reshape", ["b", "t2"], ["cs"], name="/cs/Reshape_1"),
        _const("t3", [-1, 8, 2, 2, 2, 2]),
        c("Reshape", ["cs", "t3"], ["d"], name="/pu/Reshape"),
        c("Transpose", ["d"], ["e"], name="/pu/Transpose", perm=[0, 1, 3, 5, 2, 4]),
        _const("t4", [-1, 32, 2, 2]),
        c("Reshape", ["e", "t4"], ["pu"], name="/pu/Reshape_1"),
        c("DepthToSpace", ["pu"], ["y"], name="/ps/DepthToSpace", blocksize=2, mode="CRD"),
    ]
    assert _rows(tmp_path, nodes, []) == [
        ("cs", "channel_shuffle", (8, 4, 4), 0, 0),
        ("pu", "pixel_unshuffle", (32, 2, 2), 0, 0),
        ("ps", "pixel_shuffle", (8, 4, 4), 0, 0),
    ]


def test_another_reshape_transpose_reshape_is_three_layers(tmp_path):
    c = helper.make_node
    nodes = [  # (N, 8, 4, 4) → (N, 8, 16) → (N, 16, 8) → (N, 128): no shuffle
        _const("t1", [0, 8, 16]),
        c("Reshape", ["x", "t1"], ["a"], name="/Reshape"),
        c("Transpose", ["a"], ["b"], name="/Transpose", perm=[0, 2, 1]),
        _const("t2", [0, -1]),
        c("Reshape", ["b", "t2"], ["y"], name="/Reshape_1"),
    ]
    assert [row[1:3] for row in _rows(tmp_path, nodes, [])] == [
        ("flatten", (8, 16)),
        ("permute", (16, 8)),
        ("flatten", (128,)),
    ]


def test_depth_to_space_dcr_and_space_to_depth_are_one_line(tmp_path):
    c = helper.make_node
    for node in [
        c("DepthToSpace", ["x"], ["y"], name="/up/DepthToSpace", blocksize=2),
        c("SpaceToDepth", ["x"], ["y"], name="/down/SpaceToDepth", blocksize=2),
    ]:
        with pytest.raises(
            SpecError,
            match=r"^node '/(up|down)/\w+' \(\w+, opset 17\): .*"
            "no PyTorch layer",
        ):
            load_onnx(_save(tmp_path, _model([node], [])))


def test_norms_are_affine_only_with_initializers(tmp_path):
    c = helper.make_node
    nodes = [
        c(
            "InstanceNormalization",
            ["x", "in.weight", "in.bias"],
            ["a"],
            name="/in/InstanceNormalization",
        ),
        _const("one8", np.ones(8), np.float32),
        _const("zero8", np.zeros(8), np.float32),
        c(
            "InstanceNormalization",
            ["a", "one8", "zero8"],
            ["b"],
            name="/in2/InstanceNormalization",
        ),
        c(
            "BatchNormalization",
            ["b", "one8", "zero8", "bn.running_mean", "bn.running_var"],
            ["d"],
            name="/bn/BatchNormalization",
        ),
        _const("zero4", np.zeros(4), np.float32),  # nn.LayerNorm(4, bias=False)
        c(
            "LayerNormalization",
            ["d", "ln.weight", "zero4"],
            ["e"],
            name="/ln/LayerNormalization",
            axis=-1,
        ),
        _const("one4", np.ones(4), np.float32),  # nn.LayerNorm(4, elementwise_affine=False)
        c(
            "LayerNormalization",
            ["e", "one4", "zero4"],
            ["y"],
            name="/ln2/LayerNormalization",
            axis=-1,
        ),
    ]
    inits = [
        _init("in.weight", (8,)),
        _init("in.bias", (8,)),
        _init("bn.running_mean", (8,)),
        _init("bn.running_var", (8,)),
        _init("ln.weight", (4,)),
    ]
    assert _rows(tmp_path, nodes, inits) == [
        ("in", "instance_norm2d", (8, 4, 4), 16, 0),
        ("in2", "instance_norm2d", (8, 4, 4), 0, 0),
        ("bn", "batchnorm2d", (8, 4, 4), 0, 17),
        ("ln", "layer_norm", (8, 4, 4), 4, 0),
        ("ln2", "layer_norm", (8, 4, 4), 0, 0),
    ]


def test_modules_exported_by_pytorch(tmp_path):
    """What PyTorch's own exporter writes for the norms and shuffles reads back with PyTorch's
    parameter and buffer counts and output shape."""
    torch = pytest.importorskip("torch")
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.GroupNorm(4, 8),
        nn.GroupNorm(2, 8, affine=False),
        nn.InstanceNorm2d(8, affine=True),
        nn.InstanceNorm2d(8),
        nn.LayerNorm([6, 6], bias=False),
        nn.LayerNorm(6, elementwise_affine=False),
        nn.BatchNorm2d(8, affine=False),
        nn.PixelUnshuffle(2),
        nn.PixelShuffle(2),
        nn.Unflatten(1, (2, 4)),
        nn.Flatten(1, 2),
    ).eval()
    x = torch.randn(1, 3, 6, 6)
    for fold in (True, False):
        path = str(tmp_path / f"m{fold}.onnx")
        torch.onnx.export(
            model,
            (x,),
            path,
            dynamo=False,
            opset_version=17,
            input_names=["x"],
            dynamic_axes={"x": {0: "N"}},
            do_constant_folding=fold,
        )
        a = analyze(load_onnx(path))
        assert [r.type for r in a.rows] == [
            "conv2d",
            "group_norm",
            "group_norm",
            "instance_norm2d",
            "instance_norm2d",
            "layer_norm",
            "layer_norm",
            "batchnorm2d",
            "pixel_unshuffle",
            "pixel_shuffle",
            "unflatten",
            "flatten",
        ]
        assert a.totals.params == sum(p.numel() for p in model.parameters())
        assert a.totals.buffers == sum(b.numel() for b in model.buffers())
        assert a.totals.output_shape == tuple(model(x).shape[1:])


def test_a_transpose_of_the_batch_between_reshapes_is_one_line(tmp_path):
    c = helper.make_node
    nodes = [
        _const("t1", [0, 8, 16]),
        c("Reshape", ["x", "t1"], ["a"], name="/Reshape"),
        c("Transpose", ["a"], ["b"], name="/t/Transpose", perm=[1, 0, 2]),
        _const("t2", [8, -1]),
        c("Reshape", ["b", "t2"], ["y"], name="/Reshape_1"),
    ]
    with pytest.raises(
        SpecError,
        match=r"^node '/t/Transpose' \(Transpose, opset 17\): moves "
        "the batch dimension$",
    ):
        load_onnx(_save(tmp_path, _model(nodes, [], (1, 8, 4, 4))))
