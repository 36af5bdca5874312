"""What ``fit`` checks and unpacks before it trains: its settings, the labels against the model, a DataBundle,
a per-batch schedule spec. Every error names the value and what is allowed."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset, default_collate
from torch.utils.data._utils.collate import default_convert

from babysit._checks import describe
from babysit.callbacks._base import Callback
from babysit.errors import ConfigError, DataError, ModelError
from babysit.train._batches import LoaderBatches, TensorBatches


def callback_list(callbacks: Any) -> list[Any]:
    """fit's ``callbacks`` as a list: one callback or function alone (or None) is taken as a list of it; a class
    where an instance belongs is refused here, before training (a class is callable, so it would otherwise be
    called as a function ``f(history)`` after the first epoch)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or (callable(callbacks) and not isinstance(callbacks, type)):
        return [callbacks]
    if isinstance(callbacks, type):
        items: list[Any] = [callbacks]
    elif isinstance(callbacks, (str, bytes, Mapping)) or not isinstance(callbacks, Iterable):
        raise ConfigError(f"callbacks must be a babysit.Callback, a function or a list of them, got "
                          f"{describe(callbacks)}.")
    else:
        items = list(callbacks)
    for item in items:
        if isinstance(item, type):
            name = item.__name__
            if issubclass(item, Callback):
                raise ConfigError(f"callbacks holds the class {name}: pass an instance, {name}(...).")
            raise ConfigError(f"callbacks holds the class {name}: pass babysit.Callback instances (or functions "
                              "history -> bool), not classes.")
    return items


def check_labels(model: nn.Module, batches: TensorBatches | LoaderBatches, val: Any) -> None:
    """Before the first step: the model takes the inputs and returns scores, and the labels index those scores
    (0 <= y < C, C the width of the last axis). Each fault is named here rather than surfacing as a shape or
    dtype error from deep inside the first step, or as a run that "trains" on one class with loss 0."""
    if val is not None and not isinstance(val, tuple) and hasattr(val, "__len__") and len(val) == 0:
        raise DataError(f"the validation data (a {type(val).__name__}) is empty; give at least one example, or no "
                        "validation data.")
    val_set = val.dataset if isinstance(val, DataLoader) else val
    if isinstance(val_set, Dataset) and not isinstance(val_set, (TensorDataset, IterableDataset)) \
            and hasattr(val_set, "__len__") and len(val_set) > 0:
        _first_pair(val if isinstance(val, DataLoader) else DataLoader(val_set), "validation")
    probe_x, labels = _probe(batches)
    scores = _probe_scores(model, probe_x)
    num_classes = scores.shape[-1]
    splits = [("train", labels)] + ([("validation", val[1])] if isinstance(val, tuple) else [])
    train_range = None
    for split, y in splits:
        if y is None or y.numel() == 0:
            continue
        if y.dim() != scores.dim() - 1:
            raise ModelError(
                f"the model returns scores shaped (N, {', '.join(map(str, scores.shape[1:]))}) but the {split} labels "
                f"are shaped (N, {', '.join(map(str, y.shape[1:]))}): scores need one more axis than labels, the "
                f"class axis last ((N, C) for labels (N,), (N, T, C) for labels (N, T))."
            )
        low, high = (int(bound) for bound in torch.aminmax(y))
        if split == "train":
            train_range = (low, high)
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise DataError(
                f"{split} label {bad} is out of range: the model outputs {num_classes} scores, so labels must be "
                f"integers in 0..{num_classes - 1}. Check the labels or the model's number of classes."
            )
    if isinstance(batches, TensorBatches) and labels.dim() == 1 and train_range and train_range[0] == train_range[1]:
        raise DataError(
            f"the training labels hold a single class ({train_range[0]}): a classifier learns nothing from them "
            "(the loss goes to 0 at once). Give examples of at least two classes."
        )


_OUT_OF_BOUNDS = re.compile(r"Target (-?\d+) is out of bounds")


