"""Hardening of the input side (issue 13) and template arithmetic (issue 9).

Every bad input is ONE line on stderr naming where and why, exit 1 (invalid spec) or 2
(usage), nothing on stdout, no traceback — and quickly: bombs that expand a few hundred bytes
into billions of values are refused before anything walks them. Each case here was a hang, a
crash (exit 70) or a silent misreading before.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest
from test_bad_input import assert_one_error_line

from cnncalc.analysis import analyze
from cnncalc.arithmetic import Window, _transposed_window, adaptive_bins, adaptive_widths
from cnncalc.cli import main
from cnncalc.errors import SpecError, printable, show
from cnncalc.spec import MAX_LAYERS, load, parse_text
from cnncalc.templates import TemplateError, evaluate

ROOT = Path(__file__).resolve().parent.parent
# Generous: the refusals take milliseconds; this only catches a hang on a busy machine.
QUICK = 10.0


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str, float]:
    start = time.perf_counter()
    code = main(argv)
    elapsed = time.perf_counter() - start
    out, err = capsys.readouterr()
    return code, out, err, elapsed


def refused(
    capsys, tmp_path, text: str, needles: list, code: int = 1, extra: tuple[str, ...] = ()
) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    rc, out, err, elapsed = run_cli(capsys, ["shapes", str(path), *extra])
    line = assert_one_error_line(rc, out, err, code, needles)
    assert elapsed < QUICK, f"took {elapsed:.1f} s"
    return line


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """kernel_size: [&a0 [1,…], &a1 [*a0,…], …]: 9**9 ≈ 387 million leaves in 800 bytes."""
    items = ["&a0 [" + ",".join(["1"] * width) + "]"]
    items += [f"&a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return (
        "input: [1, 4, 4]\nlayers:\n  - type: conv2d\n    out_channels: 1\n"
        f"    kernel_size: [{', '.join(items)}]\n"
    )


# --------------------------------------------------------------------------- 1. YAML bombs


def test_alias_bomb_is_refused_before_it_is_walked(capsys, tmp_path):
    line = refused(capsys, tmp_path, alias_bomb(), ["aliases expand to more than", "line 5"])
    assert len(line) < 300


def test_a_few_aliases_are_fine(capsys, tmp_path):
    text = (
        "input: [3, 8, 8]\nlayers:\n  - &conv {type: conv2d, out_channels: 3, kernel_size: 3, "
        "padding: 1}\n  - *conv\n  - *conv\n"
    )
    (tmp_path / "a.yaml").write_text(text)
    rc, out, err, _ = run_cli(capsys, ["shapes", str(tmp_path / "a.yaml"), "-f", "json"])
    assert rc == 0, err
    assert [r["params"] for r in json.loads(out)["layers"]] == [84, 84, 84]


def test_recursive_alias(capsys, tmp_path):
    refused(
        capsys,
        tmp_path,
        "input: [1, 4, 4]\nlayers:\n  - &x [*x]\n",
        ["alias *x is inside the collection it names"],
    )


def test_deep_nesting_does_not_crash_the_parser(capsys, tmp_path):
    # libyaml's composer recursed in C and crashed (SIGSEGV) at ~100,000 levels
    n = 200_000
    refused(
        capsys,
        tmp_path,
        "input: [1, 4, 4]\nlayers: " + "[" * n + "]" * n + "\n",
        # ours, or PyYAML >= 6.0.4's own parser limit, whichever comes first: one line
        [("nested more than 256 levels deep", "exceeded maximum nesting depth")],
    )


def test_huge_document(capsys, tmp_path):
    text = "input: [1, 4, 4]\nlayers:\n" + "  - {type: relu}\n" * 1_100_000  # 17.6 MB
    refused(capsys, tmp_path, text, ["bytes; a spec is at most"])


# --------------------------------------------------------------------------- 2. YAML 1.2, keys


@pytest.mark.parametrize(
    "text,needles",
    [
        (
            "input: [3, 8, 8]\nlayers:\n  - {type: conv2d, out_channels: 6, out_channels: 16, "
            "kernel_size: 3}\n",
            ["duplicate key 'out_channels'", "line 3"],
        ),
        (
            "input: [3, 8, 8]\nlayers:\n  - {type: relu}\nlayers:\n  - {type: tanh}\n",
            ["duplicate key 'layers'", "line 4"],
        ),
        (
            '{"input": [3, 8, 8], "layers": [{"type": "relu"}], "layers": [{"type": "tanh"}]}',
            ["duplicate key 'layers'"],
        ),
        (
            "input: [3, 8, 8]\nlayers:\n  - {type: conv2d, out_channels: 4, kernel_size: 3, 1: 2}\n",
            ["keys should be strings", "1 is not"],
        ),
        ("input: [3, 8, 8]\nlayers:\n  - {<<: {type: relu}}\n", ["merge keys (<<)"]),
    ],
)
def test_duplicate_and_odd_keys(capsys, tmp_path, text, needles):
    refused(capsys, tmp_path, text, needles)


@pytest.mark.parametrize(
    "value,needles",
    [
        ("yes", ["layer 0", "out_channels='yes'", "must be an integer, not a string"]),
        ("on", ["out_channels='on'", "not a string"]),
        ("true", ["out_channels=True", "must be an integer, not a boolean"]),
        ("'6'", ["out_channels='6'", "not a string"]),
        ("6.0", ["out_channels=6.0", "integer"]),
        ("1:30", ["out_channels='1:30'"]),  # YAML 1.1: 90
        ("1_000", ["out_channels='1_000'"]),  # YAML 1.1: 1000
    ],
)
def test_no_yaml_11_numbers_and_no_conversions(capsys, tmp_path, value, needles):
    refused(
        capsys,
        tmp_path,
        f"input: [3, 8, 8]\nlayers:\n  - {{type: conv2d, out_channels: {value}, kernel_size: 3}}\n",
        needles,
    )


@pytest.mark.parametrize("value,channels", [("010", 10), ("0x10", 16), ("0o10", 8), ("+7", 7)])
def test_yaml_12_core_integers(value, channels):
    spec = parse_text(
        f"input: [3, 8, 8]\nlayers:\n  - {{type: conv2d, out_channels: {value}, kernel_size: 3}}\n"
    )
    assert spec.layers[0].out_channels == channels


def test_booleans_and_tuples_are_checked_too(capsys, tmp_path):
    refused(
        capsys,
        tmp_path,
        "input: [3, 8, 8]\nlayers:\n  - {type: conv2d, out_channels: 4, "
        "kernel_size: 3, bias: yes}\n",
        ["bias='yes'", "true or false"],
    )
    refused(
        capsys,
        tmp_path,
        "input: [3, 8, 8]\nlayers:\n  - {type: conv2d, out_channels: 4, kernel_size: [3, true]}\n",
        ["kernel_size", "integer"],
    )
    refused(
        capsys,
        tmp_path,
        "input: [3, 8, 8]\nlayers:\n  - {type: conv2d, out_channels: 4, kernel_size: false}\n",
        ["kernel_size=False", "not a boolean"],
    )


def test_inline_specs_are_strict_too(capsys):
    rc, out, err, _ = run_cli(capsys, ["shapes", "-i", "3x8x8", "conv2d(3, True, 3)"])
    assert_one_error_line(rc, out, err, 1, ["out_channels=True", "not a boolean"])


def test_floats_still_take_integers():
    spec = parse_text(
        "input: [3, 8, 8]\nlayers:\n  - {type: dropout, p: 0}\n"
        "  - {type: upsample, scale_factor: 2}\n"
    )
    assert analyze(spec).totals.output_shape == (3, 16, 16)


# --------------------------------------------------------------------------- 3. files, stdin


def test_binary_and_non_utf8_files_are_invalid_specs(capsys, tmp_path):
    binary = tmp_path / "model.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    rc, out, err, _ = run_cli(capsys, ["shapes", str(binary)])
    assert_one_error_line(rc, out, err, 1, ["model.yaml", "not a YAML/JSON spec", "NUL byte"])
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("layers: [{type: relu, name: caf\u00e9}]\n".encode("latin-1"))
    rc, out, err, _ = run_cli(capsys, ["shapes", str(latin)])
    assert_one_error_line(
        rc, out, err, 1, ["latin.yaml", "not a YAML/JSON spec", "not UTF-8", "0xe9"]
    )


def test_paths_that_are_not_spec_files(capsys, tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    cases = [
        (str(tmp_path), 2, [f"{tmp_path}: is a directory, not a spec file"]),
        (str(tmp_path / "empty.yaml"), 1, ["empty.yaml: the spec is empty"]),
        (str(tmp_path / "missing.yaml"), 2, ["missing.yaml: no such file"]),
    ]
    for path, code, needles in cases:
        rc, out, err, _ = run_cli(capsys, ["shapes", path])
        assert_one_error_line(rc, out, err, code, needles)


def test_inline_json_with_a_slash_is_text_not_a_path(capsys):
    text = json.dumps(
        {
            "input": [4, 8, 8],
            "blocks": {
                "t": {
                    "args": {"c": 4},
                    "layers": [{"type": "conv2d", "out_channels": "${c // 2}", "kernel_size": 1}],
                }
            },
            "layers": [{"use": "t"}],
        }
    )
    rc, out, err, _ = run_cli(capsys, ["shapes", text, "-f", "json"])
    assert rc == 0, err
    assert json.loads(out)["totals"]["output_shape"] == [2, 8, 8]


def test_non_utf8_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfe layers")))
    rc, out, err, _ = run_cli(capsys, ["shapes", "-", "-i", "3x8x8"])
    assert_one_error_line(rc, out, err, 1, ["stdin: not a YAML/JSON spec", "0xff"])


def test_utf8_stdin_with_bom(capsys, monkeypatch):
    data = "\ufeffinput: [3, 8, 8]\nlayers: [{type: relu}]\n".encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    rc, out, err, _ = run_cli(capsys, ["shapes", "-", "-f", "csv"])
    assert rc == 0, err


# --------------------------------------------------------------------------- 4. unbounded work


def nested(item: str, wrap: str, times: int) -> str:
    for _ in range(times):
        item = wrap.replace("ITEM", item)
    return item


@pytest.mark.parametrize(
    "layers,needles",
    [
        ("  - {type: relu, repeat: 1000000000}\n", ["repeat=1000000000", "100,000 layers"]),
        (
            "  - " + nested("{type: relu}", "{repeat: 2, layers: [ITEM]}", 30) + "\n",
            [f"more than {MAX_LAYERS:,} layers and blocks"],
        ),
        (
            "  - " + nested("{type: relu}", "{name: b, repeat: 2, layers: [ITEM]}", 30) + "\n",
            [f"more than {MAX_LAYERS:,} layers and blocks"],
        ),
    ],
)
def test_repeat_bombs(capsys, tmp_path, layers, needles):
    refused(capsys, tmp_path, "input: [1, 4, 4]\nlayers:\n" + layers, needles)


def test_templates_that_use_each_other_twice_are_bounded(capsys, tmp_path):
    blocks = ["  t0: [{type: relu}]"] + [
        f"  t{i}: [{{use: t{i - 1}}}, {{use: t{i - 1}}}]" for i in range(1, 31)
    ]
    refused(
        capsys,
        tmp_path,
        "input: [1, 4, 4]\nblocks:\n" + "\n".join(blocks) + "\nlayers:\n  - {use: t30}\n",
        [f"more than {MAX_LAYERS:,} layers and blocks"],
    )


@pytest.mark.parametrize(
    "layers",
    [
        "  - " + nested("{type: relu}", "{repeat: 2, layers: [ITEM]}", 30) + "\n",
        "  - {repeat: 100000, layers: [{type: relu, repeat: 100000}]}\n",
        "  - {repeat: 4000, use: t, n: '${i * 50}'}\n",  # a count that depends on the copy
    ],
)
def test_blowups_are_refused_before_they_are_built(layers):
    text = (
        "input: [1, 4, 4]\nblocks:\n  t: {args: [n], layers: [{type: relu, repeat: $n}]}\n"
        "layers:\n" + layers
    )
    start = time.process_time()
    with pytest.raises(
        SpecError,
        match="expands to more than 100,000 layers and blocks by "
        r"layers\[0\]",
    ):
        parse_text(text)
    assert time.process_time() - start < 0.5


def test_the_estimate_follows_copies_that_differ():
    text = (
        "input: [1, 4, 4]\nblocks:\n  t: {args: [n], layers: [{type: relu, repeat: $n}]}\n"
        "layers:\n  - {repeat: 60, use: t, n: '${i * 50}'}\n"
    )  # 88,500 rows: allowed
    assert len(parse_text(text).layers) == sum(i * 50 for i in range(60))


def test_a_spec_of_many_layers_still_works():
    text = "input: [1, 8, 8]\nlayers:\n  - {type: relu, repeat: 20000}\n"
    assert len(analyze(parse_text(text)).rows) == 20_000


def template_spec(expr: str, field: str = "out_channels") -> str:
    other = "kernel_size: 1" if field == "out_channels" else "out_channels: 1"
    return (
        "input: [1, 4, 4]\nblocks:\n  t:\n    args: {c: 2}\n    layers:\n"
        f"      - {{type: conv2d, {field}: {json.dumps('${' + expr + '}')}, {other}}}\n"
        "layers:\n  - {use: t}\n"
    )


@pytest.mark.parametrize(
    "expr,needles",
    [
        ("10**10**10", ["more than 256 bits"]),
        ("'a' * 10**10", ["only arithmetic on numbers"]),
        ("'%0999999999d' % 1", ["only arithmetic on numbers"]),
        ("2.0 ** 10000", ["too large for a float"]),
        ("+".join(["1"] * 1000), ["characters (at most 1000)"]),
        ("+".join(["1"] * 100), ["nests more than 50"]),
        ("1e308 * 10", ["not a finite number"]),
        ("c / 0", ["division by zero"]),
        ("9" * 5000, ["characters"]),
        ("round(5, -10**9)", ["round's digits"]),
        ("__import__('os').system('true')", ["only arithmetic"]),
        ("c.__class__", ["only arithmetic"]),
        ("[x for x in (1, 2)]", ["only arithmetic"]),
        ("(-8) ** 0.5", ["complex"]),
    ],
)
def test_expressions_are_bounded(capsys, tmp_path, expr, needles):
    refused(capsys, tmp_path, template_spec(expr), ["layers[0](t).layers[0]", *needles])


def test_strings_cannot_double_through_templates(capsys, tmp_path):
    blocks = ["  t0: {args: [s], layers: [{type: relu, name: $s}]}"] + [
        f"  t{i}: {{args: [s], layers: [{{use: t{i - 1}, s: '${{s}}${{s}}'}}]}}"
        for i in range(1, 40)
    ]
    refused(
        capsys,
        tmp_path,
        "input: [1, 4, 4]\nblocks:\n"
        + "\n".join(blocks)
        + "\nlayers:\n  - {use: t39, s: abcdefgh}\n",
        ["string of more than 10,000"],
    )


@pytest.mark.parametrize(
    "spec,shape,want",
    [
        ("adaptive_avgpool2d(10000000)", "1x4x4", [1, 10_000_000, 10_000_000]),
        (
            "conv_transpose2d(1, 1, 3, stride=1000000000)",
            "1x4x4",
            [1, 3_000_000_003, 3_000_000_003],
        ),
        ("adaptive_maxpool1d(999999937)", "2x1000000007", [2, 999_999_937]),
    ],
)
def test_huge_sizes_are_closed_form(capsys, spec, shape, want):
    rc, out, err, elapsed = run_cli(capsys, ["shapes", "-i", shape, spec, "-f", "json"])
    assert rc == 0, err
    assert json.loads(out)["totals"]["output_shape"] == want
    assert elapsed < QUICK


def test_auto_shortcut_on_a_huge_input():
    text = (
        "layers:\n  - residual: [{type: conv1d, out_channels: 4, kernel_size: 1, stride: 3}]\n"
        "    shortcut: auto\n"
    )
    a = analyze(parse_text(text), (2, 10**12))
    down = next(r for r in a.rows if r.name == "downsample.0")
    assert down.layer.stride == (3,) and down.output_shape == (4, (10**12 - 1) // 3 + 1)


@pytest.mark.parametrize(
    "argv,needles",
    [
        (
            ["solve", "examples/lenet5.yaml", "--sizes", "1..1000000000"],
            ["--sizes", "1,000,000,000 values", "at most 10,000"],
        ),
        (["shapes", "examples/lenet5.yaml", "-b", "1..1000000000"], ["--batch", "at most"]),
        (["shapes", "examples/lenet5.yaml", "-i", "1x{1..1000000000}x32"], ["--input", "at most"]),
        (
            ["shapes", "examples/lenet5.yaml", "-i", "1x{32..40}x{32..40}", "-b", "1..2000"],
            ["162,000 runs"],
        ),
        (["shapes", "examples/lenet5.yaml", "-b", "9" * 5000], ["--batch", "cannot read"]),
        (["shapes", "relu", "-i", "1x1x" + "9" * 5000], ["--input", "more than 100 digits"]),
        (["solve", "-i", "9" * 5000, "-t", "half"], ["--input N"]),
        (["solve", "-i", "56", "-t", "9" * 5000], ["--target", "5,000 characters"]),
        (["solve", "-i", "56", "-t", "half", "--kernel", "1000000000"], ["settings to try"]),
        (
            [
                "solve",
                "-i",
                "56",
                "-t",
                "half",
                "--type",
                "conv_transpose2d",
                "--dilation",
                "1000000000",
            ],
            ["settings to try"],
        ),
    ],
)
def test_ranges_are_measured_before_they_are_listed(capsys, monkeypatch, argv, needles):
    monkeypatch.chdir(ROOT)
    rc, out, err, elapsed = run_cli(capsys, argv)
    line = assert_one_error_line(rc, out, err, 2, needles)
    assert elapsed < QUICK and len(line) < 400


def test_a_huge_value_is_echoed_short(capsys, tmp_path):
    big = "A" * 10_000_000
    line = refused(
        capsys,
        tmp_path,
        "input: [1, 4, 4]\nlayers:\n  - {type: " + big + "}\n",
        ["unknown layer type", "10,000,000 characters"],
    )
    assert len(line) < 600


# --------------------------------------------------------------------------- 5. no exit 70


def test_deeply_nested_blocks(capsys, tmp_path):
    # 330 residuals: the YAML nesting bound (each block is two levels)
    deep = nested("{type: relu}", "{residual: [ITEM]}", 330)
    refused(
        capsys, tmp_path, "input: [1, 4, 4]\nlayers:\n  - " + deep + "\n", ["nested more than 256"]
    )
    # 101 blocks fit in the YAML bound: the block bound names the place
    deep = nested("{type: relu}", "{layers: [ITEM]}", 101)
    refused(
        capsys,
        tmp_path,
        "input: [1, 4, 4]\nlayers:\n  - " + deep + "\n",
        ["blocks nest more than 100 levels deep"],
    )
    deep = nested("{type: relu}", "{layers: [ITEM]}", 99)
    assert len(analyze(parse_text("input: [1, 4, 4]\nlayers:\n  - " + deep + "\n")).rows) == 1


def test_the_reason_survives_a_long_place(capsys):
    rc, out, err, _ = run_cli(capsys, ["shapes", "-i", "1x4x4", "conv2d(1, " + "9" * 5000 + ", 3)"])
    line = assert_one_error_line(rc, out, err, 1, ["not a layer call"])
    assert len(line) < 1200


def test_huge_integer_literals(capsys, tmp_path):
    refused(
        capsys,
        tmp_path,
        "input: [1, 4, 4]\nlayers:\n  - {type: conv2d, out_channels: "
        + "9" * 5000
        + ", kernel_size: 1}\n",
        ["an integer of 5,000 digits"],
    )


def test_a_branch_reference_that_is_a_number(capsys, tmp_path):
    text = (
        "input: [1, 4, 4]\nblocks:\n  t:\n    args: {c: 1}\n    layers:\n"
        "      - {type: relu, name: a}\n      - {concat: [[], '${c + 1}']}\n"
        "layers:\n  - {use: t}\n"
    )
    refused(capsys, tmp_path, text, ["concat[1]", "evaluates to 2"])


# --------------------------------------------------------------------------- 6. template maths


def make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """torchvision.models._utils._make_divisible, verbatim."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


