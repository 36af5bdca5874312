"""``EMA``: an exponentially decaying running average of the weights, evaluated beside the model (lecture E1).

The notes: averaging the weights over the last iterations almost always gains a point or two of
validation accuracy, at no training cost. The average is updated after every step and its validation
numbers are recorded as ``val_loss_ema`` / ``val_acc_ema``; its state is saved in checkpoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from babysit.callbacks._base import Callback
from babysit.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor
    from torch.optim.swa_utils import AveragedModel

    from babysit.train.run import Run

__all__ = ["EMA"]


class EMA(Callback):
    """Keep ``ema = decay * ema + (1 - decay) * weights`` (buffers too) after every step.

    Args:
        decay: in (0, 1); typical values 0.99 .. 0.9999 (about ``1 / (1 - decay)`` steps averaged).

    Attributes:
        model: the averaged model (``torch.optim.swa_utils.AveragedModel``; ``.module`` is the network), from
            ``on_fit_start`` on.
    """

    order = -10

    def __init__(self, decay: float = 0.999) -> None:
        if not (isinstance(decay, float | int) and 0.0 < decay < 1.0):
            raise ConfigError(f"EMA decay must be in (0, 1), got decay={decay!r}; typical values: 0.99 .. 0.9999.")
        self.decay = float(decay)
        self.model: AveragedModel | None = None

    def on_fit_start(self, run: Run) -> None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.model = AveragedModel(run.model, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True)
        run.history.meta["ema_decay"] = self.decay

    def on_step_end(self, run: Run, loss: Tensor) -> None:
        self.model.update_parameters(run.model)  # type: ignore[union-attr]

    def on_validation_end(self, run: Run, record: dict[str, Any]) -> None:
        if self.model is not None:
            record["val_loss_ema"], record["val_acc_ema"] = run.evaluate(self.model.module)  # type: ignore[misc]

    def state_dict(self) -> dict[str, Any]:
        return {} if self.model is None else {"model": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.model is not None and "model" in state:
            self.model.load_state_dict(state["model"])

    def __repr__(self) -> str:
        return f"EMA(decay={self.decay})"


