"""The notes' classifiers: a linear (softmax / SVM) score function and a fully connected net."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from babysit._names import unknown_name
from babysit.errors import ModelError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def activation(name: str) -> nn.Module:
    """Build an activation layer by name."""
    if name not in ACTIVATIONS:
        raise ModelError(unknown_name("activation", name, ACTIVATIONS))
    return ACTIVATIONS[name]()


class LinearClassifier(nn.Sequential):
    """Scores ``s = W x + b``: the notes' softmax or multiclass-SVM classifier (pick the loss)."""

    def __init__(self, input_shape: Sequence[int], num_classes: int) -> None:
        super().__init__(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))


class MLP(nn.Sequential):
    """A fully connected net: ``[Linear -> (BatchNorm) -> activation -> (Dropout)] * len(hidden) -> Linear``.

    Layers are named ``fc1, act1, ...`` so monitors and reports can say which layer they mean.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (100,),
        *,
        activation_name: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"dropout must be in [0, 1), got dropout={dropout}.")
        if any(int(h) < 1 for h in hidden):
            raise ModelError(f"every hidden size must be >= 1, got hidden={list(hidden)}.")
        super().__init__()
        self.add_module("flatten", nn.Flatten())
        width = math.prod(input_shape)
        for i, h in enumerate(hidden, start=1):
            self.add_module(f"fc{i}", nn.Linear(width, int(h)))
            if batch_norm:
                self.add_module(f"bn{i}", nn.BatchNorm1d(int(h)))
            self.add_module(f"act{i}", activation(activation_name))
            if dropout > 0:
                self.add_module(f"drop{i}", nn.Dropout(dropout))
            width = int(h)
        self.add_module(f"fc{len(hidden) + 1}", nn.Linear(width, num_classes))

    def forward(self, x: Tensor) -> Tensor:  # (N, *input_shape) -> (N, C)
        return super().forward(x)