DIVISIBLE = "n + d if (n := max(m, int(v + d / 2) // d * d)) < 0.9 * v else n"


@pytest.mark.parametrize(
    "v", [3, 8, 12, 13, 16, 17.6, 20, 24, 32 * 0.75, 96 * 1.4, 350.0, 1280 * 0.35, 1e-3]
)
@pytest.mark.parametrize("d", [8, 3])
def test_make_divisible(v, d):
    assert evaluate(DIVISIBLE, {"v": v, "d": d, "m": d}) == make_divisible(v, d)


@pytest.mark.parametrize(
    "expr,value",
    [
        ("round(2.5)", 2),
        ("round(3.5)", 4),
        ("round(-0.5)", 0),
        ("round(2.675, 2)", 2.67),
        ("int(7.9)", 7),
        ("int(-7.9)", -7),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("min(4, 2, 3)", 2),
        ("max((4, 9, 3))", 9),
        ("abs(-3)", 3),
        ("1 < 2 <= 2", True),
        ("3 == 4", False),
        ("2 if 3 > 2 else 1", 2),
        ("c > 1 and c", 2),
        ("not c", False),
        ("c * 1.5", 3),
        ("c / 4", 0.5),
        ("(c, c * 2)", (2, 4)),
        ("'same' if c == 2 else 1", "same"),
    ],
)
def test_expression_semantics_are_python_3s(expr, value):
    got = evaluate(expr, {"c": 2})
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "expr",
    [
        "c + True",
        "c + 'x'",
        "len(c)",
        "c if",
        "lambda: 1",
        "c.real",
        "c[0]",
        "{1: 2}",
        "f'{c}'",
        "round(c, ndigits=1)",
    ],
)
def test_expression_refusals(expr):
    with pytest.raises(TemplateError):
        evaluate(expr, {"c": 2})


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    after = text.split("<!-- width-multiplier example: tests/test_hardening.py runs it -->")[1]
    return after.split("```yaml\n")[1].split("```")[0]


