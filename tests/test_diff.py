"""cnncalc diff: totals, blocks at a depth, the rows that differ; exit 0 only when equal."""

from __future__ import annotations

import json

from cnncalc.analysis import analyze
from cnncalc.cli import main
from cnncalc.diff import diff
from cnncalc.spec import load


def test_vgg16_vs_vgg16_bn_adds_thirteen_batchnorms():
    a = analyze(load("examples/vgg16.yaml"))
    b = analyze(load("examples/vgg16_bn.yaml"))
    d = diff(a, b, depth=1)
    assert not d.equal
    # 13 BatchNorm2d layers added (2 × channels parameters each), nothing else changes
    assert [p.changes for p in d.rows] == [("added",)] * 13
    assert sum(p.b.params for p in d.rows) == 138_365_992 - 138_357_544
    assert [p.name for p in d.blocks] == ["features", "avgpool", "flatten", "classifier"]
    assert [p.changes for p in d.blocks] == [("params",), (), (), ()]


def test_one_changed_layer_is_one_row():
    a = analyze(load("examples/resnet18.yaml"))
    b = analyze(load("examples/resnet18.yaml"), (3, 224, 224))
    assert diff(a, b).equal
    c = analyze(
        load("conv2d(out_channels=8, kernel_size=3) relu conv2d(out_channels=4, kernel_size=3)"),
        (3, 16, 16),
    )
    e = analyze(
        load("conv2d(out_channels=8, kernel_size=3) relu conv2d(out_channels=4, kernel_size=5)"),
        (3, 16, 16),
    )
    d = diff(c, e)
    assert [(p.name, p.changes) for p in d.rows] == [("conv2d", ("shape", "params", "macs"))]
    # conv 8->4, 3x3 vs 5x5: (8·9 + 1)·4 = 292 and (8·25 + 1)·4 = 804 parameters
    assert (d.rows[0].a.params, d.rows[0].b.params) == (292, 804)


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_exit_codes(capsys):
    code, out, _ = run(capsys, "diff", "examples/resnet18.yaml", "examples/resnet18.yaml")
    assert code == 0 and out.rstrip().endswith("equal")
    code, out, _ = run(
        capsys, "diff", "examples/vgg16.yaml", "examples/vgg16_bn.yaml", "-f", "json"
    )
    obj = json.loads(out)
    assert code == 1 and obj["equal"] is False
    assert obj["b"]["params"] - obj["a"]["params"] == 8_448


def test_cli_one_spec_at_two_settings(capsys):
    code, out, err = run(
        capsys,
        "diff",
        "examples/resnet18.yaml",
        "--set",
        "layers.fc.out_features=1000,10",
        "-f",
        "json",
    )
    assert code == 1, err
    obj = json.loads(out)
    assert [r["name"] for r in obj["rows"]] == ["fc"]
    assert (obj["a"]["params"], obj["b"]["params"]) == (11_689_512, 11_689_512 - 990 * 513)
    code, out, err = run(capsys, "diff", "examples/resnet18.yaml")
    assert code == 2 and out == "" and "two specs" in err
