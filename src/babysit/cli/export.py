"""``babysit export RUN_DIR [--out FILE]``: the whole run as one JSON file (the single-file form some tools want).

A run folder keeps its history as an append-only run log (``history.jsonl``), which is cheap to save however
long the run; this writes everything in it as one ``history.json`` (or ``--out``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from babysit.cli._common import EXIT_OK, console, friendly_errors


def register(app: typer.Typer) -> None:
    """Add the ``export`` command to ``app``."""
    app.command("export")(export_command)


def export_command(
    run_dir: Path = typer.Argument(..., help="A run folder (holding history.jsonl), e.g. runs/digits_mlp."),
    out: Path = typer.Option(None, "--out", help="Where to write the JSON file (default: RUN_DIR/history.json)."),
) -> None:
    """Write a run's whole history (epochs, steps, layers, series, histograms, findings) as one JSON file."""
    from babysit.history import HISTORY_FILE, History

    with friendly_errors():
        path = History.load(run_dir).export(out if out is not None else Path(run_dir) / HISTORY_FILE)
    console.print(f"history written to [bold]{path}[/]")
    raise typer.Exit(EXIT_OK)
