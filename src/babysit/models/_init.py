"""Weight initialisation from the neighbouring notes: small random numbers scaled by fan-in, biases zero.

- ``he``:     std = sqrt(2 / fan_in), for ReLU-like units.
- ``xavier``: std = sqrt(1 / fan_in) (the notes' calibrated variance), for tanh / sigmoid.
- ``normal``: a fixed std (the notes' 0.01 example; too small for deep nets, which is the point).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from babysit._names import unknown_name
from babysit.errors import ModelError

INITS = ("he", "xavier", "normal", "torch")


def initialize(module: nn.Module, init: str = "he", *, std: float = 0.01, bias: float = 0.0) -> None:
    """Initialise every Linear and Conv weight of ``module`` in place; biases are set to ``bias``.

    Args:
        module: the model.
        init: one of ``he``, ``xavier``, ``normal`` or ``torch`` (leave PyTorch's defaults).
        std: the standard deviation for ``normal``.
        bias: the constant every bias starts at (0 in the notes).
    """
    if init not in INITS:
        raise ModelError(unknown_name("init", init, INITS))
    if init == "normal" and not std > 0:
        raise ModelError(f"init_std must be > 0, got init_std={std}. Use e.g. init_std=0.01.")
    if init == "torch":
        return
    for layer in module.modules():
        if not isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            continue
        fan_in = layer.weight[0].numel()
        scale = {"he": math.sqrt(2.0 / fan_in), "xavier": math.sqrt(1.0 / fan_in), "normal": std}[init]
        with torch.no_grad():
            layer.weight.normal_(0.0, scale)
            if layer.bias is not None:
                layer.bias.fill_(bias)
