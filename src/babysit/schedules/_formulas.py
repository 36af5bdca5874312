"""The closed-form learning rate of every schedule at ``t`` epochs (fractional within an epoch).

These are the formulas the lecture writes (L-A1..A3) plus cosine and warm-up; they document the
schedules and serve as the oracle the torch schedulers are tested against.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from babysit.errors import OptimError
from babysit.optim import _checks
from babysit.schedules._settings import resolve


def constant(lr0: float, t: float) -> float:
    """No annealing: ``lr = lr0``."""
    return lr0


def step(lr0: float, t: float, *, every: int, factor: float) -> float:
    """Step decay (L-A1): ``lr = lr0 * factor ** floor(t / every)``, e.g. x0.5 every 5 epochs."""
    return lr0 * factor ** math.floor(t / every)


def exponential(lr0: float, t: float, *, k: float) -> float:
    """Exponential decay (L-A2): ``lr = lr0 * exp(-k t)``."""
    return lr0 * math.exp(-k * t)


def inverse_time(lr0: float, t: float, *, k: float) -> float:
    """1/t decay (L-A3): ``lr = lr0 / (1 + k t)``."""
    return lr0 / (1 + k * t)


def cosine(lr0: float, t: float, *, epochs: float, min_lr: float = 0.0) -> float:
    """Cosine annealing: ``lr = min_lr + (lr0 - min_lr) * (1 + cos(pi * min(t, epochs) / epochs)) / 2``.

    It stays at ``min_lr`` after ``epochs`` (torch's ``CosineAnnealingLR`` would climb back up).
    """
    return min_lr + (lr0 - min_lr) * (1 + math.cos(math.pi * min(t, epochs) / epochs)) / 2


def warmup(lr0: float, t: float, *, epochs: float, start_factor: float, then: Any = None) -> float:
    """Linear warm-up, then the schedule ``then`` with its own ``t`` counted from the end of warm-up.

    ``lr = lr0 * (start_factor + (1 - start_factor) * t / epochs)`` for ``t < epochs``;
    ``lr = then(lr0, t - epochs)`` afterwards (``lr0`` when ``then`` is None).
    """
    if t < epochs:
        return lr0 * (start_factor + (1 - start_factor) * t / epochs)
    if then is None:
        return lr0
    name, settings = then
    return FORMULAS[name](lr0, t - epochs, **settings)


FORMULAS: dict[str, Callable[..., float]] = {
    "constant": constant,
    "step": step,
    "exponential": exponential,
    "inverse_time": inverse_time,
    "cosine": cosine,
    "warmup": warmup,
}


def check_min_lr(owner: str, lr0: float, name: str, settings: dict[str, Any]) -> None:
    """Refuse a cosine floor above the starting rate (also after a warm-up): the schedule would rise."""
    if name == "warmup" and settings["then"] is not None:
        check_min_lr(owner, lr0, *settings["then"])
    if name == "cosine" and settings["min_lr"] > lr0:
        raise OptimError(
            f"{owner}: min_lr must be <= the initial lr, got min_lr={settings['min_lr']!r} and lr={lr0!r}."
        )


def lr_at(name: str, lr0: float, t: float, **settings: Any) -> float:
    """The learning rate of schedule ``name`` started at ``lr0``, after ``t`` epochs (a float).

    Example:
        >>> lr_at("step", 0.1, 12, every=5, factor=0.5)
        0.025
        >>> lr_at("inverse_time", 0.1, 1.5, k=2.0)
        0.025

    Raises:
        OptimError: unknown name or settings, lr0 <= 0, t < 0, or ``plateau`` (no closed form: it
            depends on the validation accuracy).
    """
    name, full = resolve(name, settings)
    owner = f"lr_at({name!r})"
    lr0 = _checks.positive(owner, "lr0", lr0)
    t = _checks.non_negative(owner, "t", t)
    if name == "plateau":
        raise OptimError(
            "schedule 'plateau' has no closed form: it halves the rate when validation accuracy stops "
            "improving; build it with babysit.schedules.build('plateau', optimizer) instead."
        )
    check_min_lr(owner, lr0, name, full)
    return FORMULAS[name](lr0, t, **full)
