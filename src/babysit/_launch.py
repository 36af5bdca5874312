"""The ``babysit`` console script: the command line needs the ``cli`` extra, and says so in one line without it."""

from __future__ import annotations

import sys

from babysit._extras import MissingExtraError, needs


def main() -> None:
    """Run the ``babysit`` command; without its packages, print how to install them and exit with 2."""
    try:
        with needs("cli", "the babysit command"):
            from babysit.cli import main as cli_main
    except MissingExtraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    cli_main()
