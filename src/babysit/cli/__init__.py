"""The ``babysit`` command: each subcommand lives in its own module and only calls the public API.

Exit codes: 0 success; 1 the work ran but found a problem (diverged training, a wrong gradient, an error
finding); 2 bad input (config, data, arguments) or any other error, printed as one line (``--debug`` adds the
traceback); 130 interrupted (Ctrl-C / SIGTERM, progress saved).
"""

from __future__ import annotations

import logging
import os

import typer
from rich.logging import RichHandler
from typer.core import TyperGroup

from babysit.cli import demo, diagnose, doctor, export, gradcheck, lr_find, report, sanity, search, train
from babysit.cli._common import CliWordingFilter, friendly_errors, settings
from babysit.cli._help import Command, Context, HelpFormatter, bare_flags


class _Babysit(TyperGroup):
    """The command group: an error that a subcommand did not turn into an exit code itself still ends as one line
    and exit code 2 (never a traceback, unless --debug)."""

    def invoke(self, ctx: Context) -> object:
        with friendly_errors():
            return super().invoke(ctx)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            bare_flags(command, ctx)  # --resume, not --resume <bool>
        return command

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        bare_flags(self, ctx)
        super().format_help(ctx, formatter)


app = typer.Typer(
    cls=_Babysit,
    name="babysit",
    help="The CS231n learning process: check gradients, sanity-check, train while watching every layer, "
    "diagnose, search hyperparameters, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command in (demo, diagnose, doctor, export, gradcheck, lr_find, report, sanity, search, train):
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
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error (after its one-line message)."),
) -> None:
    from babysit._redact import RedactingFilter

    settings.debug = debug or os.environ.get("BABYSIT_DEBUG", "") not in ("", "0", "false")
    handler = RichHandler(show_time=False, show_path=False, markup=False)
    handler.addFilter(RedactingFilter())  # no log line shows a password
    handler.addFilter(CliWordingFilter())  # --resume, not resume=True
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    logging.getLogger("babysit").setLevel(logging.DEBUG if verbose else logging.INFO)


def main() -> None:
    """Entry point of the ``babysit`` console script."""
    app()
