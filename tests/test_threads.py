"""Threads under CPU contention, and the small-convolution path that compiles nothing.

With one busy process per core, a 2-thread `cnncalc run` must not be slower than a 1-thread
run of the same spec: `run` uses only the cores no other process wants (kernels.idle_cores),
numba's OpenMP layer with OMP_WAIT_POLICY=PASSIVE, small kernels on one thread. Before that,
LeNet-5 took ~270 ms with 2 threads against 0.2 ms with 1 on a busy machine; the timing itself
is measured by benchmarks/bench_run.py.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnncalc.kernels import _conv

ROOT = Path(__file__).resolve().parent.parent


def _spin(stop) -> None:
    while not stop.is_set():
        pass


def run_json(args: list[str], threads: int) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnncalc",
            "run",
            *args,
            "-q",
            "-f",
            "json",
            "-t",
            str(threads),
            "-r",
            "5",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    return json.loads(out)


def _hogs(n: int):
    stop = multiprocessing.Event()
    hogs = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(n)]
    for h in hogs:
        h.start()
    return stop, hogs


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


@pytest.mark.skipif(not Path("/proc/loadavg").exists() or _cores() < 2, reason="Linux, 2 cores")
def test_on_cores_busy_with_other_processes_a_run_uses_one_thread():
    """Under contention a second thread costs more than it gains (a parallel kernel waits for
    a thread pushed off its core): `run -t 2` runs on the idle cores only and says so."""
    args = [str(ROOT / "examples" / "lenet5.yaml"), "-b", "8"]
    run_json(args, 2)  # compile (or load) before the busy processes start
    stop, hogs = _hogs(_cores())
    try:
        from cnncalc import kernels as K

        busy = K.idle_cores()
        done = run_json(args, 2)
    finally:
        stop.set()
        for h in hogs:
            h.join()
    assert busy == 1
    assert (done["threads"], done["threads_asked"]) == (1, 2)
    assert done["totals"]["all_match"]


def test_the_summary_says_when_fewer_threads_ran_than_asked():
    from types import SimpleNamespace

    from cnncalc.report import _threads

    assert _threads(SimpleNamespace(threads=2, threads_asked=2)) == "2 thread(s)"
    assert _threads(SimpleNamespace(threads=1, threads_asked=2)) == (
        "1 thread(s) of 2: the other cores were busy with other processes"
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "case",
    [
        ((2, 6, 9, 11), (4, 3, 3, 2), (2, 1), (1, 0), (1, 2), 2),
        ((1, 3, 8, 8), (5, 3, 3, 3), 1, "same", 2, 1),
        ((1, 1, 32, 32), (6, 1, 5, 5), 1, 0, 1, 1),
        ((2, 4, 7), (6, 2, 3), 2, 1, 1, 2),
        ((1, 2, 4, 5, 6), (3, 2, 2, 3, 2), (1, 2, 1), 1, 1, 1),
    ],
)
def test_gemm_path_matches_the_direct_path(case, dtype):
    xs, ws, s, p, d, g = case
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(v).astype(dtype) for v in (xs, ws, ws[0]))
    nd = len(xs) - 2
    got = _conv._conv_nd(x, w, b, s, p, d, g, nd, path="gemm")
    ref = _conv._conv_nd(x, w, b, s, p, d, g, nd, path="direct")
    assert got.dtype == dtype and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_small_convolutions_take_the_gemm_path():
    x5 = np.zeros((1, 6, 1, 14, 14))
    assert _conv._select_path(x5, np.zeros((16, 6, 1, 5, 5)), 1, 2, (1, 10, 10)) == "gemm"
    big = np.zeros((8, 64, 1, 56, 56))
    assert _conv._select_path(big, np.zeros((64, 64, 1, 3, 3)), 1, 2, (1, 56, 56)) == "tile"
