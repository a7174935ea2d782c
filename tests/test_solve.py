"""`cnncalc solve`: every answer, fed back through the analysis, gives the target.

Expected sets are derived from PyTorch's size formula by hand, not read from cnncalc.
"""

from __future__ import annotations

import json

import pytest

from cnncalc.analysis import analyze
from cnncalc.cli import main
from cnncalc.solve import solve_layer, solve_sizes
from cnncalc.spec import parse_text


def out_size(kind: str, n: int, s) -> int:
    """Run one layer with setting ``s`` through the analysis; return the output H."""
    if kind == "conv_transpose2d":
        text = (
            f"{kind}(1, 2, {s.kernel}, stride={s.stride}, padding={s.padding}, "
            f"output_padding={s.output_padding}, dilation={s.dilation})"
        )
    elif kind == "conv2d":
        text = (
            f"{kind}(1, 2, {s.kernel}, stride={s.stride}, padding={s.padding}, "
            f"dilation={s.dilation})"
        )
    elif kind == "maxpool2d":
        text = f"{kind}({s.kernel}, stride={s.stride}, padding={s.padding}, dilation={s.dilation})"
    else:
        text = f"{kind}({s.kernel}, stride={s.stride}, padding={s.padding})"
    return analyze(parse_text(text), (1, n, n)).rows[0].output_shape[1]


@pytest.mark.parametrize("kind", ["conv2d", "maxpool2d", "avgpool2d", "conv_transpose2d"])
@pytest.mark.parametrize(("n", "target"), [(56, 56), (56, 28), (7, 4), (7, 14), (32, 1), (9, 3)])
def test_every_answer_gives_the_target(kind, n, target):
    found = solve_layer(n, target, kind)
    for s in found:
        assert out_size(kind, n, s) == target, s
    # the inline call it prints is the same layer
    for s in found[:5]:
        text = s.call(kind, "1, 2")
        assert analyze(parse_text(text), (1, n, n)).rows[0].output_shape[1] == target


def test_same_for_conv_is_the_odd_kernels_with_half_padding_first():
    # stride 1, dilation 1: 2p = k − 1, so k odd and p = (k−1)/2, for k = 1, 3, …, 11
    found = [s for s in solve_layer(56, 56) if s.dilation == 1]
    assert [(s.kernel, s.stride, s.padding) for s in found] == [
        (k, 1, (k - 1) // 2) for k in range(1, 12, 2)
    ]


def test_complete_against_brute_force():
    # conv2d 20 -> 10 over the bounds, by PyTorch's formula
    want = {
        (k, s, p, d)
        for k in range(1, 12)
        for s in range(1, 5)
        for p in range(k + 1)
        for d in range(1, 5)
        if d * (k - 1) + 1 <= 20 + 2 * p and (20 + 2 * p - d * (k - 1) - 1) // s + 1 == 10
    }
    got = {(s.kernel, s.stride, s.padding, s.dilation) for s in solve_layer(20, 10)}
    assert got == want


def test_pins_are_respected():
    found = solve_layer(56, 28, kernel=3, dilation=1)
    assert [(s.kernel, s.stride, s.padding) for s in found] == [(3, 2, 1)]
    assert solve_layer(56, 28, kernel=3, stride=1, dilation=1) == []


def test_transposed_doubling_3_stride2():
    # (7−1)·2 − 2p + (k−1) + op + 1 = 14 with k=3 s=2: 2p − op = 1 -> p=1, op=1
    found = solve_layer(7, 14, "conv_transpose2d", kernel=3, stride=2, dilation=1)
    assert [(s.padding, s.output_padding) for s in found] == [(1, 1)]


def test_cli_layer_json(capsys):
    code = main(
        ["solve", "-i", "56", "-t", "half", "--kernel", "3", "--dilation", "1", "-f", "json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["target"] == 28
    assert [(x["kernel_size"], x["stride"], x["padding"]) for x in data["settings"]] == [(3, 2, 1)]


@pytest.mark.parametrize(
    "args",
    [
        ["-i", "56", "-t", "third"],
        ["-i", "56"],
        ["-t", "same"],
        ["-i", "abc", "-t", "same"],
        ["-i", "56", "-t", "same", "--stride", "0"],
        ["examples/lenet5.yaml", "--sizes", "9..3"],
        ["examples/lenet5.yaml", "--sizes", "x"],
    ],
)
def test_bad_usage(capsys, args):
    code = main(["solve", *args])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.startswith("cnncalc: error:") and err.count("\n") == 1


def test_lenet_sizes_are_multiples_of_4():
    # conv5 -> pool2 -> conv5 -> pool2: n−4 even and (n−4)/2 − 4 even, i.e. n ≡ 0 (mod 4);
    # the second conv needs (n−4)/2 >= 5 and its output pooled >= 1: n >= 16
    spec = parse_text(open("examples/lenet5.yaml").read())
    checks = solve_sizes(spec, list(range(1, 81)))
    assert [c.size for c in checks if c.ok] == list(range(16, 81, 4))
    for c in checks:  # each verdict agrees with a plain analysis run
        if c.size < 16:
            assert c.reason.startswith("refused")


def test_cli_sizes(capsys):
    code = main(["solve", "examples/lenet5.yaml", "--sizes", "16..64"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "valid sizes (13 of 49): 16..64:4" in out
    assert "smallest valid input: 16" in out


def test_resnet50_exact_sizes_are_multiples_of_32():
    """ResNet-50 halves its maps five times (stem conv, max pool, layer2..4): an input keeps
    every stride dividing its map exactly when 2**5 divides it (issue 6's example)."""
    from pathlib import Path

    from cnncalc.solve import solve_sizes
    from cnncalc.spec import load

    spec = load(str(Path(__file__).parents[1] / "examples" / "resnet50.yaml"))
    checks = solve_sizes(spec, list(range(32, 257)))
    assert [c.size for c in checks if c.exact] == list(range(32, 257, 32))
    assert all(c.ok for c in checks)  # PyTorch accepts every size here, and loses nothing
