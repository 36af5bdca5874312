"""Momentum annealing (L-U2, from the original notes): mu from about 0.5 up to about 0.99 over epochs.

A low momentum early keeps the first, large and noisy steps from building up a wild velocity; a high
momentum late averages the small late gradients over many steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch.optim import Optimizer

from babysit.callbacks._base import Callback
from babysit.errors import OptimError
from babysit.optim import _checks

if TYPE_CHECKING:
    from babysit.train.run import Run


def momentum_at(epoch: float, *, start: float = 0.5, end: float = 0.99, epochs: int) -> float:
    """The annealed momentum after ``epoch`` epochs, linear in epochs then flat.

    ``mu(e) = start + (end - start) * min(e, epochs) / epochs``

    Example:
        >>> momentum_at(5, start=0.5, end=0.9, epochs=10)
        0.7
    """
    return start + (end - start) * min(epoch, epochs) / epochs


class MomentumAnnealing:
    """Raise every param group's ``momentum`` from ``start`` to ``end`` over ``epochs`` epochs.

    Call :meth:`step` once at the end of every epoch. After ``e`` calls every group has
    ``momentum = start + (end - start) * min(e, epochs) / epochs`` (:func:`momentum_at`): ``start`` from
    construction on, ``end`` from epoch ``epochs`` on. With :class:`LectureSGD` the velocity stays the
    lecture's ``v = mu_t * v - lr * dW`` with the momentum of the step.

    Args:
        optimizer: an optimizer with momentum in every group (the rules ``momentum`` or ``nesterov``).
        start: momentum at epoch 0, in [0, 1).
        end: momentum from epoch ``epochs`` on, in [start, 1).
        epochs: number of epochs over which to anneal, >= 1.

    Raises:
        OptimError: the optimizer has no momentum, or a setting is out of range.

    Example:
        >>> import torch, babysit
        >>> opt = babysit.optim.build("nesterov", [torch.zeros(1, requires_grad=True)])
        >>> anneal = MomentumAnnealing(opt, start=0.5, end=0.9, epochs=4)
        >>> anneal.step(); anneal.step(); round(opt.param_groups[0]["momentum"], 6)
        0.7
    """

    def __init__(self, optimizer: Optimizer, *, start: float = 0.5, end: float = 0.99, epochs: int) -> None:
        owner = "MomentumAnnealing"
        without = [i for i, g in enumerate(optimizer.param_groups) if not g.get("momentum")]
        if without:
            raise OptimError(
                f"{owner} needs an optimizer with momentum > 0 in every param group; "
                f"{type(optimizer).__name__} has none in group(s) {without}. "
                "Build it with babysit.optim.build('momentum' or 'nesterov', ...)."
            )
        self.start = _checks.interval(owner, "start", start, 0.0, 1.0)
        self.end = _checks.interval(owner, "end", end, 0.0, 1.0)
        if self.end < self.start:
            raise OptimError(
                f"{owner}: end must be >= start (momentum rises), got start={start!r}, end={end!r}."
            )
        self.epochs = _checks.integer(owner, "epochs", epochs, 1)
        self.optimizer = optimizer
        self.last_epoch = 0
        self._apply()

    def step(self) -> None:
        """Advance one epoch and set the momentum of every group."""
        self.last_epoch += 1
        self._apply()

    def get_last_momentum(self) -> list[float]:
        """The momentum of every param group, as last set."""
        return [float(g["momentum"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Plain numbers only, so checkpoints load with ``weights_only=True``."""
        return {"start": self.start, "end": self.end, "epochs": self.epochs, "last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the epoch count and settings, and set the momentum they give."""
        self.start, self.end = float(state["start"]), float(state["end"])
        self.epochs, self.last_epoch = int(state["epochs"]), int(state["last_epoch"])
        self._apply()

    def _apply(self) -> None:
        mu = momentum_at(self.last_epoch, start=self.start, end=self.end, epochs=self.epochs)
        for group in self.optimizer.param_groups:
            group["momentum"] = mu


class AnnealMomentum(Callback):
    """A ``fit`` callback: :class:`MomentumAnnealing` of the run's optimizer, stepped at every epoch's end.

    Example:
        >>> anneal = AnnealMomentum(start=0.5, end=0.99, epochs=20)
        >>> # babysit.fit(model, data, optimizer="nesterov", callbacks=[anneal])
    """

    order = -20  # after the schedule, before the run folder saves the epoch

    def __init__(self, *, start: float = 0.5, end: float = 0.99, epochs: int) -> None:
        self.settings = {"start": start, "end": end, "epochs": epochs}
        self.annealing: MomentumAnnealing | None = None

    def on_fit_start(self, run: Run) -> None:
        self.annealing = MomentumAnnealing(run.optimizer, **self.settings)
        run.history.meta["momentum_annealing"] = dict(self.settings)

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        self.annealing.step()  # type: ignore[union-attr]

    def state_dict(self) -> dict[str, Any]:
        return {} if self.annealing is None else self.annealing.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.annealing is not None:
            self.annealing.load_state_dict(state)

    def __repr__(self) -> str:
        return f"AnnealMomentum({', '.join(f'{k}={v!r}' for k, v in self.settings.items())})"
