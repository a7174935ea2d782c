"""Speed of the analytic path (issue 2, section 6), with ratios measured in the same run.

    python benchmarks/bench_analysis.py [--repeat 7]

1. Start-up: wall time of ``cnncalc shapes`` on a 20-layer spec against a bare
   ``python -c "import typer, rich, pydantic, yaml"`` (target: ratio <= 1.3), and a check
   that numba is never imported on that path. Measured twice: with bytecode as this
   environment leaves it (with ``PYTHONDONTWRITEBYTECODE`` and no ``__pycache__``, cnncalc's
   ~7,000 lines on that path are compiled on every run, while typer, rich, pydantic and yaml
   come precompiled from site-packages), and with every module's bytecode cached on both
   sides (as after ``pip install``, which compiles cnncalc).
2. Scale: parse + analyse specs of 1,000 to 10,000 layers in-process (target: 10,000 layers
   in under a second, cost linear in layers — the per-layer time should stay flat).
3. The whole command: ``cnncalc shapes -f json`` on a 10,000-layer YAML file against the same
   command on a 10-layer one (read, validate, analyse, write JSON; target: < 1 s more).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this tree's cnncalc, as `python -m cnncalc` run from ROOT

CHAIN = [
    {"type": "conv2d", "out_channels": 32, "kernel_size": 3, "padding": 1},
    {"type": "batchnorm2d"},
    {"type": "relu"},
    {"type": "maxpool2d", "kernel_size": 2, "ceil_mode": True},
]


def spec_text(n_layers: int) -> str:
    import yaml

    layers = [dict(CHAIN[i % len(CHAIN)]) for i in range(n_layers)]
    for i, layer in enumerate(layers):
        if layer["type"] == "maxpool2d" and i > 12:  # keep the map from vanishing
            layer.update(type="identity")
            layer.pop("kernel_size")
            layer.pop("ceil_mode")
    return yaml.safe_dump({"input": [3, 224, 224], "layers": layers})


def wall(cmd: list[str], repeat: int) -> float:
    return walls({"": cmd}, repeat)[""]


def walls(cmds: dict[str, list[str]], repeat: int, env=None) -> dict[str, float]:
    """Median wall time of each command; the commands take turns, so a change in the load
    of the machine hits all of them alike."""
    times: dict[str, list[float]] = {key: [] for key in cmds}
    for _ in range(repeat):
        for key, cmd in cmds.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=env)
            times[key].append(time.perf_counter() - t0)
    return {key: statistics.median(t) for key, t in times.items()}


def bytecode_state() -> str:
    """Whether this environment runs cnncalc from cached bytecode."""
    source = ROOT / "cnncalc" / "cli.py"
    cached = Path(importlib.util.cache_from_source(str(source)))
    if cached.exists() or not sys.flags.dont_write_bytecode:
        return "bytecode as this environment leaves it: cnncalc's cached"
    return "bytecode as this environment leaves it: cnncalc compiled from source every run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    py = sys.executable

    with tempfile.TemporaryDirectory() as tmp:
        spec20 = Path(tmp, "twenty.yaml")
        spec20.write_text(spec_text(20))
        cmds = {"base": [py, "-c", "import typer, rich, pydantic, yaml"]}
        for fmt in ("table", "json"):
            cmds[fmt] = [py, "-m", "cnncalc", "shapes", str(spec20), "--format", fmt]
        state = bytecode_state()
        cached_env = {**os.environ, "PYTHONPYCACHEPREFIX": str(Path(tmp, "bytecode"))}
        cached_env.pop("PYTHONDONTWRITEBYTECODE", None)
        walls(cmds, 1, cached_env)  # compiles and caches everything both sides import
        for label, env in ((state, None), ("every module's bytecode cached", cached_env)):
            t = walls(cmds, args.repeat, env)
            base = t["base"]
            for fmt in ("table", "json"):
                print(
                    f"startup  cnncalc shapes (20 layers, {fmt:5}) {t[fmt] * 1e3:7.1f} ms   "
                    f"bare imports {base * 1e3:6.1f} ms   ratio {t[fmt] / base:4.2f}  "
                    f"(target <= 1.3; {label})"
                )
        probe = subprocess.run(
            [
                py,
                "-c",
                "import sys; from cnncalc.cli import main; "
                f"main(['shapes', {str(spec20)!r}, '-f', 'json']); "
                "print('numba' in sys.modules, file=sys.stderr)",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        print(f"numba imported by `cnncalc shapes`: {probe.stderr.strip().splitlines()[-1]}")
        small, big = Path(tmp, "ten.yaml"), Path(tmp, "tenk.yaml")
        small.write_text(spec_text(10))
        big.write_text(spec_text(10_000))
        cmd = [py, "-m", "cnncalc", "shapes", "--format", "json"]
        t_small = wall([*cmd, str(small)], args.repeat)
        t_big = wall([*cmd, str(big)], max(3, args.repeat // 2))
        print(
            f"command  shapes -f json: 10 layers {t_small:5.2f} s, 10,000 layers {t_big:5.2f} s"
            f" = {t_big - t_small:+.2f} s  (target: < +1 s)"
        )

    from cnncalc.analysis import analyze
    from cnncalc.spec import parse_text

    print("\nlayers   parse+validate  analyse   total    per layer")
    for n in (1_000, 2_500, 5_000, 10_000):
        text = spec_text(n)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            spec = parse_text(text)
            t1 = time.perf_counter()
            analyze(spec)
            t2 = time.perf_counter()
            if t2 - t0 < best:
                best, parse_t, analyse_t = t2 - t0, t1 - t0, t2 - t1
        print(
            f"{n:>6}   {parse_t * 1e3:9.1f} ms {analyse_t * 1e3:8.1f} ms {best * 1e3:7.1f} ms "
            f"{best / n * 1e6:7.1f} µs"
        )
    print("(target: 10,000 layers in under 1 s, per-layer time flat)")


if __name__ == "__main__":
    main()
