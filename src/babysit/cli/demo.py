"""``babysit demo [digits|tabular|images|text]``: the whole lecture as one command on the built-in digits data
(the other workload families live in ``_demo_families``).

Stages, in the lecture's order, each printing what it found:
  1. gradient check of the demo model, data loss and L2 apart      (L-G)
  2. sanity checks: initial loss, regularization, overfit 20 digits (L-S)
  3. a short coarse-to-fine search of lr, L2, width and momentum   (L-H)
  4. the final training with the best settings, every layer watched (L-U L-A L-B), and its diagnosis
  5. the report: one HTML page with all of the above               (L-B1..B6)
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any

import typer

from babysit.cli._common import EXIT_OK, EXIT_PROBLEM, console, friendly_errors, print_run_summary
from babysit.cli._help import flag

# The same run as examples/digits_mlp.toml (a test keeps the two equal): what the demo trains when the
# search is skipped, and the base config the search varies.
DEMO_CONFIG: dict[str, Any] = {
    "name": "demo",
    "seed": 0,
    "data": {"source": "digits", "normalize": "standardize"},
    "model": {"kind": "mlp", "hidden": [128, 64], "activation": "relu", "init": "he"},
    "train": {"loss": "softmax", "reg": 1e-2, "epochs": 30, "batch_size": 64},
    "optimizer": {"name": "nesterov", "lr": 0.05, "momentum": 0.9},
    "schedule": {"name": "step", "every": 10, "factor": 0.5},
}
SEARCH_BUDGET_EPOCHS = 120  # all trials of the demo's search together


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""
    app.command("demo")(demo_command)


def demo_command(
    family: str = typer.Argument("digits", help="digits (the whole lecture), tabular (wine and breast-cancer CSV "
                                 "files), images (shapes32 with a ResNet) or text (a transformer on Python source)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where the demo's run folders go."),
    epochs: int = typer.Option(None, "--epochs", min=1,
                               help="Train the final model this many epochs instead of 30 (a family's own: 8-20)."),
    search: bool = flag(True, "search", "Run the coarse-to-fine search stage."),
    progress: bool = flag(True, "progress", "Show progress bars."),
) -> None:
    """Run the lecture end to end on the built-in digits data (1,797 real 8x8 handwritten digits), or on
    another workload family."""
    from babysit.config import config_from_dict

    started = time.perf_counter()
    if family != "digits":
        _demo_family(family, runs_dir, epochs, progress)
        return
    raw = {**copy.deepcopy(DEMO_CONFIG), "runs_dir": str(runs_dir)}
    with friendly_errors(interrupted="run babysit demo again to start over."):
        console.rule("[bold]babysit demo[/]: the CS231n learning process on 1,797 real handwritten digits")
        cfg = config_from_dict(raw, source="demo")
        sections = {"gradcheck": _stage_gradcheck(cfg), "sanity": _stage_sanity(cfg)}
        if search:
            raw, sections["search"] = _stage_search(raw, runs_dir, progress)
        if epochs is not None:
            raw["train"] = {**raw["train"], "epochs": epochs}
        history = _stage_train(config_from_dict(raw, source="demo"), progress)
        report_path = _stage_report(history, sections)
    console.rule(f"done in {time.perf_counter() - started:.0f} s")
    console.print(
        f"report: [bold]{report_path}[/]  (open it in a browser; `babysit report {history.run_dir}` redraws it)"
    )
    raise typer.Exit(EXIT_OK if history.status == "completed" else EXIT_PROBLEM)


def _demo_family(family: str, runs_dir: Path, epochs: int | None, progress: bool) -> None:
    """``babysit demo tabular|images|text``: every stage but the search, on that family's data and model."""
    from babysit.cli._common import EXIT_BAD_INPUT
    from babysit.cli._demo_families import FAMILIES, run_family

    if family not in FAMILIES:
        console.print(f"unknown demo {family!r}; choose one of: {', '.join(FAMILIES)}.")
        raise typer.Exit(EXIT_BAD_INPUT)
    started = time.perf_counter()
    with friendly_errors(interrupted=f"run babysit demo {family} again to start over."):
        histories = run_family(family, runs_dir, epochs=epochs, progress=progress)
    console.rule(f"done in {time.perf_counter() - started:.0f} s")
    raise typer.Exit(EXIT_OK if all(h.status == "completed" for h in histories) else EXIT_PROBLEM)


def _stage_gradcheck(cfg: Any) -> dict[str, Any]:
    from babysit.cli.gradcheck import report_table, run_gradcheck_target
    from babysit.train.from_config import gradcheck_target

    console.rule("[bold]1. gradient check[/] (L-G): centered differences in float64, data loss and L2 apart")
    model, loss_fn, X, y, *reg = gradcheck_target(cfg)
    report = run_gradcheck_target(model, loss_fn, X, y, regularization=reg[0] if reg else None)
    console.print(report_table(report))
    return report.to_dict()


def _stage_sanity(cfg: Any) -> dict[str, Any]:
    from babysit import sanity
    from babysit.cli.sanity import print_sanity
    from babysit.train.from_config import prepare

    console.rule("[bold]2. sanity checks[/] (L-S): before training on everything")
    prepared = prepare(cfg)
    report = sanity.run(prepared.model, cfg.train.loss, prepared.bundle, regularization=cfg.train.reg)
    print_sanity(report)
    return report.to_dict()


def _stage_search(raw: dict[str, Any], runs_dir: Path, progress: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    from babysit.cli.search import print_search_summary
    from babysit.hpsearch.demo import run_demo_search

    console.rule("[bold]3. hyperparameter search[/] (L-H): log ranges, coarse (1 epoch) to fine (longer runs)")
    result = run_demo_search(runs_dir, budget_epochs=SEARCH_BUDGET_EPOCHS, progress=progress, config=raw)
    print_search_summary(result, top=8)
    best = result.best_config or raw
    return {**best, "name": raw["name"], "runs_dir": raw["runs_dir"]}, {**result.to_dict(),
                                                                       "search_dir": str(result.search_dir)}


def _stage_train(cfg: Any, progress: bool) -> Any:
    from babysit.cli.diagnose import print_findings
    from babysit.train.from_config import train_from_config

    console.rule("[bold]4. training[/] (L-U L-A L-B): the best settings, every layer watched")
    console.print(
        f"{cfg.train.epochs} epochs, batch {cfg.train.batch_size}, {cfg.optimizer.name} lr {cfg.optimizer.lr:.3g}, "
        f"L2 {cfg.train.reg:.3g}, {_model_shape(cfg.model)}", highlight=False,
    )
    history = train_from_config(cfg, overwrite=True, progress=progress)
    print_run_summary(history, console.print)
    print_findings(history.findings)
    return history


def _model_shape(model: Any) -> str:
    """``hidden [128, 64]`` for an MLP, the kind's own settings for a ResNet or a transformer."""
    if model.args:
        return f"{model.kind} " + ", ".join(f"{k} {v}" for k, v in model.args.items())
    return f"hidden {model.hidden}"


def _stage_report(history: Any, sections: dict[str, Any]) -> Path:
    import babysit

    console.rule("[bold]5. report[/] (L-B1..B6): the lecture's plots and every finding on one page")
    search = sections.get("search")
    if search and search.get("search_dir"):  # the report finds the trials' loss curves from the run folder
        search["search_dir"] = os.path.relpath(search["search_dir"], history.run_dir)
    history.sections.update(sections)
    history.save()
    return babysit.report(history.run_dir)
