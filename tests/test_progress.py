"""Progress on long work (cnncalc/progress.py): log lines when stderr is not a terminal (at
most one every few seconds, none for quick work), the run's phases and compile notes, and
stdout left exactly the result."""

from __future__ import annotations

import io
import json

from cnncalc import progress as P
from cnncalc.cli import main


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def log(clock: Clock) -> tuple[P.LogProgress, io.StringIO]:
    out = io.StringIO()
    lp = P.LogProgress(out, delay=2.0, interval=5.0, heartbeat=30.0, clock=clock)
    lp.stop.set()  # drive poll() by hand
    lp.thread.join()
    return lp, out


def test_quick_work_prints_nothing():
    clock = Clock()
    lp, out = log(clock)
    lp.phase("running layer", 3)
    lp.step(0, "conv2d c1")
    clock.t = 1.5
    lp.poll()
    lp.close()
    assert out.getvalue() == ""


def test_lines_are_timestamped_and_rate_limited():
    clock = Clock()
    lp, out = log(clock)
    lp.phase("running layer", 12)
    lp.step(3, "conv2d c3")
    lp.compiling("convolution kernel conv_tile_16x16")
    for t in (2.0, 3.0, 4.0, 6.9):  # one line at 2 s, none again before 7 s
        clock.t = t
        lp.poll()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("cnncalc: ") and "running layer 4/12 conv2d c3" in lines[0]
    assert "compiling convolution kernel conv_tile_16x16 (first use, cached afterwards)" in lines[0]
    clock.t = 8.0
    lp.poll()  # nothing changed: no line until the heartbeat
    assert len(out.getvalue().splitlines()) == 1
    clock.t = 32.5
    lp.poll()  # heartbeat while the compile goes on
    assert len(out.getvalue().splitlines()) == 2
    lp.compiling(None)
    lp.step(4, "relu")
    clock.t = 38.0
    lp.poll()
    assert "running layer 5/12 relu" in out.getvalue().splitlines()[-1]
    lp.close()
    assert "done in 38.0 s" in out.getvalue().splitlines()[-1]


def test_reporter_choice():
    assert P.reporter(quiet=True) is P.SILENT
    lp = P.reporter(stream=io.StringIO())
    assert isinstance(lp, P.LogProgress)
    lp.close()


def test_compile_events_reach_the_callback():
    import numba

    import cnncalc.kernels as K

    @numba.njit
    def fresh(x):  # a function nobody compiled yet
        return x + 1

    seen = []
    with K.on_compile(lambda name, cached: seen.append(name)):
        fresh(1)
    assert seen[0].endswith("kernel fresh") and seen[-1] is None and len(seen) == 2


class Recorder(P.Progress):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def phase(self, text, total=0):
        self.events.append(("phase", text, total))

    def step(self, done, label):
        self.events.append(("step", done, label))


def test_run_reports_each_layer():
    from cnncalc.run import run
    from cnncalc.spec import load

    rec = Recorder()
    run(load("conv2d(1, 4, 3, name='c1') relu"), (1, 8, 8), progress=rec)
    assert ("phase", "running layer", 2) in rec.events
    steps = [e[1:] for e in rec.events if e[0] == "step"]
    assert steps == [(0, "conv2d c1"), (1, "relu"), (2, "")]


def test_quiet_run_leaves_stderr_empty_and_stdout_exactly_the_result(capsys):
    assert main(["run", "-i", "1x8x8", "conv2d(1, 4, 3) relu", "-f", "json", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert json.loads(captured.out)["totals"]["all_match"]


def test_rf_empirical_accepts_quiet(capsys):
    assert (
        main(
            [
                "rf",
                "-i",
                "1x16x16",
                "conv2d(1, 2, 3) relu conv2d(2, 2, 3)",
                "--empirical",
                "-f",
                "json",
                "-q",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert captured.err == ""
    assert json.loads(captured.out)["empirical"] is not None
