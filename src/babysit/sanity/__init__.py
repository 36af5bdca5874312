"""Sanity checks before training (lecture S1-S3): the initial loss, regularization, overfitting a tiny subset.

Example:
    >>> import babysit
    >>> bundle = babysit.data.load("digits")
    >>> model = babysit.models.build("mlp", input_shape=bundle.input_shape, num_classes=10, seed=0)
    >>> report = babysit.sanity.run(model, "softmax", bundle)
    >>> report.ok, [c.name for c in report.checks]
    (True, ['initial_loss', 'regularization_increases_loss', 'overfit_tiny'])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from babysit.errors import ConfigError
from babysit.sanity._inputs import Regularization, num_classes_of, resolve_loss, training_pair
from babysit.sanity._report import SanityCheck, SanityReport
from babysit.sanity.initial_loss import check_initial_loss
from babysit.sanity.overfit_tiny import check_overfit_tiny
from babysit.sanity.regularization import check_regularization

__all__ = [
    "SanityCheck",
    "SanityReport",
    "check_initial_loss",
    "check_overfit_tiny",
    "check_regularization",
    "run",
]


def run(model: nn.Module, loss_fn: str | Callable[[Tensor, Tensor], Tensor], train_data: Any, *,
        num_classes: int | None = None, regularization: Regularization = None) -> SanityReport:
    """Run the lecture's three sanity checks on copies of ``model`` (the model itself is left untouched).

    Args:
        model: a freshly initialised classifier mapping a batch to scores ``(N, C)``.
        loss_fn: ``"softmax"``, ``"svm"`` or a callable ``(scores, targets) -> scalar`` data loss.
        train_data: a DataBundle (its train split), an ``(X, y)`` pair, a Dataset or a DataLoader.
        num_classes: C (default: the width of the model's output).
        regularization: None (babysit's L2, ``0.5 * s * sum(W^2)``), the L2 strength you train with, or a
            callable ``reg(model, strength)`` or ``reg(model)`` (then scaled by the strength).

    Returns:
        A :class:`SanityReport`; ``report.ok`` is False when a check failed, ``report.findings`` says why.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"sanity.run needs a torch.nn.Module, got {type(model).__name__}.")
    fn, kind = resolve_loss(loss_fn)
    X, y = training_pair(train_data)
    classes = num_classes_of(model, X, num_classes)
    return SanityReport([
        check_initial_loss(model, fn, X, y, num_classes=classes, kind=kind),
        check_regularization(model, fn, X, y, regularization),
        check_overfit_tiny(model, fn, X, y),
    ])