def test_width_multiplier_example_from_the_readme():
    spec = parse_text(readme_example())
    channels = [r.output_shape[0] for r in analyze(spec).rows if r.type == "conv2d"]
    assert channels == [make_divisible(c * 0.35, 8) for c in (32, 16, 24, 1280)]
    assert channels == [16, 8, 8, 448]  # as the README's comments say


# --------------------------------------------------------------------------- 7. typos


@pytest.mark.parametrize(
    "layer,typo,hint",
    [
        ("{type: conv2d, out_channels: 4, kernal_size: 3}", "kernal_size", "kernel_size"),
        ("{type: conv2d, out_chanels: 4, kernel_size: 3}", "out_chanels", "out_channels"),
        ("{type: linear, out_feature: 4}", "out_feature", "out_features"),
    ],
)
def test_typo_in_a_required_field(capsys, tmp_path, layer, typo, hint):
    line = refused(
        capsys,
        tmp_path,
        f"input: [3, 8, 8]\nlayers:\n  - {layer}\n",
        ["layer 0", f"{typo}: unknown field (did you mean '{hint}'?)"],
    )
    assert "missing" not in line


# --------------------------------------------------------------------------- 8. terminal safety


EVIL = "\x1b]0;PWNED\x07\x1b[2J\nX\u202e"


