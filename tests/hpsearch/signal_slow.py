"""A model factory whose forward pass takes a few milliseconds, so that a search's trials are still running when a
test sends its signal (imported by the worker processes through PYTHONPATH)."""

import math
import time

from torch import nn


class _Slow(nn.Module):
    def __init__(self, width: int, num_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(width, 16), nn.ReLU(), nn.Linear(16, num_classes))

    def forward(self, x):
        time.sleep(0.01)
        return self.net(x)


def build(input_shape, num_classes):
    return _Slow(math.prod(input_shape), num_classes)
