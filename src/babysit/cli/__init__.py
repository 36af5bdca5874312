"""The ``babysit`` command: each subcommand lives in its own module and only calls the public API.

Exit codes: 0 success; 1 the work ran but found a problem (diverged training, a wrong gradient, an error
finding); 2 bad input (config, data, arguments); 130 interrupted (Ctrl-C / SIGTERM, progress saved).
"""

from __future__ import annotations

import logging

import typer
from rich.logging import RichHandler

from babysit.cli import demo, diagnose, export, gradcheck, report, sanity, search, train

app = typer.Typer(
    name="babysit",
    help="The CS231n learning process: check gradients, sanity-check, train while watching every layer, "
    "diagnose, search hyperparameters, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command in (demo, diagnose, export, gradcheck, report, sanity, search, train):
    command.register(app)


def _version(value: bool) -> None:
    if value:
        from babysit import __version__

        typer.echo(f"babysit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log more."),
) -> None:
    handler = RichHandler(show_time=False, show_path=False, markup=False)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    logging.getLogger("babysit").setLevel(logging.DEBUG if verbose else logging.INFO)


def main() -> None:
    """Entry point of the ``babysit`` console script."""
    app()
