"""``python -m cnncalc`` and the ``cnncalc`` console script.

Importing the CLI (Typer, Rich, pydantic) takes a moment: a Ctrl-C then is one line too.

The garbage collector: start-up creates many objects that live as long as the process
(modules, pydantic's validators and schemas). Collecting while they are made only walks
them again and again, and the collections at exit walk them once more; frozen (moved out of
the collector's generations, ``gc.freeze``) they are never walked. Measured with
``benchmarks/bench_analysis.py``: ~40 ms of a ~200 ms ``cnncalc shapes``. The collector stays
on while the command works, so a big spec or a long ``run`` is collected as usual; only the
process entry point does this (``cnncalc.cli.main`` called in-process leaves gc alone).
"""

import gc
import sys


def main() -> int:
    try:
        return _main()
    except KeyboardInterrupt:
        sys.stderr.write("cnncalc: aborted\n")
        return 130


def _main() -> int:
    gc.disable()
    try:
        from cnncalc.cli import main as cli_main
    finally:
        gc.freeze()
        gc.enable()
    code = cli_main()
    gc.freeze()  # what is left dies with the process: the collections at exit skip it
    return code


if __name__ == "__main__":
    sys.exit(main())
