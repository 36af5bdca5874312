"""The notes' data losses and the L2 regularization term, kept apart so both can be recorded.

- ``softmax``: cross-entropy of the softmax of the scores, ``L_i = -log(e^{s_y} / sum_j e^{s_j})``;
  at initialisation (tiny random scores) it is ``ln C`` (2.302 for 10 classes).
- ``svm``: multiclass hinge with margin 1, ``L_i = sum_{j != y} max(0, s_j - s_y + 1)``; at
  initialisation it is ``C - 1``. (``torch.nn.functional.multi_margin_loss`` divides by C, so it is not used.)
- Sequence scores ``(N, T, C)`` (a language model scoring every position) against targets ``(N, T)`` are
  flattened to ``N*T`` examples: the loss is per token, and still ``ln C`` at initialisation.
- L2: ``0.5 * reg * sum(W**2)`` over weight matrices and kernels only (not biases, not norm layers),
  so its gradient is ``reg * W``, the same as ``weight_decay=reg`` in plain SGD.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from babysit._names import unknown_name
from babysit.errors import ConfigError, DataError

LossFn = Callable[[Tensor, Tensor], Tensor]
LOSSES = ("softmax", "svm")


def per_token(scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """``(N, T, C)`` scores and ``(N, T)`` targets as ``(N*T, C)`` and ``(N*T,)``; (N, C) and (N,) pass as they are.

    Raises:
        DataError: scores with a time axis whose targets do not have the same (N, T).
    """
    if scores.dim() <= 2:
        return scores, targets
    if targets.shape != scores.shape[:-1]:
        raise DataError(f"sequence scores shaped {tuple(scores.shape)} (N, T, C) need targets shaped "
                        f"{tuple(scores.shape[:-1])} (N, T), got {tuple(targets.shape)}; give one class index per "
                        "position (for a language model: the input shifted by one token).")
    return scores.reshape(-1, scores.shape[-1]), targets.reshape(-1)


def softmax_loss(scores: Tensor, targets: Tensor) -> Tensor:
    """Mean softmax cross-entropy of ``scores`` (N, C) against integer ``targets`` (N,), or per token of
    ``(N, T, C)`` against ``(N, T)``."""
    if scores.dim() <= 2:  # every step of a classifier comes here: no reshaping to do
        return F.cross_entropy(scores, targets)
    return F.cross_entropy(*per_token(scores, targets))


def svm_loss(scores: Tensor, targets: Tensor, margin: float = 1.0) -> Tensor:
    """Mean multiclass SVM hinge loss ``sum_{j != y} max(0, s_j - s_y + margin)`` (per token for sequences)."""
    scores, targets = per_token(scores, targets)
    correct = scores.gather(1, targets.unsqueeze(1))  # (N, 1)
    margins = (scores - correct + margin).clamp(min=0)  # (N, C); the j == y term is exactly `margin`
    return margins.sum(dim=1).mean() - margin


def resolve(loss_fn: str | LossFn) -> LossFn:
    """Turn a loss name (``softmax``, ``svm``) into its function; pass a callable through."""
    if callable(loss_fn):
        return loss_fn
    if loss_fn == "softmax":
        return softmax_loss
    if loss_fn == "svm":
        return svm_loss
    raise ConfigError(unknown_name("loss", str(loss_fn), LOSSES) + " Or pass a callable(scores, targets).")


def expected_initial_loss(loss_name: str, num_classes: int) -> float:
    """The loss of a freshly initialised classifier with reg = 0 (lecture S1)."""
    if loss_name == "softmax":
        return math.log(num_classes)
    if loss_name == "svm":
        return float(num_classes - 1)
    raise ConfigError(unknown_name("loss", loss_name, LOSSES))


def regularized_weights(model: nn.Module) -> list[Tensor]:
    """The tensors L2 applies to: weights of Linear and Conv layers, not biases or norm parameters."""
    weights = []
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and module.weight.requires_grad:
            weights.append(module.weight)
    if not weights:  # a user module without standard layers: every matrix-like parameter
        weights = [p for p in model.parameters() if p.dim() > 1 and p.requires_grad]
    return weights


def l2_penalty(weights: list[Tensor], reg: float) -> Tensor:
    """``0.5 * reg * sum(W**2)`` over ``weights`` (see :func:`regularized_weights`)."""
    if not weights:
        return torch.zeros(())
    return (0.5 * reg) * sum(w.pow(2).sum() for w in weights)  # type: ignore[return-value]
