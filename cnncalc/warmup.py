"""``cnncalc warmup``: compile, ahead of time, the kernels that ``cnncalc run`` needs.

The kernels a run compiles depend on the input size, not only on the layer types: small
convolutions go through numpy's im2col + BLAS (nothing to compile), larger ones through a
register-tiled kernel whose tile shape depends on the channels. So each spec is *run once*,
exactly as ``cnncalc run SPEC`` would (its own input unless one is given, batch 1, float32),
with numba's compile events counted (:func:`cnncalc.kernels.on_compile`): what is compiled
lands in the kernel cache (:mod:`cnncalc.cache`), and a second warm-up compiles nothing.
With ``rf``, each spec's receptive field is then measured as ``cnncalc rf SPEC --empirical``
measures it (same input, same enlargement): its backward kernels, float32 and float64, are
compiled too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cnncalc.progress import SILENT, Progress

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class Warmed:
    """One spec: how long its run took and which kernels numba compiled for it."""

    spec: str
    seconds: float
    kernels: tuple[str, ...]


def default_specs() -> list[Path]:
    """Every spec in the ``examples/`` directory beside the package (a source checkout)."""
    from cnncalc.errors import UsageError

    found = sorted([*EXAMPLES.glob("*.yaml"), *EXAMPLES.glob("*.yml"), *EXAMPLES.glob("*.json")])
    if not found:
        raise UsageError(f"no SPEC given and no specs in {EXAMPLES}: name the specs to warm up")
    return found


class _Per(Progress):
    """Forwards a run's progress under the spec's name and collects its compiles."""

    def __init__(self, inner: Progress, prefix: str) -> None:
        self.inner, self.prefix = inner, prefix
        self.compiled: list[str] = []

    def phase(self, text: str, total: int = 0) -> None:
        self.inner.phase(f"{self.prefix}: {text}", total)

    def step(self, done: int, label: str) -> None:
        self.inner.step(done, label)

    def compiling(self, kernel: str | None, cached: bool = True) -> None:
        if kernel is not None:
            self.compiled.append(kernel)
        self.inner.compiling(kernel, cached)

    def compiled_ahead(self, kernels: list[str]) -> None:
        self.compiled += [k for k in kernels if k not in self.compiled]  # both may compile one


def warmup(
    specs: Sequence[tuple[str, object]],
    input_shape: tuple[int, ...] | None = None,
    *,
    batch: int = 1,
    dtype: str = "float32",
    rf: bool = False,
    progress: Progress = SILENT,
) -> list[Warmed]:
    """Run each ``(label, Spec)`` once (with ``rf``, measure its receptive field too); per
    spec the wall time and the kernels compiled."""
    from cnncalc.errors import SpecError
    from cnncalc.rf import receptive_fields
    from cnncalc.run import run

    out = []
    for k, (label, spec) in enumerate(specs):
        per = _Per(progress, f"{label} ({k + 1}/{len(specs)})")
        t0 = time.perf_counter()
        run(spec, input_shape, batch=batch, dtype=dtype, progress=per)  # type: ignore[arg-type]
        if rf:
            try:
                receptive_fields(spec, input_shape, empirical=True, progress=per)  # type: ignore[arg-type]
            except SpecError as exc:  # several specs: say which one, and that --rf asked it
                raise SpecError(f"{exc} (--rf)", where=label) from None
        out.append(Warmed(label, time.perf_counter() - t0, tuple(per.compiled)))
    return out


def render(rows: list[Warmed], fmt: str, cache: str) -> str:
    """One line per spec and a total (``fmt`` ``json``: an object with the same figures)."""
    seconds = sum(r.seconds for r in rows)
    kernels = sum(len(r.kernels) for r in rows)
    if fmt == "json":
        import json

        obj = {
            "cache": cache,
            "specs": [
                {
                    "spec": r.spec,
                    "seconds": round(r.seconds, 3),
                    "kernels": len(r.kernels),
                    "compiled": list(r.kernels),
                }
                for r in rows
            ],
            "total": {"seconds": round(seconds, 3), "kernels": kernels},
        }
        return json.dumps(obj, indent=2) + "\n"
    width = max([len(r.spec) for r in rows] + [5])
    lines = [
        f"{r.spec:<{width}}  {r.seconds:7.1f} s  {len(r.kernels):3d} kernels compiled" for r in rows
    ]
    lines.append(f"{'total':<{width}}  {seconds:7.1f} s  {kernels:3d} kernels compiled")
    lines.append(f"kernel cache: {cache}")
    return "\n".join(lines) + "\n"
