"""``RunFolder``: a run's folder on disk: the checkpoint and the history after every epoch, the best
epoch's weights, and a history that always ends where the last checkpoint does.

``fit(run_dir=...)`` adds it. A Ctrl-C or SIGTERM is held while an epoch is being saved, so the checkpoint
and the history change together; after an interrupt the saved history is cut back to the last checkpoint,
so ``resume=True`` continues exactly from there. The folder is locked while the run writes it, and a new
run never writes over an earlier one (it must be resumed, or removed first).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from babysit.callbacks._base import Callback
from babysit.errors import CheckpointError
from babysit.history import HISTORY_FILE
from babysit.train._interrupt import interrupts_deferred
from babysit.train._lock import RunLock
from babysit.train.checkpoint import checkpoint_path, copy_checkpoint, save_checkpoint
from babysit.train.run import Run

log = logging.getLogger("babysit")

__all__ = ["KeepFinalState", "RunFolder"]


class RunFolder(Callback):
    """Save ``checkpoints/last.pt``, ``checkpoints/best.pt`` (highest validation accuracy) and ``history.json``.

    Args:
        folder: the run folder (created when missing).
        resume: whether the run continues the one saved in the folder (else the folder must hold no run).
    """

    order = 100  # last: the checkpoint holds every change the other callbacks made to the epoch

    def __init__(self, folder: str | Path, *, resume: bool = False) -> None:
        self.folder = Path(folder)
        self.resume = resume
        self.saved = (0, 0)  # (epochs, steps) that the last checkpoint holds
        self.lock = RunLock(self.folder)

    def on_fit_start(self, run: Run) -> None:
        self.lock.acquire()
        earlier = [p for p in (self.folder / HISTORY_FILE, checkpoint_path(self.folder, "last")) if p.exists()]
        if earlier and not self.resume:
            self.lock.release()
            raise CheckpointError(
                f"{str(self.folder)!r} already holds a run ({', '.join(p.name for p in earlier)}): continue it with "
                "resume=True (CLI: --resume), give this run another run_dir, or remove that run first "
                "(CLI: --overwrite)."
            )
        run.history.run_dir = self.folder
        self.saved = (len(run.history.epochs), len(run.history.steps["step"]))

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        with interrupts_deferred():  # checkpoint, history and `saved` change together
            last = checkpoint_path(self.folder, "last")
            save_checkpoint(last, run.checkpoint())
            best = run.history.best_epoch
            if best is not None and best["epoch"] == record["epoch"]:
                copy_checkpoint(last, checkpoint_path(self.folder, "best"))
            run.history.save()
            self.saved = (len(run.history.epochs), len(run.history.steps["step"]))

    def on_exception(self, run: Run, exc: BaseException) -> None:
        if isinstance(exc, KeyboardInterrupt):  # the saved history ends where the checkpoint does
            run.history.truncate(*self.saved)

    def on_fit_end(self, run: Run, status: str) -> None:
        if not self.lock.held:  # on_fit_start refused the folder: nothing of this run is in it
            return
        try:
            run.history.save()
        finally:
            self.lock.release()
        if status == "interrupted":
            log.warning("interrupted; resume with resume=True (CLI: --resume) from %s", self.folder)


class KeepFinalState(Callback):
    """Keep the final training state in memory as ``history.checkpoint`` (not for a diverged run), so that
    ``fit(..., resume=history)`` continues it: a search continues its promising short trials this way."""

    order = 110

    def on_fit_end(self, run: Run, status: str) -> None:
        if status != "diverged" and run.state is not None:
            run.history.checkpoint = copy.deepcopy(run.checkpoint())
