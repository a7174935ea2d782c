"""Inline specs: PyTorch text means what it means in PyTorch (issue #10, part 1).

Expected numbers follow from PyTorch's formulas by hand (or, where torch is installed, from
torch itself); none is read back from cnncalc.
"""

from __future__ import annotations

import io
import json
import sys
from collections import OrderedDict

import pytest

from cnncalc.analysis import analyze
from cnncalc.cli import main
from cnncalc.errors import SpecError
from cnncalc.layers import BY_KEY, LAYER_TYPES, canonical_type, type_key
from cnncalc.spec import load, parse_text

LENET_SEQ = """model = nn.Sequential(   # the LeNet-like net of the issue
    nn.Conv2d(1, 6, 5),
    nn.ReLU(inplace=True),
    nn.MaxPool2d(2),          # 24 -> 12
    nn.Flatten(),
    nn.Linear(864, 10),
)
"""


def rows(text: str, shape: tuple[int, ...]):
    return analyze(load(text), shape)


def error(text: str, shape: tuple[int, ...] | None = (3, 32, 32)) -> str:
    with pytest.raises(SpecError) as info:
        analyze(load(text), shape)
    return str(info.value)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- the issue


def test_conv2d_takes_in_channels_first():
    (row,) = rows("Conv2d(3, 8, 3)", (3, 32, 32)).rows
    assert row.output_shape == (8, 30, 30)
    assert row.params == 8 * 3 * 3 * 3 + 8 == 224


def test_the_article_line_as_written():
    (row,) = rows("Conv2d(3, 4, kernel_size=3, padding=2)", (3, 100, 100)).rows
    assert row.output_shape == (4, 102, 102)
    assert row.params == 4 * 3 * 9 + 4 == 112


def test_linear_with_in_features():
    (row,) = rows("Linear(400, 120)", (400,)).rows
    assert row.output_shape == (120,)
    assert row.params == 400 * 120 + 120 == 48_120


def test_pasted_sequential_over_several_lines(capsys):
    a = rows(LENET_SEQ, (1, 28, 28))
    assert a.totals.output_shape == (10,)
    assert a.totals.params == 6 * 25 + 6 + 864 * 10 + 10 == 8_806
    # named as PyTorch's named_modules() names them
    assert [r.name for r in a.rows] == ["0", "1", "2", "3", "4"]
    code, out, err = cli(capsys, "shapes", "-i", "1x28x28", LENET_SEQ, "-f", "json")
    assert code == 0, err
    assert json.loads(out)["totals"]["params"] == 8_806


def test_pasted_sequential_on_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(LENET_SEQ))
    code, out, err = cli(capsys, "params", "-", "-i", "1x28x28", "-f", "json")
    assert code == 0, err
    assert json.loads(out)["totals"]["params"] == 8_806


def test_arithmetic_on_literals():
    a = rows("nn.Flatten() nn.Linear(16 * 5 * 5, 120)", (16, 5, 5))
    assert a.rows[1].params == 400 * 120 + 120
    a = rows("nn.Linear(2 ** 3 * (10 - 5) // 2 + -1 * 0, 3)", (20,))
    assert a.rows[0].params == 20 * 3 + 3
    # '/' in the text is not a file path
    assert rows("nn.Linear(800 // 2, 10)", (400,)).rows[0].params == 4_010


def test_prefixes_and_spellings():
    for text in (
        "torch.nn.MaxPool2d(2)",
        "nn.MaxPool2d(2)",
        "MaxPool2d(2)",
        "maxpool2d(2)",
        "max_pool2d(2)",
    ):
        (row,) = rows(text, (3, 8, 8)).rows
        assert row.output_shape == (3, 4, 4), text


def test_keyword_only_forms_leave_the_input_size_out():
    a = rows("conv2d(out_channels=8, kernel_size=3) flatten linear(out_features=10)", (3, 5, 5))
    assert [r.params for r in a.rows] == [8 * 27 + 8, 0, 72 * 10 + 10]
    # k s p d g stay
    (row,) = rows("conv2d(3, 8, k=3, s=2, p=1)", (3, 32, 32)).rows
    assert row.output_shape == (8, 16, 16)


