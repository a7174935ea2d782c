"""cnncalc draw: every example draws to SVG (well-formed, one box per node, labelled) and to
PNG; Mermaid and DOT list every node and edge."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cnncalc.analysis import analyze
from cnncalc.cli import main
from cnncalc.draw import is_chain, layout, nodes, render
from cnncalc.spec import load

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))
SVG = "{http://www.w3.org/2000/svg}"


def analysis(path):
    return analyze(load(str(path)))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_draws_to_svg_and_png(path, tmp_path):
    a = analysis(path)
    root = ET.fromstring(render(a, "svg"))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    named = [r.name for r in a.rows if r.name]
    if is_chain(nodes(a)):  # maps: one cuboid front per shape-changing row, input included
        assert "input" in texts
    else:  # graph: one box per row and one for the input; every name is shown
        assert len(list(root.iter(f"{SVG}rect"))) == len(a.rows) + 2  # + the background
        assert set(named) <= set(texts)
    shapes = {"×".join(map(str, r.output_shape)) for r in a.rows}
    assert shapes & set(texts)
    pytest.importorskip("PIL")
    for depth in (None, 2):
        png = tmp_path / f"{path.stem}.png"
        render(a, "png", str(png), depth=depth)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chains_use_feature_maps_and_fold_activations():
    a = analysis(EXAMPLES[0].parent / "lenet5.yaml")
    d = layout(a)
    labels = [getattr(i, "text", None) for i in d.items]
    # input, c1+relu, s2, c3+relu, s4, flatten, c5+relu, f6+relu, output: 9 boxes
    assert labels.count("conv2d + relu") == 2 and "linear + relu" in labels
    assert "6×28×28" in labels and "16×5×5" in labels


def test_branches_use_the_graph_and_depth_folds_blocks():
    a = analysis(EXAMPLES[0].parent / "resnet18.yaml")
    assert not is_chain(nodes(a))
    folded = nodes(a, depth=2)
    assert [n.lines[0] for n in folded][4:6] == ["layer1.0", "layer1.1"]
    assert is_chain(folded)  # blocks in a row: drawn as maps


def test_mermaid_and_dot_have_every_edge():
    a = analysis(EXAMPLES[0].parent / "googlenet.yaml")
    edges = sum(len(r.inputs) for r in a.rows)
    assert len(re.findall(r" --> ", render(a, "mermaid"))) == edges
    assert len(re.findall(r" -> ", render(a, "dot"))) == edges


def test_cli_writes_files_and_refuses_bad_requests(tmp_path, capsys):
    out = tmp_path / "net.svg"
    assert main(["draw", "examples/resnet18.yaml", "-o", str(out)]) == 0
    assert out.read_text().startswith("<svg")
    assert main(["draw", "examples/lenet5.yaml", "-f", "mermaid"]) == 0
    assert capsys.readouterr().out.startswith("flowchart TD")
    for args, text in [
        (["-o", str(tmp_path / "x.txt")], "suffix"),
        (["-f", "png"], "needs -o"),
        (["--style", "maps"], "chains only"),
    ]:
        assert main(["draw", "examples/resnet18.yaml", *args]) == 2
        out_text, err = capsys.readouterr()
        assert out_text == "" and len(err.splitlines()) == 1 and text in err


# --------------------------------------------------------------------------- --share, --top


def test_share_columns_and_json_shares(capsys):
    assert main(["params", "examples/vgg16.yaml", "--share", "-f", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("params %,MACs %")
    # classifier.0: 25088·4096 + 4096 of 138,357,544 parameters
    row = next(line for line in out if ",classifier.0," in line)
    assert float(row.split(",")[-2]) == pytest.approx(100 * 102_764_544 / 138_357_544, abs=1e-4)
    assert main(["shapes", "examples/lenet5.yaml", "-f", "json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert layers[0]["macs_share"] == pytest.approx(117_600 / 416_520)
    assert sum(r["params_share"] for r in layers) == pytest.approx(1)


def test_top_lists_the_heaviest_rows(capsys):
    assert main(["params", "examples/vgg16.yaml", "--top", "2", "-f", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in obj["layers"]] == ["classifier.0", "classifier.3"]
    assert obj["totals"]["params"] == 138_357_544  # totals of the whole network
    assert main(["shapes", "examples/lenet5.yaml", "--top", "1", "-f", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split(",")[1] == "c3"  # 240,000 MACs
