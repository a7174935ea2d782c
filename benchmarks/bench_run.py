"""Cold start, warm start and threading of `cnncalc run` (issue 12), in fresh processes.

    python benchmarks/bench_run.py [--repeat 5] [--skip-all]

Each figure is printed against its goal, with the CPU time of the child processes beside the
wall time (on a shared machine the wall time also counts the waits for a core) and the load
average before the measurement:

1. Cold: `cnncalc run examples/lenet5.yaml` and `examples/resnet18.yaml` in a process whose
   kernel cache (CNNCALC_CACHE_DIR) is empty (goals: 10 s and 20 s wall on 2 cores).
2. Every kernel examples/ needs: every spec in examples/ run once (small inputs) on an empty
   cache, then again on the now-warm cache; the difference is the compile time (goal: 30 s).
3. Warm: `cnncalc run examples/lenet5.yaml` in a fresh process on a warm cache, median of
   --repeat (goal: 1.0 s), beside a bare `python -c "import numpy, numba"`.
4. Contention: with one busy-looping process per core, the kernel time (sum of the layers'
   medians) of a 1-thread and a 2-thread run of the same spec, taking turns with a second
   1-thread series that shows the noise (goal: 2 threads never slower than 1).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# the specs' own input where 3x64x64 does not fit (Inception's aux head needs 299x299)
SMALL = {"unet": "1x64x64", "lenet5": None, "lenet5_1998": None, "inception_v3": None}

RUN_ALL = """
from pathlib import Path
from cnncalc.run import run
from cnncalc.spec import load, parse_shape
small = {small!r}
for path in sorted(Path({examples!r}).glob("*.yaml")):
    shape = small.get(path.stem, "3x64x64")
    result = run(load(str(path)), None if shape is None else parse_shape(shape))
    assert result.all_match, path
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def verdict(value: float, goal: float) -> str:
    return f"goal {goal:g} s: {'met' if value <= goal else 'MISSED'} ({value / goal:.2f}×)"


def cnncalc(*args: str) -> list[str]:
    return [sys.executable, "-m", "cnncalc", *args]


def cold(env: dict[str, str]) -> None:
    for spec, goal in (("lenet5", 10.0), ("resnet18", 20.0)):
        with tempfile.TemporaryDirectory() as cache:
            state = load()
            wall, cpu = timed(
                cnncalc("run", str(EXAMPLES / f"{spec}.yaml"), "-q"),
                {**env, "CNNCALC_CACHE_DIR": cache},
            )
        print(
            f"cold  cnncalc run examples/{spec}.yaml: {wall:5.1f} s wall, {cpu:5.1f} s CPU "
            f"({state}); {verdict(wall, goal)}"
        )


def all_examples(env: dict[str, str]) -> None:
    script = RUN_ALL.format(small=SMALL, examples=str(EXAMPLES))
    with tempfile.TemporaryDirectory() as cache:
        env = {**env, "CNNCALC_CACHE_DIR": cache}
        state = load()
        cold_wall, cold_cpu = timed([sys.executable, "-c", script], env)
        warm_wall, warm_cpu = timed([sys.executable, "-c", script], env)
    n = len(list(EXAMPLES.glob("*.yaml")))
    print(
        f"cold  all {n} examples: empty cache {cold_wall:.1f} s wall ({cold_cpu:.1f} s CPU), "
        f"warm {warm_wall:.1f} s ({warm_cpu:.1f} s CPU) -> compiling {cold_wall - warm_wall:.1f} "
        f"s wall, {cold_cpu - warm_cpu:.1f} s CPU ({state}); "
        f"{verdict(cold_wall - warm_wall, 30.0)}"
    )


def warm(env: dict[str, str], repeat: int) -> None:
    """Twice: with bytecode as this environment leaves it (PYTHONDONTWRITEBYTECODE: cnncalc's
    modules compiled from source on every run) and with every module's bytecode cached (as
    after `pip install`, which compiles cnncalc)."""
    from bench_analysis import bytecode_state

    lenet = cnncalc("run", str(EXAMPLES / "lenet5.yaml"), "-q")
    with tempfile.TemporaryDirectory() as tmp:
        cached = {**env, "PYTHONPYCACHEPREFIX": tmp}
        cached.pop("PYTHONDONTWRITEBYTECODE", None)
        for label, e in ((bytecode_state(), env), ("every module's bytecode cached", cached)):
            timed(lenet, e)  # fills the kernel (and bytecode) cache if needed
            state = load()
            runs = [timed(lenet, e) for _ in range(repeat)]
            bare = [sys.executable, "-c", "import numpy, numba"]
            base = statistics.median(timed(bare, e)[0] for _ in range(repeat))
            t = statistics.median(w for w, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            print(
                f"warm  cnncalc run examples/lenet5.yaml, fresh process: {t:.2f} s wall, "
                f"{cpu:.2f} s CPU (median of {repeat}; {state}; {label}); {verdict(t, 1.0)}; "
                f"bare `import numpy, numba`: {base:.2f} s"
            )


def _spin(stop) -> None:
    while not stop.is_set():
        pass


def kernel_ms(env: dict[str, str], spec: str, threads: int, extra: list[str]) -> tuple[float, int]:
    """(kernel time in ms, threads the run used) of one `cnncalc run`."""
    out = subprocess.run(
        cnncalc("run", spec, "-q", "-f", "json", "-t", str(threads), "-r", "5", *extra),
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    obj = json.loads(out)
    return obj["totals"]["ms"], obj["threads"]


def contention(env: dict[str, str], rounds: int = 5) -> None:
    cases = [
        (str(EXAMPLES / "lenet5.yaml"), ["-b", "8"]),
        (str(EXAMPLES / "resnet18.yaml"), ["-i", "3x64x64"]),
    ]
    for spec, extra in cases:
        kernel_ms(env, spec, 2, extra)  # compile outside the measurement
    stop = multiprocessing.Event()
    hogs = [
        multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
        for _ in range(os.cpu_count() or 2)
    ]
    for h in hogs:
        h.start()
    try:
        for spec, extra in cases:
            # taking turns, so a change of load hits every series alike; a second 1-thread
            # series measures how far two identical series differ (the noise)
            series: dict[str, list[tuple[float, int]]] = {"1": [], "2": [], "1 again": []}
            for _ in range(rounds):
                for key in series:
                    series[key].append(kernel_ms(env, spec, int(key[0]), extra))
            one, two, again = (statistics.median(ms for ms, _ in series[k]) for k in series)
            used = sorted({n for _, n in series["2"]})
            name = f"{Path(spec).stem} {' '.join(extra)}"
            print(
                f"contention ({len(hogs)} busy processes) {name}: 1 thread {one:.2f} ms, "
                f"2 threads {two:.2f} ms ({'/'.join(map(str, used))} used), 1 thread again "
                f"{again:.2f} ms (kernel time, median of {rounds} runs × 5 calls, taking turns); "
                f"goal 2 threads <= 1 thread (the slower 1-thread series): "
                f"{'met' if two <= max(one, again) else 'MISSED'} ({two / max(one, again):.2f}×)"
            )
    finally:
        stop.set()
        for h in hogs:
            h.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--skip-all",
        action="store_true",
        help="skip the all-examples compile measurement (the slowest)",
    )
    args = parser.parse_args()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    print(f"cnncalc run benchmark: {os.cpu_count()} cores, {load()}")
    cold(env)
    if not args.skip_all:
        all_examples(env)
    warm(env, args.repeat)
    contention(env)


if __name__ == "__main__":
    main()
