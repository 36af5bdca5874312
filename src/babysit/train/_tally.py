"""``EpochTally``: an epoch's numbers while it runs, read from the device in few transfers.

Each step leaves its loss, L2 term and correct count on the device (no sync on the hot path); every
``DRAIN_EVERY`` steps, at a mid-epoch checkpoint and at the epoch's end they are read in one transfer, their
steps go into the History, and only running sums stay. So memory stays bounded however long an epoch is
(a language model's single epoch of a million steps), and a checkpoint in the middle of an epoch can save
the sums and continue them exactly.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import Tensor

from babysit.history import History

log = logging.getLogger("babysit")
DRAIN_EVERY = 1000  # steps whose values wait on the device before one read (a multiple of the loop's CHECK_EVERY)


class EpochTally:
    """The epoch in progress: pending device values, host sums, and the steps it has taken."""

    def __init__(self, epoch: int, first_step: int, steps_per_epoch: int, lr: float) -> None:
        self.epoch, self.first_step, self.steps_per_epoch, self.lr = epoch, first_step, steps_per_epoch, lr
        self.drained = 0  # steps of this epoch read into the History (a resumed epoch: those before the checkpoint)
        self.sum_data = self.sum_reg = 0.0
        self.correct = self.count = 0
        self.diverged = False  # a drained loss was not finite: the epoch ends here
        # each step's (loss, L2 term or None, correct count, learning rate, examples or tokens scored), the
        # tensors on the device and detached; fit's loop appends to it (the one list, emptied by each drain)
        self.pending: list[tuple[Tensor, Tensor | None, Tensor, float, int]] = []

    @property
    def steps(self) -> int:
        """Steps taken this epoch."""
        return self.drained + len(self.pending)

    def drain(self, history: History) -> bool:
        """Read the pending values (one transfer), add their steps to ``history`` and the sums; False when a loss
        was not finite (its step is recorded, the rest dropped, and ``history.stop_reason`` says where)."""
        if self.diverged:
            return False
        if not self.pending:
            return True
        data, regs, corrects, lrs, counts = zip(*self.pending)
        n = len(data)
        has_reg = regs[0] is not None
        # one transfer: losses, L2 terms and correct counts (float32 holds the counts exactly below 2**24)
        values = torch.stack(data + regs if has_reg else data).float()
        host = torch.cat([values, torch.stack(corrects)]).tolist()  # the integer counts promoted to float32
        data_l, reg_l, correct_l = host[:n], (host[n : 2 * n] if has_reg else [0.0] * n), host[-n:]
        done = self.drained
        total = [d + r for d, r in zip(data_l, reg_l)] if has_reg else data_l
        bad = None if math.isfinite(sum(total)) else _first_non_finite(total)  # a finite sum: every loss is finite
        n = n if bad is None else bad + 1
        first, before, per_epoch = self.first_step + done, self.epoch - 1, self.steps_per_epoch
        history.add_steps(list(range(first + 1, first + n + 1)),
                          [before + k / per_epoch for k in range(done + 1, done + n + 1)], total[:n], list(lrs[:n]))
        self.sum_data += sum(data_l[:n])
        self.sum_reg += sum(reg_l[:n])
        self.correct += int(sum(correct_l[:n]))
        self.count += sum(counts[:n])
        self.pending.clear()
        self.drained += n
        if bad is None:
            return True
        self.diverged = True
        history.stop_reason = (
            f"the loss became {total[bad]} at step {first + n} (epoch {self.epoch}) with learning rate "
            f"{lrs[bad]:.3g}"
        )  # a run folder adds which checkpoint it kept (none when the run diverged before its first save)
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
        tally.drained, tally.count, tally.correct = int(state["steps"]), int(state["count"]), int(state["correct"])
        tally.sum_data, tally.sum_reg = float(state["sum_data"]), float(state["sum_reg"])
        return tally


def _first_non_finite(values: list[float]) -> int | None:
    return next((i for i, x in enumerate(values) if not math.isfinite(x)), None)
