"""``ProgressBar``: a rich progress bar over epochs that shows the last losses and accuracies."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from babysit.callbacks._base import Callback

if TYPE_CHECKING:
    from rich.progress import Progress

    from babysit.train.run import Run

__all__ = ["ProgressBar"]


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


class ProgressBar(Callback):
    """Show the epochs done, the last epoch's numbers and the time left, on stderr.

    ``fit`` adds one when stderr is a terminal (``options={"progress": False}`` turns it off, ``True`` forces it),
    so logs and CI stay clean.
    """

    order = 80

    def __init__(self, description: str = "training") -> None:
        self.description = description
        self._progress: Progress | None = None
        self._task: Any = None

    @staticmethod
    def wanted(enabled: bool | None) -> bool:
        """Whether a bar is shown: as asked, or when stderr is a terminal when nobody asked."""
        return sys.stderr.isatty() if enabled is None else bool(enabled)

    def on_fit_start(self, run: Run) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("epochs"),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), refresh_per_second=4,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=run.epochs,
                                             completed=len(run.history.epochs), stats="")

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        if self._progress is None:
            return
        stats = (
            f"loss {_fmt(record.get('train_loss'), '.4f')}  train acc {_fmt(record.get('train_acc'), '.3f')}"
            f"  val acc {_fmt(record.get('val_acc'), '.3f')}  lr {_fmt(record.get('lr'), '.2e')}"
        )
        self._progress.update(self._task, advance=1, stats=stats)

    def on_fit_end(self, run: Run, status: str) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
