"""A small conv-relu-pool net for small images (the digits are 1x8x8)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from babysit.errors import ModelError
from babysit.models._mlp import activation


class SmallCNN(nn.Sequential):
    """``[Conv3x3 -> (BatchNorm) -> activation -> MaxPool2] * len(channels) -> Linear(hidden) -> Linear``.

    Padding keeps the size before each pool, so an 8x8 image with two blocks ends at 2x2.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (16, 32),
        hidden: int = 64,
        *,
        activation_name: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        if len(input_shape) != 3:
            raise ModelError(
                f"cnn needs image data shaped (channels, height, width), got input_shape={tuple(input_shape)}. "
                "Use model kind 'mlp' for flat features."
            )
        in_ch, height, width = (int(s) for s in input_shape)
        if min(height, width) < 2 ** len(channels):
            raise ModelError(
                f"{len(channels)} conv blocks halve {height}x{width} images below 1 pixel; "
                f"use at most {max(1, min(height, width).bit_length() - 1)} entries in model.channels."
            )
        super().__init__()
        for i, out_ch in enumerate(channels, start=1):
            self.add_module(f"conv{i}", nn.Conv2d(in_ch, int(out_ch), kernel_size=3, padding=1))
            if batch_norm:
                self.add_module(f"bn{i}", nn.BatchNorm2d(int(out_ch)))
            self.add_module(f"act{i}", activation(activation_name))
            self.add_module(f"pool{i}", nn.MaxPool2d(2))
            in_ch, height, width = int(out_ch), height // 2, width // 2
        self.add_module("flatten", nn.Flatten())
        self.add_module("fc1", nn.Linear(in_ch * height * width, hidden))
        self.add_module("fc_act", activation(activation_name))
        if dropout > 0:
            self.add_module("drop", nn.Dropout(dropout))
        self.add_module("fc2", nn.Linear(hidden, num_classes))
