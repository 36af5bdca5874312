"""``babysit search CONFIG``: search the config's ``[search.space]`` coarse to fine; ``babysit search status DIR``.

    babysit search examples/digits_search.toml                       # master + in-process worker
    babysit search examples/digits_search.toml --workers 4           # 4 local worker processes
    babysit search CONFIG --storage postgresql://u:pw@db/babysit     # a study workers elsewhere can join
    babysit search CONFIG --worker --storage postgresql://u:pw@db/babysit   # on any other machine
    babysit search status runs/digits-search                         # the master's view

The study's URL may come from the environment instead of the command line (where ``ps`` shows it to everyone):
``BABYSIT_STORAGE=postgresql://... babysit search CONFIG``, or ``--storage '${MY_VAR}'`` / ``storage = "${MY_VAR}"``
in ``[search]``.

Ctrl-C or SIGTERM (also to a search started in the background) stops the workers, marks their running trials
``interrupted``, rewrites search.json with status ``interrupted`` and exits with 130, printing the command that
resumes the search.
"""

from __future__ import annotations

import shlex
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from babysit.cli._common import EXIT_INTERRUPTED, EXIT_OK, console, err_console, friendly_errors
from babysit.cli._help import flag


def register(app: typer.Typer) -> None:
    """Add the ``search`` command to ``app``."""
    app.command("search")(search_command)


