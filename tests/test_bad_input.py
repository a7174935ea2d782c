"""The bad-input suite (issue 2, section 4): every refusal is ONE line on stderr starting
``cnncalc: error:``, naming the layer (index and name), the field, the value and why; nothing
on stdout; no traceback; exit 1 for an invalid spec or impossible shape, 2 for a usage error.

Plus huge inputs (3×100000×100000) that must work analytically, with exact integers.
"""

from __future__ import annotations

import json

import pytest

from cnncalc.analysis import analyze
from cnncalc.cli import main
from cnncalc.errors import ShapeError, SpecError, UsageError
from cnncalc.spec import load, parse_text

L0 = ("layer 0", "layers[0]")  # either way of naming the first layer
# (SPEC, --input, expected exit code, substrings the error line must contain; a tuple: any of)
# SPEC starting with "yaml:" is written to a file first.
CASES = [
    # ---- convolution fields
    ("conv2d(3, 4, 0)", "3x8x8", 1, ["layer 0", "conv2d", "kernel_size", "0"]),
    ("conv2d(3, 4, -3, name='neg')", "3x8x8", 1, ["layer 0", "neg", "kernel_size", "-3"]),
    ("conv2d(3, 4, 3, stride=0)", "3x8x8", 1, ["layer 0", "stride", "0"]),
    ("conv1d(3, 4, 3, stride=(0,))", "3x8", 1, ["layer 0", "stride", "0"]),
    ("conv2d(3, 4, 3, padding=-1)", "3x8x8", 1, ["layer 0", "padding", "-1"]),
    ("conv2d(3, 4, 3, dilation=0)", "3x8x8", 1, ["layer 0", "dilation", "0"]),
    (
        "conv2d(3, 4, 3, stride=2, padding='same', name='s')",
        "3x8x8",
        1,
        ["layer 0", "'s'", "same", "stride"],
    ),
    ("conv2d(3, 4, 3, padding='full')", "3x8x8", 1, ["layer 0", "padding", "full"]),
    ("conv2d(3, 4, 3, groups=2)", "3x8x8", 1, ["layer 0", "groups", "2", "3"]),
    ("conv2d(6, 3, 3, groups=3)", "6x8x8", 0, []),  # sanity: this one is fine
    ("conv2d(6, 4, 3, groups=3)", "6x8x8", 1, ["layer 0", "groups", "3", "4"]),
    ("conv2d(3, 4, 3, groups=0)", "3x8x8", 1, ["layer 0", "groups", "0"]),
    ("conv2d(3, 0, 3)", "3x8x8", 1, ["layer 0", "out_channels", "0"]),
    ("conv2d(2, 4, 3)", "3x8x8", 1, ["layer 0", "in_channels", "2", "3"]),
    ("conv2d(3, 4, (3, 3, 3))", "3x8x8", 1, ["layer 0", "kernel_size", "3"]),
    ("conv3d(3, 4, (3, 3))", "3x8x8x8", 1, ["layer 0", "kernel_size", "2"]),
    ("conv2d(kernel_size=3)", "3x8x8", 1, ["layer 0", "out_channels", "missing"]),
    ("conv2d(3, 4, 3, stide=2)", "3x8x8", 1, ["layer 0", "stide", "stride"]),
    (
        "conv_transpose2d(3, 4, 3, stride=2, output_padding=2)",
        "3x8x8",
        1,
        ["layer 0", "output_padding", "2"],
    ),
    (
        "conv_transpose2d(3, 4, 3, stride=1, output_padding=1)",
        "3x8x8",
        1,
        ["layer 0", "output_padding", "1"],
    ),
    ("conv_transpose1d(3, 4, 3, padding=3)", "3x2", 1, ["layer 0", "conv_transpose1d"]),
    # ---- pooling
    ("maxpool2d(2, padding=2, name='mp')", "3x8x8", 1, ["layer 0", "'mp'", "padding", "2"]),
    ("avgpool1d(3, padding=2)", "3x8", 1, ["layer 0", "padding", "2"]),
    ("maxpool2d(0)", "3x8x8", 1, ["layer 0", "kernel_size", "0"]),
    ("avgpool2d(2, stride=0)", "3x8x8", 1, ["layer 0", "stride", "0"]),
    ("maxpool2d(5, stride=1, padding=2, dilation=2)", "3x4x4", 1, ["layer 0", "maxpool2d"]),
    (
        "conv2d(3, 2, 3, stride=2) maxpool2d(2) avgpool2d(3, stride=2, ceil_mode=True, name='a')",
        "3x7x7",
        1,
        ["layer 2", "'a'"],
    ),
    ("adaptive_avgpool2d((2, 2, 2))", "3x8x8", 1, ["layer 0", "output_size"]),
    ("adaptive_avgpool2d(0)", "3x8x8", 1, ["layer 0", "output_size", "0"]),
    # ---- dense, norms, others
    (
        "flatten linear(5, 4, name='fc')",
        "3x8x8",
        1,
        ["layer 1", "'fc'", "in_features", "5", "192"],
    ),
    ("batchnorm2d(4)", "3x8x8", 1, ["layer 0", "num_features", "4", "3"]),
    ("batchnorm2d", "3x8", 1, ["layer 0", "batchnorm2d"]),
    ("linear(5, 0)", "5", 1, ["layer 0", "out_features", "0"]),
    ("prelu(3)", "8x4x4", 1, ["layer 0", "num_parameters", "3"]),
    ("softmax(dim=5)", "3x4x4", 1, ["layer 0", "dim", "5"]),
    ("zeropad2d(-5)", "3x4x4", 1, ["layer 0", "padding"]),
    ("zeropad2d((-3, 2, 0, 0))", "3x4x2", 1, ["layer 0", "padding"]),  # crop before pad
    ("conv1d(1, 2, 3, padding=3, padding_mode='reflect')", "1x3", 1, ["layer 0", "padding"]),
    ("conv1d(1, 2, 3, padding=3, padding_mode='circular')", "1x2", 1, ["layer 0", "padding"]),
    ("upsample(scale_factor=0.1)", "3x5x5", 1, ["layer 0", "scale_factor"]),
    ("upsample(size=4, scale_factor=2)", "3x5x5", 1, ["layer 0", "upsample"]),
    ("dropout(p=1.5)", "3x5x5", 1, ["layer 0", "p=1.5"]),
    ("flatten conv2d(3, 4, 3)", "3x8x8", 1, ["layer 1", "conv2d", "flatten"]),
    ("conv2d(3, 4, 3)", "3x8", 1, ["layer 0", "conv2d", ("3x8", "3×8")]),
    # ---- the example from the issue, exactly
    (
        "conv2d(1, 2, 3) conv2d(2, 2, 3) conv2d(2, 2, 3) conv2d(2, 2, 5, name='c3')",
        "1x10x10",
        1,
        ["layer 3 (conv2d 'c3'): kernel 5x5 is larger than the padded input 4x4"],
    ),
    ("conv2d(1, 2, 3, dilation=3)", "1x6x6", 1, ["layer 0", "7x7", "6x6"]),
    # ---- types and syntax
    ("conv2x(4, 3)", "3x8x8", 1, ["layer 0", "conv2x", "conv2d"]),
    ("maxpol2d(2)", "3x8x8", 1, ["maxpol2d", "maxpool2d"]),
    ("conv2d(6, 5", "3x8x8", 1, ["("]),
    ("conv2d(3, 6, 5, 1, 0, 1, 1, True, 'zeros', 9)", "3x8x8", 1, ["layer 0", "positional"]),
    ("conv2d(3, 6, x)", "3x8x8", 1, ["layer 0"]),
    # ---- documents
    ("yaml:layers: [\n  {type: conv2d", None, 1, ["malformed", "line"]),
    ("yaml:input: [3, 8, 8]\nlayers:\n\t- {type: relu}\n", None, 1, ["malformed"]),
    ("yaml:", None, 1, ["empty"]),
    ("yaml:\n\n   \n", None, 1, ["empty"]),
    ("yaml:# nothing but a comment\n", None, 1, ["empty"]),
    ("yaml:input: [3, 8, 8]\nlayers: []\n", None, 1, ["layers"]),
    ("yaml:input: [3, 8, 8]\n", None, 1, ["layers"]),
    ("yaml:input: [3, 8, 8]\nlayers: {type: relu}\n", None, 1, ["layers"]),
    ("yaml:input: [3, 8, 8]\nlayers:\n  - conv2d\n", None, 1, [L0, "conv2d"]),
    ("yaml:input: [3, 8, 8]\nlayers:\n  - 42\n", None, 1, [L0, "42"]),
    ("yaml:input: [3, 8, 8]\nlayers:\n  - {out_channels: 3}\n", None, 1, ["layer 0", "type"]),
    (
        "yaml:input: [3, 8, 8]\nlayers:\n  - {type: relu}\n  - {type: conv2d, out_channels: 4, "
        "kernel_size: 3, stide: 2, name: c}\n",
        None,
        1,
        ["layer 1", "'c'", "stide", "stride"],
    ),
    ("yaml:input: [3, 8, 8]\nlayer:\n  - {type: relu}\n", None, 1, ["layer", "layers"]),
    ("yaml:input: [3, -8, 8]\nlayers:\n  - {type: relu}\n", None, 1, ["input", "-8"]),
    ("yaml:input: nonsense\nlayers:\n  - {type: relu}\n", None, 1, ["input"]),
    ("yaml:layers:\n  - {type: relu}\n", None, 1, ["input"]),
    (
        "yaml:input: [3, 8, 8]\nlayers:\n"
        "  - {type: conv2d, out_channels: 4, kernel_size: [3, 3, 3]}\n",
        None,
        1,
        ["layer 0", "kernel_size"],
    ),
    ("yaml:- just\n- a list\n", None, 1, [L0, "just"]),
    ("yaml:42\n", None, 1, []),
]


