import sys

from cnncalc.cli import main

sys.exit(main())
