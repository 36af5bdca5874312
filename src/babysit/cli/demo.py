"""``babysit demo``: the whole lecture as one command on the built-in digits data.

Stages so far: train the digits MLP with Nesterov momentum and step decay, then print the summary.
(Gradient check, sanity checks, search and the report join as their stages land; see ARCHITECTURE.md.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from babysit.cli._common import EXIT_OK, EXIT_PROBLEM, console, friendly_errors, print_run_summary

# The same run as examples/digits_mlp.toml (a test keeps the two equal).
DEMO_CONFIG: dict[str, Any] = {
    "name": "demo",
    "seed": 0,
    "data": {"source": "digits", "normalize": "standardize"},
    "model": {"kind": "mlp", "hidden": [128, 64], "activation": "relu", "init": "he"},
    "train": {"loss": "softmax", "reg": 1e-2, "epochs": 30, "batch_size": 64},
    "optimizer": {"name": "nesterov", "lr": 0.05, "momentum": 0.9},
    "schedule": {"name": "step", "every": 10, "factor": 0.5},
}


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""
    app.command("demo")(demo_command)


def demo_command(
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where the demo's run folder goes."),
    epochs: int = typer.Option(None, "--epochs", help="Train this many epochs instead of 30.", min=1),
    overwrite: bool = typer.Option(
        True, "--overwrite/--keep", help="Replace the previous demo run (default) or keep it."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Run the lecture end to end on the built-in digits data (1,797 real 8x8 handwritten digits)."""
    from babysit.config import config_from_dict
    from babysit.train.from_config import train_from_config

    raw = {**DEMO_CONFIG, "runs_dir": str(runs_dir)}
    if epochs is not None:
        raw["train"] = {**raw["train"], "epochs": epochs}
    with friendly_errors():
        cfg = config_from_dict(raw, source="demo")
        console.rule("[bold]babysit demo[/]: digits, a 2-layer ReLU MLP, Nesterov momentum, step decay")
        console.print(
            f"stage [bold]train[/]: {cfg.train.epochs} epochs, batch {cfg.train.batch_size}, "
            f"lr {cfg.optimizer.lr} halved every {cfg.schedule.every} epochs, L2 {cfg.train.reg}"
        )
        history = train_from_config(cfg, overwrite=overwrite, progress=progress)
    print_run_summary(history, console.print)
    raise typer.Exit(EXIT_OK if history.status == "completed" else EXIT_PROBLEM)
