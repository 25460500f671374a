"""`python -m chatd ...`: the `chatd` command."""

import sys

from chatd.process.cli import main

if __name__ == "__main__":
    sys.exit(main())
