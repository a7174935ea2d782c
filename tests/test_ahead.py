"""Compiling ahead (cnncalc/ahead.py): on a cold cache a helper process compiles the kernels
of a run's later layers into the shared cache, skipping the one the run is compiling.

Each test runs in a subprocess with a temporary CNNCALC_CACHE_DIR (as in tests/test_cache.py):
the helper compiles into the cache of the process that starts it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnncalc import ahead
from cnncalc.progress import Progress
from tests.test_cache import ROOT, SPEC, cnncalc

# starts the helper on every layer of SPEC as a run would, waits for it to end, prints what
# it compiled; argv[1]: what the run is compiling ("relu" or nothing)
HELPER = """
import sys, time
import numpy as np, numba
from cnncalc import ahead, kernels as K
from cnncalc.analysis import analyze
from cnncalc.execute import plan_from
from cnncalc.kernels import _elementwise as E
from cnncalc.spec import load
plan = plan_from(analyze(load({spec!r}), (1, 8, 8)))
boards = {boards!r}
busy = ""
if sys.argv[1:] == ["relu"]:
    vector = numba.typeof(np.zeros(16, np.float32))
    busy = ahead._key({{"dispatcher": E._relu, "args": (vector, vector)}})
open(boards + "/run", "w").write(busy)
proc = ahead.start(plan, ahead._order(plan, list(plan)), "float32", 1, boards)
proc.wait()
print(sorted(ahead.stop(proc)))
"""


def helper(tmp_path, *args: str) -> list[str]:
    (tmp_path / "boards").mkdir()
    script = HELPER.format(spec=SPEC, boards=str(tmp_path / "boards"))
    done = cnncalc_py(tmp_path / "cache", script, *args)
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip())  # a printed list of str


def cnncalc_py(cache_dir, script: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CNNCALC_CACHE_DIR": str(cache_dir),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=600
    )


def test_the_helper_compiles_every_layer_into_the_shared_cache(tmp_path):
    assert helper(tmp_path) == ["element-wise kernel relu", "pooling kernel max_pool2d"]
    # a run afterwards finds both compiled
    again = cnncalc(["warmup", SPEC, "-i", "1x8x8", "-f", "json"], tmp_path / "cache")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["total"]["kernels"] == 0


def test_the_helper_leaves_the_kernel_the_run_is_compiling_to_the_run(tmp_path):
    assert helper(tmp_path, "relu") == ["pooling kernel max_pool2d"]


def test_a_cold_run_with_the_helper_compiles_each_kernel_once_and_matches(tmp_path):
    first = cnncalc(["warmup", SPEC, "-i", "1x8x8", "-f", "json"], tmp_path)
    assert first.returncode == 0, first.stderr
    [row] = json.loads(first.stdout)["specs"]
    # the run compiles max pooling and starts the helper, which compiles relu meanwhile
    # (or leaves it to the run, which then compiles it): either way each once
    assert sorted(row["compiled"]) == ["element-wise kernel relu", "pooling kernel max_pool2d"]
    done = cnncalc(["run", SPEC, "-i", "1x8x8", "-f", "json"], tmp_path)
    assert json.loads(done.stdout)["totals"]["all_match"]


class Recorder(Progress):
    def __init__(self) -> None:
        self.events: list = []

    def compiling(self, kernel, cached=True) -> None:
        self.events.append(kernel)

    def compiled_ahead(self, kernels) -> None:
        self.events.append(tuple(kernels))


@pytest.mark.parametrize(
    "enabled, spare, cache_on, expect",
    [
        (True, 1, True, True),
        (False, 1, True, False),
        (True, 0, True, False),
        (True, 1, False, False),
    ],
)
def test_the_helper_runs_only_with_a_disk_cache_and_a_spare_core(
    monkeypatch, enabled, spare, cache_on, expect
):
    from cnncalc import cache

    setting = cache.Setting(Path("/nowhere") if cache_on else None)
    monkeypatch.setattr(cache, "configure", lambda: setting)
    monkeypatch.setattr(ahead, "spare_cores", lambda: spare)
    watch = ahead.Ahead(Recorder(), {}, "float32", 1, enabled=enabled)
    assert watch.enabled is expect


def test_progress_passes_through_to_the_inner_display():
    inner = Recorder()
    with ahead.Ahead(inner, {}, "float32", 1, enabled=False) as watch:
        watch.compiling("pooling kernel max_pool2d")
        watch.compiling(None)
    assert inner.events == ["pooling kernel max_pool2d", None]


class FakeHelper:
    def __init__(self, running: bool = True) -> None:
        self.running = running

    def poll(self):
        return None if self.running else 0


def test_the_run_waits_for_a_kernel_the_helper_is_compiling_then_calls_again(tmp_path):
    import numpy as np
    from numba import typeof

    from cnncalc.kernels import _elementwise as E

    vector = typeof(np.zeros(4, np.float32))
    data = {"dispatcher": E._relu, "args": (vector, vector)}
    key = ahead._key(data)
    inner = Recorder()
    watch = ahead.Ahead(inner, {0: None, 1: None}, "float32", 1, enabled=False)
    watch.boards, watch.helper = tmp_path, FakeHelper()
    (tmp_path / ahead.HELPER).write_text(key)
    with pytest.raises(ahead.Busy) as busy:
        watch._started(data)
    assert busy.value.args == (key, "element-wise kernel relu")
    assert (tmp_path / ahead.RUN).exists() is False  # the run does not compile it

    calls = []

    def forward(inputs):
        calls.append(inputs)
        if len(calls) == 1:
            (tmp_path / ahead.HELPER).write_text("")  # the helper is done when the run looks
            raise ahead.Busy(key, "element-wise kernel relu")
        return "output"

    assert watch.call(forward, ["x"]) == "output"
    assert calls == [["x"], ["x"]]
    assert inner.events == ["element-wise kernel relu, in the helper process", None]


def test_the_run_compiles_itself_when_the_helper_has_ended(tmp_path):
    import numpy as np
    from numba import typeof

    from cnncalc.kernels import _elementwise as E

    vector = typeof(np.zeros(4, np.float32))
    data = {"dispatcher": E._relu, "args": (vector, vector)}
    watch = ahead.Ahead(Recorder(), {0: None}, "float32", 1, enabled=False)
    watch.boards, watch.helper = tmp_path, FakeHelper(running=False)
    (tmp_path / ahead.HELPER).write_text(ahead._key(data))  # left over: no one is compiling
    watch._started(data)  # no Busy
    assert (tmp_path / ahead.RUN).read_text() == ahead._key(data)


def test_the_helper_takes_the_convolutions_first_then_the_rest_last_first():
    from cnncalc.analysis import analyze
    from cnncalc.execute import plan_from
    from cnncalc.spec import load

    plan = plan_from(analyze(load("conv2d(1, 2, 3) relu conv2d(2, 2, 3) maxpool2d(2)"), (1, 8, 8)))
    assert [plan[i].row.type for i in ahead._order(plan, list(plan))] == [
        "conv2d",
        "conv2d",
        "maxpool2d",
        "relu",
    ]
    assert ahead._order(plan, [1, 2, 3]) == [2, 3, 1]


def test_a_start_aborted_by_one_listener_leaves_the_others_balanced():
    """When the run's compile listener raises Busy on a start, numba does not tell the
    listeners registered after it of that start but does send them its end; the progress
    listener must still report the next compile."""
    import numba
    import numpy as np

    from cnncalc import kernels as K

    @numba.njit(cache=False)
    def twice(x):
        return x * 2

    seen, refused = [], []

    def refuse_once(data):  # registered first, as the run's listener is
        if not refused:
            refused.append(data)
            raise ahead.Busy("key", "name")

    with K.compile_events(refuse_once, lambda data, ok: None):
        with K.on_compile(lambda name, cached: seen.append(name)):
            with pytest.raises(ahead.Busy):
                twice(np.zeros(2))
            twice(np.zeros(2))  # compiled now, and reported
    assert seen == ["kernel twice", None]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists() or ahead.spare_cores() < 1,
                    reason="Linux /proc, 2 cores")  # fmt: skip
def test_a_killed_run_leaves_no_helper_and_no_boards_behind(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        **os.environ,
        "CNNCALC_CACHE_DIR": str(tmp_path / "cache"),
        "TMPDIR": str(temp),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    spec = "relu6 sigmoid hardtanh(-2, 2) silu gelu mish elu softplus selu celu hardswish"
    run = subprocess.Popen(
        [sys.executable, "-m", "cnncalc", "run", "-i", "1x64x64", spec, "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    helpers: list[int] = []
    while not helpers and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        helpers = _children(run.pid)
    assert helpers, "the run started no helper"
    run.kill()
    run.wait()
    deadline = time.monotonic() + 120
    while any(_alive(h) for h in helpers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(h) for h in helpers)
    assert list(temp.glob("cnncalc-ahead-*")) == []
