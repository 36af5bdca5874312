"""One update, the hot path of ``fit``: forward, data loss + L2 term, backward, the update rule.

Nothing here reads a value on the host; fit reads the epoch's losses once, at its end.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from babysit import losses
from babysit.train.options import FitOptions


class Step:
    """One update, the hot path: forward, data loss + L2 term, backward, the update rule."""

    def __init__(self, model: nn.Module, opt: torch.optim.Optimizer, data_loss: losses.LossFn, reg: float,
                 opts: FitOptions, device: torch.device) -> None:
        self.forward = torch.compile(model) if opts.compile else model
        self.opt, self.data_loss, self.reg = opt, data_loss, reg
        self.reg_weights = losses.regularized_weights(model) if reg > 0 else []
        self.autocast = autocast_factory(opts.precision, device)

    def __call__(self, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """Returns (data loss, reg loss or None, scores)."""
        if isinstance(self.opt, torch.optim.LBFGS):  # L-BFGS re-evaluates the loss itself
            return self._lbfgs(X, y)
        scores, loss = self._forward(X, y)
        if self.reg_weights:
            reg_loss = losses.l2_penalty(self.reg_weights, self.reg)
            total = loss + reg_loss
        else:
            reg_loss, total = None, loss
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        return loss, reg_loss, scores

    def _forward(self, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if self.autocast is None:
            scores = self.forward(X)
            return scores, self.data_loss(scores, y)
        with self.autocast():
            scores = self.forward(X)
            return scores, self.data_loss(scores, y)

    def _lbfgs(self, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        out: dict[str, Any] = {}

        def closure() -> Tensor:
            self.opt.zero_grad(set_to_none=True)
            out["scores"], out["loss"] = self._forward(X, y)
            out["reg"] = losses.l2_penalty(self.reg_weights, self.reg) if self.reg_weights else None
            total = out["loss"] if out["reg"] is None else out["loss"] + out["reg"]
            total.backward()
            return total

        self.opt.step(closure)
        return out["loss"], out["reg"], out["scores"]


def autocast_factory(precision: str, device: torch.device) -> Any:
    """A factory of autocast contexts for bf16, or None for fp32 (no context at all on the hot path)."""
    if precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return None
