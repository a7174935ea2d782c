"""cnncalc export --to pytorch: the generated file against the analysis.

Without torch the file is compiled and its module tree read statically (a small evaluator of
the nn constructors it emits, with PyTorch's parameter formulas written out here); with torch
it is executed and every module's named parameters and buffers, and the output shape, are
compared with cnncalc's rows.
"""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import pytest

from cnncalc.analysis import analyze
from cnncalc.cli import main
from cnncalc.export_torch import export_pytorch, module_paths
from cnncalc.spec import load

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))
IDS = [p.stem for p in EXAMPLES]


def expected(spec, shape=None):
    """Per module path: (parameters, buffers) from cnncalc's rows."""
    a = analyze(spec, shape)
    out: dict[str, list[int]] = {}
    for row, path in zip(a.rows, module_paths(a)):
        if row.params or row.buffers:
            p = out.setdefault(path, [0, 0])
            p[0] += row.params
            p[1] += row.buffers
    return a, {k: tuple(v) for k, v in out.items()}


# --------------------------------------------------------------------------- static reading


def _args(call: ast.Call) -> tuple[list, dict]:
    return (
        [ast.literal_eval(a) for a in call.args],
        {k.arg: ast.literal_eval(k.value) for k in call.keywords},
    )


def _nd(value, n: int) -> tuple[int, ...]:
    return (value,) * n if isinstance(value, int) else tuple(value)


