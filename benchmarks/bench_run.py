"""Compile cost and cached start-up of `cnncalc run` (issue 3), measured in fresh processes.

    python benchmarks/bench_run.py

1. Cold compile: every spec in examples/ run once (small inputs) in a process whose numba
   cache directory is empty, then again in a second process on the now-warm cache; the
   difference is the compile time of every kernel the examples need (target: within 60 s).
2. Cached start-up: `cnncalc run examples/lenet5.yaml` in a fresh process on a warm cache,
   median of several (target: <= 1.5 s), beside a bare `python -c "import numpy, numba"`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"unet": "1x64x64", "lenet5": None, "lenet5_1998": None}

RUN_ALL = """
import sys
from pathlib import Path
from cnncalc.run import run
from cnncalc.spec import load, parse_shape
small = {small!r}
for path in sorted(Path({examples!r}).glob("*.yaml")):
    shape = small.get(path.stem, "3x64x64")
    result = run(load(str(path)), None if shape is None else parse_shape(shape))
    assert result.all_match, path
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    script = RUN_ALL.format(small=SMALL, examples=str(ROOT / "examples"))
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cold = timed([py, "-c", script], env)
        warm = timed([py, "-c", script], env)
        print(f"all {len(list((ROOT / 'examples').glob('*.yaml')))} examples: cold cache "
              f"{cold:.1f} s, warm cache {warm:.1f} s -> compiling took {cold - warm:.1f} s "
              f"({(cold - warm) / 60:.2f}× the 60 s budget)")
        lenet = [py, "-m", "cnncalc", "run", str(ROOT / "examples" / "lenet5.yaml")]
        runs = [timed(lenet, env) for _ in range(args.repeat)]
        base = statistics.median(timed([py, "-c", "import numpy, numba"], env)
                                 for _ in range(args.repeat))
        t = statistics.median(runs)
        print(f"cnncalc run examples/lenet5.yaml, warm cache, fresh process: {t:.2f} s "
              f"(median of {args.repeat}; {t / 1.5:.2f}× the 1.5 s budget); "
              f"bare `import numpy, numba`: {base:.2f} s (ratio {t / base:.1f})")


if __name__ == "__main__":
    main()
