"""Factories that go wrong in the ways users' factories do (imported by configs as ``bad_input_factories:...``)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset


def wide_model(input_shape, num_classes):
    """Expects one more input feature than the data has."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape) + 1, num_classes))


class _Flat(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, 1)

    def forward(self, x):
        return self.linear(x.flatten(1))[:, 0]  # (N,): one score per example, not (N, C)


def flat_model(input_shape, num_classes):
    return _Flat(math.prod(input_shape))


def double_model(input_shape, num_classes):
    """A float64 model: the data is float32."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes)).double()


def not_a_model(input_shape, num_classes):
    return "a string"


def raising_data():
    raise RuntimeError("the database of images is offline")


def one_class_data():
    rng = np.random.default_rng(0)
    return {"X_train": rng.normal(size=(20, 2)), "y_train": np.zeros(20), "X_val": rng.normal(size=(6, 2)),
            "y_val": np.zeros(6)}


def datasets_with_a_bad_label():
    X = torch.randn(30, 2)
    y = torch.arange(30) % 3
    y[7] = -1
    return TensorDataset(X, y), TensorDataset(X[:9], y[:9] % 3)
