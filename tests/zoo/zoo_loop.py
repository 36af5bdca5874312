"""One plain PyTorch training loop, babysat by ``babysit.Monitor``, for the CNN and transformer fault zoos.

A zoo plants the mistakes practitioners make in their own loops (no warmup, the loss counted on padding, data
sorted by label, zero_grad missing), so the loop is written out the way a user writes it, with the few knobs
the faults turn. It works for classifiers (scores ``(N, C)``) and language models (``(N, T, V)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import babysit
from babysit.history import History


@dataclass(frozen=True)
class Data:
    """Training and validation tensors (labels ``(N,)`` or ``(N, T)``); ``mask`` marks real (non-padding)
    validation targets of a language model, None when every target counts."""

    X: Tensor
    y: Tensor
    X_val: Tensor
    y_val: Tensor
    val_mask: Tensor | None = None


@dataclass(frozen=True)
class Setup:
    """A zoo entry: ``build(seed)`` trains it; a sick one names the finding code it must yield and, where that
    code is a symptom with several causes, the ``cause_code`` its evidence must name."""

    name: str
    build: Callable[[int], History]
    expected: str | None  # None for a healthy set-up: no warning, no error
    cause: str | None = None


@dataclass(frozen=True)
class Knobs:
    """What a fault changes in the loop (the defaults are a correct loop)."""

    epochs: int = 4
    batch_size: int = 32
    shuffle: bool = True
    warmup_steps: int = 0  # linear warmup of the learning rate over this many steps
    zero_grad: bool = True  # False: gradients pile up across steps
    ignore_index: int | None = None  # a padding target the training loss and accuracy skip (None: count all)


def _loss(scores: Tensor, targets: Tensor, ignore_index: int | None) -> Tensor:
    flat = scores.reshape(-1, scores.shape[-1]), targets.reshape(-1)
    return F.cross_entropy(*flat) if ignore_index is None else F.cross_entropy(*flat, ignore_index=ignore_index)


def _accuracy(scores: Tensor, targets: Tensor, mask: Tensor | None) -> tuple[int, int]:
    right = scores.argmax(-1) == targets
    if mask is not None:
        return int((right & mask).sum()), int(mask.sum())
    return int(right.sum()), right.numel()


def train(model: nn.Module, data: Data, optimizer: torch.optim.Optimizer, knobs: Knobs, *, seed: int,
          every: int = 4) -> History:
    """Train ``model`` with ``optimizer`` as ``knobs`` say, babysat; return the History with its findings."""
    torch.manual_seed(seed)
    monitor = babysit.Monitor(model, optimizer, every=every)
    monitor.history.meta["num_val"] = len(data.y_val) if data.y_val.dim() == 1 else None
    base = [g["lr"] for g in optimizer.param_groups]
    gen = torch.Generator().manual_seed(seed)
    step = 0
    for _ in range(knobs.epochs):
        model.train()
        right = seen = 0
        order = torch.randperm(len(data.X), generator=gen) if knobs.shuffle else torch.arange(len(data.X))
        for idx in order.split(knobs.batch_size):
            step += 1
            if knobs.warmup_steps:
                for group, lr in zip(optimizer.param_groups, base):
                    group["lr"] = lr * min(1.0, step / knobs.warmup_steps)
            scores = model(data.X[idx])
            loss = _loss(scores, data.y[idx], knobs.ignore_index)
            if knobs.zero_grad:
                optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            real = None if knobs.ignore_index is None else data.y[idx] != knobs.ignore_index
            r, n = _accuracy(scores.detach(), data.y[idx], real)
            right, seen = right + r, seen + n
            if not math.isfinite(float(loss.detach())):
                break
        val_loss, val_acc = _evaluate(model, data)
        monitor.end_epoch(train_acc=right / max(seen, 1), val_acc=val_acc, val_loss=val_loss)
        if not math.isfinite(val_loss):
            monitor.history.status = "diverged"
            break
    history = monitor.history
    history.findings = [f.to_dict() for f in monitor.diagnose()]
    monitor.close()
    return history


@torch.no_grad()
def _evaluate(model: nn.Module, data: Data) -> tuple[float, float]:
    model.eval()
    scores = model(data.X_val)
    loss = _loss(scores, data.y_val, None) if data.val_mask is None else \
        F.cross_entropy(scores[data.val_mask], data.y_val[data.val_mask])
    right, n = _accuracy(scores, data.y_val, data.val_mask)
    return float(loss), right / max(n, 1)
