"""Build the schedules as ``torch.optim.lr_scheduler`` objects.

Every scheduler but ``plateau`` is stepped ``steps_per_epoch`` times per epoch, so after ``s`` calls to
``step()`` it is at ``t = s / steps_per_epoch`` epochs and the rate equals
:func:`~babysit.schedules.lr_at` at that ``t``. torch's own classes are used where they compute exactly
that (StepLR, ExponentialLR, LinearLR, SequentialLR, ReduceLROnPlateau); the other formulas run in a
LambdaLR on their closed form (whose functions torch leaves out of ``state_dict()``, so checkpoints hold
plain numbers only).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

from babysit.errors import OptimError
from babysit.optim import _checks
from babysit.schedules import _formulas
from babysit.schedules._settings import parse_spec, resolve


def _closed_form(
    opt: Optimizer, spe: int, formula: Callable[..., float], settings: dict[str, Any]
) -> LambdaLR:
    """A LambdaLR whose factor for a group started at lr0 is ``formula(lr0, step / spe) / lr0``."""

    def for_group(lr0: float) -> Callable[[int], float]:
        def factor(step: int) -> float:
            return formula(lr0, step / spe, **settings) / lr0

        return factor

    return LambdaLR(opt, [for_group(_start_lr(g)) for g in opt.param_groups])


def _start_lr(group: dict[str, Any]) -> float:
    return float(group.get("initial_lr", group["lr"]))


def _warmup(opt: Optimizer, spe: int, s: dict[str, Any]) -> LRScheduler:
    total = s["epochs"] * spe
    if abs(total - round(total)) > 1e-9:
        raise OptimError(
            f"schedule 'warmup': epochs * steps_per_epoch must be a whole number of steps, got "
            f"epochs={s['epochs']!r} with steps_per_epoch={spe} ({total:g} steps)."
        )
    ramp = LinearLR(opt, start_factor=s["start_factor"], end_factor=1.0, total_iters=round(total))
    if s["then"] is None:
        return ramp
    follower = _make(*s["then"], opt, spe)
    return SequentialLR(opt, [ramp, follower], milestones=[round(total)])


def _make(name: str, settings: dict[str, Any], opt: Optimizer, spe: int) -> LRScheduler:
    s = settings
    for group in opt.param_groups:
        _formulas.check_min_lr(f"schedule {name!r}", _start_lr(group), name, s)
    if name == "step":
        return StepLR(opt, step_size=s["every"] * spe, gamma=s["factor"])
    if name == "exponential":
        return ExponentialLR(opt, gamma=math.exp(-s["k"] / spe))
    if name == "plateau":
        return ReduceLROnPlateau(
            opt,
            mode=s["mode"],
            factor=s["factor"],
            patience=s["patience"],
            min_lr=s["min_lr"],
            threshold=s["threshold"],
        )
    if name == "warmup":
        return _warmup(opt, spe, s)
    return _closed_form(opt, spe, _formulas.FORMULAS[name], s)  # constant, inverse_time, cosine


def build(name: str, optimizer: Optimizer, *, steps_per_epoch: int = 1, **settings: Any) -> LRScheduler:
    """Build the schedule ``name`` on ``optimizer``; call ``.step()`` ``steps_per_epoch`` times per epoch.

    The rate is a function of ``t``, the epochs done (``steps / steps_per_epoch``), and of the lr each
    param group had when the schedule was built (``lr0``):

        constant                    lr0
        step(every=5, factor=0.5)   lr0 * factor ** floor(t / every)                            (L-A1)
        exponential(k=0.1)          lr0 * exp(-k t)                                             (L-A2)
        inverse_time(k=0.1)         lr0 / (1 + k t)                                             (L-A3)
        cosine(epochs, min_lr=0)    min_lr + (lr0 - min_lr) * (1 + cos(pi min(t, epochs) / epochs)) / 2
        warmup(epochs, then=None, start_factor=0.1)
                                    lr0 * (start_factor + (1 - start_factor) t / epochs) while t < epochs,
                                    then the schedule ``then`` (a name or {"name": ..., **settings})
                                    with its own t counted from the end of warm-up
        plateau(factor=0.5, patience=2, mode='max', min_lr=0, threshold=1e-4)
                                    halve when validation accuracy stops improving (L-A1)

    ``plateau`` is torch's ReduceLROnPlateau: call ``.step(val_acc)`` once per epoch, whatever
    ``steps_per_epoch`` says. Like torch, ``patience`` is the number of epochs without improvement it
    tolerates: the rate is multiplied by ``factor`` at the end of the ``patience + 1``-th epoch in a
    row without improvement (improvement: above the best by more than ``threshold``, relative).

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> sched = build("step", opt, every=2, factor=0.5)
        >>> for _ in range(4): opt.step(); sched.step()
        >>> sched.get_last_lr()
        [0.025]

    Raises:
        OptimError: unknown name or setting, a value out of range, or a missing required setting.
    """
    resolved_name, full = resolve(name, settings)
    owner = f"schedule {resolved_name!r}"
    spe = _checks.integer(owner, "steps_per_epoch", steps_per_epoch, 1)
    if not isinstance(optimizer, Optimizer):
        raise OptimError(f"{owner}: needs a torch.optim.Optimizer, got {type(optimizer).__name__}.")
    return _make(resolved_name, full, optimizer, spe)


def build_from_spec(spec: Any, optimizer: Optimizer, steps_per_epoch: int = 1) -> LRScheduler | None:
    """Build a schedule from ``None``, a name, a dict ``{"name": ..., **settings}`` or a built scheduler.

    ``None`` means no annealing and gives ``None`` (nothing to step); a scheduler already built is
    returned as is.
    """
    if spec is None:
        return None
    if isinstance(spec, LRScheduler):
        return spec
    name, settings = parse_spec(spec)
    return build(name, optimizer, steps_per_epoch=steps_per_epoch, **settings)
