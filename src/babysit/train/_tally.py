"""``EpochTally``: an epoch's numbers while it runs, read from the device in few transfers.

Each step leaves its loss, L2 term and correct count on the device (no sync on the hot path); every
``DRAIN_EVERY`` steps, at a mid-epoch checkpoint and at the epoch's end they are read in one transfer, their
steps go into the History, and only running sums stay. So memory stays bounded however long an epoch is
(a language model's single epoch of a million steps), and a checkpoint in the middle of an epoch can save
the sums and continue them exactly.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from babysit.history import History

log = logging.getLogger("babysit")
DRAIN_EVERY = 1024  # steps whose values wait on the device before one read (one sync per this many steps)


class EpochTally:
    """The epoch in progress: pending device values, host sums, and the steps it has taken."""

    def __init__(self, epoch: int, first_step: int, steps_per_epoch: int, lr: float) -> None:
        self.epoch, self.first_step, self.steps_per_epoch, self.lr = epoch, first_step, steps_per_epoch, lr
        self.steps = 0  # steps taken this epoch (a resumed epoch counts those before the checkpoint)
        self.sum_data = self.sum_reg = 0.0
        self.correct = self.count = 0
        self.diverged = False  # a drained loss was not finite: the epoch ends here
        self._data: list[Tensor] = []
        self._reg: list[Tensor] = []
        self._correct: list[Tensor] = []
        self._lrs: list[float] = []

    @property
    def pending(self) -> int:
        return len(self._data)

    def add(self, loss: Tensor, reg_loss: Tensor | None, correct: Tensor, lr: float, n: int) -> None:
        """One step's values, still on the device."""
        self._data.append(loss)
        if reg_loss is not None:
            self._reg.append(reg_loss.detach())
        self._correct.append(correct)
        self._lrs.append(lr)
        self.count += n
        self.steps += 1

    def drain(self, history: History) -> bool:
        """Read the pending values (one transfer), add their steps to ``history`` and the sums; False when a loss
        was not finite (its step is recorded, the rest dropped, and ``history.stop_reason`` says where)."""
        if self.diverged:
            return False
        if not self._data:
            return True
        data = torch.stack(self._data).float()
        reg = torch.stack(self._reg).float() if self._reg else torch.zeros_like(data)
        host = torch.stack([data, reg, torch.stack(self._correct).to(data.dtype)]).cpu().tolist()
        data_l, reg_l, correct_l = host
        lrs = self._lrs
        done = self.steps - len(data_l)  # steps of this epoch drained before
        total = [d + r for d, r in zip(data_l, reg_l)]
        bad = next((i for i, x in enumerate(total) if x != x or x in (float("inf"), float("-inf"))), None)
        n = len(total) if bad is None else bad + 1
        first = self.first_step + done
        history.add_steps(list(range(first + 1, first + n + 1)),
                          [(self.epoch - 1) + (done + i + 1) / self.steps_per_epoch for i in range(n)],
                          total[:n], lrs[:n])
        self.sum_data += sum(data_l[:n])
        self.sum_reg += sum(reg_l[:n])
        self.correct += int(sum(correct_l[:n]))
        self._data, self._reg, self._correct, self._lrs = [], [], [], []
        if bad is None:
            return True
        self.diverged = True
        history.stop_reason = (
            f"the loss became {total[bad]} at step {first + n} (epoch {self.epoch}) with learning rate "
            f"{lrs[bad]:.3g}; training stopped and the last good checkpoint was kept"
        )
        log.warning("training stopped: %s", history.stop_reason)
        return False

    def record(self, momentum: float | None) -> dict[str, Any]:
        """The epoch's record (after the last drain)."""
        data, reg = self.sum_data / max(self.steps, 1), self.sum_reg / max(self.steps, 1)
        return {
            "epoch": self.epoch, "train_loss": data + reg, "data_loss": data, "reg_loss": reg,
            "train_acc": self.correct / max(self.count, 1), "val_loss": None, "val_acc": None, "lr": self.lr,
            "momentum": momentum, "steps": self.steps,
        }

    def state(self) -> dict[str, Any]:
        """The drained sums (drain first), for a checkpoint taken in the middle of the epoch."""
        return {"epoch": self.epoch, "first_step": self.first_step, "lr": self.lr, "steps": self.steps,
                "sum_data": self.sum_data, "sum_reg": self.sum_reg, "correct": self.correct, "count": self.count}

    @classmethod
    def from_state(cls, state: dict[str, Any], steps_per_epoch: int) -> EpochTally:
        tally = cls(int(state["epoch"]), int(state["first_step"]), steps_per_epoch, float(state["lr"]))
        tally.steps, tally.count, tally.correct = int(state["steps"]), int(state["count"]), int(state["correct"])
        tally.sum_data, tally.sum_reg = float(state["sum_data"]), float(state["sum_reg"])
        return tally
