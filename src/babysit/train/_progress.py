"""A rich progress bar over epochs that shows the last losses and accuracies."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


class EpochProgress:
    """``with EpochProgress(enabled, total=epochs) as bar: bar.update(epoch, record)``.

    ``enabled=None`` shows the bar only when stderr is a terminal, so logs and CI stay clean.
    """

    def __init__(self, enabled: bool | None, total: int, completed: int = 0, description: str = "training") -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.total, self.completed, self.description = total, completed, description
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> EpochProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("epochs"),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                refresh_per_second=4,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, completed=self.completed, stats="")
        return self

    def update(self, record: dict[str, Any]) -> None:
        """Advance one epoch and show its numbers."""
        if self._progress is None:
            return
        stats = (
            f"loss {_fmt(record.get('train_loss'), '.4f')}  train acc {_fmt(record.get('train_acc'), '.3f')}"
            f"  val acc {_fmt(record.get('val_acc'), '.3f')}  lr {_fmt(record.get('lr'), '.2e')}"
        )
        self._progress.update(self._task, advance=1, stats=stats)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