def test_printable():
    assert printable("conv1 × 2") == "conv1 × 2"
    assert printable(EVIL) == "\\x1b]0;PWNED\\x07\\x1b[2J\\nX\\u202e"
    assert printable("a" * 50, 10) == "aaaaaaaaaa… (50 characters)"
    assert printable(printable(EVIL)) == printable(EVIL)
    assert show("x" * 1000).endswith("… (1,000 characters)")
    assert show(tuple(range(100))).startswith("(0, 1, 2")
    assert show(10**500) == f"an integer of {(10**500).bit_length():,} bits"


@pytest.mark.parametrize(
    "spec,shape,code",
    [
        ("conv2d(1, 1, 9, name='{}')", "1x4x4", 1),  # an error naming the layer
        ("conv2d(1, 1, 2, stride=2, name='{}')", "1x5x5", 0),  # a warning naming it
        ("conv2d(1, 1, 3, padding='{}')", "1x5x5", 1),  # an error echoing a value
        ("{}", "1x5x5", 2),  # neither a file nor an inline spec
    ],
)
def test_control_characters_never_reach_the_terminal(capsys, spec, shape, code):
    # (the inline syntax splits on ';' and counts brackets even inside quotes: none here)
    evil = "\x1bc\x07X\u202e\x9b"  # reset the terminal, bell, bidi override, C1 CSI
    rc, out, err, _ = run_cli(
        capsys, ["shapes", "-i", shape, "-f", "csv", spec.replace("{}", evil)]
    )
    assert rc == code, err
    assert not any(c in err for c in "\x1b\x07\u202e\x9b")
    assert len(err.splitlines()) == 1 and "\\x1bc\\x07X\\u202e\\x9b" in err


