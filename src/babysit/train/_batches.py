"""Mini-batches: shuffled index batches over tensors, or a DataLoader over a Dataset.

Tensor data is moved to the device once and indexed there, which is what a hand-written loop does and
is far cheaper than a DataLoader's per-example collation. The shuffling generator lives on the CPU and
its state is checkpointed, so a resumed run draws the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from babysit.data._validate import as_features, as_labels, check_pair
from babysit.errors import DataError


class TensorBatches:
    """Shuffled mini-batches of an ``(X, y)`` pair that already sits on the training device."""

    def __init__(self, X: Tensor, y: Tensor, batch_size: int, generator: torch.Generator) -> None:
        self.X, self.y, self.batch_size, self.generator = X, y, batch_size, generator
        self.num_examples = len(X)

    def __len__(self) -> int:
        return math.ceil(self.num_examples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = torch.randperm(self.num_examples, generator=self.generator).to(self.X.device)
        for start in range(0, self.num_examples, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self.X[idx], self.y[idx]


class LoaderBatches:
    """Mini-batches from a DataLoader, moved to the device as they come."""

    def __init__(self, loader: DataLoader, device: torch.device) -> None:
        self.loader, self.device = loader, device
        self.num_examples = len(loader.dataset)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for X, y in self.loader:
            yield X.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def as_tensor_pair(data: Any, split: str) -> tuple[Tensor, Tensor] | None:
    """Return ``(X, y)`` as checked float32 / int64 tensors when ``data`` is a pair of arrays, else None.

    The checks are babysit.data's (lengths, integer labels, NaN/inf, empty splits), run once per fit.
    """
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        return None
    X, y = data
    if not isinstance(X, (Tensor, np.ndarray)) or not isinstance(y, (Tensor, np.ndarray)):
        return None
    X, y = as_features(X, f"X_{split}"), as_labels(y, f"y_{split}")
    check_pair(X, y, split)
    return X, y


def make_batches(
    data: Any, batch_size: int, generator: torch.Generator, device: torch.device
) -> TensorBatches | LoaderBatches:
    """Build the training batches from a pair, a Dataset or a DataLoader."""
    pair = as_tensor_pair(data, "train")
    if pair is not None:
        X, y = pair
        return TensorBatches(X.to(device), y.to(device), batch_size, generator)
    if isinstance(data, DataLoader):
        return LoaderBatches(data, device)
    if isinstance(data, Dataset):
        if len(data) == 0:  # type: ignore[arg-type]
            raise DataError("train data is an empty Dataset; give at least one example.")
        loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=generator)
        return LoaderBatches(loader, device)
    raise DataError(
        f"cannot train on {type(data).__name__}: pass an (X, y) pair of tensors or arrays, "
        "a torch Dataset of (x, y) pairs, a DataLoader, or a babysit.data.DataBundle."
    )
