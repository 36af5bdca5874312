"""The record every later stage trains on: three labelled splits plus what was done to them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from babysit.data._validate import (
    as_features,
    as_labels,
    as_tokens,
    check_label_range,
    check_pair,
    check_same_shape,
)
from babysit.errors import DataError

__all__ = ["DataBundle"]

Pair = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True, eq=False, kw_only=True)
class DataBundle:
    """Train, validation and optional test splits, checked and kept on the CPU.

    The fields are fixed after construction (the tensors are not copied on access, so do not modify
    them in place). Arrays passed in are converted: X to float32, y to int64, and validated, so a
    user factory can build one straight from NumPy arrays. Prefer :func:`babysit.data.from_arrays`,
    which also splits, normalizes and infers ``num_classes``.

    Example:
        >>> import torch
        >>> b = DataBundle(X_train=torch.zeros(4, 2), y_train=torch.tensor([0, 1, 0, 1]),
        ...                X_val=torch.zeros(2, 2), y_val=torch.tensor([0, 1]), num_classes=2)
        >>> b.input_shape, b.summary()["train"]
        ((2,), 4)
    """

    X_train: torch.Tensor  # (N_train, *input_shape) float32
    y_train: torch.Tensor  # (N_train,) int64 class indices
    X_val: torch.Tensor  # (N_val, *input_shape)
    y_val: torch.Tensor  # (N_val,)
    X_test: torch.Tensor | None = None  # held out until the very end; None when there is none
    y_test: torch.Tensor | None = None
    num_classes: int  # labels lie in 0..num_classes-1
    input_shape: tuple[int, ...] = ()  # shape of one example; () means "take it from X_train"
    name: str = "data"  # short name for reports and run folders
    normalization: dict[str, Any] = field(default_factory=lambda: {"method": "none"})  # JSON-able
    description: str = ""  # one line for reports
    sequence: bool = False  # X (N, T) token ids and y (N, T) one class per position (a language model's next tokens)

    def __post_init__(self) -> None:
        """Convert and validate every split so no later stage has to."""
        if (self.X_test is None) != (self.y_test is None):
            raise DataError("give both X_test and y_test, or neither.")
        if (
            not isinstance(self.num_classes, int)
            or isinstance(self.num_classes, bool)
            or self.num_classes < 1
        ):
            raise DataError(f"num_classes must be a positive int, got {self.num_classes!r}.")
        for split in self._splits():
            if self.sequence:
                X = as_tokens(getattr(self, f"X_{split}"), f"X_{split}")
                y = as_labels(getattr(self, f"y_{split}"), f"y_{split}", sequence=True)
                _check_positions(X, y, split)
            else:
                X = as_features(getattr(self, f"X_{split}"), f"X_{split}")
                y = as_labels(getattr(self, f"y_{split}"), f"y_{split}")
            check_pair(X, y, split)
            check_label_range(y, split, self.num_classes, inferred=False)
            object.__setattr__(self, f"X_{split}", X)
            object.__setattr__(self, f"y_{split}", y)
        shape = tuple(self.X_train.shape[1:])
        if self.input_shape and tuple(self.input_shape) != shape:
            raise DataError(f"input_shape={tuple(self.input_shape)} but X_train examples have shape {shape}.")
        object.__setattr__(self, "input_shape", shape)
        check_same_shape({s: getattr(self, f"X_{s}") for s in self._splits()})

    def _splits(self) -> tuple[str, ...]:
        return ("train", "val") if self.X_test is None else ("train", "val", "test")

    @property
    def train(self) -> Pair:
        """The training split as an ``(X, y)`` pair."""
        return self.X_train, self.y_train

    @property
    def val(self) -> Pair:
        """The validation split as an ``(X, y)`` pair."""
        return self.X_val, self.y_val

    @property
    def test(self) -> Pair | None:
        """The test split as an ``(X, y)`` pair, or None when the bundle has none."""
        if self.X_test is None or self.y_test is None:
            return None
        return self.X_test, self.y_test

    def summary(self) -> dict[str, Any]:
        """Sizes, classes and preprocessing as a JSON-serialisable dict, for reports and run folders."""
        counts = {  # per position for a sequence bundle
            s: torch.bincount(getattr(self, f"y_{s}").flatten(), minlength=self.num_classes).tolist()
            for s in self._splits()
        }
        return {
            "name": self.name,
            "description": self.description,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "train": len(self.y_train),
            "val": len(self.y_val),
            "test": 0 if self.y_test is None else len(self.y_test),
            "class_counts": counts,
            "normalization": self.normalization.get("method", "none"),
            **({"sequence": True} if self.sequence else {}),
        }

    def __repr__(self) -> str:
        test = 0 if self.y_test is None else len(self.y_test)
        return (
            f"DataBundle(name={self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, test={test}, "
            f"num_classes={self.num_classes}, input_shape={self.input_shape}, "
            f"normalization={self.normalization.get('method', 'none')!r})"
        )


def _check_positions(X: torch.Tensor, y: torch.Tensor, split: str) -> None:
    """Sequence targets need one class per input position."""
    if X.shape != y.shape:
        raise DataError(f"the {split} split holds token ids shaped {tuple(X.shape)} but targets shaped "
                        f"{tuple(y.shape)}; a sequence bundle needs one target per position (y = X shifted by one).")
