"""What ``fit`` checks and unpacks before it trains: its settings, the labels against the model, a DataBundle,
a per-batch schedule spec. Every error names the value and what is allowed."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from babysit.errors import ConfigError, DataError
from babysit.train._batches import LoaderBatches, TensorBatches


def check_labels(model: nn.Module, batches: TensorBatches | LoaderBatches, val: Any) -> None:
    """Labels must index the model's scores: 0 <= y < C, where C is the width of the model's output."""
    if not isinstance(batches, TensorBatches):
        return
    was_training = model.training
    model.eval()
    with torch.no_grad():
        num_classes = model(batches.X[:2]).shape[-1]
    model.train(was_training)
    splits = [("train", batches.y)] + ([("validation", val[1])] if isinstance(val, tuple) else [])
    for split, y in splits:
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise DataError(
                f"{split} label {bad} is out of range: the model outputs {num_classes} scores, so labels must be "
                f"integers in 0..{num_classes - 1}. Check the labels or the model's number of classes."
            )


def split_bundle(train_data: Any, val_data: Any) -> tuple[Any, Any]:
    """Accept a DataBundle in place of the train data: use its train and val splits."""
    if hasattr(train_data, "X_train") and hasattr(train_data, "y_train"):
        bundle = train_data
        return (bundle.X_train, bundle.y_train), val_data if val_data is not None else (bundle.X_val, bundle.y_val)
    return train_data, val_data


def schedule_spec(schedule: Any) -> tuple[Any, bool]:
    if isinstance(schedule, dict) and "per_batch" in schedule:
        spec = {k: v for k, v in schedule.items() if k != "per_batch"}
        return spec, bool(schedule["per_batch"])
    return schedule, False


def check_settings(*, epochs: int, batch_size: int, reg: float, lr: float | None) -> None:
    if not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs must be an integer >= 1, got epochs={epochs!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got batch_size={batch_size!r}.")
    if not (isinstance(reg, (int, float)) and math.isfinite(reg) and reg >= 0):
        raise ConfigError(f"reg (the L2 strength) must be a finite number >= 0, got reg={reg!r}.")
    if lr is not None and not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"lr must be a finite number > 0, got lr={lr!r}. Typical values: 1e-3 .. 1e-1.")
