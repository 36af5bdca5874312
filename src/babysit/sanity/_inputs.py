"""What the sanity checks take in: training examples as tensors, the loss by name or callable, the device."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from babysit import losses
from babysit.data import DataBundle
from babysit.data._validate import as_features, as_labels, check_pair
from babysit.errors import ConfigError, DataError

MAX_EXAMPLES = 2048  # examples read from a Dataset: the checks need a few hundred at most
Regularization = float | Callable[..., Tensor] | None


def training_pair(train_data: Any) -> tuple[Tensor, Tensor]:
    """``(X, y)`` from a DataBundle (its train split), an ``(X, y)`` pair, a Dataset or a DataLoader."""
    if isinstance(train_data, DataBundle):
        return train_data.train
    if isinstance(train_data, (tuple, list)) and len(train_data) == 2:
        X, y = as_features(train_data[0], "X_train"), as_labels(train_data[1], "y_train")
        check_pair(X, y, "train")
        return X, y
    if isinstance(train_data, (Dataset, DataLoader)):
        dataset = train_data.dataset if isinstance(train_data, DataLoader) else train_data
        xs, ys = [], []
        for i in range(min(len(dataset), MAX_EXAMPLES)):  # type: ignore[arg-type]
            x, label = dataset[i]
            xs.append(torch.as_tensor(x))
            ys.append(torch.as_tensor(label))
        if not xs:
            raise DataError("train data is empty; the sanity checks need at least 20 examples.")
        return torch.stack(xs).float(), torch.stack(ys).long()
    raise DataError(
        f"cannot run sanity checks on {type(train_data).__name__}: pass a DataBundle, an (X, y) pair of "
        "tensors or arrays, a Dataset of (x, y) pairs or a DataLoader."
    )


def resolve_loss(loss_fn: str | Callable[[Tensor, Tensor], Tensor]) -> tuple[Callable[[Tensor, Tensor], Tensor], str]:
    """The data loss and its kind: ``softmax``, ``svm``, or ``custom`` (no known value at initialisation)."""
    fn = losses.resolve(loss_fn)
    if isinstance(loss_fn, str):
        return fn, loss_fn
    if fn in (F.cross_entropy, losses.softmax_loss) or isinstance(fn, nn.CrossEntropyLoss):
        return fn, "softmax"
    if fn is losses.svm_loss:
        return fn, "svm"
    return fn, "custom"


RegTerm = Callable[[nn.Module, float], Tensor]


def regularization_term(regularization: Regularization) -> tuple[RegTerm, tuple[float, ...]]:
    """``term(model, strength)`` and the strengths to try, from None (babysit's L2), a float strength
    (babysit's L2 around it) or a callable ``reg(model, strength)`` / ``reg(model)`` (scaled by strength)."""
    if regularization is None or isinstance(regularization, (int, float)):
        base = float(regularization) if regularization else 1e-3
        if base < 0:
            raise ConfigError(f"regularization strength must be >= 0, got {regularization!r}.")

        def l2(model: nn.Module, strength: float) -> Tensor:
            return losses.l2_penalty(losses.regularized_weights(model), strength)

        return l2, (0.0, base, 10 * base, 100 * base, 1000 * base)
    if not callable(regularization):
        raise ConfigError(f"regularization must be None, a strength or a callable, got {regularization!r}.")
    params = [p for p in inspect.signature(regularization).parameters.values()
              if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(params) >= 2:
        return regularization, (0.0, 1e-3, 1e-2, 1e-1, 1.0)
    return (lambda model, strength: strength * regularization(model)), (0.0, 1e-3, 1e-2, 1e-1, 1.0)


def device_of(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def num_classes_of(model: nn.Module, X: Tensor, num_classes: int | None) -> int:
    """The number of classes: given, or the width of the model's output."""
    if num_classes is not None:
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ConfigError(f"num_classes must be an integer >= 2, got num_classes={num_classes!r}.")
        return num_classes
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(X[:2].to(device_of(model)))
    finally:
        model.train(was)
    if out.dim() < 2 or out.shape[-1] < 2:  # (N, C), or a sequence model's (N, T, C)
        raise ConfigError(f"the model returns scores shaped {tuple(out.shape)}; pass num_classes= explicitly.")
    return int(out.shape[-1])
