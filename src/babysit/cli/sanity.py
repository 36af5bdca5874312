"""``babysit sanity CONFIG``: the lecture's sanity checks (S1-S3) on a config's model and data, before training.

Exit codes: 0 every check passed; 1 a check failed; 2 a bad config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from babysit.cli._common import EXIT_OK, EXIT_PROBLEM, console, friendly_errors

__all__ = ["print_sanity", "register", "sanity_command"]

_MARKS = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "[dim]skip[/]"}


def register(app: typer.Typer) -> None:
    """Add the ``sanity`` command to ``app``."""
    app.command("sanity")(sanity_command)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return " < ".join(_fmt(v) for v in value) if len(value) <= 6 else f"{len(value)} values"
    return "–" if value is None else str(value)


def print_sanity(report: Any, out: Console = console) -> None:
    """Print a SanityReport as a table (one row per check) and the suggestion of every failed check."""
    table = Table(title="sanity checks (lecture S1-S3)", show_lines=False)
    for column in ("check", "result", "expected", "observed"):
        table.add_column(column)
    for check in report.checks:
        table.add_row(check.name, _MARKS[check.passed], _fmt(check.expected), _fmt(check.observed))
    out.print(table)
    for check in report.checks:
        style = "red" if check.passed is False else "dim"
        out.print(f"[{style}]{check.name}:[/] {check.message}", highlight=False)
        if check.finding is not None and check.finding.suggestion:
            out.print(f"  [yellow]try:[/] {check.finding.suggestion}", highlight=False)
    out.print("[green]all sanity checks passed[/]" if report.ok else "[bold red]a sanity check failed[/]")


def sanity_command(
    config: Path = typer.Argument(..., help="A TOML config, e.g. examples/digits_mlp.toml."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: --set model.init=normal."),
    json_out: Path = typer.Option(None, "--json", help="Also write the report as JSON to this file."),
) -> None:
    """Check the initial loss, that regularization raises the loss, and that ~20 examples can be overfit."""
    from babysit import sanity
    from babysit.config import load_config
    from babysit.train.from_config import prepare

    with friendly_errors():
        cfg = load_config(config, overrides)
        prepared = prepare(cfg)
        report = sanity.run(prepared.model, cfg.train.loss, prepared.bundle,
                            num_classes=prepared.bundle.num_classes, regularization=cfg.train.reg or None)
    print_sanity(report)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.to_dict(), indent=1, default=str), encoding="utf-8")
        console.print(f"report written to [bold]{json_out}[/]")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_PROBLEM)
