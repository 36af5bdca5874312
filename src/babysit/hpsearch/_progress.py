"""The master's progress bar: one line per stage, filled in epochs (or trials), best accuracy so far."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from babysit.hpsearch import _ledger


class SearchProgress:
    """A rich progress display of a search's stages (a no-op when disabled)."""

    def __init__(self, enabled: bool | None, plan: Sequence[Any]) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.n = len(plan)
        self._progress: Any = None
        self._task: Any = None
        self._stage: dict[str, Any] | None = None

    def __enter__(self) -> SearchProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
                TextColumn("best {task.fields[best]}"), TimeElapsedColumn(), console=Console(stderr=True),
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start_stage(self, stage: dict[str, Any]) -> None:
        self._stage = stage
        if self._progress is None:
            return
        by_epochs = stage.get("budget_epochs") is not None
        total = stage["budget_epochs"] if by_epochs else stage.get("trials")
        self._task = self._progress.add_task(
            f"stage {stage['index']}/{self.n} · {stage['epochs']}-epoch trials",
            total=total, unit="epochs" if by_epochs else "trials", best="–",
        )

    def update(self, study: Any, trials: list[Any] | None = None) -> None:
        if self._progress is None or self._stage is None:
            return
        trials = study.get_trials(deepcopy=False) if trials is None else trials
        count, epochs = _ledger.usage(trials, self._stage["index"])
        done = epochs if self._stage.get("budget_epochs") is not None else count
        values = [t.value for t in trials if t.value is not None and t.state.name == "COMPLETE"]
        self._progress.update(self._task, completed=done, best=f"{max(values):.4f}" if values else "–")
