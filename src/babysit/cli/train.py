"""``babysit train CONFIG``: train the run a TOML config describes.

Exit codes: 0 the run completed and its diagnosis found no error; 1 it diverged, stopped early or the diagnosis
found an error (each finding is printed: code, what was seen, what to try); 2 bad input; 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from babysit.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PROBLEM,
    console,
    err_console,
    friendly_errors,
    print_findings_lines,
    print_run_summary,
)
from babysit.cli._help import flag

if TYPE_CHECKING:
    from babysit.config import RunConfig
    from babysit.train.from_config import RunInterrupted


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
    with friendly_errors(interrupted="stopped before training began; nothing was written."):
        from babysit.config import load_config
        from babysit.errors import ConfigError
        from babysit.train.from_config import RunInterrupted, train_from_config

        if resume and overwrite:
            raise ConfigError("--resume and --overwrite contradict each other: --resume continues the run in the "
                              "config's folder, --overwrite replaces it with a new one; give one of them.")
        cfg = load_config(config, overrides)
        try:
            history = train_from_config(cfg, resume=resume, overwrite=overwrite, progress=progress)
        except RunInterrupted as stop:
            err_console.print(f"[yellow]interrupted:[/] {escape(interrupted_line(stop, cfg, resume))}",
                              highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
    print_run_summary(history, console.print)
    if history.status == "diverged" and history.run_dir is not None \
            and not (history.run_dir / "checkpoints" / "last.pt").exists():
        console.print(f"[yellow]no checkpoint to resume:[/] {escape(_restart_hint(history))}", highlight=False)
    findings = [f for f in history.findings if isinstance(f, dict) and f.get("severity") in ("error", "warning")]
    if findings:
        console.print("[bold]diagnosis[/] (babysit diagnose prints it again; the report shows it with the plots):")
        print_findings_lines(findings)
    errors = any(f.get("severity") == "error" for f in findings)
    raise typer.Exit(EXIT_OK if history.status == "completed" and not errors else EXIT_PROBLEM)


def interrupted_line(stop: RunInterrupted, cfg: RunConfig, resume: bool) -> str:
    """What an interrupted ``babysit train`` kept and the command that goes on from there (always true: it is
    read from the run folder after the interrupt)."""
    folder = stop.run_dir
    if folder is None or stop.removed:
        kept = "the run is as it was" if resume else "no run was kept"
        return f"stopped before training saved anything, so {kept}; run the same command again" + (
            "." if resume else " to start.")
    again = "--resume" if folder == cfg.run_dir else f"--resume --set name={folder.name}"
    if stop.saved:
        return f"progress saved in {folder}; run the same command with {again} to continue."
    if stop.resumable:
        return (f"{folder} holds no checkpoint yet (the run stopped before its first save); run the same command "
                f"with {again} to start it again from its beginning.")
    return f"nothing new was saved in {folder}: it is as it was before this command."


def _restart_hint(history: Any) -> str:
    """How to start a run again that diverged before its first checkpoint: --overwrite, with the diagnosis' rate."""
    rates = {f["evidence"].get("recommended_lr") for f in history.findings
             if isinstance(f, dict) and isinstance(f.get("evidence"), dict)} - {None}
    rate = f" --set optimizer.lr={rates.pop():g}" if len(rates) == 1 else ""
    why = "with the diagnosis' learning rate" if rate else "once the diagnosis below is fixed"
    return f"start it again {why}: the same command with --overwrite{rate}."
