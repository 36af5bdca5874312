"""Loss and accuracy of a model on a whole split, in evaluation mode and without gradients."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from babysit.errors import DataError
from babysit.losses import LossFn
from babysit.train._batches import as_tensor_pair
from babysit.train._inputs import label_out_of_range


@torch.no_grad()
def evaluate(
    model: nn.Module, data: Any, loss_fn: LossFn, device: torch.device, batch_size: int = 1024
) -> tuple[float, float]:
    """Return the mean data loss and the accuracy of ``model`` on ``data`` (a pair, Dataset or DataLoader)."""
    was_training = model.training
    model.eval()
    try:
        if _is_tensor_pair(data) and 0 < len(data[0]) <= batch_size:  # fit's validation split every epoch: one pass
            X, y = data[0].to(device), data[1].to(device)
            scores = model(X)
            count = y.numel()  # examples, or tokens for a sequence model's (N, T) labels
            return loss_fn(scores, y).item(), int((scores.argmax(dim=-1) == y).sum().item()) / count
        losses, corrects, counts = [], [], []
        for X, y in _chunks(data, batch_size, device):
            scores = model(X)
            losses.append(loss_fn(scores, y))
            corrects.append((scores.argmax(dim=-1) == y).sum())
            counts.append(y.numel())
        count = sum(counts)
        if count == 0:
            raise DataError("the validation data is empty; give at least one example, or no validation data.")
        if len(losses) == 1:  # a validation set in one chunk: its mean loss as it is
            return losses[0].item(), int(corrects[0].item()) / count
        weighted = torch.stack([loss.float() * n for loss, n in zip(losses, counts)]).sum()
        return weighted.item() / count, int(torch.stack(corrects).sum().item()) / count
    except IndexError as exc:
        error = label_out_of_range(exc, "validation", "found while evaluating")
        if error is None:
            raise
        raise error from exc
    finally:
        model.train(was_training)


def _is_tensor_pair(data: Any) -> bool:
    return isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], Tensor) and isinstance(data[1], Tensor)


def _chunks(data: Any, batch_size: int, device: torch.device):
    # a tensor pair was checked by to_device_pair: not re-checked every epoch
    pair = data if _is_tensor_pair(data) else as_tensor_pair(data, "validation")
    if pair is not None:
        X, y = pair
        for start in range(0, len(X), batch_size):
            yield X[start : start + batch_size].to(device), y[start : start + batch_size].to(device)
        return
    loader = data if isinstance(data, DataLoader) else None
    if loader is None and isinstance(data, Dataset):
        loader = DataLoader(data, batch_size=batch_size)
    if loader is None:
        raise DataError(f"cannot evaluate on {type(data).__name__}: give the validation data as an (X, y) pair of "
                        "tensors or arrays, a torch Dataset of (x, y) pairs, or a DataLoader.")
    for X, y in loader:
        yield X.to(device), y.to(device)


def to_device_pair(data: Any, device: torch.device) -> Any:
    """Move an ``(X, y)`` pair to the device once (validated); leave Datasets and loaders alone."""
    pair = as_tensor_pair(data, "validation")
    if pair is None:
        return data
    X, y = pair
    return (X.to(device), y.to(device))


def labels_of(data: Any) -> Tensor | None:
    """The label vector of a pair (for range checks), or None for Datasets."""
    pair = as_tensor_pair(data, "data")
    return None if pair is None else pair[1]