def _count(name: str, args: list, kw: dict) -> tuple[int, int]:
    """PyTorch's parameter and buffer counts of the constructors the exporter writes."""
    if name.startswith("nn.Conv") and "Transpose" not in name:
        n = int(name[-2])
        c_in, c_out, k = args[:3]
        g, bias = kw.get("groups", 1), kw.get("bias", True)
        return c_out * (c_in // g) * math.prod(_nd(k, n)) + (c_out if bias else 0), 0
    if name.startswith("nn.ConvTranspose"):
        n = int(name[-2])
        c_in, c_out, k = args[:3]
        g, bias = kw.get("groups", 1), kw.get("bias", True)
        return c_in * (c_out // g) * math.prod(_nd(k, n)) + (c_out if bias else 0), 0
    if name == "nn.Linear":
        return args[0] * args[1] + (args[1] if kw.get("bias", True) else 0), 0
    if name.startswith("nn.BatchNorm"):
        c = args[0]
        return (
            2 * c if kw.get("affine", True) else 0,
            2 * c + 1 if kw.get("track_running_stats", True) else 0,
        )
    if name == "nn.PReLU":
        return kw.get("num_parameters", 1), 0
    if name == "Subsample2d":
        return 2 * args[0], 0
    if name == "RBF":
        return args[0] * args[1], 0
    if name == "PartialConv2d":
        k = _nd(args[2], 2)
        fan = sum(len(r) for r in kw["connections"])
        return fan * math.prod(k) + (args[1] if kw.get("bias", True) else 0), 0
    if name == "nn.GroupNorm":  # weight and bias per channel
        return (2 * args[1] if kw.get("affine", True) else 0), 0
    if name in ("nn.LayerNorm", "LayerNorm2d"):  # weight (and bias) of normalized_shape
        n = math.prod(_nd(args[0], 1))
        if not kw.get("elementwise_affine", True):
            return 0, 0
        return n * (2 if kw.get("bias", True) else 1), 0
    if name.startswith("nn.InstanceNorm"):  # PyTorch's defaults: neither affine nor tracked
        c = args[0]
        return (
            2 * c if kw.get("affine", False) else 0,
            2 * c + 1 if kw.get("track_running_stats", False) else 0,
        )
    return 0, 0


def _parameter(call: ast.Call) -> int:
    """``nn.Parameter(torch.full(shape, value))``: a block's own parameter (layer_scale)."""
    full = call.args[0]
    assert ast.unparse(full.func) == "torch.full"
    return math.prod(ast.literal_eval(full.args[0]))


def static_tree(source: str) -> dict[str, tuple[int, int]]:
    """Module path -> (parameters, buffers), read from the ``super().__init__({...})`` tree."""
    tree = ast.parse(source)
    net = next(
        n
        for n in tree.body
        if isinstance(n, ast.ClassDef)
        and n.name != "Block"
        and any(isinstance(b, ast.Name) and b.id == "Block" for b in n.bases)
    )
    init = next(f for f in net.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    call = init.body[0].value
    out: dict[str, tuple[int, int]] = {}

    def walk(d: ast.Dict, prefix: str) -> None:
        for key, value in zip(d.keys, d.values):
            path = f"{prefix}{ast.literal_eval(key)}"
            name = ast.unparse(value.func)
            if name == "Block":
                walk(value.args[0], path + ".")
                continue
            if name == "nn.Parameter":
                out[path] = (_parameter(value), 0)
                continue
            counts = _count(name, *_args(value))
            if any(counts):
                out[path] = counts

    walk(call.args[0], "")
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_every_example_compiles_and_its_module_tree_matches(path):
    spec = load(str(path))
    source = export_pytorch(spec, origin=path.name)
    compile(source, path.stem + ".py", "exec")
    a, want = expected(spec)
    assert static_tree(source) == want
    assert sum(p for p, _ in want.values()) == a.totals.params


def test_unnamed_chain_is_named_like_nn_sequential():
    source = export_pytorch(
        load("conv2d(1, 6, 5) relu maxpool2d(2) flatten linear(864, 10)"), (1, 28, 28)
    )
    assert static_tree(source) == {"0": (6 * 25 + 6, 0), "4": (6 * 12 * 12 * 10 + 10, 0)}
    assert "x = self[0](x)" in source


def test_merges_are_written_in_forward():
    text = """
input: [8, 16, 16]
layers:
  - {type: conv2d, out_channels: 8, kernel_size: 3, padding: 1, name: stem}
  - {name: body, residual: [{type: conv2d, out_channels: 8, kernel_size: 3, padding: 1, name: c}]}
  - {name: mix, split: [4, 4], concat: [[{type: conv2d, out_channels: 4, kernel_size: 1}], []]}
  - {name: gate, mul: [[], [{type: adaptive_avgpool2d, output_size: 1}, {type: sigmoid}]]}
"""
    from cnncalc.spec import parse_text

    source = export_pytorch(parse_text(text))
    assert " + " in source and "torch.cat([" in source and ".narrow(1, 0, 4)" in source
    assert " * " in source


def test_cli_writes_the_file(tmp_path, capsys):
    out = tmp_path / "m.py"
    assert (
        main(["export", str(EXAMPLES[IDS.index("resnet18")]), "--to", "pytorch", "-o", str(out)])
        == 0
    )
    assert "def build() -> nn.Module" in out.read_text()
    assert main(["export", "conv2d(3, 4, 3)", "-i", "3x8x8", "--to", "pytorch"]) == 0
    assert "nn.Conv2d(3, 4, 3)" in capsys.readouterr().out


def test_cli_bad_spec_is_one_line(capsys):
    assert main(["export", "conv2d(3, 4, 9)", "-i", "3x4x4", "--to", "pytorch"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "kernel 9x9" in err


# --------------------------------------------------------------------------- with torch


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_every_example_runs_in_torch(path, tmp_path):
    torch = pytest.importorskip("torch")
    import runpy

    spec = load(str(path))
    a, want = expected(spec)
    if math.prod(a.input_shape) * a.totals.params > 5e13:  # dense_vs_conv: a smaller image
        shape = (a.input_shape[0], 32, 32)
        a, want = expected(spec, shape)
    else:
        shape = None
    file = tmp_path / "model.py"
    file.write_text(export_pytorch(spec, shape))
    ns = runpy.run_path(str(file))
    # big models are built on the meta device: shapes without memory or time
    device = "cpu" if a.totals.params < 10_000_000 else "meta"
    with torch.device(device):
        model = ns["build"]().eval()
        x = torch.randn(2, *a.input_shape)
    got: dict[str, list[int]] = {}
    for key, p in model.named_parameters():  # a block's own parameter is its row (layer_scale)
        got.setdefault(key if key in want else key.rpartition(".")[0], [0, 0])[0] += p.numel()
    for key, b in model.named_buffers():
        got.setdefault(key.rpartition(".")[0], [0, 0])[1] += b.numel()
    assert {k: tuple(v) for k, v in got.items()} == want
    with torch.no_grad():
        y = model(x)
    ys = y if isinstance(y, tuple) else (y,)  # side outputs follow the main one
    assert [tuple(t.shape) for t in ys] == [(2, *a.totals.output_shape)] + [
        (2, *o.shape) for o in a.side_outputs
    ]


def test_python_model_py_prints_params_and_output(tmp_path):
    pytest.importorskip("torch")
    file = tmp_path / "lenet5.py"
    file.write_text(export_pytorch(load(str(EXAMPLES[IDS.index("lenet5")]))))
    run = subprocess.run([sys.executable, str(file)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == ["params 61,706", "output 10"]


# --------------------------------------------------------------------------- today's CNNs

# examples that use the norms, shape ops, stochastic depth and layer scale, with torchvision's
# builder of the same name
TORCHVISION = [
    "convnext_tiny",
    "efficientnet_b0",
    "efficientnet_b3",
    "efficientnet_v2_s",
    "mnasnet1_0",
    "mobilenet_v3_small",
    "shufflenet_v2_x1_0",
]


def _torchvision():
    import types

    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("stub"))
    return pytest.importorskip("torchvision")


def _exec(source: str) -> dict:
    ns: dict = {"__name__": "export"}
    exec(compile(source, "export.py", "exec"), ns)
    return ns


@pytest.mark.parametrize("name", TORCHVISION)
def test_state_dict_is_torchvisions(name):
    """Every key and shape of the exported model's state_dict is torchvision's (meta device:
    no memory, no time): LayerNorm2d, Permute and StochasticDepth helpers and the block's own
    layer_scale parameter keep torchvision's names (``features.1.0.layer_scale``)."""
    torch = pytest.importorskip("torch")
    tv = _torchvision()
    ns = _exec(export_pytorch(load(str(EXAMPLES[IDS.index(name)]))))
    with torch.device("meta"):
        ours = {k: tuple(v.shape) for k, v in ns["build"]().state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in getattr(tv.models, name)().state_dict().items()}
    assert ours == theirs


@pytest.mark.parametrize(
    ("name", "shape"), [("convnext_tiny", (3, 32, 32)), ("shufflenet_v2_x1_0", (3, 64, 64))]
)
def test_torchvisions_weights_give_torchvisions_output(name, shape):
    torch = pytest.importorskip("torch")
    tv = _torchvision()
    torch.manual_seed(0)
    theirs = getattr(tv.models, name)().eval()
    ours = _exec(export_pytorch(load(str(EXAMPLES[IDS.index(name)])), shape))["build"]().eval()
    ours.load_state_dict(theirs.state_dict())  # strict: the same keys
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


NEW_TYPES = """
input: [8, 8, 8]
layers:
  - {type: group_norm, num_groups: 4, name: gn}
  - {type: group_norm, num_groups: 2, affine: false}
  - {type: instance_norm2d, affine: true, name: inorm}
  - {type: instance_norm2d, track_running_stats: true, name: tracked}
  - {type: batchnorm2d, affine: false, name: bn}
  - {type: layer_norm, normalized_shape: [8, 8], bias: false, name: ln}
  - {type: layer_norm, normalized_shape: 8, elementwise_affine: false}
  - {type: layer_norm2d, eps: 1.0e-6, name: ln2d}
  - {type: pixel_unshuffle, downscale_factor: 2}
  - {type: channel_shuffle, groups: 4}
  - {type: pixel_shuffle, upscale_factor: 2}
  - {type: layer_scale, init_value: 0.5}
  - name: block
    layers:
      - {type: permute, dims: [0, 2, 3, 1]}
      - {type: layer_norm, normalized_shape: 8}
      - {type: gelu}                      # without it: LayerNorm2d's graph, read back as one
      - {type: permute, dims: [0, 3, 1, 2]}
      - {type: layer_scale, name: layer_scale}
      - {type: stochastic_depth, p: 0.5, mode: row}
  - {type: flatten, start_dim: 2}
  - {type: unflatten, dim: 2, unflattened_size: [4, 16]}
"""

NEW_TYPES_1D = """
input: [6, 10]
layers:
  - {type: instance_norm1d, affine: true}
  - {type: channel_shuffle, groups: 3}
  - {type: layer_scale}
"""

NEW_TYPES_3D = """
input: [4, 3, 4, 4]
layers:
  - {type: instance_norm3d, affine: true, track_running_stats: true}
  - {type: batchnorm3d}
  - {type: group_norm, num_groups: 2}
  - {type: channel_shuffle, groups: 2}
"""


def test_new_types_constructors():
    from cnncalc.spec import parse_text

    source = export_pytorch(parse_text(NEW_TYPES))
    for text in [
        "'gn': nn.GroupNorm(4, 8)",
        "nn.GroupNorm(2, 8, affine=False)",
        "'inorm': nn.InstanceNorm2d(8, affine=True)",
        "'tracked': nn.InstanceNorm2d(8, track_running_stats=True)",
        "'ln': nn.LayerNorm([8, 8], bias=False)",
        "nn.LayerNorm(8, elementwise_affine=False)",
        "'ln2d': LayerNorm2d(8, eps=1e-06)",
        "nn.PixelUnshuffle(2)",
        "nn.ChannelShuffle(4)",
        "nn.PixelShuffle(2)",
        "nn.Parameter(torch.full((8, 1, 1), 0.5))",
        "'layer_scale': nn.Parameter(torch.full((8, 1, 1), 1e-06))",
        "Permute([0, 2, 3, 1])",
        "StochasticDepth(0.5, 'row')",
        "nn.Unflatten(2, (4, 16))",
        "class LayerNorm2d(nn.LayerNorm)",
        "x = self.block.layer_scale * x",
        "x = self[11] * x",
    ]:
        assert text in source
    assert "import torchvision" not in source
    assert "nn.BatchNorm3d(4)" in export_pytorch(parse_text(NEW_TYPES_3D))


@pytest.mark.parametrize("text", [NEW_TYPES, NEW_TYPES_1D, NEW_TYPES_3D], ids=["2d", "1d", "3d"])
def test_new_types_run_in_torch(text):
    """Per module, PyTorch's parameter and buffer counts are cnncalc's rows; the output shape
    is cnncalc's, in eval and in training mode (stochastic depth active)."""
    torch = pytest.importorskip("torch")
    from cnncalc.spec import parse_text

    spec = parse_text(text)
    a, want = expected(spec)
    assert static_tree(export_pytorch(spec)) == want
    model = _exec(export_pytorch(spec))["build"]()
    got: dict[str, list[int]] = {}
    for key, p in model.named_parameters():
        got.setdefault(key if key in want else key.rpartition(".")[0], [0, 0])[0] += p.numel()
    for key, b in model.named_buffers():
        got.setdefault(key.rpartition(".")[0], [0, 0])[1] += b.numel()
    assert {k: tuple(v) for k, v in got.items()} == want
    x = torch.randn(3, *a.input_shape)
    for mode in (model.eval(), model.train()):
        assert tuple(mode(x).shape) == (3, *a.totals.output_shape)


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_stochastic_depth_helper_is_torchvisions_in_training(mode):
    torch = pytest.importorskip("torch")
    tv = _torchvision()
    ns = _exec(export_pytorch(load(f"stochastic_depth(0.4, '{mode}')"), (3, 5, 5)))
    ours, theirs = ns["StochasticDepth"](0.4, mode).train(), tv.ops.StochasticDepth(0.4, mode)
    x = torch.randn(16, 3, 5, 5)
    torch.manual_seed(1)
    want = theirs.train()(x)
    torch.manual_seed(1)
    assert torch.equal(ours(x), want)
    assert not torch.equal(want, x)  # the training path was taken (dropped or rescaled)
    assert torch.equal(ours.eval()(x), x)
