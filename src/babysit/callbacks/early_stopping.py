"""``EarlyStopping``: stop when a metric of the epoch records has not improved for ``patience`` epochs.

Training longer than the validation accuracy keeps improving only fits the training set better (lecture
B3: the gap to validation grows); the best weights are the best epoch's (``checkpoints/best.pt``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from babysit.callbacks._base import Callback, StopTraining
from babysit.errors import ConfigError

if TYPE_CHECKING:
    from babysit.train.run import Run

__all__ = ["EarlyStopping"]


class EarlyStopping(Callback):
    """Raise :class:`StopTraining` once ``metric`` has not improved by more than ``min_delta`` in ``patience``
    epochs in a row.

    Args:
        metric: a key of the epoch records (``val_acc``, ``val_loss``, ``train_loss``, ``val_acc_ema``, ...).
        patience: epochs without improvement before stopping, >= 1.
        mode: ``"max"`` (accuracies) or ``"min"`` (losses); default: ``"min"`` for keys with "loss" in them.
        min_delta: the least change that counts as an improvement, >= 0.

    Example:
        >>> stopper = EarlyStopping("val_acc", patience=3)
        >>> # babysit.fit(model, data, epochs=100, callbacks=[stopper])
    """

    def __init__(self, metric: str = "val_acc", patience: int = 5, *, mode: str | None = None,
                 min_delta: float = 0.0) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"EarlyStopping patience must be an integer >= 1, got patience={patience!r}.")
        mode = mode or ("min" if "loss" in metric else "max")
        if mode not in ("min", "max"):
            raise ConfigError(f"EarlyStopping mode must be 'min' or 'max', got mode={mode!r}.")
        if not (isinstance(min_delta, (int, float)) and min_delta >= 0):
            raise ConfigError(f"EarlyStopping min_delta must be a number >= 0, got min_delta={min_delta!r}.")
        self.metric, self.patience, self.mode, self.min_delta = metric, patience, mode, float(min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        if self.metric not in record:
            known = ", ".join(sorted(k for k, v in record.items() if isinstance(v, (int, float))))
            raise ConfigError(f"EarlyStopping watches {self.metric!r}, which the epoch records do not have; "
                              f"they have: {known}.")
        value = record[self.metric]
        if value is None:
            hint = " (validation numbers need val_data)" if self.metric.startswith("val") else ""
            raise ConfigError(f"EarlyStopping watches {self.metric!r}, which is None in epoch {record['epoch']}{hint}.")
        value = float(value)
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, int(record["epoch"]), 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            raise StopTraining(
                f"{self.metric} did not improve in the last {self.wait} epochs (best {self.best:.4g} at epoch "
                f"{self.best_epoch}); early stopping"
            )

    def _improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best + self.min_delta if self.mode == "max" else value < self.best - self.min_delta

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], int(state["wait"])

    def __repr__(self) -> str:
        return f"EarlyStopping(metric={self.metric!r}, patience={self.patience}, mode={self.mode!r})"
