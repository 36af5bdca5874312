"""What the subcommands share: turning errors into one line and an exit code, and printing summaries.

Every error reaches the terminal as one line that names the problem and what to do, with its secrets hidden
(``babysit._redact``) and no traceback; ``babysit --debug ...`` (or ``BABYSIT_DEBUG=1``) adds the traceback.
babysit's own errors and other bad input exit with 2; an interrupt with 130.
"""

from __future__ import annotations

import json
import os
import re
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from babysit._redact import RewritingFilter, redact_text
from babysit.errors import BabysitError
from babysit.history import History

try:  # typer >= 0.22 carries its own copy of click
    from typer._click import exceptions as _click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as _click_exceptions  # type: ignore[no-redef]

console = Console()
err_console = Console(stderr=True)

EXIT_OK, EXIT_PROBLEM, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
_PASS_THROUGH: tuple[type[BaseException], ...] = tuple({typer.Exit, typer.Abort} | {
    getattr(_click_exceptions, name) for name in ("ClickException", "Exit", "Abort") if hasattr(_click_exceptions, name)
})


class _Settings:
    debug: bool = os.environ.get("BABYSIT_DEBUG", "") not in ("", "0", "false")


settings = _Settings()


# Messages the library writes for its Python API, as the command line says them (the library names both forms,
# "resume=True (CLI: --resume)"; on the command line only the flag is true).
_CLI_WORDING: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bpass \w+=True \(CLI: (--[\w-]+)\)"), r"add \1"),
    (re.compile(r"\b\w+=True \(CLI: (--[\w-]+)\)"), r"\1"),
    (re.compile(r" ?\(CLI: (--[\w-]+)\)"), r" (\1)"),
    (re.compile(r"another run_dir\b"), "another name (--set name=...)"),
    (re.compile(r"pass space=\{\.\.\.\} or add"), "add"),
    (re.compile(r"\(data\.load\(\.\.\., normalize='standardize'\)\)"), '(data.normalize = "standardize")'),
    (re.compile(r"use device='auto' or 'cpu'"), "use --set device=auto or --set device=cpu"),
)


def cli_wording(text: str) -> str:
    """``text`` with the Python API's wording (``resume=True``, ``overwrite=True``) put as the command line's."""
    for pattern, replacement in _CLI_WORDING:
        text = pattern.sub(replacement, text)
    return text


class CliWordingFilter(RewritingFilter):
    """A ``logging`` filter that puts log lines in the command line's wording (:func:`cli_wording`)."""

    def rewrite(self, text: str) -> str:
        return cli_wording(text)


def error_line(exc: BaseException) -> str:
    """One line for an error: babysit's own message as it is, anything else with what it means; never a secret."""
    if isinstance(exc, BabysitError):
        text = str(exc)
    elif isinstance(exc, json.JSONDecodeError):
        text = (f"a JSON file is damaged (not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                "was it cut short or edited by hand? Write it again (train or search again) or restore it.")
    elif isinstance(exc, UnicodeDecodeError):
        text = "a file that should be text is not (it holds binary data); check the file you gave."
    elif isinstance(exc, OSError) and exc.filename is not None:
        text = f"cannot use {exc.filename}: {exc.strerror or exc}. Check the path and its permissions."
    elif isinstance(exc, MemoryError):
        text = "out of memory; use a smaller batch_size, a smaller model or less data."
    else:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        text = (f"{type(exc).__name__}: {message} (an error babysit did not expect here: check the input; "
                "babysit --debug ... shows the traceback)")
    return redact_text(cli_wording(text))


def print_error(exc: BaseException) -> None:
    """Print ``exc`` as one line on stderr (and its traceback with --debug)."""
    if settings.debug:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        err_console.print(escape(redact_text(text)), highlight=False, soft_wrap=True)
    err_console.print(f"[bold red]error:[/] {escape(error_line(exc))}", highlight=False)


STOPPED = "stopped by Ctrl-C or SIGTERM."


@contextmanager
def friendly_errors(interrupted: str = STOPPED) -> Iterator[None]:
    """Print every error as one line and exit 2 (bad input); Ctrl-C / SIGTERM print ``interrupted`` and exit 130."""
    try:
        yield
    except _PASS_THROUGH:
        raise
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted:[/] {escape(interrupted)}", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        print_error(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def print_findings_lines(findings: list[Any], print_fn: Callable[..., None] | None = None) -> None:
    """Each finding on its own lines: severity and code, what was seen, what to try."""
    print_fn = print_fn or console.print
    styles = {"error": "bold red", "warning": "yellow", "info": "cyan"}
    for f in findings:
        get = f.get if isinstance(f, dict) else lambda name, _f=f: getattr(_f, name, None)
        severity, code = get("severity") or "info", get("code") or "?"
        print_fn(f"[{styles.get(severity, '')}]{escape(str(severity))}[/] [bold]{escape(str(code))}[/]: "
                 f"{escape(cli_wording(str(get('message') or '')))}", highlight=False)
        if get("suggestion"):
            print_fn(f"  [dim]try:[/] {escape(cli_wording(str(get('suggestion'))))}", highlight=False)


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def epochs_table(history: History, every: int | None = None) -> Table:
    """A table of per-epoch numbers (every ``every``-th epoch plus the last when many)."""
    table = Table(title="epochs", show_lines=False)
    for column in ("epoch", "train loss", "data loss", "reg loss", "train acc", "val loss", "val acc", "lr"):
        table.add_column(column, justify="right")
    n = len(history.epochs)
    stride = every or max(1, n // 10)
    for e in history.epochs:
        if e["epoch"] % stride and e["epoch"] != n:
            continue
        table.add_row(
            str(e["epoch"]), _fmt(e["train_loss"], ".4f"), _fmt(e["data_loss"], ".4f"), _fmt(e["reg_loss"], ".4f"),
            _fmt(e["train_acc"], ".3f"), _fmt(e["val_loss"], ".4f"), _fmt(e["val_acc"], ".3f"), _fmt(e["lr"], ".3g"),
        )
    return table


def print_run_summary(history: History, print_fn: Callable[..., None] = console.print) -> None:
    """Print the epochs table, the best epoch and where everything went."""
    print_fn(epochs_table(history))
    best = history.best_epoch
    if best is not None:
        print_fn(f"best validation accuracy [bold]{best['val_acc']:.4f}[/] at epoch {best['epoch']}")
    if history.status != "completed":
        print_fn(f"[yellow]status: {escape(str(history.status))}[/] — {escape(str(history.stop_reason))}")
    if history.run_dir is not None:
        folder = history.run_dir
        written = [name for name in ("history.jsonl", "config.toml", "checkpoints/", "report.html")
                   if (folder / name.rstrip("/")).exists()] or ["history.jsonl"]  # history.json, before
        print_fn(f"results in [bold]{escape(str(folder))}[/] ({', '.join(written)})")
