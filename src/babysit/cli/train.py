"""``babysit train CONFIG``: train the run a TOML config describes.

Exit codes: 0 the run completed and its diagnosis found no error; 1 it diverged, stopped early or the diagnosis
found an error (each finding is printed: code, what was seen, what to try); 2 bad input; 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path

import typer

from babysit.cli._common import (
    EXIT_OK,
    EXIT_PROBLEM,
    console,
    friendly_errors,
    print_findings_lines,
    print_run_summary,
)
from babysit.cli._help import flag


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""
    app.command("train")(train_command)


def train_command(
    config: Path = typer.Argument(..., help="A TOML config, e.g. examples/digits_mlp.toml."),
    resume: bool = flag(False, "resume", "Continue the run in the config's folder from its last checkpoint."),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a config key: --set optimizer.lr=0.01 (repeatable)."
    ),
    overwrite: bool = flag(False, "overwrite",
                           "Replace an earlier run of the same name instead of writing to <name>-N."),
    progress: bool = flag(True, "progress", "Show the progress bar."),
) -> None:
    """Train a model with the lecture's update rules and schedules, checkpointing every epoch."""
    from babysit.config import load_config
    from babysit.train.from_config import train_from_config

    with friendly_errors():
        cfg = load_config(config, overrides)
        history = train_from_config(cfg, resume=resume, overwrite=overwrite, progress=progress)
    print_run_summary(history, console.print)
    findings = [f for f in history.findings if isinstance(f, dict) and f.get("severity") in ("error", "warning")]
    if findings:
        console.print("[bold]diagnosis[/] (babysit diagnose prints it again; the report shows it with the plots):")
        print_findings_lines(findings)
    errors = any(f.get("severity") == "error" for f in findings)
    raise typer.Exit(EXIT_OK if history.status == "completed" and not errors else EXIT_PROBLEM)
