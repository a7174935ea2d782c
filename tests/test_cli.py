"""The ``cnncalc`` command: every command, every format, the options, stdin, inline specs,
warnings, ``--version``, and ``python -m cnncalc`` in a subprocess.

Most tests call ``cnncalc.cli.main(argv)`` in-process with ``capsys`` (fast); a few run the
real process to prove that path works too. Expected numbers are worked out by hand from
PyTorch's formulas (LeNet-5: 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706 parameters).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from cnncalc.cli import main

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[")
LENET_INLINE = (
    "conv2d(1, 6, 5, name='c1') relu maxpool2d(2) conv2d(6, 16, 5) relu maxpool2d(2) "
    "flatten linear(400, 120) relu linear(120, 84) relu linear(84, 10)"
)
LENET_YAML = """\
name: lenet
input: [1, 32, 32]
layers:
  - {type: conv2d, out_channels: 6, kernel_size: 5, name: c1}
  - {type: relu}
  - {type: maxpool2d, kernel_size: 2}
  - {type: conv2d, out_channels: 16, kernel_size: 5}
  - {type: relu}
  - {type: maxpool2d, kernel_size: 2}
  - {type: flatten}
  - {type: linear, out_features: 120}
  - {type: relu}
  - {type: linear, out_features: 84}
  - {type: relu}
  - {type: linear, out_features: 10}
