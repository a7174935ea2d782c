"""cnncalc — size convolutional networks from a layer spec, exactly as PyTorch computes them.

Library use::

    from cnncalc import load, analyze
    result = analyze(load("Conv2d(3, 4, kernel_size=3, padding=2)"), (3, 100, 100))
    result.rows[0].output_shape  # (4, 102, 102)

Heavy modules (numba kernels) are never imported from here, so `cnncalc shapes` starts fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "analyze", "load", "parse_text"]


def __getattr__(name: str):  # lazy: `import cnncalc` stays cheap for the CLI
    if name == "analyze":
        from cnncalc.analysis import analyze

        return analyze
    if name in ("load", "parse_text"):
        from cnncalc import spec

        return getattr(spec, name)
    raise AttributeError(f"module 'cnncalc' has no attribute {name!r}")
