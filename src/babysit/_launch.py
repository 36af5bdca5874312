"""The ``babysit`` console script: the command line needs the ``cli`` extra, and says so in one line without it."""

from __future__ import annotations

import sys

from babysit._extras import MissingExtraError, needs


def main() -> None:
    """Run the ``babysit`` command; without its packages, print how to install them and exit with 2. A Ctrl-C
    while its modules load (torch takes seconds) stops it with one line and exit code 130, not a traceback."""
    try:
        with needs("cli", "the babysit command"):
            from babysit.cli import main as cli_main
    except MissingExtraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted: stopped while starting; nothing was written.", file=sys.stderr)
        raise SystemExit(130) from None
    cli_main()
