"""Mean subtraction and standardization, fitted on the training split only.

The lecture (and CS231n's data-preprocessing notes) insist that any statistic used for preprocessing is
computed on the training data and then applied unchanged to validation and test data; fitting it on all
the data leaks the held-out splits into training and makes validation accuracy optimistic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from babysit._names import unknown_name
from babysit.errors import DataError

__all__ = ["METHODS", "apply_normalization", "fit_normalization"]

METHODS = ("standardize", "center", "none")

# A feature counts as constant when its std is below this fraction of its |mean| (float32 noise).
# Its scale is then 1, as in scikit-learn's StandardScaler: dividing by ~0 would turn a pixel that is
# always blank in training but inked in one validation image into a value of ~1e8.
RELATIVE_STD_FLOOR = 1e-7


def fit_normalization(X_train: torch.Tensor, method: str) -> dict[str, Any]:
    """Compute the statistics of ``method`` on the training features.

    .. math:: \\hat{x}_j = (x_j - \\mu_j) / \\sigma_j, with \\mu_j, \\sigma_j taken over training examples.

    Args:
        X_train: training features, (N, *input_shape).
        method: ``"standardize"`` (mean and std per feature), ``"center"`` (mean only) or ``"none"``.

    Returns:
        A JSON-serialisable dict: ``method``, ``fitted_on``, and ``mean`` / ``std`` as nested lists
        shaped like one example (std already floored), plus ``constant_features``.

    Raises:
        DataError: unknown method.

    Example:
        >>> stats = fit_normalization(torch.tensor([[0.0, 5.0], [2.0, 5.0]]), "standardize")
        >>> stats["mean"], stats["std"], stats["constant_features"]
        ([1.0, 5.0], [1.0, 1.0], 1)
    """
    if method not in METHODS:
        raise DataError(unknown_name("normalization", str(method), METHODS))
    if method == "none":
        return {"method": "none"}
    x = X_train.detach().cpu().double().numpy()
    mean = x.mean(axis=0)
    stats: dict[str, Any] = {"method": method, "fitted_on": "train", "mean": mean.tolist()}
    if method == "standardize":
        std = x.std(axis=0)  # population std (ddof=0), like np.std in the notes
        constant = std <= RELATIVE_STD_FLOOR * np.abs(mean)
        stats["std"] = np.where(constant, 1.0, std).tolist()
        stats["constant_features"] = int(constant.sum())
        stats["std_floor"] = f"std <= {RELATIVE_STD_FLOOR} * |mean| counts as constant and uses scale 1"
    return stats


def apply_normalization(X: torch.Tensor, stats: dict[str, Any]) -> torch.Tensor:
    """Apply statistics from :func:`fit_normalization` (or a bundle's ``normalization``) to ``X``.

    Use it on new data at prediction time so it is preprocessed exactly like the training data.

    Raises:
        DataError: unknown method, or statistics shaped for other examples.
    """
    method = stats.get("method", "none")
    if method not in METHODS:
        raise DataError(unknown_name("normalization", str(method), METHODS))
    if method == "none":
        return X.clone()
    mean = torch.tensor(stats["mean"], dtype=torch.float64)
    if tuple(mean.shape) != tuple(X.shape[1:]):
        raise DataError(
            f"normalization statistics are for examples of shape {tuple(mean.shape)}, "
            f"but X has examples of shape {tuple(X.shape[1:])}."
        )
    out = X.double() - mean
    if method == "standardize":
        out = out / torch.tensor(stats["std"], dtype=torch.float64)
    return out.to(torch.float32)
