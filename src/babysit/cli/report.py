"""``babysit report RUN_DIR [--open]``: write the run's report.html (the lecture's plots and the findings)."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import typer

from babysit.cli._common import EXIT_OK, console, friendly_errors
from babysit.cli._help import flag


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""
    app.command("report")(report_command)


def report_command(
    run_dir: Path = typer.Argument(..., help="A run folder (history.jsonl) or a search folder (search.json)."),
    open_page: bool = flag(False, "open", "Open the report in the web browser afterwards."),
) -> None:
    """Write report.html into a run folder: summary, findings, checks, the lecture's plots, search, config."""
    from babysit.reporting import report

    with friendly_errors():
        path = report(run_dir)
    console.print(f"report written to [bold]{path}[/]")
    if open_page:
        webbrowser.open(path.resolve().as_uri())
    raise typer.Exit(EXIT_OK)