def test_control_characters_in_yaml_names(capsys, tmp_path):
    line = refused(
        capsys,
        tmp_path,
        "input: [1, 4, 4]\nlayers:\n  - {type: conv2d, "
        'out_channels: 1, kernel_size: 9, name: "\\e]0;PWNED\\a\\e[2J\\nX"}\n',
        ["\\x1b]0;PWNED\\x07\\x1b[2J\\nX"],
    )
    assert "\x1b" not in line


def test_library_messages_are_printable():
    with pytest.raises(SpecError) as info:
        analyze(load("conv2d(1, 1, 9, name='\x1b[31mred')"), (1, 4, 4))
    assert "\x1b" not in str(info.value)


# --------------------------------------------------------------------------- closed forms


def old_transposed_window(k: int, s: int, p: int, d: int) -> Window:
    """The per-phase loop that _transposed_window replaced (same results, O(s·k))."""

    def contributors(o: int) -> list[int]:
        return [(o + p - t * d) // s for t in range(k) if (o + p - t * d) % s == 0]

    spans = [max(c) - min(c) + 1 for o in range(s) if (c := contributors(o))]
    first = contributors(0)
    start = min(first) if first else -((p + s - 1) // s)
    return Window(max(spans) if spans else 1, Fraction(1, s), Fraction(-start))


def test_transposed_window_closed_form():
    for k in range(1, 10):
        for s in range(1, 11):
            for p in range(0, 12):
                for d in range(1, 6):
                    assert _transposed_window(k, s, p, d) == old_transposed_window(k, s, p, d)


def test_adaptive_widths_closed_form():
    for n in range(1, 70):
        for o in range(1, 80):
            assert adaptive_widths(n, o) == tuple(sorted({b - a for a, b in adaptive_bins(n, o)}))


def test_auto_shortcut_stride_closed_form():
    for n in range(1, 60):
        for m in range(1, 62):
            text = (
                "layers:\n  - residual: [{type: adaptive_avgpool1d, output_size: "
                + str(m)
                + "}]\n    shortcut: auto\n"
            )
            brute = next((s for s in range(1, n + 1) if (n - 1) // s + 1 == m), None)
            if brute is None or n == m:
                continue
            a = analyze(parse_text(text), (1, n))
            assert next(r for r in a.rows if r.name == "downsample.0").layer.stride == (brute,)
    with pytest.raises(SpecError, match="no 1×1 stride maps 10 to 7"):
        analyze(
            parse_text(
                "layers:\n  - residual: [{type: adaptive_avgpool1d, output_size: 7}]"
                "\n    shortcut: auto\n"
            ),
            (1, 10),
        )


# --------------------------------------------------------------------------- real processes


def test_bombs_in_a_real_process(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    for argv in (["shapes", str(bomb)], ["shapes", "-i", "1x4x4", "relu", "-b", "1..1000000000"]):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "cnncalc", *argv],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert time.perf_counter() - start < 30
        assert proc.returncode in (1, 2) and proc.stdout == ""
        assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- 9. properties


from contextlib import redirect_stderr, redirect_stdout  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cnncalc.errors import CnncalcError  # noqa: E402
from cnncalc.spec import Block, Merge, _Estimate, _templates  # noqa: E402

NAMES = st.sampled_from(["a", "b", "c", "layer${i}", "x\x1b[2J"])
SMALL = st.integers(min_value=-1, max_value=4)
BAD = st.sampled_from(
    [True, "2", 2.5, None, -3, [1, 2, 3], {"k": 1}, "${c * 2}", "$c", "${nope}", "${c ** 99}"]
)


def _maybe(value_strategy, bad_share: float = 0.1):
    return st.one_of(value_strategy, BAD) if bad_share else value_strategy


LEAVES = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("conv2d"),
            "out_channels": st.one_of(st.integers(1, 6), BAD),
            "kernel_size": st.one_of(st.integers(1, 3), BAD),
        },
        optional={
            "stride": st.integers(1, 2),
            "padding": st.integers(0, 1),
            "name": NAMES,
            "kernal_size": st.just(3),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["relu", "batchnorm2d", "identity", "tanh"])},
        optional={"name": NAMES},
    ),
    st.fixed_dictionaries(
        {"type": st.just("maxpool2d"), "kernel_size": st.integers(1, 2)},
        optional={"ceil_mode": st.booleans(), "name": NAMES},
    ),
    st.fixed_dictionaries(
        {"type": st.just("adaptive_avgpool2d"), "output_size": st.integers(1, 5)}
    ),
    st.fixed_dictionaries(
        {"use": st.sampled_from(["t", "u", "t"])},
        optional={"c": st.one_of(st.integers(1, 6), BAD), "name": NAMES},
    ),
    st.sampled_from(["relu", 3, None]),  # not a mapping
)


