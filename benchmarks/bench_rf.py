"""Time `cnncalc rf --empirical` on VGG-16 and ResNet-50, compilation excluded.

    python benchmarks/bench_rf.py [examples/vgg16.yaml ...]

Each spec is measured once to compile (numba caches on disk) and then timed; the figure is
the wall time of cnncalc.rf.measure (forward pass, theoretical and effective back-propagation)
and its split. The target: under 30 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cnncalc.analysis import analyze
from cnncalc.rf import measure
from cnncalc.spec import load

ROOT = Path(__file__).resolve().parent.parent
SPECS = ["examples/vgg16.yaml", "examples/resnet50.yaml"]


def main(paths: list[str]) -> None:
    for path in paths or SPECS:
        a = analyze(load(str(ROOT / path if not Path(path).is_absolute() else path)))
        measure(a)  # compile (or load the cache)
        t0 = time.perf_counter()
        e = measure(a)
        total = time.perf_counter() - t0
        split = ", ".join(f"{k} {v:.2f} s" for k, v in e.seconds.items())
        shape = "×".join(map(str, e.input_shape))
        print(
            f"{path}: {total:.2f} s on {shape} ({split}); {total / 30:.2f}× the 30 s budget; "
            "theoretical "
            f"{'×'.join(map(str, e.theoretical.size))} "
            f"{'= analytic' if e.agrees else '≠ analytic'}, effective "
            f"{'×'.join(map(str, e.effective.size))}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", help="spec files (default: VGG-16 and ResNet-50)")
    main(parser.parse_args().specs)
