"""What the subcommands share: turning babysit's errors into exit codes, and printing summaries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from babysit.errors import BabysitError
from babysit.history import History

console = Console()
err_console = Console(stderr=True)

EXIT_OK, EXIT_PROBLEM, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Print babysit's own errors as one line and exit 2; Ctrl-C exits 130."""
    try:
        yield
    except BabysitError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted:[/] progress saved; run the same command with --resume to continue.")
        raise typer.Exit(EXIT_INTERRUPTED) from None


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
        print_fn(f"[yellow]status: {history.status}[/] — {history.stop_reason}")
    if history.run_dir is not None:
        print_fn(f"results in [bold]{history.run_dir}[/] (history.json, config.toml, checkpoints/)")
