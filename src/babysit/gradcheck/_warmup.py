"""Burn-in before a module check (L-G7) and the regularization-vs-data comparison (L-G8)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from babysit.findings import Finding

__all__ = ["REG_DOMINATES", "regularization_dominates", "warm_up", "warmup_stalled"]

# The regularization gradient is said to swamp the data gradient above this norm ratio.
REG_DOMINATES = 10.0


def warm_up(
    model: nn.Module,
    data_loss: Callable[[], torch.Tensor],
    reg: Callable[[], torch.Tensor] | None,
    *,
    steps: int,
    lr: float,
    reseed: Callable[[], None],
) -> list[float]:
    """Train ``model`` (the float64 copy) ``steps`` plain SGD steps ``W += -lr * dW``; return the losses.

    At initialisation pathological symmetry can hide a bug (all hidden units alike, a bias that is
    still 0); a few steps put the model where training actually happens.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    losses = []
    for _ in range(steps):
        reseed()
        with torch.enable_grad():
            loss = data_loss().sum() + (reg().sum() if reg is not None else 0.0)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        losses.append(float(loss.detach()))
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                if g is not None:
                    p.add_(g, alpha=-lr)
    reseed()
    with torch.no_grad():
        losses.append(float(data_loss().sum() + (reg().sum() if reg is not None else 0.0)))
    return losses


def regularization_dominates(
    names: list[str], data: list[torch.Tensor], reg: list[torch.Tensor], data_loss: float, reg_loss: float
) -> Finding | None:
    """A ``regularization_dominates`` finding when ``|grad reg| > 10 |grad data|`` over all parameters."""
    d = math.sqrt(sum(float(g.square().sum()) for g in data))
    r = math.sqrt(sum(float(g.square().sum()) for g in reg))
    ratio = r / d if d > 0 else (math.inf if r > 0 else 0.0)
    if ratio <= REG_DOMINATES:
        return None
    per = [(float(gr.norm()) / max(float(gd.norm()), 1e-300), n) for n, gd, gr in zip(names, data, reg, strict=True)]
    worst_ratio, worst_name = max(per)
    return Finding(
        "regularization_dominates",
        "warning",
        f"the regularization gradient is {ratio:.3g}x the data gradient (norms {r:.3g} vs {d:.3g}; "
        f"losses {reg_loss:.4g} vs {data_loss:.4g}), worst on {worst_name} ({worst_ratio:.3g}x)",
        {
            "grad_norm_data": d,
            "grad_norm_reg": r,
            "ratio": ratio if math.isfinite(ratio) else None,
            "data_loss": data_loss,
            "reg_loss": reg_loss,
            "worst_parameter": worst_name,
        },
        "Lower the regularization strength; check the data loss alone first (reg = 0), then the "
        "regularization term on its own (L-G8).",
    )


def warmup_stalled(losses: list[float], lr: float) -> Finding | None:
    """An info finding when the burn-in did not lower the loss: the check is not yet in training's regime."""
    if len(losses) < 2 or losses[-1] < losses[0]:
        return None
    return Finding(
        "warmup_no_progress",
        "info",
        f"{len(losses) - 1} warm-up SGD steps at lr={lr:g} did not lower the loss "
        f"({losses[0]:.4g} -> {losses[-1]:.4g})",
        {"losses": losses, "lr": lr},
        "Raise warmup_lr or warmup_steps so the check runs where training has started (L-G7).",
    )
