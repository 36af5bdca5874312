"""``TensorBoardLogger``: a ``fit`` callback that writes the run's numbers as TensorBoard event files.

For people who live in TensorBoard: per-epoch scalars (``epoch/train_loss``, ``epoch/val_acc``, ...; x =
the epoch), per-step loss and learning rate (``step/loss``, ``step/lr``; x = the step), every monitor
series under its own key (``act/fc1/std``, ``ratio/fc1.weight``, ...; x = the step), the per-layer
histograms (``act/<layer>``, ``grad/<param>``) and, when the run ends, its findings as text and its settings
with its final numbers for the HParams tab (``hparams/best_val_acc``, ``hparams/final_val_loss``, ...). Each
epoch writes only what is new since the last one.
Needs the optional ``tensorboard`` package: ``pip install 'babysit[tensorboard]'``.

Example:
    >>> tb = TensorBoardLogger("runs/mine/tensorboard")  # doctest: +SKIP
    >>> h = babysit.fit(model, data, run_dir="runs/mine", callbacks=[tb])  # doctest: +SKIP
    $ tensorboard --logdir runs/mine/tensorboard
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from babysit.callbacks._base import Callback
from babysit.errors import ConfigError
from babysit.history import History

if TYPE_CHECKING:
    from babysit.train.run import Run

__all__ = ["EPOCH_SCALARS", "TB_DIR", "TensorBoardLogger"]

TB_DIR = "tensorboard"  # inside the run folder
EPOCH_SCALARS = ("train_loss", "val_loss", "data_loss", "reg_loss", "train_acc", "val_acc", "val_acc_ema", "lr",
                 "momentum")


class TensorBoardLogger(Callback):
    """Write new epochs, steps, series and histograms of a run as TensorBoard events after every epoch, and
    its findings when it ends (then the event file is closed).

    Args:
        log_dir: the event-file folder; None: ``<run_dir>/tensorboard`` of the run (a run without a folder
            then needs ``log_dir``).

    Raises:
        ConfigError: the ``tensorboard`` package is not installed (the message says how to install it).
    """

    def __init__(self, log_dir: str | Path | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ConfigError(
                f"tensorboard=true needs the tensorboard package ({exc}). Install it with "
                "pip install 'babysit[tensorboard]' (or pip install tensorboard), or set tensorboard = false."
            ) from None
        self._writer_class = SummaryWriter
        self.log_dir = None if log_dir is None else Path(log_dir)
        self._writer: Any = None
        self._epochs = 0
        self._steps = 0
        self._series: dict[str, int] = {}  # per key: the last step written (a long series thins: positions move)
        self._histograms: dict[str, int] = {}

    order = 95  # after the diagnosis: its findings are written at the end

    def on_fit_start(self, run: Run) -> None:
        if self.log_dir is None and run.run_dir is None:
            raise ConfigError("TensorBoardLogger() needs a run folder (fit(..., run_dir=...)) or a log_dir: "
                              "TensorBoardLogger('some/folder').")

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        self.write(run.history)

    def on_fit_end(self, run: Run, status: str) -> None:
        try:
            self.write(run.history)
            writer = self._open(run.history)
            if writer is not None:
                lines = [f"**{f['severity']}** `{f['code']}`: {f['message']}" + (f" (try: {f['suggestion']})"
                         if f.get("suggestion") else "") for f in run.history.findings]
                writer.add_text("babysit/findings", "\n\n".join(lines) or "no findings: nothing looks wrong",
                                run.history.num_steps)
                writer.add_text("babysit/status", f"{status}" + (f": {run.history.stop_reason}"
                                                                 if run.history.stop_reason else ""), 0)
                _add_hparams(writer, run.history)
        finally:
            self.close()

    def write(self, history: History) -> None:
        """Write what ``history`` recorded since the last call."""
        writer = self._open(history)
        if writer is None:
            return None
        for record in history.epochs[self._epochs:]:
            for key in EPOCH_SCALARS:
                if _finite(record.get(key)):
                    writer.add_scalar(f"epoch/{key}", record[key], record["epoch"])
        self._epochs = len(history.epochs)
        steps = history.steps  # by step number: its points may merge as a long run goes on
        for i, step in enumerate(steps.get("step", [])):
            if step <= self._steps:
                continue
            for key in ("loss", "lr"):
                if i < len(steps.get(key, [])) and _finite(steps[key][i]):
                    writer.add_scalar(f"step/{key}", steps[key][i], int(step))
        self._steps = int(max([self._steps, *steps.get("step", [])]))  # no step yet: a run stopped early
        for key, series in history.series.items():
            last = self._series.get(key, -1)
            for step, value in zip(series.get("step", []), series.get("value", [])):
                if step > last and _finite(value):
                    writer.add_scalar(key, value, int(step))
                    self._series[key] = int(step)
        for key, snapshots in history.histograms.items():
            last = self._histograms.get(key, -1)
            for snap in snapshots:
                if int(snap.get("step", 0)) > last:  # a snapshot at step 0 counts too
                    _add_histogram(writer, key, snap)
                    self._histograms[key] = int(snap.get("step", 0))
        writer.flush()
        return None

    def _open(self, history: History) -> Any:
        if self._writer is None:
            folder = self.log_dir or (None if history.run_dir is None else Path(history.run_dir) / TB_DIR)
            if folder is None:
                return None
            self.log_dir = folder
            self._writer = self._writer_class(log_dir=str(folder))
        return self._writer

    def close(self) -> None:
        """Flush and close the event file (also safe when nothing was written)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _add_hparams(writer: Any, history: History) -> None:
    """The run's settings and final numbers for TensorBoard's HParams tab (one session: this event file)."""
    from torch.utils.tensorboard.summary import hparams

    from babysit.integrations._tracking import flatten, hyperparameters

    last, best = history.last or {}, history.best_val_acc
    finals = {f"hparams/final_{key}": last.get(key) for key in ("train_loss", "val_loss", "train_acc", "val_acc")}
    metrics = {key: float(value) for key, value in {**finals, "hparams/best_val_acc": best}.items() if _finite(value)}
    step = int(last.get("epoch", 0))
    for summary in hparams(flatten(hyperparameters(history.meta)), metrics):
        writer.file_writer.add_summary(summary, step)
    for key, value in metrics.items():  # the HParams tab reads a metric's value from the scalar of that tag
        writer.add_scalar(key, value, step)


def _add_histogram(writer: Any, tag: str, snap: dict[str, Any]) -> None:
    """A fixed-bin histogram from the History as TensorBoard's raw histogram (moments from the bin centres)."""
    edges = np.asarray(snap.get("edges", []), dtype=float)
    counts = np.asarray(snap.get("counts", []), dtype=float)
    if len(edges) != len(counts) + 1 or counts.sum() <= 0 or not np.isfinite(edges).all():
        return
    centres = (edges[:-1] + edges[1:]) / 2
    used = np.flatnonzero(counts)
    writer.add_histogram_raw(
        tag, min=float(edges[used[0]]), max=float(edges[used[-1] + 1]), num=int(counts.sum()),
        sum=float((centres * counts).sum()), sum_squares=float((centres**2 * counts).sum()),
        bucket_limits=edges[1:].tolist(), bucket_counts=counts.tolist(), global_step=int(snap.get("step", 0)),
    )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