def test_batchnorm_and_prelu_follow_pytorch():
    a = rows("conv2d(3, 8, 3) batchnorm2d(8, 1e-3, 0.01, False) prelu(8, 0.1)", (3, 8, 8))
    bn, prelu = a.rows[1], a.rows[2]
    assert bn.layer.eps == 1e-3 and bn.layer.momentum == 0.01 and bn.layer.affine is False
    assert bn.params == 0 and bn.buffers == 2 * 8 + 1
    assert prelu.params == 8


# --------------------------------------------------------------------------- mismatches


def test_in_channels_mismatch_names_both_values():
    msg = error("Conv2d(3, 8, 3)", (1, 32, 32))
    assert "in_channels=3" in msg and "1 channel" in msg
    assert "Conv2d(in_channels, out_channels, kernel_size, …)" in msg


def test_in_features_and_num_features_mismatch():
    msg = error("Linear(400, 120)", (300,))
    assert "in_features=400" in msg and "300 features" in msg
    msg = error("conv2d(3, 8, 3) batchnorm2d(16)", (3, 8, 8))
    assert "layer 1" in msg and "num_features=16" in msg and "8 channels" in msg


def test_old_form_gets_a_helpful_error():
    """`conv2d(6, 5)` used to mean out_channels=6, kernel_size=5; now it lacks kernel_size."""
    msg = error("conv2d(6, 5)", (1, 32, 32))
    assert "kernel_size: required field is missing" in msg
    assert "in_channels=6, out_channels=5" in msg
    assert "conv2d(out_channels=6, kernel_size=5)" in msg
    msg = error("flatten linear(10)", (3, 4, 4))
    assert "out_features" in msg and "linear(out_features=10)" in msg
    # the seed exercise in the old spelling
    msg = error("conv2d(4, kernel_size=3, padding=2)", (3, 100, 100))
    assert "conv2d(out_channels=4, kernel_size=3, padding=2)" in msg
    # the old form that happens to be complete is caught by the input check
    msg = error("conv2d(6, 5, 1)", (1, 32, 32))
    assert "in_channels=6" in msg and "1 channel" in msg


def test_old_form_cli_is_one_line(capsys):
    code, out, err = cli(capsys, "shapes", "-i", "1x32x32", "conv2d(6, 5)")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "positional arguments follow PyTorch" in err


# --------------------------------------------------------------------------- refused text


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("nn.Linear(n, 10)", ["'n' is a variable"]),
        ("nn.Conv2d(3, 8, int(3))", ["'int(3)' is a call"]),
        ("nn.Linear(__import__('os').getpid(), 10)", ["is a call"]),
        ("nn.Conv2d(3, 8, self.k)", ["'self.k' is an attribute"]),
        ("nn.Linear(400, [x for x in y])", ["not a literal"]),
        ("nn.Linear(400, 'a' * 3)", ["arithmetic is on numbers only"]),
        ("nn.Linear(400, 2 ** 100)", ["exponents above 64"]),
        ("nn.Linear(400, 10 ** 19)", ["beyond ±10**18"]),
        ("nn.Linear(400, 1 // 0)", ["divides by zero"]),
        ("nn.Linear(*sizes)", ["*args"]),
        ("nn.Linear(**kw)", ["**kwargs"]),
        ("F.relu(x)", ["'F.relu' is not a torch.nn layer"]),
        ("nn.Sequential(nn.ReLU(), bad=1)", ["nn.Sequential takes layers"]),
        ("OrderedDict(a=nn.ReLU())", ["inside nn.Sequential"]),
        ("nn.Sequential(OrderedDict([('a.b', nn.ReLU())]))", ["no '.'"]),
        ("nn.Sequential(OrderedDict([('a', nn.ReLU()), ('a', nn.Tanh())]))", ["twice"]),
        ("nn.Conv2d(3, 8, 3, kernel_size=3)", ["given both positionally and by name"]),
        ("nn.Conv2d(3, 8, 3, 1, 0, 1, 1, True, 'zeros', 'cpu')", ["10 positional", "Conv2d("]),
    ],
)
def test_refused_with_one_clear_line(text, needles):
    msg = error(text, (400,))
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg


def test_nothing_is_evaluated(monkeypatch):
    called = []
    monkeypatch.setattr("builtins.eval", lambda *a, **k: called.append(a))
    monkeypatch.setattr("builtins.exec", lambda *a, **k: called.append(a))
    error("nn.Linear(print('hi'), 10)", (400,))
    assert rows(LENET_SEQ, (1, 28, 28)).totals.params == 8_806
    assert called == []


# --------------------------------------------------------------------------- pasted code


def test_ordered_dict_names_rows():
    text = """nn.Sequential(OrderedDict([
        ('conv1', nn.Conv2d(3, 4, 3)),
        ('act', nn.ReLU()),
        ('head', nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 2))),
    ]))"""
    a = rows(text, (3, 8, 8))
    assert [r.name for r in a.rows] == ["conv1", "act", "head.0", "head.1"]
    b = rows(
        "torch.nn.Sequential(collections.OrderedDict(conv1=torch.nn.Conv2d(3, 4, 3), "
        "pool=torch.nn.MaxPool2d(2)))",
        (3, 8, 8),
    )
    assert [r.name for r in b.rows] == ["conv1", "pool"]
    assert b.totals.output_shape == (4, 3, 3)


def test_nested_sequential_is_a_block():
    text = "nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), nn.Flatten())"
    a = rows(text, (3, 8, 8))
    assert [r.name for r in a.rows] == ["0.0", "0.1", "1"]
    assert a.totals.output_shape == (144,)


def test_comments_trailing_commas_and_tabs():
    text = "# a comment first\n\tnn.Conv2d(3, 8, 3,),  # trailing comma\n\tnn.ReLU(),\n"
    a = rows(text, (3, 10, 10))
    assert [r.output_shape for r in a.rows] == [(8, 8, 8), (8, 8, 8)]
    # a '#' inside a string is not a comment
    assert rows("nn.Conv2d(3, 8, 3, name='c#1')", (3, 5, 5)).rows[0].name == "c#1"


def test_documents_are_still_yaml():
    doc = (
        "# a spec\ninput: [3, 8, 8]\nlayers:\n  - {type: conv2d, out_channels: 4, kernel_size: 3}\n"
    )
    assert analyze(parse_text(doc)).totals.params == 4 * 27 + 4
    assert analyze(parse_text("---\n" + doc)).totals.params == 4 * 27 + 4
    assert analyze(parse_text("- {type: relu}\n"), (3, 4, 4)).rows[0].type == "relu"
    assert analyze(parse_text('{"layers": [{"type": "relu"}]}'), (3, 4, 4)).rows[0].type == "relu"


def test_one_line_syntax_still_works():
    a = rows("conv2d(3, 4, 3) -> relu | maxpool2d(2); flatten, linear(16, 2)", (3, 6, 6))
    assert [r.type for r in a.rows] == ["conv2d", "relu", "maxpool2d", "flatten", "linear"]
    assert a.rows[-1].params == 16 * 2 + 2


# --------------------------------------------------------------------------- PyTorch itself


def _torch_class(cls):
    torch = pytest.importorskip("torch")
    want = type_key(canonical_type(cls))
    for name in dir(torch.nn):
        if type_key(name) == want and isinstance(getattr(torch.nn, name), type):
            return getattr(torch.nn, name)
    return None


# LeNet-5 (1998) layers; narrow is the function torch.narrow(x, dim, start, length)
CNNCALC_ONLY = {
    "subsample2d",
    "rbf",
    "narrow",
    # torchvision's, not torch.nn's: tests/test_layers_modern.py checks them
    "layer_norm2d",
    "stochastic_depth",
    "permute",
    # ConvNeXt's bare nn.Parameter, a cnncalc type of its own
    "layer_scale",
}
# cnncalc takes a prefix of PyTorch's arguments: those after it are not supported
# (Upsample's align_corners/recompute_scale_factor; Hardtanh's deprecated min_value/max_value)
PREFIX_ONLY = {"upsample", "hardtanh"}