def _items(children):
    lists = st.lists(children, min_size=0, max_size=3)
    branch = st.one_of(lists, NAMES, st.just([]))
    return st.one_of(
        st.fixed_dictionaries({"layers": lists}, optional={"name": NAMES, "repeat": SMALL}),
        st.fixed_dictionaries(
            {"residual": lists},
            optional={
                "shortcut": st.sampled_from(["identity", "auto", "odd"]),
                "name": NAMES,
                "repeat": SMALL,
            },
        ),
        st.fixed_dictionaries(
            {"concat": st.lists(branch, min_size=1, max_size=3)}, optional={"name": NAMES}
        ),
        st.fixed_dictionaries(
            {"add": st.lists(branch, min_size=2, max_size=3)}, optional={"name": NAMES}
        ),
        children.map(lambda item: {**item, "repeat": 2} if isinstance(item, dict) else item),
    )


ITEMS = st.recursive(LEAVES, _items, max_leaves=12)
SPECS = st.fixed_dictionaries(
    {
        "input": st.just([3, 12, 12]),
        "blocks": st.just(
            {
                "t": {
                    "args": {"c": 4},
                    "layers": [
                        {
                            "type": "conv2d",
                            "out_channels": "${max(1, c // 2)}",
                            "kernel_size": 1,
                            "name": "tc",
                        },
                        {"type": "relu"},
                    ],
                },
                "u": {"args": {"c": 2}, "layers": [{"use": "t", "c": "${c * 2}"}]},
            }
        ),
        "layers": st.lists(ITEMS, min_size=1, max_size=4),
    }
)
PROPS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_analysis(a) -> None:
    """A consistent report: rows add up to the totals, inputs point backwards."""
    t = a.totals
    assert t.params == sum(r.params for r in a.rows)
    assert t.trainable_params == sum(r.trainable_params for r in a.rows)
    assert t.buffers == sum(r.buffers for r in a.rows)
    assert t.macs == sum(r.macs for r in a.rows)
    assert t.activation_bytes == sum(r.activation_bytes for r in a.rows)
    for i, r in enumerate(a.rows):
        assert r.index == i and all(-1 <= j < i for j in r.inputs)
        assert r.params == r.weights + r.bias
    assert t.output_shape == (a.rows[-1].output_shape if a.rows else a.input_shape)


