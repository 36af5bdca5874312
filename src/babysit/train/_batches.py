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

from babysit.data._validate import as_features, as_labels, as_tokens, check_pair
from babysit.errors import CheckpointError, DataError


class TensorBatches:
    """Shuffled mini-batches of an ``(X, y)`` pair that already sits on the training device.

    ``epoch_state`` is the shuffling generator's state when the current epoch drew its order: with it and a
    batch position, :meth:`resume_at` draws the same order again and continues from that batch.
    """

    exact_resume = True  # the order of an epoch can be drawn again from its saved generator state

    def __init__(self, X: Tensor, y: Tensor, batch_size: int, generator: torch.Generator, *, rank: int = 0,
                 world: int = 1) -> None:
        self.X, self.y, self.batch_size, self.generator = X, y, batch_size, generator
        self.rank, self.world = rank, world
        # under DistributedDataParallel each process takes every world-th example of the same shuffled order,
        # all the same number (the last few are dropped), so every process takes the same number of steps
        self.num_examples = len(X) // world
        self.epoch_state: Tensor | None = None
        self._skip = 0

    def __len__(self) -> int:
        return math.ceil(self.num_examples / self.batch_size)

    def resume_at(self, position: int, epoch_state: Tensor | None) -> None:
        """Make the next epoch the one that drew its order at ``epoch_state``, starting at batch ``position``."""
        if epoch_state is None:
            raise CheckpointError("the checkpoint was taken inside an epoch but holds no batch order to continue it; "
                                  "it is damaged. Resume from an epoch's end or start the run again.")
        self.generator.set_state(epoch_state)
        self._skip = position

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        self.epoch_state = self.generator.get_state()
        order = torch.randperm(len(self.X), generator=self.generator).to(self.X.device)
        if self.world > 1:
            order = order[self.rank :: self.world][: self.num_examples]
        skip, self._skip = self._skip, 0
        for start in range(skip * self.batch_size, self.num_examples, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self.X[idx], self.y[idx]


class LoaderBatches:
    """Mini-batches from a DataLoader, moved to the device as they come.

    With babysit's own loader (a Dataset was given) the shuffling generator is babysit's, so an epoch can be
    drawn again from its saved state and resumed at a batch (the skipped batches are loaded and dropped). A
    DataLoader of your own shuffles with its own randomness: a resumed epoch skips as many batches of a
    fresh order.
    """

    def __init__(self, loader: DataLoader, device: torch.device, generator: torch.Generator | None = None) -> None:
        self.loader, self.device, self.generator = loader, device, generator
        self.num_examples = len(loader.dataset)  # type: ignore[arg-type]
        self.exact_resume = generator is not None
        self.epoch_state: Tensor | None = None
        self._skip = 0

    def __len__(self) -> int:
        return len(self.loader)

    def resume_at(self, position: int, epoch_state: Tensor | None) -> None:
        if self.generator is not None and epoch_state is not None:
            self.generator.set_state(epoch_state)
        self._skip = position

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        self.epoch_state = None if self.generator is None else self.generator.get_state()
        skip, self._skip = self._skip, 0
        for i, (X, y) in enumerate(self.loader):
            if i >= skip:
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
    if y.ndim == 2 and y.shape[1] > 1 and tuple(X.shape) == tuple(y.shape):
        # a sequence model's (N, T) token ids and next-token labels: integers kept as they are, never scaled
        X, y = as_tokens(X, f"X_{split}"), as_labels(y, f"y_{split}", sequence=True)
    else:
        X, y = as_features(X, f"X_{split}"), as_labels(y, f"y_{split}")
    check_pair(X, y, split)
    return X, y


def make_batches(
    data: Any, batch_size: int, generator: torch.Generator, device: torch.device, *, rank: int = 0, world: int = 1
) -> TensorBatches | LoaderBatches:
    """Build the training batches from a pair, a Dataset or a DataLoader (this process's share under DDP)."""
    pair = as_tensor_pair(data, "train")
    if pair is not None:
        X, y = pair
        return TensorBatches(X.to(device), y.to(device), batch_size, generator, rank=rank, world=world)
    if world > 1:
        raise DataError("fit under torchrun shards (X, y) tensors itself; pass the training data as an (X, y) pair "
                        "or a DataBundle (or give a DataLoader with a DistributedSampler to your own loop).")
    if isinstance(data, DataLoader):
        return LoaderBatches(data, device)
    if isinstance(data, Dataset):
        if len(data) == 0:  # type: ignore[arg-type]
            raise DataError("train data is an empty Dataset; give at least one example.")
        loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=generator)
        return LoaderBatches(loader, device, generator)
    raise DataError(
        f"cannot train on {type(data).__name__}: pass an (X, y) pair of tensors or arrays, "
        "a torch Dataset of (x, y) pairs, a DataLoader, or a babysit.data.DataBundle."
    )
