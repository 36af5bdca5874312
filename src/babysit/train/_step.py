"""One update, the hot path of ``fit``: forward, data loss + L2 term, backward, the update rule.

Nothing here reads a value on the host (fit reads the epoch's losses once, at its end), except fp16's
``GradScaler.step``, which must look for infs before it lets the optimizer step (every fp16 trainer pays it).

The plain step (fp32/bf16, no clipping, no accumulation) is its own short method; gradient clipping,
accumulation and fp16 loss scaling take the general one:

- accumulation runs a batch of ``batch_size`` as ``accumulate`` micro-batches, each loss weighted by its
  share of the batch, so the update equals the whole batch's within float tolerance, in a fraction of the
  memory;
- fp16 scales the loss (``torch.amp.GradScaler``) and unscales the gradients before clipping and before the
  optimizer step, so clipping, the update and the monitor's gradient statistics all see true gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from babysit import losses
from babysit.train.options import FitOptions


class Step:
    """One update; ``__call__(X, y)`` returns (data loss, reg loss or None, scores), all still on the device, the
    losses detached from the graph (scores are only read for their argmax)."""

    def __init__(self, model: nn.Module, opt: torch.optim.Optimizer, data_loss: losses.LossFn, reg: float,
                 opts: FitOptions, device: torch.device) -> None:
        """``model`` is the module the step calls: the model, or its DistributedDataParallel wrapper."""
        self.forward = torch.compile(model) if opts.compile else model
        self.opt, self.data_loss, self.reg = opt, data_loss, reg
        self.reg_weights = losses.regularized_weights(model) if reg > 0 else []
        self.autocast = autocast_factory(opts.precision, device)
        self.scaler = torch.amp.GradScaler(device.type) if opts.precision == "fp16" else None
        self.clip, self.accumulate = opts.clip_grad_norm, opts.accumulate
        self.params = [p for group in opt.param_groups for p in group["params"]]
        # the update this configuration needs, chosen once: fit's loop calls it directly
        self.update: Callable[[Tensor, Tensor], tuple[Tensor, Tensor | None, Tensor]]
        if isinstance(opt, torch.optim.LBFGS):  # L-BFGS re-evaluates the loss itself
            self.update = self._lbfgs
        elif self.scaler is None and self.clip is None and self.accumulate == 1:
            self.update = self._plain
        else:
            self.update = self._general

    def __call__(self, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        return self.update(X, y)

    def _plain(self, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        if self.autocast is None:
            scores = self.forward(X)
            loss = self.data_loss(scores, y)
        else:
            scores, loss = self._forward(X, y)
        self.opt.zero_grad(set_to_none=True)
        if not self.reg_weights:
            loss.backward()
            self.opt.step()
            return loss.detach(), None, scores
        reg_loss = losses.l2_penalty(self.reg_weights, self.reg)
        (loss + reg_loss).backward()
        self.opt.step()
        return loss.detach(), reg_loss.detach(), scores

    def _general(self, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """Micro-batches, fp16 loss scaling and clipping; the batch's data loss is the weighted sum of the parts."""
        self.opt.zero_grad(set_to_none=True)
        n = y.shape[0]
        parts = zip(X.tensor_split(self.accumulate), y.tensor_split(self.accumulate)) if self.accumulate > 1 \
            else [(X, y)]
        loss: Tensor | None = None
        scores = []
        for Xc, yc in parts:
            if yc.shape[0] == 0:  # a batch smaller than `accumulate`
                continue
            part_scores, part_loss = self._forward(Xc, yc)
            weighted = part_loss * (yc.shape[0] / n)
            self._backward(weighted)
            loss = weighted.detach() if loss is None else loss + weighted.detach()
            scores.append(part_scores.detach())
        reg_loss = losses.l2_penalty(self.reg_weights, self.reg) if self.reg_weights else None
        if reg_loss is not None:
            self._backward(reg_loss)
        if self.scaler is not None:
            self.scaler.unscale_(self.opt)  # true gradients for clipping, the step and the monitor
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        reg_loss = None if reg_loss is None else reg_loss.detach()
        return loss, reg_loss, scores[0] if len(scores) == 1 else torch.cat(scores)  # type: ignore[return-value]

    def _backward(self, loss: Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

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
            if self.clip is not None:
                torch.nn.utils.clip_grad_norm_(self.params, self.clip)
            return total

        self.opt.step(closure)
        return out["loss"].detach(), None if out["reg"] is None else out["reg"].detach(), out["scores"]


def autocast_factory(precision: str, device: torch.device) -> Any:
    """A factory of autocast contexts for bf16/fp16, or None for fp32 (no context at all on the hot path)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is None:
        return None
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)
