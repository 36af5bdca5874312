"""Seeded, stratified splits: every class keeps its share in every split.

Stratifying matters for the small data sets this package targets: a random 20% of 300 spiral points can
easily under-represent a class, and then validation accuracy measures the split rather than the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from babysit.data._bundle import DataBundle
from babysit.data._validate import as_features, as_labels, check_pair
from babysit.errors import DataError

__all__ = ["check_fractions", "stratified_split", "tiny_subset"]


def check_fractions(**fractions: float) -> None:
    """Check split fractions: each in [0, 1) and together below 1 so training keeps some data.

    Raises:
        DataError: naming the offending fraction.
    """
    for key, f in fractions.items():
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f < 1.0:
            raise DataError(f"{key} must be a number in [0, 1), got {key}={f!r}; the default is 0.2.")
    if sum(fractions.values()) >= 1.0:
        given = ", ".join(f"{k}={v}" for k, v in fractions.items())
        raise DataError(f"{given} leave nothing for training; keep their sum below 1 (e.g. 0.2 each).")


def _allocate(count: int, fractions: Sequence[float]) -> list[int]:
    """Split ``count`` items into groups (train first) by largest remainder, ties going to train."""
    shares = [1.0 - sum(fractions), *fractions]
    exact = [count * s for s in shares]
    sizes = [int(np.floor(e)) for e in exact]
    order = sorted(range(len(shares)), key=lambda g: (-(exact[g] - sizes[g]), g))
    for g in order[: count - sum(sizes)]:
        sizes[g] += 1
    return sizes


def stratified_split(
    y: np.ndarray | torch.Tensor, fractions: Sequence[float], seed: int = 0
) -> list[np.ndarray]:
    """Split example indices into a training group plus one group per fraction, class by class.

    Each class is shuffled with ``numpy.random.default_rng(seed)`` and cut by largest-remainder rounding,
    so the result is the same for a seed on every platform and differs between seeds.

    Args:
        y: integer labels, (N,).
        fractions: the share of each non-training group, e.g. ``(val_fraction, test_fraction)``.
        seed: seed of the shuffle.

    Returns:
        ``[train_idx, *group_idx]``, each sorted ascending.

    Example:
        >>> [len(i) for i in stratified_split(np.repeat([0, 1], 10), (0.2, 0.2))]
        [12, 4, 4]
    """
    labels = np.asarray(y)
    rng = np.random.default_rng(seed)
    groups: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        cuts = np.cumsum(_allocate(len(idx), fractions))[:-1]
        for g, part in enumerate(np.split(idx, cuts)):
            groups[g].append(part)
    return [np.sort(np.concatenate(g)) if g else np.empty(0, dtype=np.int64) for g in groups]


def tiny_subset(
    data: DataBundle | tuple[Any, Any], n: int = 20, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` training examples with the classes as balanced as their sizes allow.

    The lecture's sanity check trains on such a subset with no regularization and expects the loss to
    reach ~0: a model that cannot overfit 20 examples has a bug. Classes are taken round-robin in a
    seeded order, so with n=20 and 10 classes every class gives two examples. Sequence targets ``(N, T)``
    (a language model's) have a class per position, so up to ``n`` sequences are drawn with different first
    tokens (two windows with one prefix and different next tokens could never both be fitted).

    Args:
        data: a :class:`DataBundle` (its training split is used) or an ``(X, y)`` pair.
        n: number of examples, at most the number available.
        seed: seed of the draw.

    Returns:
        ``(X, y)`` tensors, float32 (n, ...) and int64 (n,).

    Raises:
        DataError: n < 1 or more than the data holds.

    Example:
        >>> X, y = tiny_subset((torch.zeros(30, 2), torch.arange(30) % 3), n=6)
        >>> torch.bincount(y).tolist()
        [2, 2, 2]
    """
    if isinstance(data, DataBundle):
        X, y = data.train
    elif isinstance(data[1], torch.Tensor) and data[1].dim() == 2 and data[1].shape[1] > 1:  # sequence targets
        X, y = torch.as_tensor(data[0]), as_labels(data[1], "y", sequence=True)
        check_pair(X, y, "subset's source")
    else:
        X, y = as_features(data[0], "X"), as_labels(data[1], "y")
        check_pair(X, y, "subset's source")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(y):
        raise DataError(f"tiny_subset needs 1 <= n <= {len(y)} (the examples available), got n={n!r}.")
    rng = np.random.default_rng(seed)
    if y.dim() == 2:  # one class per position: no class to balance, a seeded draw of sequences ...
        firsts: dict[int, int] = {}  # ... with different first tokens, so no two share a prefix: every target
        for i in rng.permutation(len(y)).tolist():  # is set by its context and 100% accuracy can be reached
            firsts.setdefault(int(X[i, 0]), i)
            if len(firsts) == n:
                break
        idx = torch.tensor(sorted(firsts.values()), dtype=torch.long)
        return X[idx], y[idx]
    labels = y.numpy()
    pools = [list(rng.permutation(np.flatnonzero(labels == c))) for c in rng.permutation(np.unique(labels))]
    chosen: list[int] = []
    while len(chosen) < n:
        for pool in pools:
            if pool and len(chosen) < n:
                chosen.append(int(pool.pop()))
    idx = torch.tensor(sorted(chosen), dtype=torch.long)
    return X[idx], y[idx]
