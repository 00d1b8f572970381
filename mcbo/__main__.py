"""``python -m mcbo ...``: the same as the ``mcbo`` command."""

import sys

from mcbo.cli import main

if __name__ == "__main__":
    sys.exit(main())
