"""How ``--help`` reads: a flag takes no value, so it shows none.

typer prints a type after every option, ``<bool>`` after flags too, which reads as if ``--resume=true`` were
accepted (it is refused: "Option '--resume' does not take a value"). A flag's type is left empty instead; the
``--x / --no-x`` pair beside it says how to turn it on and off.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperOption

try:  # typer >= 0.22 carries its own copy of click
    from typer._click import Command, Context, HelpFormatter
except ImportError:  # pragma: no cover
    from click import Command, Context, HelpFormatter  # type: ignore[assignment]

__all__ = ["Command", "Context", "HelpFormatter", "bare_flags", "flag"]


def bare_flags(command: Command, ctx: Context) -> None:
    """Show no value type after the flags of ``command`` (its own ``--help`` included)."""
    for param in command.get_params(ctx):
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""


def flag(default: bool, name: str, help: str) -> Any:
    """A boolean setting as typer's ``--name/--no-name`` pair (so a script can state either value)."""
    return typer.Option(default, f"--{name}/--no-{name}", help=help)