def search_command(
    config: str = typer.Argument(..., help="A TOML config with a \\[search] table, e.g. examples/digits_search.toml "
                                           "(or `status` followed by a search folder)."),
    folder: Path = typer.Argument(None, help="With `status`: the search folder to inspect."),
    strategy: str = typer.Option(None, "--strategy", help="coarse_to_fine (default) | random | grid | bayes."),
    trials: int = typer.Option(None, "--trials", min=1, help="The most trials (split over the stages)."),
    budget_epochs: int = typer.Option(None, "--budget-epochs", min=1, help="The most epochs of all trials together."),
    workers: int = typer.Option(None, "--workers", min=1, help="Local worker processes."),
    worker: bool = typer.Option(False, "--worker", help="Join a running search as worker(s) instead of starting one."),
    storage: str = typer.Option(None, "--storage", envvar="BABYSIT_STORAGE", show_envvar=True,
                                help="Study URL, e.g. postgresql://user:pw@host/db, or ${VAR} naming an environment "
                                     "variable that holds it (default: study.journal in the search folder)."),
    ensemble: int = typer.Option(0, "--ensemble", min=0, help="Evaluate the top-K models averaged on the test split."),
    seed: int = typer.Option(None, "--seed", help="Seeds the samplers."),
    search_dir: Path = typer.Option(None, "--dir", help="The search folder (default <runs_dir>/<name>-search)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: --set train.epochs=20."),
    overwrite: bool = flag(False, "overwrite", "Start over instead of resuming the folder's search."),
    top: int = typer.Option(20, "--top", min=1, help="Rows of the trials table."),
    idle_timeout: float = typer.Option(600.0, "--idle-timeout", help="--worker: stop after waiting this long (s)."),
    progress: bool = flag(True, "progress", "Show progress bars."),
) -> None:
    """Search hyperparameters on the validation split: log ranges, coarse to fine, warnings at range edges."""
    if config == "status":
        _status(folder, storage)
        return
    if folder is not None:
        raise typer.BadParameter(f"unexpected argument {str(folder)!r}; only `babysit search status DIR` takes two.")
    from babysit.config import load_config
    from babysit.hpsearch._errors import SearchInterrupted
    from babysit.hpsearch._join import join_search
    from babysit.hpsearch._search import search

    with _interruptible(), friendly_errors():
        cfg = load_config(config, overrides)
        raw = cfg.model_dump(exclude_none=True)
        if worker:
            try:
                join_search(raw, storage=storage, search_dir=search_dir, workers=workers or 1,
                            idle_timeout_s=idle_timeout)
            except KeyboardInterrupt:
                err_console.print("[yellow]interrupted:[/] this worker stopped; its running trial was marked "
                                  "interrupted and runs again (the master or the next worker takes it).")
                raise typer.Exit(EXIT_INTERRUPTED) from None
            console.print("worker finished: the search is done (or there was no work left).")
            raise typer.Exit(EXIT_OK)
        given = {
            "strategy": strategy, "trials": trials, "budget_epochs": budget_epochs, "workers": workers,
            "storage": storage, "seed": seed, "search_dir": search_dir,
        }
        kwargs: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        try:
            result = search(raw, None, ensemble=ensemble, overwrite=overwrite, progress=progress, **kwargs)
        except SearchInterrupted as stop:
            err_console.print(f"[yellow]interrupted:[/] {escape(str(stop))}", highlight=False)
            again = _resume_command(config, given, overrides, ensemble)
            err_console.print(f"resume with: [bold]{escape(again)}[/]", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
    print_search_summary(result, top=top)
    raise typer.Exit(EXIT_OK)


@contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C and SIGTERM must reach the master even when it was started in the background, where the shell
    starts it with SIGINT ignored (or blocked): the master decides, stops its workers and saves. Put back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.getsignal(signal.SIGINT)
    if handler == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if handler == signal.SIG_IGN:
            signal.signal(signal.SIGINT, handler)


def _resume_command(config: str, given: dict[str, Any], overrides: list[str], ensemble: int) -> str:
    """The command that resumes this search (never --overwrite; a password in --storage shown as ***)."""
    from babysit._redact import env_reference, redact_url

    flags = {"strategy": "--strategy", "trials": "--trials", "budget_epochs": "--budget-epochs",
             "workers": "--workers", "seed": "--seed", "search_dir": "--dir", "storage": "--storage"}
    parts = ["babysit", "search", config]
    for key, option in flags.items():
        value = given.get(key)
        if value is None:
            continue
        if key == "storage":
            import os

            if os.environ.get("BABYSIT_STORAGE") == value:
                continue  # it came from the environment: it will again
            value = value if env_reference(value) else redact_url(value)
        parts += [option, str(value)]
    for item in overrides:
        parts += ["--set", item]
    if ensemble:
        parts += ["--ensemble", str(ensemble)]
    return shlex.join(parts)


def print_search_summary(result: Any, *, top: int = 20, print_fn: Any = console.print) -> None:
    """Print the stages and their ranges, the trials table, the warnings, the best settings and the folder."""
    from rich.table import Table

    from babysit.hpsearch.results import short_names

    stages = Table(title="stages")
    for column in ("stage", "epochs/trial", "trials", "epochs used", "sampler", "pruner", "best val acc"):
        stages.add_column(column, justify="right")
    ranges = Table(title="ranges per stage (narrowed around the best, widened at an edge)")
    ranges.add_column("parameter")
    for s in result.stages:
        best = s.get("best") or {}
        stages.add_row(
            str(s["index"]), str(s["epochs"]), str(s.get("n_trials", "–")), str(s.get("epochs_used", "–")),
            s["sampler"], s["pruner"], "–" if not best else f"{best['value']:.4f}",
        )
        ranges.add_column(f"stage {s['index']}", justify="right")
    for name, short in short_names(result.space).items():
        ranges.add_row(short, *(_range_text(s["space"].get(name)) for s in result.stages))
    print_fn(stages)
    print_fn(ranges)
    print_fn(result.table(top=top))
    for w in result.warnings:
        color = "yellow" if w.severity == "warning" else "cyan"
        print_fn(f"[{color}]{escape(w.code)}[/]: {escape(w.message)} -> {escape(str(w.suggestion))}", highlight=False)
    if result.best_value is not None:
        best = f"best validation accuracy [bold]{result.best_value:.4f}[/] with {escape(str(result.best_params))}"
        print_fn(best, highlight=False)
    if result.ensemble:
        e = result.ensemble
        print_fn(f"ensemble of the top {e['k']}: test accuracy [bold]{e['test_acc']:.4f}[/] (members: best "
                 f"{e['best_member_test_acc']:.4f}, mean {e['mean_member_test_acc']:.4f}; {e['n_test']} test examples)")
    if result.search_dir is not None:
        print_fn(f"results in [bold]{result.search_dir}[/] (search.json, trials/<number>_val<accuracy>/, study)")


def _range_text(spec: dict[str, Any] | None) -> str:
    if spec is None:
        return "–"
    if spec["kind"] == "choice":
        return ", ".join(map(str, spec["options"]))
    return f"{spec['low']:.3g} .. {spec['high']:.3g}"


def _status(folder: Path | None, storage: str | None) -> None:
    from babysit.hpsearch.status import render_status, search_status

    if folder is None:
        raise typer.BadParameter("give the search folder: babysit search status runs/<name>-search")
    with friendly_errors():
        status = search_status(folder, storage=storage)
    for line in render_status(status):
        console.print(line, highlight=False)
