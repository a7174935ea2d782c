"""``python -m cnncalc`` and the ``cnncalc`` console script.

Importing the CLI (Typer, Rich, pydantic) takes a moment: a Ctrl-C then is one line too.
"""

import sys


def main() -> int:
    try:
        from cnncalc.cli import main as cli_main

        return cli_main()
    except KeyboardInterrupt:
        sys.stderr.write("cnncalc: aborted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
