"""--set PATH=VALUE: overrides of raw spec values and template defaults, and sweeps."""

from __future__ import annotations

import json

import pytest

from cnncalc.cli import main
from cnncalc.errors import SpecError, UsageError
from cnncalc.overrides import apply, assignments, parse

DATA = {
    "input": [3, 32, 32],
    "blocks": {
        "unit": {
            "args": {"width": 16},
            "layers": [{"type": "conv2d", "out_channels": "$width", "kernel_size": 3}],
        }
    },
    "layers": [
        {"use": "unit"},
        {"type": "flatten"},
        {"type": "linear", "out_features": 10, "name": "fc"},
    ],
}


def test_paths_by_index_by_name_and_template_defaults():
    out = apply(DATA, (("layers.fc.out_features", 5), ("width", 32), ("input", [3, 8, 8])))
    assert out["layers"][2]["out_features"] == 5
    assert out["blocks"]["unit"]["args"]["width"] == 32
    assert out["input"] == [3, 8, 8]
    assert apply(DATA, (("2.out_features", 7),))["layers"][2]["out_features"] == 7
    assert DATA["layers"][2]["out_features"] == 10  # the original is untouched


def test_values_are_yaml_and_lists_sweep():
    assert parse("k=[3, 3]").values == ([3, 3],)
    assert parse("padding=same").values == ("same",)
    assert parse("width=32,64").values == (32, 64)
    assert parse("width=16..64:16").values == (16, 32, 48, 64)
    combos = assignments([parse("a=1,2"), parse("b=x")])
    assert combos == [(("a", 1), ("b", "x")), (("a", 2), ("b", "x"))]


@pytest.mark.parametrize(
    "path, text",
    [
        ("nope", "no top-level key or template argument"),
        ("layers.9.k", "index 9 is out of range"),
        ("layers.head.k", "no item of this list named 'head'"),
        ("layers.fc.out_features.x", "is a value"),
    ],
)
def test_bad_paths_name_the_problem(path, text):
    with pytest.raises(SpecError, match=text):
        apply(DATA, ((path, 1),))


def test_malformed_set_is_a_usage_error():
    with pytest.raises(UsageError, match="PATH=VALUE"):
        parse("width")


def test_cli_set_changes_the_analysis_and_sweeps(capsys):
    code = main(
        ["params", "examples/lenet5.yaml", "--set", "layers.output.out_features=5", "-f", "json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    # lenet5's last layer: 84 -> 5 instead of 84 -> 10
    assert json.loads(out)["totals"]["params"] == 61_706 - 5 * 85
    code = main(
        ["params", "examples/lenet5.yaml", "--set", "layers.c1.out_channels=6,12", "-f", "csv"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("set,input,batch")
    # c1 6 -> 12 maps: c1 gains 6·26 parameters, c3 gains 6·16·25
    assert [int(line.split(",")[4]) for line in lines[1:]] == [
        61_706,
        61_706 + 6 * 26 + 6 * 16 * 25,
    ]


def test_cli_set_errors_are_one_line(capsys):
    for args, code, text in [
        (["--set", "bogus=1"], 1, "bogus"),
        (["--set", "layers"], 2, "PATH=VALUE"),
    ]:
        assert main(["shapes", "examples/lenet5.yaml", *args]) == code
        out, err = capsys.readouterr()
        assert out == "" and len(err.splitlines()) == 1 and text in err
    assert main(["run", "examples/lenet5.yaml", "--set", "layers.c1.out_channels=6,12"]) == 2
    assert "sweeps only" in capsys.readouterr().err