def _ids():
    return [f"{i}-{spec[:40]}" for i, (spec, *_rest) in enumerate(CASES)]


def _argv(tmp_path, spec: str, shape: str | None) -> list[str]:
    if spec.startswith("yaml:"):
        path = tmp_path / "spec.yaml"
        path.write_text(spec[len("yaml:") :])
        spec = str(path)
    argv = ["shapes", spec]
    if shape is not None:
        argv += ["--input", shape]
    return argv


def assert_one_error_line(
    code: int, out: str, err: str, expected_code: int, needles: list[str]
) -> str:
    assert code == expected_code, (code, err)
    assert out == "", "nothing on stdout after an error"
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    line = lines[0]
    assert line.startswith("cnncalc: error: "), line
    assert "internal error" not in line
    for needle in needles:
        options = needle if isinstance(needle, tuple) else (needle,)
        assert any(o in line for o in options), f"{needle!r} not in {line!r}"
    return line


@pytest.mark.parametrize("spec,shape,code,needles", CASES, ids=_ids())
def test_bad_spec(capsys, tmp_path, spec, shape, code, needles):
    rc = main(_argv(tmp_path, spec, shape))
    out, err = capsys.readouterr()
    if code == 0:
        assert rc == 0 and err == "" and out
        return
    assert_one_error_line(rc, out, err, code, needles)


