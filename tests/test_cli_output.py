"""The whole command, as a shell sees it: pipes that close early, terminals that cannot
encode our typography, help texts, one-batch commands, solve's --input forms."""

import subprocess
import sys

import pytest

from cnncalc.cli import main

LENET = "examples/lenet5.yaml"


def _cnncalc(*args: str, env: dict | None = None, pipe_to: str | None = None):
    import os

    cmd = [sys.executable, "-m", "cnncalc", *args]
    full_env = {**os.environ, **(env or {})}
    if pipe_to is None:
        return subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=_root())
    # the reader exits at once: writing the rest must not be an error of ours
    line = " ".join(f"'{c}'" for c in cmd) + f" | {pipe_to}; echo rc=${{PIPESTATUS[0]}} >&2"
    return subprocess.run(
        ["bash", "-c", line], capture_output=True, text=True, env=full_env, cwd=_root()
    )


def _root() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent)


@pytest.mark.parametrize(
    "args",
    [
        ("shapes", "examples/resnet50.yaml", "-f", "json"),
        ("shapes", "examples/resnet50.yaml", "-f", "csv"),
        ("shapes", "examples/resnet50.yaml", "-f", "markdown"),
        ("explain", "examples/resnet50.yaml"),
        ("shapes", "examples/resnet50.yaml"),
    ],
)
def test_a_reader_that_leaves_is_exit_0_without_a_traceback(args):
    done = _cnncalc(*args, pipe_to="true")
    assert "rc=0" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "error" not in done.stderr


@pytest.mark.parametrize("command", ["shapes", "explain", "rf", "params"])
def test_ascii_only_stdout_gets_ascii_not_an_error(command):
    done = _cnncalc(command, LENET, env={"PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.isascii()
    assert "c1" in done.stdout and "x" in done.stdout


def test_help_uses_clicks_conventions(capsys):
    for command in ("run", "rf", "shapes", "solve"):
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert "<bool>" not in out and "<int" not in out and "<str>" not in out, command
        assert "{SPEC}" not in out and "[[SPEC]]" not in out, command
        assert "SPEC" in out


def test_run_and_explain_take_one_batch(capsys):
    for command in ("run", "explain"):
        assert main([command, LENET, "-b", "1,8"]) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err == (
            "cnncalc: error: --batch=1,8: takes one batch size here (lists and "
            "ranges sweep in `shapes` and `params`)\n"
        )


def test_solve_takes_a_shape_like_every_command(capsys):
    assert main(["solve", "-i", "3x56x56", "-t", "half", "-f", "csv"]) == 0
    by_shape = capsys.readouterr().out
    assert main(["solve", "-i", "56", "-t", "half", "-f", "csv"]) == 0
    assert capsys.readouterr().out == by_shape
    assert "3,2,1,1" in by_shape  # kernel 3, stride 2, padding 1: ⌊(56+2−3)/2⌋+1 = 28
    assert main(["solve", "-i", "3x56x28", "-t", "half"]) == 2
    assert "spatial sizes differ" in capsys.readouterr().err


def test_a_dumb_terminal_never_cuts_digits():
    """TERM=dumb on a real terminal (a pty): Rich assumes 80 columns; digits still print."""
    import os
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "dumb"}
    env.pop("COLUMNS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnncalc", "shapes", "examples/resnet18.yaml", "--depth", "1"],
        stdout=follower,
        stderr=follower,
        cwd=_root(),
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=60) == 0
    text = b"".join(chunks).decode()
    assert "11,689,512" in text and "1,814,073,344" in text and "…" not in text


@pytest.mark.parametrize("wrapped", [False, True])
def test_ctrl_c_is_one_line_and_130(capsys, monkeypatch, wrapped):
    import cnncalc.analysis

    def interrupted(*args, **kwargs):
        if not wrapped:
            raise KeyboardInterrupt
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:  # as numba's compiler reports it
            raise RuntimeError("compilation failed") from exc

    monkeypatch.setattr(cnncalc.analysis, "analyze", interrupted)
    assert main(["shapes", LENET]) == 130
    out, err = capsys.readouterr()
    assert (out, err) == ("", "cnncalc: aborted\n")


@pytest.mark.parametrize(
    "command",
    [
        ["shapes"],
        ["shapes", "-f", "csv"],
        ["params"],
        ["explain"],
        ["rf"],
        ["shapes", "-f", "markdown"],
    ],
)
def test_names_with_control_characters_are_escaped_in_every_output(capsys, command):
    evil = "\x1b]0;PWNED\x07\x1b[2J\nX"
    spec = f"conv2d(1, 2, 3, name={evil!r}) relu"
    code = main([command[0], "-i", "1x8x8", spec, *command[1:]])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "\\x1b]0;PWNED\\x07\\x1b[2J\\nX" in out


@pytest.mark.parametrize("outcome", [3, KeyboardInterrupt])
def test_entry_point_freezes_start_up_and_collects_while_the_command_works(
    capsys, monkeypatch, outcome
):
    """The process entry point (`cnncalc`, `python -m cnncalc`) freezes what start-up made,
    but the collector is on while the command runs, and Ctrl-C is still one line and 130."""
    import gc

    import cnncalc.__main__ as entry
    import cnncalc.cli

    class Cycle:  # garbage only the collector can free
        pass

    seen = {}

    def command():
        seen["enabled"] = gc.isenabled()
        seen["frozen"] = gc.get_freeze_count()
        a, b = Cycle(), Cycle()
        a.other, b.other = b, a
        del a, b
        seen["collected"] = gc.collect()
        if outcome is KeyboardInterrupt:
            raise KeyboardInterrupt
        return outcome

    monkeypatch.setattr(cnncalc.cli, "main", command)
    was_frozen = gc.get_freeze_count()
    try:
        code = entry.main()
    finally:
        gc.unfreeze()  # this pytest process goes on
    assert seen["enabled"] and seen["frozen"] > was_frozen and seen["collected"] >= 2
    if outcome is KeyboardInterrupt:
        assert (code, capsys.readouterr().err) == (130, "cnncalc: aborted\n")
    else:
        assert code == 3
