"""SGD with momentum whose velocity keeps the lecture's scale when the learning rate changes (L-U2, L-U3).

The lecture keeps a velocity ``v = mu * v - lr * dW`` (``W += v``): when a schedule lowers ``lr``, only the
*new* gradients see the new rate and the accumulated velocity keeps its old scale. ``torch.optim.SGD``
keeps ``buf = mu * buf + g`` and steps ``p -= lr * buf``, i.e. ``v = -lr * buf``: changing ``lr`` rescales
the whole accumulated velocity at once. Multiplying ``buf`` by ``lr_old / lr_new`` just before the first
step at the new rate restores ``v = -lr_new * buf`` with the lecture's ``v``, so every later step is the
lecture's step. The same holds for Nesterov: torch's ``p -= lr * (g + mu * buf)`` equals the lecture's
stored-ahead ``W += -mu * v_prev + (1 + mu) * v``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch

from babysit.errors import OptimError

logger = logging.getLogger("babysit")

PREV_LR_KEY = "lecture_prev_lr"
"""Param-group key holding the lr of the group's previous step; torch saves it in ``state_dict()``."""


class LectureSGD(torch.optim.SGD):
    """``torch.optim.SGD`` (momentum or Nesterov) with the lecture's velocity under a changing learning rate.

    Momentum: ``v = mu * v - lr * dW; W += v``. Nesterov (stored-ahead form):
    ``v_prev = v; v = mu * v - lr * dW; W += -mu * v_prev + (1 + mu) * v``. At a constant learning rate
    this is exactly ``torch.optim.SGD``; when ``group['lr']`` changed since the group's previous step,
    ``step()`` first multiplies the group's momentum buffers by ``lr_old / lr_new``. The previous lr is
    kept in each param group under ``'lecture_prev_lr'``, so ``state_dict()`` / ``load_state_dict()``
    resume a run exactly. ``dampening`` is always 0 (the lecture has none).

    Args:
        params: tensors or param-group dicts, as for ``torch.optim.SGD``.
        lr: learning rate.
        momentum: ``mu``.
        weight_decay: L2 strength added to the gradient (``dW + weight_decay * W``).
        nesterov: use Nesterov momentum.

    Example:
        >>> w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        >>> opt = LectureSGD([w], lr=0.1, momentum=0.9)
        >>> w.grad = torch.ones_like(w); opt.step()
        >>> opt.param_groups[0]["lr"] = 0.05; w.grad = torch.ones_like(w); opt.step()
        >>> [round(x, 12) for x in w.tolist()]  # v1 = -0.1, v2 = 0.9 * v1 - 0.05 = -0.14: W = -0.24
        [-0.24, -0.24]
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            params, lr=lr, momentum=momentum, dampening=0.0, weight_decay=weight_decay, nesterov=nesterov
        )
        self._warned_zero_lr = False
        self.register_step_pre_hook(self._before_step)

    def _before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """Step pre-hook: rescale momentum buffers of groups whose lr changed, before torch's SGD step.

        A hook rather than a ``step`` override: torch wraps every optimizer class's ``step`` with its
        hook runner, so an override calling ``super().step()`` would run every step hook twice.
        """
        for group in self.param_groups:
            if group.get(PREV_LR_KEY) != group["lr"]:  # the common case, an unchanged rate, costs one compare
                self._keep_velocity_scale(group)

    def _keep_velocity_scale(self, group: dict[str, Any]) -> None:
        if group.get("dampening", 0) != 0:
            raise OptimError(
                f"LectureSGD needs dampening=0 (the lecture's velocity has none), got "
                f"dampening={group['dampening']!r}; use babysit.optim.build(..., torch_momentum=True) "
                "for torch's SGD with dampening."
            )
        lr = float(group["lr"])
        prev = group.get(PREV_LR_KEY)
        if lr == 0.0:
            # v = -lr * buf cannot hold a velocity at lr = 0: torch's behaviour (weights frozen) is kept,
            # and the velocity is rescaled from the last non-zero lr once the rate comes back.
            if not self._warned_zero_lr:
                logger.warning("LectureSGD: lr = 0 has no lecture velocity; weights stay put this step")
                self._warned_zero_lr = True
            return
        if prev is not None and prev != lr:
            scale = prev / lr
            with torch.no_grad():
                for p in group["params"]:
                    buf = self.state[p].get("momentum_buffer") if p in self.state else None
                    if buf is not None:
                        buf.mul_(scale)
        group[PREV_LR_KEY] = lr
