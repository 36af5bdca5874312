"""L-BFGS (L-U4) that also takes ``weight_decay``, which ``torch.optim.LBFGS`` lacks.

L-BFGS approximates Newton's ``W -= H^-1 dW`` from the last ``history_size`` gradient differences; it
needs full batches and a closure that re-evaluates the loss. Weight decay is added to the *objective*
(``loss + weight_decay / 2 * ||W||^2`` and its gradient ``weight_decay * W``) inside that closure, so the
line search and the curvature pairs see the same function the step minimises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class L2LBFGS(torch.optim.LBFGS):
    """``torch.optim.LBFGS`` plus an L2 term ``weight_decay / 2 * ||W||^2`` in the objective.

    Args:
        params: tensors (one group only, as torch's LBFGS requires).
        lr: step length (1 is the Newton step).
        history_size: number of curvature pairs kept.
        max_iter: iterations per ``step(closure)``.
        line_search_fn: ``None`` or ``"strong_wolfe"``.
        weight_decay: L2 strength.

    Example:
        >>> w = torch.zeros(2, requires_grad=True)
        >>> opt = L2LBFGS([w], weight_decay=1.0)
        >>> def closure():
        ...     opt.zero_grad(); loss = ((w - 2.0) ** 2).sum() / 2; loss.backward(); return loss
        >>> _ = opt.step(closure)  # minimum of (w-2)^2/2 + w^2/2 is w = 1
        >>> [round(x, 6) for x in w.detach().tolist()]
        [1.0, 1.0]
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1.0,
        history_size: int = 100,
        max_iter: int = 20,
        line_search_fn: str | None = None,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(
            params, lr=lr, history_size=history_size, max_iter=max_iter, line_search_fn=line_search_fn
        )
        self.param_groups[0]["weight_decay"] = weight_decay
        self.defaults["weight_decay"] = weight_decay

    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """Run torch's L-BFGS on ``closure`` with the L2 term added to loss and gradients."""
        decay = float(self.param_groups[0].get("weight_decay", 0.0))
        if decay == 0.0:
            return super().step(closure)
        params = self.param_groups[0]["params"]

        def closure_with_l2() -> Any:
            loss = closure()
            with torch.no_grad():
                penalty = 0.0
                for p in params:
                    if p.grad is None:
                        p.grad = decay * p.detach().clone()
                    else:
                        p.grad.add_(p, alpha=decay)
                    penalty += 0.5 * decay * float((p * p).sum())
            return loss + penalty

        return super().step(closure_with_l2)
