"""``babysit lr-find CONFIG``: the learning-rate range test on a config's model, data and update rule.

It writes ``lr_find.json`` and ``lr_find.png`` into the config's run folder (``<runs_dir>/<name>/``; a run
trained there later keeps them, and its report shows the curve) and prints the suggestion with its reason.
Exit codes: 0 a rate was suggested; 1 the curve allowed no suggestion; 2 bad input; 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from babysit.cli._common import EXIT_OK, EXIT_PROBLEM, console, friendly_errors

__all__ = ["lr_find_command", "register"]


def register(app: typer.Typer) -> None:
    """Add the ``lr-find`` command to ``app``."""
    app.command("lr-find")(lr_find_command)


def lr_find_command(
    config: Path = typer.Argument(..., help="A TOML config, e.g. examples/digits_mlp.toml."),
    steps: int = typer.Option(200, "--steps", min=20, help="Steps of the sweep from --min-lr to --max-lr."),
    min_lr: float = typer.Option(1e-6, "--min-lr", help="The first learning rate."),
    max_lr: float = typer.Option(10.0, "--max-lr", help="The last learning rate (the sweep stops once the loss "
                                                        "explodes)."),
    out: Path = typer.Option(None, "--out", help="The folder for lr_find.json and lr_find.png (default: the "
                                                 "config's run folder)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: --set optimizer.name=adam."),
) -> None:
    """Sweep the learning rate exponentially on a copy of the model; suggest a rate and show where it explodes."""
    from babysit.config import load_config
    from babysit.train.lr_find import lr_find_from_config

    with friendly_errors(interrupted="stopped; nothing was written."):
        cfg = load_config(config, overrides)
        with console.status(f"learning-rate range test: {steps} steps from {min_lr:g} to {max_lr:g} ..."):
            result = lr_find_from_config(cfg, steps=steps, min_lr=min_lr, max_lr=max_lr)
        folder = out if out is not None else cfg.run_dir
        path = result.save(folder)
        figure = result.plot()
        if figure is not None:
            figure.savefig(folder / "lr_find.png", dpi=100)
    console.print(f"[bold]learning-rate range test[/] ({escape(result.optimizer)}, {len(result.lrs)} steps)")
    if result.suggestion is not None:
        console.print(f"suggested lr [bold green]{result.suggestion:.3g}[/]", highlight=False)
    console.print(f"explodes at {'–' if result.explodes_at is None else format(result.explodes_at, '.3g')}; "
                  f"lowest loss at {'–' if result.minimum_at is None else format(result.minimum_at, '.3g')}",
                  highlight=False)
    console.print(escape(result.reason), highlight=False)
    console.print(f"curve in [bold]{escape(str(path))}[/] and lr_find.png beside it")
    raise typer.Exit(EXIT_OK if result.suggestion is not None else EXIT_PROBLEM)
