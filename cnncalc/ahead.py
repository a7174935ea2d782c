"""Compile ahead: a second process compiles the kernels of a run's later layers meanwhile.

numba compiles one kernel at a time on one core. When a run meets its first uncompiled
kernel (a cold cache), :class:`Ahead` starts a helper process (``python -m cnncalc.ahead``)
on a spare core, which runs the run's remaining layers one by one, last layer first, each on
random input of its predicted shape. What it compiles lands in the shared kernel cache
(:mod:`cnncalc.cache`); the run, coming from the other end, loads those kernels from disk
instead of compiling them. Measured by ``benchmarks/bench_run.py`` (cold ResNet-18: one core
compiles for ~17 s; two meet in the middle).

The two never compile the same kernel at once: each writes the kernel it is compiling on a
board (a file in a shared temporary directory), cleared when the layer that compiled it
returns (numba writes a kernel to the cache after its compile-end event). The helper skips
a layer whose kernel the run is compiling; the run, meeting the kernel the helper is
compiling, waits for it and loads it.
The helper takes the convolutions first (the register-tiled kernel is the longest compile,
~10 s), then the other layers, last first.

The helper only ever adds to the cache, which numba writes atomically (a file is renamed into
place), so stopping it at any moment (the run is over) leaves nothing half-written. It is
started only when the cache is on disk (a kernel compiled in memory cannot be shared) and
the process may use more than one core; it runs at a lower priority, on one thread, writes
the names of the kernels it compiled on its stdout and nothing else: whatever it does not
compile, the run compiles itself.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnncalc.progress import Progress

NICE = 5  # the run itself keeps priority when both want the same core


def spare_cores() -> int:
    """Cores this process may use, besides the one the run is on."""
    from cnncalc import kernels as K

    return K.usable_cores() - 1


class Busy(Exception):
    """The other process is compiling this very kernel."""


class Ahead(Progress):
    """Forwards a run's progress to ``inner``; on the run's first compile starts the helper
    on the layers after the one running. The run calls each layer first through
    :meth:`call`, which waits for a kernel the helper is compiling."""

    def __init__(
        self, inner: Progress, plan: dict, dtype: str, batch: int, enabled: bool = True
    ) -> None:
        from cnncalc import cache

        self.inner, self.plan, self.dtype, self.batch = inner, plan, dtype, batch
        self.at = 0  # the position of the row being run
        self.helper: subprocess.Popen | None = None
        self.boards: Path | None = None  # what each process is compiling
        # a kernel compiled in memory cannot be shared; a spec that fits one core needs none
        self.enabled = enabled and cache.configure().directory is not None and spare_cores() > 0
        self.events = None  # the compile events this run listens to

    def __enter__(self) -> Ahead:
        if self.enabled:
            from cnncalc import kernels as K

            self.events = K.compile_events(self._started, lambda data, ok: None)
            self.events.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.close()  # not inner's: its owner closes it

    def close(self) -> None:
        if self.events is not None:
            self.events.__exit__(None, None, None)
            self.events = None
        if self.helper is not None:
            done = stop(self.helper)
            if done:
                self.inner.compiled_ahead(done)
            self.helper = None
        if self.boards is not None:
            shutil.rmtree(self.boards, ignore_errors=True)
            self.boards = None

    def phase(self, text: str, total: int = 0) -> None:
        self.inner.phase(text, total)

    def step(self, done: int, label: str) -> None:
        self.at = done
        self.inner.step(done, label)

    def compiling(self, kernel: str | None, cached: bool = True) -> None:
        self.inner.compiling(kernel, cached)

    def call(self, forward, inputs):
        """``forward(inputs)``; while it meets a kernel the helper is compiling, wait for the
        helper and call again (the kernel then loads from the cache)."""
        while True:
            try:
                return forward(inputs)
            except Busy as busy:
                self._wait(*busy.args)
            finally:
                self._done()

    def _wait(self, key: str, name: str, poll: float = 0.02, limit: float = 600.0) -> None:
        assert self.boards is not None and self.helper is not None
        self.inner.compiling(f"{name}, in the helper process")
        deadline = time.monotonic() + limit
        while self.helper.poll() is None and time.monotonic() < deadline:
            if _read(self.boards / HELPER) != key:
                break
            time.sleep(poll)
        self.inner.compiling(None)

    def _started(self, data: dict) -> None:
        if self.helper is None and self.boards is None:
            rest = list(self.plan)[self.at + 1 :]
            if not rest:
                return
            self.boards = Path(tempfile.mkdtemp(prefix="cnncalc-ahead-"))
            order = _order(self.plan, rest)
            self.helper = start(self.plan, order, self.dtype, self.batch, self.boards)
        if self.boards is not None:
            key = _key(data)
            helping = self.helper is not None and self.helper.poll() is None
            if helping and _read(self.boards / HELPER) == key:
                from cnncalc.kernels import kernel_name

                raise Busy(key, kernel_name(data["dispatcher"]))  # numba still sends the end
            (self.boards / RUN).write_text(key)

    def _done(self) -> None:
        """The layer returned: what it compiled is in the cache now (numba writes a kernel to
        the cache after its compile-end event, so the board is not cleared at that event)."""
        if self.boards is not None:
            (self.boards / RUN).write_text("")


RUN, HELPER = "run", "helper"  # the boards: what each process is compiling


def _read(board: Path) -> str:
    try:
        return board.read_text()
    except OSError:
        return ""


def _order(plan: dict, rows: list[int]) -> list[int]:
    """The helper's order: convolutions first, then the rest; each last layer first."""
    from cnncalc.layers import CONV_ND

    last_first = rows[::-1]
    conv = [i for i in last_first if plan[i].row.type in CONV_ND]
    return conv + [i for i in last_first if plan[i].row.type not in CONV_ND]


