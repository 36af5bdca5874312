"""Turn user arrays into checked tensors, or say exactly what is wrong with them.

Every check raises :class:`~babysit.errors.DataError` with the split's name, what came in and how to fix
it, because a bad label or a NaN found here costs seconds while the same fault found by a diverging
training run costs an afternoon.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from babysit.errors import DataError

__all__ = ["as_features", "as_labels", "as_tokens", "check_label_range", "check_pair", "check_same_shape"]


def _to_numpy(a: Any, name: str) -> np.ndarray:
    """Return ``a`` as a NumPy array (tensors are detached and moved to the CPU first)."""
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise DataError(
            f"{name} cannot be read as an array ({exc}); pass a NumPy array or a tensor."
        ) from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise DataError(f"{name} must be numeric, got dtype {arr.dtype}; encode the values as numbers first.")
    return arr


def as_features(X: Any, name: str) -> torch.Tensor:
    """Return ``X`` as a float32 CPU tensor of shape (N, ...), rejecting NaN and inf.

    Raises:
        DataError: not numeric, fewer than 2 dimensions, or non-finite values.
    """
    arr = _to_numpy(X, name)
    if arr.ndim < 2:
        raise DataError(
            f"{name} must have one row per example, shape (N, features...), got shape {arr.shape}; "
            f"reshape a single feature to (N, 1)."
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{name} has {int(bad.sum())} non-finite value(s) (NaN or inf), the first at index {first}; "
            f"drop or impute those examples before training."
        )
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).clone()


def as_labels(y: Any, name: str, *, sequence: bool = False) -> torch.Tensor:
    """Return ``y`` as an int64 CPU tensor of shape (N,) holding class indices >= 0.

    Float labels are accepted when they are whole numbers (1.0), since CSV and many
    NumPy pipelines produce them; 1.5 is an error, not something to round silently.
    With ``sequence=True`` the labels are one class per position, shape (N, T): a language model's next
    tokens (a 2-D array is otherwise taken for one-hot rows, which is an error).

    Raises:
        DataError: wrong shape, not numeric, not whole numbers, or negative.
    """
    arr = _to_numpy(y, name)
    if sequence:
        if arr.ndim != 2:
            raise DataError(f"{name} must hold one class index per position, shape (N, T), got shape {arr.shape}.")
        return _whole_nonnegative(arr, name)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(
            f"{name} must be a 1-D array of class indices, shape (N,), got shape {arr.shape}; "
            f"if these are one-hot rows, pass argmax(axis=1) instead."
        )
    return _whole_nonnegative(arr, name)


def as_tokens(X: Any, name: str) -> torch.Tensor:
    """Return token ids ``X`` (N, T) as an int64 CPU tensor: whole numbers >= 0, never normalized.

    Raises:
        DataError: not 2-D, not numeric, not whole numbers, or negative.
    """
    arr = _to_numpy(X, name)
    if arr.ndim != 2:
        raise DataError(f"{name} must hold token ids shaped (N, T), got shape {arr.shape}.")
    return _whole_nonnegative(arr, name)


def _where(arr: np.ndarray, flat: int) -> Any:
    """The index of the ``flat``-th element: an int for 1-D arrays, a tuple otherwise."""
    return flat if arr.ndim == 1 else tuple(int(j) for j in np.unravel_index(flat, arr.shape))


def _whole_nonnegative(arr: np.ndarray, name: str) -> torch.Tensor:
    """Class indices or token ids as int64: whole numbers >= 0 (1.0 is 1; 1.5 and -1 are errors)."""
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = _where(arr, int(np.argmax(bad.ravel())))
            raise DataError(
                f"{name} contains the non-integer label {arr[i].item()!r} at index {i}; labels must be "
                f"whole-number class indices 0..num_classes-1."
            )
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        i = _where(arr, int(np.argmin(arr.ravel())))
        raise DataError(
            f"{name} contains the negative label {int(arr[i])} at index {i}; labels must be class indices "
            f"in 0..num_classes-1. Remap them, e.g. with numpy.unique(y, return_inverse=True)."
        )
    return torch.from_numpy(arr).clone()


def check_pair(X: torch.Tensor, y: torch.Tensor, split: str) -> None:
    """Check that a split is non-empty and has one label per example.

    Raises:
        DataError: lengths differ, or the split has no examples.
    """
    if len(X) != len(y):
        raise DataError(
            f"the {split} split has {len(X)} examples in X_{split} but {len(y)} labels in y_{split}; "
            f"give exactly one label per example (the first dimension of X)."
        )
    if len(X) == 0:
        raise DataError(
            f"the {split} split is empty (0 examples); give it data. When it is carved out of a small "
            f"data set, a small val_fraction / test_fraction can round to zero examples: raise it."
        )


def check_label_range(y: torch.Tensor, split: str, num_classes: int, *, inferred: bool) -> None:
    """Check that every label of ``split`` is below ``num_classes``.

    Raises:
        DataError: a label >= num_classes, naming it and the valid range.
    """
    if len(y) == 0 or int(y.max()) < num_classes:
        return
    bad = int(y.max())
    how = (
        "inferred from the training labels as max + 1; pass num_classes explicitly if some classes "
        "have no training examples"
        if inferred
        else "as given"
    )
    raise DataError(
        f"y_{split} contains label {bad}, outside the valid range 0..{num_classes - 1} "
        f"(num_classes={num_classes}, {how}); labels must be class indices 0..num_classes-1."
    )


def check_same_shape(features: dict[str, torch.Tensor]) -> None:
    """Check that every split's examples have the training examples' shape.

    Raises:
        DataError: naming the split and both shapes.
    """
    shape = tuple(features["train"].shape[1:])
    for split, X in features.items():
        if tuple(X.shape[1:]) != shape:
            raise DataError(
                f"X_{split} examples have shape {tuple(X.shape[1:])} but X_train examples have shape "
                f"{shape}; every split must hold examples of the same shape."
            )
