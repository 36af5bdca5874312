"""``RunFolder``: a run's folder on disk: its run log and checkpoint after every epoch (and every N steps or
M minutes when asked), the best epoch's weights, and a log that always agrees with the last checkpoint.

A save is one commit: the run log gets what is new and a commit record (fsynced), then the checkpoint is
written (atomically) with the byte offset that commit ends at. A crash between the two leaves a log that
runs ahead of the checkpoint; resuming cuts it back to the offset. A checkpoint inside an epoch also holds
the epoch's sums so far and the batch order's state, so a resume continues at the next step exactly.

Saves are written by a background thread, so training does not wait for the disk: the epoch's records and a
copy of the training state are taken at once (the copy is what a ``torch.save`` reads anyway), and the writer
commits them in the same order, one save at a time; the next save, an interrupt and the run's end wait for it.
A crash while it writes loses at most that save, as a crash while writing in the foreground would.

``fit(run_dir=...)`` adds it. A Ctrl-C or SIGTERM is held while an epoch is being saved, so the checkpoint
and the history change together; after an interrupt the saved history is cut back to the last checkpoint,
so ``resume=True`` continues exactly from there. The folder is locked while the run writes it, and a new
run never writes over an earlier one (it must be resumed, or removed first).
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babysit._history_log import pending
from babysit._io import StagedFile, fsync_all, fsync_dir
from babysit._runlog import LOG_FILE, RunLog
from babysit.callbacks._base import Callback
from babysit.errors import CheckpointError
from babysit.history import HISTORY_FILE, History, holds_history
from babysit.train._interrupt import interrupts_deferred, stopped_between_steps
from babysit.train._lock import RunLock
from babysit.train._writer import BackgroundWriter, detached_copy, save_failed
from babysit.train.checkpoint import CHECKPOINT_DIR, checkpoint_path, copy_checkpoint, stage_checkpoint
from babysit.train.run import Run

if TYPE_CHECKING:
    from torch import Tensor

log = logging.getLogger("babysit")
SAVE_SHARE = 0.01  # the share of training time epoch-end saves may take when no cadence is given
FIRST_SAVE_S = 0.005  # what a save is taken to cost until one was measured

__all__ = ["KeepFinalState", "RunFolder"]


class RunFolder(Callback):
    """Save ``history.jsonl``, ``checkpoints/last.pt`` and ``checkpoints/best.pt`` (highest validation accuracy).

    Args:
        folder: the run folder (created when missing).
        resume: whether the run continues the one saved in the folder (else the folder must hold no run).
        every_steps: also checkpoint every this many steps (inside epochs), besides every epoch's end.
        every_minutes: also checkpoint when this many minutes passed since the last checkpoint.
        every_epochs: checkpoint at every this many epochs' end; None: every epoch while a save costs at most
            ``SAVE_SHARE`` of the training time since the last one, else as often as that allows (a tiny model's
            epoch can take less time than its save), and always when the run ends. A best epoch that is not
            saved at once is kept in memory and written as best.pt with the next save.
        background: write saves on a background thread (training goes on meanwhile); False writes them before
            training continues, without the copy of the training state a background save takes.
    """

    order = 100  # last: the checkpoint holds every change the other callbacks made to the epoch

    def __init__(self, folder: str | Path, *, resume: bool = False, every_steps: int | None = None,
                 every_minutes: float | None = None, every_epochs: int | None = None, background: bool = True
                 ) -> None:
        self.folder = Path(folder)
        self.resume = resume
        self.every_steps, self.every_epochs = every_steps, every_epochs
        # seconds the last save took here and on the writer; before the first, a guess: a small model's save
        self._take_cost, self._write_cost = FIRST_SAVE_S, 0.0
        self._best: dict[str, Any] | None = None  # a best epoch's state not yet written
        self._best_acc: float | None = None  # the best validation accuracy so far (no rescan of every epoch)
        self.every_seconds = None if every_minutes is None else 60.0 * every_minutes
        self.saved = (0, 0)  # (epochs, steps) that the last checkpoint holds
        self.background = background
        self._writer = BackgroundWriter(f"babysit saves {self.folder.name}")
        self.lock = RunLock(self.folder)
        self._last_save = time.monotonic()
        if every_steps is not None or every_minutes is not None:  # else no per-step call at all
            self.on_step_end = self._save_if_due  # type: ignore[method-assign]

    def on_fit_start(self, run: Run) -> None:
        self.lock.acquire()
        earlier = [p for p in (self.folder / LOG_FILE, self.folder / HISTORY_FILE, checkpoint_path(self.folder, "last"))
                   if p.exists()]
        if earlier and not self.resume:
            self.lock.release()
            raise CheckpointError(
                f"{str(self.folder)!r} already holds a run ({', '.join(p.name for p in earlier)}): continue it with "
                "resume=True (CLI: --resume), give this run another run_dir, or remove that run first "
                "(CLI: --overwrite)."
            )
        _remove_unfinished_writes(self.folder)  # of a save cut off by a crash
        run.history.run_dir = self.folder
        self._best_acc = run.history.best_val_acc  # a resumed run's epochs so far
        self.saved = (len(run.history.epochs), run.history.num_steps)
        self._last_save = time.monotonic()

    def _save_if_due(self, run: Run, loss: Tensor) -> None:
        due_steps = self.every_steps is not None and run.step % self.every_steps == 0
        if due_steps or (self.every_seconds is not None and time.monotonic() - self._last_save >= self.every_seconds):
            self.save(run)

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        is_best = self._is_best(record)
        if self._epoch_due(run):
            self.save(run, epoch_end=record, is_best=is_best)
        elif is_best:
            self._best = detached_copy(run.checkpoint())  # best.pt with the next save

    def _is_best(self, record: dict[str, Any]) -> bool:
        """Whether this epoch has the highest validation accuracy so far (the earliest wins a tie)."""
        acc = record.get("val_acc")
        if not isinstance(acc, (int, float)) or not math.isfinite(acc):
            return False
        if self._best_acc is not None and acc <= self._best_acc:
            return False
        self._best_acc = float(acc)
        return True

    def _epoch_due(self, run: Run) -> bool:
        if self.every_epochs is not None:
            return run.epoch % self.every_epochs == 0
        return time.monotonic() - self._last_save >= (self._take_cost + self._write_cost) / SAVE_SHARE

    def save(self, run: Run, epoch_end: dict[str, Any] | None = None, *, is_best: bool = False,
             final: bool = False) -> None:
        """Commit the run log, then the checkpoint that names the commit (and best.pt at a best epoch's end).

        ``final``: the run's last save, which fit waits for, so it is written on this thread."""
        with interrupts_deferred():  # the log, the checkpoint and `saved` change together
            try:
                payload = run.checkpoint()  # inside an epoch this reads the steps so far into the History first
            except CheckpointError as exc:  # a callback's state no checkpoint can hold: say what the folder keeps
                self._writer.wait(raise_error=False)
                raise CheckpointError(f"{exc} {self._kept_for_a_fix()}") from None
            if run.tally is not None and run.tally.diverged:
                return  # nothing after the last good checkpoint is worth continuing
            started = time.perf_counter()
            records, replace = pending(run.history, self.folder)
            is_best = epoch_end is not None and is_best
            best, self._best = (None if is_best else self._best), None
            commit = functools.partial(_commit, self.folder, records, replace, is_best=is_best, best=best)
            counts = (len(run.history.epochs), run.history.num_steps)
            if self.background and not final:
                self._writer.submit(functools.partial(self._commit, commit, detached_copy(payload), counts))
            else:  # the final save is waited for anyway: written here, from the live state (training is over)
                self._commit(commit, payload, counts)
            self._take_cost = time.perf_counter() - started
            self._last_save = time.monotonic()

    def _commit(self, commit: Callable[[dict[str, Any]], CheckpointError | None], payload: dict[str, Any],
                counts: tuple[int, int]) -> None:
        began = time.perf_counter()
        try:
            best_failed = commit(payload)
        except OSError as exc:
            raise save_failed("saving the run", exc) from exc
        self.saved = counts  # only once it is on disk: an interrupt cuts the history back to here
        self._write_cost = time.perf_counter() - began
        if best_failed is not None:  # the log and last.pt are committed: the run's end is on disk
            raise best_failed

    def _kept_for_a_fix(self) -> str:
        """What the folder holds of the run, for an error that stops it before a save."""
        if self.saved[1]:
            return "The run's last checkpoint is intact: fix the callback, then continue with resume=True."
        return ("Nothing of this run was checkpointed yet: fix the callback, then start it again with another "
                "run_dir (or remove this one).")

    def on_exception(self, run: Run, exc: BaseException) -> None:
        self._writer.wait(raise_error=False)  # the save in flight completes (or fails) first
        if isinstance(exc, KeyboardInterrupt):
            if stopped_between_steps(exc):
                self._save_interrupted(run)
            run.history.truncate(*self.saved)  # the saved history ends where the checkpoint does

    def _save_interrupted(self, run: Run) -> None:
        """Save where an interrupted run stopped: between two steps or epochs, where what was trained is
        consistent (a resume continues at the next step). A save that fails keeps the last one that completed."""
        steps = run.history.num_steps if run.tally is None else run.tally.first_step + run.tally.steps
        if (len(run.history.epochs), steps) == self.saved:
            return  # saved there already
        try:
            self.save(run)
            self._writer.wait()
        except (CheckpointError, OSError) as exc:
            log.warning("%s", exc)

    def on_fit_end(self, run: Run, status: str) -> None:
        if not self.lock.held:  # on_fit_start refused the folder: nothing of this run is in it
            return
        try:
            self._writer.wait(raise_error=status != "failed")  # the save in flight first: `saved` is then on disk
            unsaved = len(run.history.epochs) > self.saved[0] or self._best is not None
            if status in ("completed", "stopped") and run.tally is None and unsaved:
                self.save(run, final=True)  # the run's end is always on disk (epochs skipped by the time budget
                self._writer.wait()  # included); that save holds the final status and findings too
            else:
                if status == "diverged":
                    reason = run.history.stop_reason or "the loss diverged"
                    run.history.stop_reason = f"{reason}; {self._kept_after_divergence()}"
                run.history.save()
        finally:
            self._writer.close()
            self.lock.release()
        if status == "interrupted":
            epochs, steps = self.saved
            if steps:
                log.warning("interrupted; %s holds the run up to step %d (%d epochs done): resume=True (CLI: --resume) "
                            "continues it from there", self.folder, steps, epochs)
            else:
                log.warning("interrupted before the run's first save; resume=True (CLI: --resume) starts it again "
                            "from the beginning in %s", self.folder)

    def _kept_after_divergence(self) -> str:
        """Which checkpoint a diverged run keeps, in words (true also when it diverged before its first save)."""
        epochs, steps = self.saved
        if steps:
            return (f"the last good checkpoint was kept ({self.folder}/checkpoints/last.pt, step {steps}, "
                    f"{epochs} epochs done)")
        return ("no checkpoint was written: the run diverged before its first save, so there is nothing to resume; "
                "start it again with a lower learning rate (see its diagnosis)")


def saved_point(folder: Path) -> tuple[str, History | None]:
    """How far the run in ``folder`` was saved, which decides what a resume does, with its saved History:

    - ``"checkpoint"``: it continues from ``last.pt``;
    - ``"untrained"``: a run log with no epoch and no step (stopped before training saved anything): a resume
      starts it again from its beginning, and the same seed trains the same run;
    - ``"uncheckpointed"``: a log with epochs or steps but no checkpoint (failed or diverged before its first
      save): nothing can be continued, and the record is not replaced by a resume;
    - ``"none"``: no run log and no checkpoint.
    """
    if checkpoint_path(folder, "last").exists():
        return "checkpoint", None
    if not holds_history(folder):
        return "none", None
    saved = History.load(folder)
    return ("untrained" if not saved.epochs and saved.num_steps == 0 else "uncheckpointed"), saved


def _commit(folder: Path, records: list[dict[str, Any]], replace: bool, payload: dict[str, Any], *, is_best: bool,
            best: dict[str, Any] | None = None) -> CheckpointError | None:
    """One save on disk: the run log's records and commit, the checkpoint naming the commit's offset, and best.pt
    (a copy of it at a best epoch, else a best epoch kept since the last save).

    Every file is written first, then all are made durable at once (their fsyncs overlap), then the checkpoints
    are put in place: the log's fsync comes before the checkpoint's rename, so a checkpoint never names records
    a crash could still take away. A best.pt that cannot be written is left out, and its error returned."""
    last, best_path = checkpoint_path(folder, "last"), checkpoint_path(folder, "best")
    log = RunLog(folder)
    if replace:
        payload["log_offset"] = log.rewrite(records)
    else:
        payload["log_offset"] = log.append(records, sync=False)
    staged: list[StagedFile] = []
    best_failed = None
    try:
        staged.append(_staged(last, payload))
        if best is not None and not is_best and not _same_point(best, payload):  # an earlier epoch's
            try:
                staged.append(_staged(best_path, best))
            except CheckpointError as exc:  # the commit goes on without it: the run's end matters more
                best_failed = exc
        log_files = [] if replace else [log.path, *([folder] if log.created else [])]  # a new log's name too
        fsync_all([*log_files, *(file.tmp for file in staged)])  # at once: the disk takes them together
        for file in staged:
            file.put_in_place()  # after the log's fsync: what the checkpoint names is on disk
    finally:
        for file in staged:
            file.tmp.unlink(missing_ok=True)  # of a commit that failed (a file put in place was renamed away)
    if is_best or (best is not None and _same_point(best, payload)):  # the best epoch is this one
        copy_checkpoint(last, best_path, sync_folder=False)
    fsync_dir(last.parent)  # the renames
    return best_failed


def _staged(path: Path, payload: dict[str, Any]) -> StagedFile:
    """A checkpoint written beside ``path``; a disk error names the file."""
    try:
        return stage_checkpoint(path, payload)
    except OSError as exc:
        raise save_failed(f"saving the run's {path.name}", exc) from exc


def _remove_unfinished_writes(folder: Path) -> None:
    """Remove the temporary files of a save that failed (this run holds the lock: nobody else writes here)."""
    for stale in [*folder.glob(".*.tmp"), *folder.glob(f"{CHECKPOINT_DIR}/.*.tmp")]:
        stale.unlink(missing_ok=True)


def _same_point(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two checkpoints of the same moment of training (a best epoch kept in memory, and the save at its end)."""
    same = (a.get("epoch"), a.get("num_steps")) == (b.get("epoch"), b.get("num_steps"))
    return same and a.get("tally") is None and b.get("tally") is None


class KeepFinalState(Callback):
    """Keep the final training state in memory as ``history.checkpoint`` (not for a diverged run), so that
    ``fit(..., resume=history)`` continues it: a search continues its promising short trials this way."""

    order = 110

    def on_fit_end(self, run: Run, status: str) -> None:
        if status != "diverged" and run.state is not None:
            run.history.checkpoint = copy.deepcopy(run.checkpoint())