@PROPS
@given(SPECS, st.booleans())
def test_nested_specs_give_a_report_or_one_line(data, as_json):
    text = json.dumps(data) if as_json else _yaml(data)
    start = time.perf_counter()
    try:
        spec = parse_text(text, inline=False)
        # the fast estimate that refuses blowups never counts more than the parser makes
        estimate = _Estimate(_templates(data["blocks"])).items(data["layers"], {})
        assert estimate <= made(spec.nodes)
        check_analysis(analyze(spec))
    except CnncalcError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\x1b" not in message
        assert len(message) <= 2100
    assert time.perf_counter() - start < 5


def made(nodes) -> int:
    """The nodes the parser made (the branches of a merge are not nodes of their own)."""
    total = 0
    for node in nodes:
        total += 1
        if isinstance(node, Block):
            total += made(node.nodes)
        elif isinstance(node, Merge):
            total += sum(made(b.nodes) for b in node.branches if isinstance(b, Block))
    return total


def _yaml(data) -> str:
    import yaml

    return yaml.safe_dump(data, allow_unicode=True)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(SPECS)
def test_nested_specs_through_the_cli(data):
    out, err = io.StringIO(), io.StringIO()
    text = json.dumps(data)
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["shapes", text, "-f", "json"])
    if code == 0:
        report = json.loads(out.getvalue())
        assert report["totals"]["params"] == sum(r["params"] for r in report["layers"])
        assert all(line.startswith("cnncalc: warning: ") for line in err.getvalue().splitlines())
    else:
        assert code == 1, err.getvalue()
        assert out.getvalue() == ""
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 and lines[0].startswith("cnncalc: error: ")
        assert "internal error" not in lines[0] and "\x1b" not in lines[0]