"""
LENET_PARAMS = [156, 0, 0, 2416, 0, 0, 0, 48120, 0, 10164, 0, 850]
# MACs: output elements × C_in × kernel area (conv), in × out (linear)
LENET_MACS = [
    6 * 28 * 28 * 25,
    0,
    0,
    16 * 10 * 10 * 6 * 25,
    0,
    0,
    0,
    400 * 120,
    0,
    120 * 84,
    0,
    84 * 10,
]

LAYER_KEYS = {
    "index",
    "name",
    "type",
    "input_shape",
    "output_shape",
    "params",
    "trainable_params",
    "non_trainable_params",
    "fc_equivalent_params",
    "receptive_field",
    "macs",
    "flops",
    "activation_bytes",
}
TOTAL_KEYS = {
    "params",
    "trainable_params",
    "non_trainable_params",
    "fc_equivalent_params",
    "macs",
    "flops",
    "param_bytes",
    "activation_bytes",
    "output_shape",
}


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def ok_json(capsys, *args: str) -> dict:
    code, out, err = cli(capsys, *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def lenet_file(tmp_path) -> Path:
    path = tmp_path / "lenet.yaml"
    path.write_text(LENET_YAML)
    return path


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize("command", ["shapes", "params"])
def test_json_contract(capsys, lenet_file, command):
    code, out, err = cli(capsys, command, str(lenet_file), "--format", "json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["input_shape"] == [1, 32, 32]
    assert data["batch"] == 1
    assert len(data["layers"]) == 12
    for i, layer in enumerate(data["layers"]):
        assert LAYER_KEYS <= set(layer), LAYER_KEYS - set(layer)
        assert layer["index"] == i
        assert set(layer["receptive_field"]) >= {"size", "jump", "start"}
        for key in (
            "params",
            "trainable_params",
            "non_trainable_params",
            "macs",
            "flops",
            "activation_bytes",
        ):
            assert type(layer[key]) is int, key
        assert isinstance(layer["output_shape"], list)
    assert [layer["params"] for layer in data["layers"]] == LENET_PARAMS
    assert [layer["macs"] for layer in data["layers"]] == LENET_MACS
    assert data["layers"][0]["name"] == "c1"
    assert data["layers"][0]["output_shape"] == [6, 28, 28]
    assert data["layers"][6]["output_shape"] == [400]
    totals = data["totals"]
    assert TOTAL_KEYS <= set(totals)
    assert totals["params"] == 61_706
    assert totals["output_shape"] == [10]


def test_json_rows_sum_to_totals(capsys, lenet_file):
    data = ok_json(capsys, "shapes", str(lenet_file), "--batch", "3")
    layers, totals = data["layers"], data["totals"]
    for key in (
        "params",
        "trainable_params",
        "non_trainable_params",
        "macs",
        "flops",
        "activation_bytes",
    ):
        assert sum(layer[key] for layer in layers) == totals[key], key
    assert totals["fc_equivalent_params"] == sum(
        layer["fc_equivalent_params"] or 0 for layer in layers
    )
    assert totals["flops"] == 2 * totals["macs"]
    assert totals["output_shape"] == layers[-1]["output_shape"]
    for a, b in zip(layers, layers[1:]):
        assert b["input_shape"] == a["output_shape"]


def test_json_integers_exact_for_huge_numbers(capsys):
    data = ok_json(capsys, "params", "flatten linear(10**6, 10**6)", "--input", "1x1000x1000")
    assert data["totals"]["params"] == 10**12 + 10**6
    assert '"params": 1000001000000' in json.dumps(data)


def test_json_batchnorm_non_trainable(capsys):
    data = ok_json(capsys, "params", "conv2d(3, 8, 3) batchnorm2d(8)", "--input", "3x8x8")
    bn = data["layers"][1]
    assert bn["params"] == bn["trainable_params"] == 16
    assert bn["non_trainable_params"] == 17  # running mean, var (8 each) + batch counter
    assert data["totals"]["trainable_params"] == 8 * 3 * 9 + 8 + 16


# --------------------------------------------------------------------------- table


@pytest.mark.parametrize(
    "command,headers",
    [
        ("shapes", ["#", "name", "type", "output", "params", "RF", "MACs"]),
        ("params", ["trainable", "fixed", "dense-eq.", "memory"]),
        (
            "params --wide",
            ["weights", "bias", "trainable", "non-trainable", "dense-equiv.", "sharing"],
        ),
        ("shapes --wide", ["RF", "jump", "start"]),
    ],
)
def test_table_piped_is_plain(capsys, lenet_file, command, headers):
    name, *options = command.split()
    code, out, err = cli(capsys, name, str(lenet_file), *options)
    assert code == 0 and err == ""
    assert not ANSI.search(out)
    for header in headers:
        assert header in out
    assert "total" in out
    assert "61,706" in out  # the total, with thousands separators
    assert "c1" in out


def test_table_prints_names_as_written(capsys):
    # Rich's emoji codes are off: a name such as a:fire:b is not turned into a picture
    code, out, _ = cli(capsys, "shapes", "-i", "1x8x8", "conv2d(1, 2, 3, name='a:fire:b')")
    assert code == 0 and "a:fire:b" in out


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("name", ["c1", "畳み込み層", "[bold]x[/]", "a\tb"])
def test_width_bound_is_never_below_richs_measure(name, wide):
    # a table whose bound fits the console is printed unmeasured: the bound must hold
    from rich.console import Console
    from rich.measure import Measurement

    from cnncalc import analyze, parse_text
    from cnncalc.cli import _width_bound
    from cnncalc.report import View, to_table

    spec = parse_text(f"conv2d(1, 6, 5, name={name!r}) relu flatten")
    table = to_table(analyze(spec, (1, 32, 32)), View.shapes, wide=wide)
    console = Console(width=400)
    measured = Measurement.get(console, console.options.update(max_width=10_000), table)
    assert _width_bound(table) >= measured.maximum


def test_table_no_color_env(capsys, lenet_file, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    code, out, _ = cli(capsys, "shapes", str(lenet_file))
    assert code == 0 and not ANSI.search(out)


# --------------------------------------------------------------------------- CSV, Markdown


@pytest.mark.parametrize("command,column", [("shapes", "params"), ("params", "trainable")])
def test_csv(capsys, lenet_file, command, column):
    code, out, err = cli(capsys, command, str(lenet_file), "--format", "csv")
    assert code == 0 and err == ""
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 12
    assert [int(r[column]) for r in rows] == LENET_PARAMS
    assert [r["type"] for r in rows][:3] == ["conv2d", "relu", "maxpool2d"]
    if command == "shapes":
        assert rows[0]["output"].replace("×", "x") == "6x28x28"
        assert [int(r["MACs"]) for r in rows] == LENET_MACS


@pytest.mark.parametrize("command", ["shapes", "params"])
def test_markdown(capsys, lenet_file, command):
    code, out, err = cli(capsys, command, str(lenet_file), "--format", "markdown")
    assert code == 0 and err == ""
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 12 + 1  # header, separator, rows, total
    assert re.fullmatch(r"\|(\s*:?-{3,}:?\s*\|)+", table[1])
    widths = {line.count("|") - line.count("\\|") for line in table}
    assert len(widths) == 1  # every row has the same number of cells
    assert "61,706" in out
    assert not ANSI.search(out)


# --------------------------------------------------------------------------- options


def test_input_overrides_spec(capsys, tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(
        "input: 3x100x100\nlayers:\n  - {type: conv2d, out_channels: 4, "
        "kernel_size: 3, padding: 2}\n"
    )
    assert ok_json(capsys, "shapes", str(path))["layers"][0]["output_shape"] == [4, 102, 102]
    data = ok_json(capsys, "shapes", str(path), "--input", "3x256x256")
    assert data["input_shape"] == [3, 256, 256]
    assert data["layers"][0]["output_shape"] == [4, 258, 258]
    data = ok_json(capsys, "shapes", str(path), "-i", "3,50,60")
    assert data["layers"][0]["output_shape"] == [4, 52, 62]


def test_batch_scales_macs_and_activations_not_params(capsys, lenet_file):
    one = ok_json(capsys, "shapes", str(lenet_file))
    five = ok_json(capsys, "shapes", str(lenet_file), "--batch", "5")
    assert five["batch"] == 5
    for key in ("macs", "flops", "activation_bytes"):
        assert five["totals"][key] == 5 * one["totals"][key], key
    for key in ("params", "trainable_params", "param_bytes", "fc_equivalent_params"):
        assert five["totals"][key] == one["totals"][key], key
    # activation bytes: every layer's output, float32, whole batch
    expected = sum(4 * 5 * _volume(layer["output_shape"]) for layer in five["layers"])
    assert five["totals"]["activation_bytes"] == expected


def _volume(shape: list[int]) -> int:
    v = 1
    for d in shape:
        v *= d
    return v


@pytest.mark.parametrize(
    "dtype,size", [("float64", 8), ("float32", 4), ("float16", 2), ("bfloat16", 2), ("int8", 1)]
)
def test_dtype_scales_bytes(capsys, lenet_file, dtype, size):
    data = ok_json(capsys, "params", str(lenet_file), "--dtype", dtype)
    assert data["totals"]["param_bytes"] == 61_706 * size
    assert data["totals"]["activation_bytes"] == size * sum(
        _volume(layer["output_shape"]) for layer in data["layers"]
    )
    assert data["totals"]["params"] == 61_706


def test_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(LENET_YAML))
    data = ok_json(capsys, "shapes", "-")
    assert data["totals"]["params"] == 61_706


def test_stdin_json_document(capsys, monkeypatch):
    doc = {
        "input": [3, 32, 32],
        "layers": [{"type": "Conv2d", "out_channels": 10, "kernel_size": 3}],
    }
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(doc)))
    assert ok_json(capsys, "params", "-")["totals"]["params"] == 280


def test_inline_whole_lenet(capsys):
    data = ok_json(capsys, "shapes", "--input", "1x32x32", LENET_INLINE)
    assert [layer["params"] for layer in data["layers"]] == LENET_PARAMS
    assert data["totals"]["params"] == 61_706
    assert data["totals"]["output_shape"] == [10]


def test_inline_aliases_and_spellings(capsys):
    a = ok_json(capsys, "shapes", "-i", "3x32x32", "conv2d(3, 8, k=3, s=2, p=1, d=1, g=1)")
    b = ok_json(capsys, "shapes", "-i", "3x32x32", "nn.Conv2d(3, 8, 3, stride=2, padding=1)")
    assert a["layers"][0]["output_shape"] == b["layers"][0]["output_shape"] == [8, 16, 16]
    for spelling in ("maxpool2d(2)", "MaxPool2d(2)", "max_pool2d(2)"):
        data = ok_json(capsys, "shapes", "-i", "3x32x32", spelling)
        assert data["layers"][0]["output_shape"] == [3, 16, 16]
        assert data["layers"][0]["type"] == "maxpool2d"


def test_yaml_and_json_files_agree(capsys, tmp_path):
    doc = {
        "input": [1, 32, 32],
        "layers": [
            {"type": "conv2d", "out_channels": 6, "kernel_size": 5},
            {"type": "maxpool2d", "kernel_size": 2},
            {"type": "flatten"},
            {"type": "linear", "out_features": 10},
        ],
    }
    (tmp_path / "n.json").write_text(json.dumps(doc))
    (tmp_path / "n.yaml").write_text(
        "input: [1, 32, 32]\nlayers:\n  - {type: conv2d, out_channels: 6, kernel_size: 5}\n"
        "  - {type: maxpool2d, kernel_size: 2}\n  - {type: flatten}\n"
        "  - {type: linear, out_features: 10}\n"
    )
    a = ok_json(capsys, "shapes", str(tmp_path / "n.json"))
    b = ok_json(capsys, "shapes", str(tmp_path / "n.yaml"))
    assert a["layers"] == b["layers"]
    assert a["totals"]["params"] == 156 + 6 * 14 * 14 * 10 + 10


# --------------------------------------------------------------------------- warnings


@pytest.mark.parametrize(
    "spec,shape,word",
    [
        ("conv2d(1, 1, 2, stride=2, name='c')", "1x5x5", "floor"),  # row/column 4 never read
        ("maxpool1d(2, stride=2, padding=1, ceil_mode=True)", "1x5", "ceil"),  # start 6 dropped
        ("linear(5, 3, name='fc')", "5x5", "flat"),
    ],
)
def test_warnings_on_stderr(capsys, spec, shape, word):
    code, out, err = cli(capsys, "shapes", spec, "--input", shape, "--format", "json")
    assert code == 0
    json.loads(out)  # stdout is still clean JSON
    lines = err.splitlines()
    assert lines and all(line.startswith("cnncalc: warning:") for line in lines)
    assert any(word in line for line in lines)
    assert "layer 0" in err


def test_no_warning_when_nothing_is_lost(capsys):
    code, _, err = cli(
        capsys, "shapes", "conv2d(1, 1, 3, stride=2) maxpool2d(3, 1, 1)", "--input", "1x7x7"
    )
    assert code == 0 and err == ""


def test_warnings_also_in_table_mode(capsys):
    code, out, err = cli(capsys, "params", "linear(5, 3)", "--input", "5x5")
    assert code == 0 and "cnncalc: warning:" in err and "warning" not in out


# --------------------------------------------------------------------------- other commands


def test_version(capsys):
    code, out, err = cli(capsys, "--version")
    assert code == 0 and err == ""
    assert out.strip() == f"cnncalc {version('cnncalc')}"


def test_types(capsys):
    code, out, err = cli(capsys, "types")
    assert code == 0 and err == ""
    names = {line.split("(")[0] for line in out.splitlines()}
    for kind in (
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "maxpool1d",
        "maxpool2d",
        "avgpool1d",
        "avgpool2d",
        "adaptive_avgpool1d",
        "adaptive_avgpool2d",
        "adaptive_maxpool2d",
        "zeropad2d",
        "flatten",
        "linear",
        "batchnorm1d",
        "batchnorm2d",
        "dropout",
        "relu",
        "leaky_relu",
        "sigmoid",
        "tanh",
        "gelu",
        "softmax",
        "upsample",
    ):
        assert kind in names, kind
    # PyTorch's constructor order and defaults, the input size first
    assert (
        "conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, "
        "groups=1, bias=True, padding_mode='zeros')" in out
    )
    assert "linear(in_features, out_features, bias=True)" in out
    assert (
        "batchnorm2d(num_features, eps=1e-05, momentum=0.1, affine=True, "
        "track_running_stats=True)" in out
    )


@pytest.mark.parametrize("command", ["shapes", "params", "types"])
def test_help(capsys, command):
    code, out, _ = cli(capsys, command, "--help")
    assert code == 0
    if command != "types":
        for option in ("--input", "--batch", "--dtype", "--format"):
            assert option in out


# --------------------------------------------------------------------------- real processes


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnncalc", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_shapes_starts_with_only_what_it_uses():
    # issue 12 (start-up): `shapes` builds the models of the types its spec uses, and loads
    # neither numba nor the modules of options it was not given; no timing here
    unwanted = [
        "numba",
        "numpy",
        "cnncalc.checks",
        "cnncalc.progress",
        "cnncalc.templates",
        "cnncalc.inline",
        "cnncalc.explain",
        "cnncalc.memory",
        "cnncalc.schema",
    ]
    code = (
        "import json, sys; from cnncalc import layers; from cnncalc.cli import main; "
        "rc = main(['shapes', 'examples/lenet5.yaml', '-f', 'json']); "
        f"loaded = [m for m in {unwanted!r} if m in sys.modules]; "
        "print(json.dumps([sorted(layers._BUILT), loaded]), file=sys.stderr); sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    built, loaded = json.loads(done.stderr.splitlines()[-1])
    assert built == ["conv2d", "flatten", "linear", "maxpool2d", "relu"]
    assert loaded == []


def test_python_m_cnncalc_table_and_json():
    proc = _run("shapes", "--input", "3x100x100", "Conv2d(3, 4, kernel_size=3, padding=2)")
    assert proc.returncode == 0, proc.stderr
    assert "4×102×102" in proc.stdout or "4x102x102" in proc.stdout
    assert not ANSI.search(proc.stdout)
    proc = _run("params", "-", "--format", "json", stdin=LENET_YAML)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["params"] == 61_706


def test_python_m_cnncalc_error():
    proc = _run("shapes", "--input", "3x4x4", "conv2d(3, 4, 5, name='big')")
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnncalc: error:")
    assert "layer 0" in lines[0] and "big" in lines[0]
    assert "Traceback" not in proc.stderr


def test_python_m_cnncalc_usage_error():
    proc = _run("shapes", "--input", "3xx4", "conv2d(3, 4, 3)")
    assert proc.returncode == 2
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1


def test_shipped_example_runs():
    path = ROOT / "examples" / "lenet5.yaml"
    if not path.exists():
        pytest.skip("examples/lenet5.yaml not shipped")
    proc = _run("shapes", str(path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["params"] == 61_706


def test_every_command_has_help_and_is_in_the_readme(capsys):
    """As sqlite-utils does: a command without help text, or missing from the README's
    command table, fails here."""
    from pathlib import Path

    from cnncalc.cli import app

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme[readme.index("## Commands") : readme.index("Options of `shapes`")]
    commands = {c.name or c.callback.__name__: c.callback for c in app.registered_commands}
    assert len(commands) >= 14
    for name, callback in commands.items():
        assert f"`cnncalc {name}" in table, f"cnncalc {name} is not in the README's table"
        doc = " ".join((callback.__doc__ or "").split())
        assert len(doc) > 20, f"cnncalc {name} has no help text"
        code, out, _ = cli(capsys, name, "--help")
        words = " ".join(out.replace("│", " ").split())
        assert code == 0 and f"Usage: cnncalc {name}" in words, name
        assert " ".join(doc.split()[:4]) in words, name  # the docstring is the help