def _key(data: dict) -> str:
    """One compile: the kernel and its argument types."""
    func = data["dispatcher"].py_func
    return f"{func.__module__}.{func.__qualname__}{data['args']}"


def start(
    plan: dict, order: list[int], dtype: str, batch: int, boards: Path
) -> subprocess.Popen | None:
    """The helper process, fed ``(nodes in order, dtype, batch, boards, the run's pid)`` on
    its stdin."""
    payload = pickle.dumps(([plan[i] for i in order], dtype, batch, str(boards), os.getpid()))
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cnncalc.ahead"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_child_env(),
        )
        assert proc.stdin is not None
        proc.stdin.write(payload)
        proc.stdin.close()
    except OSError:  # no process to spare: the run compiles everything itself
        return None
    return proc


def _child_env() -> dict[str, str]:
    """The run's environment with its kernel cache pinned (the helper must share it)."""
    from cnncalc import cache

    env = dict(os.environ)
    directory = cache.configure().directory
    if directory is not None:
        env[cache.ENV] = str(directory.parent)
    return env


def stop(proc: subprocess.Popen) -> list[str]:
    """End the helper; the kernels it compiled (it writes their names as it goes)."""
    if proc.poll() is None:
        proc.kill()  # numba renames each cache file into place: nothing is left half-written
    assert proc.stdout is not None
    names = proc.stdout.read().decode("utf-8", "replace").splitlines()
    proc.stdout.close()
    proc.wait()
    return names


class _Skip(Exception):
    """The run is compiling this very kernel: the helper leaves it to the run."""


def main() -> None:
    """The helper: run each node's forward once on random input of its predicted shapes,
    skipping a node whose kernel the run is compiling at that moment."""
    import numpy as np

    nodes, dtype, batch, boards, parent = pickle.load(sys.stdin.buffer)
    run_board, own_board = Path(boards, RUN), Path(boards, HELPER)
    os.nice(NICE)
    from cnncalc import kernels as K
    from cnncalc.execute import Context, steps_for
    from cnncalc.run import DTYPES

    def started(data: dict) -> None:
        key = _key(data)
        if not run_board.parent.exists() or _read(run_board) == key:
            raise _Skip  # the run is over, or compiling this kernel itself
        own_board.write_text(key)

    def ended(data: dict, ok: bool) -> None:
        if ok:  # the board is cleared when the layer returns: numba caches after this event
            print(K.kernel_name(data["dispatcher"]), flush=True)

    K.set_num_threads(1)
    np_dtype = DTYPES[dtype]
    rng = np.random.default_rng(0)
    ctx = Context(theoretical=False, rng=rng, dtype=np_dtype, batch=batch, record=False)
    with K.compile_events(started, ended):
        for node in nodes:
            if os.getppid() != parent:  # the run was killed
                break
            index = node.row.index
            try:
                step = steps_for({index: node}, [index], ctx)[index]
                shapes = node.in_shapes
                step.forward([rng.standard_normal((batch, *s), dtype=np_dtype) for s in shapes])
                K.clear_scratch()
            except Exception:  # noqa: BLE001 -- the run itself reports what fails
                continue
            finally:
                if own_board.parent.exists():
                    own_board.write_text("")
    if os.getppid() != parent:  # nobody but the helper is left to clean up
        shutil.rmtree(boards, ignore_errors=True)


if __name__ == "__main__":
    main()
