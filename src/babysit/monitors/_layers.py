"""Which modules the Monitor watches, and the record of each in ``History.layers``.

Every leaf module (one without children) is watched: Linear, Conv, activations, norms, and the leaves of
user modules. Pass-through leaves whose output says nothing new (Flatten, Identity, Dropout, pooling) are
skipped, which also keeps the number of hooks, and so the cost of a sampled step, down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

# Units that output exactly 0 for negative inputs and so can die (lecture B5, "dead ReLUs").
RELU_LIKE: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)
# Units with flat tails: tanh and sigmoid saturate near their limits (lecture B5).
SATURATING: tuple[type[nn.Module], ...] = (nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Softsign)
ACTIVATIONS: tuple[type[nn.Module], ...] = (
    *RELU_LIKE, *SATURATING, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Softplus,
)
WEIGHTED: tuple[type[nn.Module], ...] = (nn.Linear, nn.Bilinear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
)
PASS_THROUGH: tuple[type[nn.Module], ...] = (
    nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
    nn.AlphaDropout, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d,
)
DROPOUTS: tuple[type[nn.Module], ...] = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


@dataclass
class Watched:
    """One watched leaf: its name in ``model.named_modules()``, the module, and what to measure on it."""

    name: str
    module: nn.Module
    kind: str  # weighted | activation | norm | softmax | other
    activation: str | None  # relu, tanh, sigmoid, ... for activation layers

    @property
    def dead(self) -> bool:
        """Whether dead units can be counted (output exactly 0 below the kink)."""
        return isinstance(self.module, RELU_LIKE)

    @property
    def saturating(self) -> bool:
        return isinstance(self.module, SATURATING)


def _kind(module: nn.Module) -> str:
    if isinstance(module, WEIGHTED):
        return "weighted"
    if isinstance(module, ACTIVATIONS):
        return "activation"
    if isinstance(module, NORMS):
        return "norm"
    if isinstance(module, (nn.Softmax, nn.LogSoftmax, nn.Softmin)):
        return "softmax"
    return "other"


def watched_layers(model: nn.Module) -> list[Watched]:
    """The leaves of ``model`` worth watching, in registration order (usually the forward order)."""
    layers = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None or isinstance(module, PASS_THROUGH):
            continue
        kind = _kind(module)
        activation = type(module).__name__.lower() if kind == "activation" else None
        layers.append(Watched(name or type(module).__name__.lower(), module, kind, activation))
    return layers


def layer_records(layers: list[Watched]) -> list[dict[str, Any]]:
    """The ``History.layers`` records, in the order given (forward order once it is known).

    ``activation`` on a weighted layer names the activation that follows it, so a rule can say
    "fc1 (followed by tanh)"; ``params`` lists the layer's own parameter names.
    """
    records = []
    for depth, layer in enumerate(layers):
        following = next((nxt.activation for nxt in layers[depth + 1 :] if nxt.activation), None)
        records.append(
            {
                "name": layer.name,
                "type": type(layer.module).__name__,
                "kind": layer.kind,
                "depth": depth,
                "activation": layer.activation if layer.kind == "activation" else following,
                "params": [f"{layer.name}.{p}" for p, _ in layer.module.named_parameters(recurse=False)],
            }
        )
    return records


def parameter_records(model: nn.Module, optimized: set[int]) -> list[dict[str, Any]]:
    """Static facts of every parameter: shape, fan-in, whether it trains and whether the optimizer has it."""
    records = []
    for name, p in model.named_parameters():
        records.append(
            {
                "name": name,
                "shape": list(p.shape),
                "numel": p.numel(),
                "fan_in": p[0].numel() if p.dim() > 1 else None,
                "requires_grad": p.requires_grad,
                "in_optimizer": id(p) in optimized,
            }
        )
    return records


def stochastic_in_training(model: nn.Module) -> list[str]:
    """Names of the Dropout layers that are active (training mode, p > 0): they make passes disagree."""
    return [
        name for name, m in model.named_modules()
        if isinstance(m, DROPOUTS) and m.training and getattr(m, "p", 0) > 0
    ]