@pytest.mark.parametrize("cls", LAYER_TYPES, ids=canonical_type)
def test_positional_order_is_pytorch_constructor(cls):
    import inspect

    kind = canonical_type(cls)
    torch_cls = _torch_class(cls)
    if kind in CNNCALC_ONLY:
        assert torch_cls is None
        return
    assert torch_cls is not None, f"no torch.nn class for {kind}: add it to CNNCALC_ONLY?"
    params = [
        p.name
        for p in inspect.signature(torch_cls.__init__).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.name not in ("self", "device", "dtype")
    ]
    if kind in PREFIX_ONLY:
        assert params[: len(cls.positional)] == list(cls.positional)
    else:
        assert list(cls.positional) == params


def test_aliases_share_their_types_order():
    for key, kind in BY_KEY.items():
        assert BY_KEY[type_key(kind)] == kind, key


CROSSCHECK = [
    ("nn.Conv2d(3, 8, 3)", (3, 32, 32)),
    ("nn.Conv2d(3, 4, kernel_size=3, padding=2)", (3, 100, 100)),
    ("nn.Linear(400, 120)", (400,)),
    ("torch.nn.Linear(16 * 5 * 5, 120, False)", (400,)),
    (LENET_SEQ, (1, 28, 28)),
    (
        "nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), "
        "nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))",
        (3, 64, 64),
    ),
    ("nn.ConvTranspose2d(8, 4, 3, 2, 1, 1)", (8, 7, 7)),
    ("nn.Conv1d(2, 6, 5, 2, 2, 1, 2)", (2, 50)),
    (
        "nn.Sequential(OrderedDict([('conv1', nn.Conv2d(1, 6, 5)), ('relu1', nn.ReLU()), "
        "('pool', nn.AvgPool2d(2, 2, 0, True)), ('flat', nn.Flatten()), "
        "('fc', nn.Linear(6 * 12 * 12, 10))]))",
        (1, 28, 28),
    ),
    (
        "nn.Sequential(nn.Sequential(nn.Conv2d(3, 8, 3, padding='same'), nn.PReLU(8)), "
        "nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(8, 2))",
        (3, 16, 16),
    ),
    ("nn.BatchNorm1d(20, 1e-3, 0.01, False, False)", (20,)),
    ("nn.Conv3d(2, 4, (1, 3, 3), stride=(1, 2, 2))", (2, 4, 9, 9)),
    ("nn.MaxPool2d(3, 2, 1, 1, False, True)", (3, 10, 10)),
    (
        "nn.Sequential(nn.ZeroPad2d((1, 2, 0, 3)), nn.Upsample(scale_factor=2), "
        "nn.Dropout(0.2), nn.LeakyReLU(0.1, True))",
        (2, 5, 5),
    ),
]


@pytest.mark.parametrize(("text", "shape"), CROSSCHECK)
def test_same_numbers_as_pytorch(text, shape):
    torch = pytest.importorskip("torch")
    # trusted text, evaluated here in the test only: cnncalc itself never evaluates it
    body = text.split("=", 1)[1] if text.startswith("model =") else text
    model = eval(body, {"nn": torch.nn, "torch": torch, "OrderedDict": OrderedDict})
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, *shape))  # 2: batch-norm without running stats
    a = rows(text, shape)
    assert a.totals.output_shape == tuple(out.shape[1:])
    assert a.totals.params == sum(p.numel() for p in model.parameters())
    assert a.totals.buffers == sum(b.numel() for b in model.buffers())
    if isinstance(model, torch.nn.Sequential):
        leaves = [n for n, m in model.named_modules() if not list(m.children())]
        assert [r.name for r in a.rows] == leaves