def label_out_of_range(error: IndexError, split: str, where: str) -> DataError | None:
    """The DataError for torch's ``IndexError: Target 12 is out of bounds`` raised by the loss, or None for
    another IndexError. fit checks the labels it can see before training (all of them for tensors, the first
    example of a Dataset); a Dataset's later example with a bad label only shows up in its batch's loss."""
    found = _OUT_OF_BOUNDS.search(str(error))
    if found is None:
        return None
    return DataError(
        f"a {split} label is {found.group(1)}, out of range for the model's scores ({where}): labels must be "
        "integers in 0..C-1 for a model with C outputs. Check the Dataset's labels, or the model's number of "
        "classes."
    )


def _probe(batches: TensorBatches | LoaderBatches) -> tuple[Tensor, Tensor | None]:
    """Two inputs to try the model on, and the labels to check: all of them for tensors and a TensorDataset,
    the first example's for another Dataset (reading them all would cost a pass over the data)."""
    if isinstance(batches, TensorBatches):
        return batches.X[:2], batches.y
    dataset = batches.loader.dataset
    if len(dataset) == 0 or len(batches.loader) == 0:  # type: ignore[arg-type]
        raise DataError("the training DataLoader yields no batches (its dataset is empty, or drop_last drops the "
                        "only, partial batch); give it at least one full batch of examples.")
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        X, y = dataset.tensors
        return X[:2].to(batches.device), torch.as_tensor(y)
    x, y = _first_pair(batches.loader, "training")
    return x[:2].to(batches.device), y


def _first_pair(loader: DataLoader, split: str) -> tuple[Tensor, Tensor]:
    """The first example of a loader's Dataset as a batch of one, ``(inputs, labels)``; a DataError when the Dataset
    gives something else (a dict, Hugging Face style) that no ``collate_fn`` of the caller's turns into a pair."""
    sample = loader.dataset[0]
    if isinstance(sample, Mapping) and loader.collate_fn not in (default_collate, default_convert):
        # the caller's collate_fn may build (inputs, labels) from dicts
        batch = loader.collate_fn([sample] if getattr(loader, "_auto_collation", True) else sample)
        if isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(t, Tensor) for t in batch):
            return batch[0], batch[1]
    if isinstance(sample, Mapping) or not (isinstance(sample, (tuple, list)) and len(sample) == 2):
        raise DataError(_not_a_pair(sample, split))
    x, y = sample
    return torch.as_tensor(x)[None], torch.as_tensor(y)[None]


def _not_a_pair(sample: Any, split: str) -> str:
    """Why fit cannot train on a Dataset whose examples are not ``(input, label)`` pairs, and the ways out."""
    if isinstance(sample, Mapping):
        what = f"a dict with the keys {', '.join(repr(k) for k in sample)}"
    elif isinstance(sample, (tuple, list)):
        what = f"a {type(sample).__name__} of {len(sample)} items"
    else:
        what = f"a {type(sample).__name__}"
    return (f"fit needs (input, label) pairs from a Dataset or DataLoader, but the first {split} example is {what}: "
            "return (x, y) from the Dataset's __getitem__ (or give a DataLoader whose collate_fn builds (inputs, "
            "labels)), or train in your own loop with babysit.Monitor (a Hugging Face Trainer: "
            "babysit.integrations.transformers.BabysitTrainerCallback).")


def _probe_scores(model: nn.Module, x: Tensor) -> Tensor:
    weights = next((p for p in model.parameters() if p.is_floating_point()), None)
    if weights is not None and x.is_floating_point() and weights.dtype != x.dtype:
        raise ModelError(
            f"the model's weights are {str(weights.dtype).removeprefix('torch.')} but the inputs are "
            f"{str(x.dtype).removeprefix('torch.')}: keep the model in float32 (call model.float()) and choose "
            "fp16/bf16 training with FitOptions(precision=...) instead."
        )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            scores = model(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise ModelError(
            f"the model cannot take the inputs, shaped (N, {', '.join(map(str, x.shape[1:]))}): {exc}. Check that "
            "its first layer expects that many features (or channels and size)."
        ) from exc
    finally:
        model.train(was_training)
    if not isinstance(scores, Tensor) or scores.dim() < 2:
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ModelError(
            f"the model returns {shape} for {len(x)} examples; fit needs a score per class: (N, C) scores, e.g. "
            "a final nn.Linear(features, num_classes). A model with one score per example needs a loss of your "
            "own."
        )
    return scores


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