def test_issue_example_message_exactly(capsys):
    rc = main(
        [
            "shapes",
            "conv2d(1, 2, 3) conv2d(2, 2, 3) conv2d(2, 2, 3) conv2d(2, 2, 5, name='c3')",
            "--input",
            "1x10x10",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 1 and out == ""
    assert err == (
        "cnncalc: error: layer 3 (conv2d 'c3'): kernel 5x5 is larger than the padded input 4x4\n"
    )


def test_errors_in_every_format(capsys):
    for fmt in ("table", "json", "csv", "markdown"):
        rc = main(["params", "conv2d(3, 4, 9)", "--input", "3x4x4", "--format", fmt])
        out, err = capsys.readouterr()
        assert_one_error_line(rc, out, err, 1, ["layer 0"])


# --------------------------------------------------------------------------- usage errors


USAGE = [
    (["shapes", "conv2d(3, 4, 3)", "--input", "3xx8"], ["--input"]),
    (["shapes", "conv2d(3, 4, 3)", "--input", "abc"], ["--input"]),
    (["shapes", "conv2d(3, 4, 3)", "--input", "3x0x8"], ["--input"]),
    (["shapes", "conv2d(3, 4, 3)", "--input", "1x2x3x4x5x6"], ["--input"]),
    (["shapes", "no/such/file.yaml"], ["no/such/file.yaml"]),
    (["shapes", "missing.yaml"], ["missing.yaml"]),
    (["params", "missing.json"], ["missing.json"]),
    (["shapes", "conv2d(3, 4, 3)", "--input", "3x8x8", "--batch", "0"], ["--batch"]),
    (["shapes", "conv2d(3, 4, 3)", "--input", "3x8x8", "--batch", "-2"], ["--batch"]),
    (["shapes", "conv2d(3, 4, 3)", "--input", "3x8x8", "--batch", "two"], ["--batch"]),
    (["shapes", "conv2d(3, 4, 3)", "--input", "3x8x8", "--format", "xml"], ["--format", "xml"]),
    (["params", "conv2d(3, 4, 3)", "--input", "3x8x8", "--format", "yaml"], ["--format"]),
    (["shapes", "conv2d(3, 4, 3)", "--input", "3x8x8", "--dtype", "int4"], ["--dtype"]),
    (["shapes", "conv2d(3, 4, 3)", "--input", "3x8x8", "--frobnicate"], ["--frobnicate"]),
    (["shape", "conv2d(3, 4, 3)"], ["shape"]),
    (["shapes"], ["SPEC"]),
]


@pytest.mark.parametrize("argv,needles", USAGE, ids=[" ".join(a)[:50] for a, _ in USAGE])
def test_usage_errors_exit_2(capsys, argv, needles):
    rc = main(argv)
    out, err = capsys.readouterr()
    assert_one_error_line(rc, out, err, 2, needles)


def test_missing_file_that_is_not_inline(capsys, tmp_path):
    """A word that is neither a file nor inline text is a usage error naming it."""
    rc = main(["shapes", "lenet.yml"])
    out, err = capsys.readouterr()
    assert_one_error_line(rc, out, err, 2, ["lenet.yml"])


def test_unreadable_stdin_spec(capsys, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    rc = main(["shapes", "-", "--input", "3x8x8"])
    out, err = capsys.readouterr()
    assert_one_error_line(rc, out, err, 1, ["empty"])


# --------------------------------------------------------------------------- library errors


def test_library_exceptions():
    with pytest.raises(ShapeError) as info:
        analyze(parse_text("conv2d(3, 4, 3) conv2d(4, 4, 7, name='big')"), (3, 6, 6))
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("layer 1 (conv2d 'big')")
    with pytest.raises(SpecError) as info:
        parse_text("conv2d(3, 4, 3, stide=2)")
    assert not isinstance(info.value, ShapeError)
    assert "stride" in str(info.value) and info.value.field == "stide"


def test_in_channels_checked_only_against_a_shape():
    spec = parse_text("conv2d(5, 4, 3)")
    with pytest.raises(ShapeError) as info:
        analyze(spec, (3, 8, 8))
    assert info.value.field == "in_channels"
    assert analyze(spec, (5, 8, 8)).rows[0].params == 4 * 5 * 9 + 4


def test_load_missing_file_is_usage_error():
    with pytest.raises(UsageError):
        load("nowhere/spec.yaml")


def test_no_input_shape():
    with pytest.raises(SpecError) as info:
        analyze(parse_text("conv2d(3, 4, 3)"))
    assert "input" in str(info.value)


# --------------------------------------------------------------------------- huge sizes


def test_huge_input_cli_exact(capsys):
    n = 100_000
    rc = main(
        [
            "shapes",
            "conv2d(3, 16, 3, stride=2, padding=1) maxpool2d(2) conv2d(16, 32, 3, "
            "padding=1) avgpool2d(5) flatten linear(32 * 5000 * 5000, 10)",
            "--input",
            f"3x{n}x{n}",
            "--format",
            "json",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)
    shapes = [layer["output_shape"] for layer in data["layers"]]
    assert shapes == [
        [16, 50_000, 50_000],
        [16, 25_000, 25_000],
        [32, 25_000, 25_000],
        [32, 5_000, 5_000],
        [32 * 5_000 * 5_000],
        [10],
    ]
    macs = [16 * 50_000**2 * 3 * 9, 0, 32 * 25_000**2 * 16 * 9, 0, 0, 32 * 5_000**2 * 10]
    assert [layer["macs"] for layer in data["layers"]] == macs
    assert data["totals"]["macs"] == sum(macs)
    assert data["layers"][5]["params"] == 32 * 5_000**2 * 10 + 10
    assert data["layers"][0]["fc_equivalent_params"] == (3 * n * n) * (16 * 50_000**2) + (
        16 * 50_000**2
    )
    assert data["totals"]["activation_bytes"] == 4 * (
        16 * 50_000**2 + 16 * 25_000**2 + 32 * 25_000**2 + 2 * 32 * 5_000**2 + 10
    )


def test_huge_input_table(capsys):
    rc = main(["params", "conv2d(3, 8, 3) maxpool2d(2)", "--input", "3x100000x100000"])
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    assert "224" in out  # 8·3·9 + 8 parameters


def test_huge_1d_and_3d():
    a = analyze(parse_text("conv1d(2, 4, 9, stride=4, padding=4) maxpool1d(2)"), (2, 10**12))
    assert a.rows[0].output_shape == (4, (10**12 + 8 - 9) // 4 + 1)
    a = analyze(parse_text("conv3d(1, 2, 3)"), (1, 10**5, 10**5, 10**5))
    assert a.rows[0].output_shape == (2, 99_998, 99_998, 99_998)
    assert a.rows[0].macs == 2 * 99_998**3 * 27
