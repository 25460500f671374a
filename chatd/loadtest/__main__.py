"""`python -m chatd.loadtest gen-log|replay|bench ...`: the load commands without `chatd`."""

from __future__ import annotations

import argparse
import logging
import sys

from chatd.loadtest.cli import add_parsers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatd.loadtest")
    add_parsers(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
