"""Which modules the Monitor watches, and the record of each in ``History.layers``.

Every leaf module (one without children) is watched: Linear, Conv, activations, norms, and the leaves of
user modules. Pass-through leaves whose output says nothing new (Flatten, Identity, Dropout, pooling) are
skipped, which also keeps the number of hooks, and so the cost of a sampled step, down.

A leaf counts as *weighted* (the layers whose outputs the depth rules compare) when it is a Linear/Conv, or
any other leaf with a >= 2-D ``weight`` Parameter that is not a norm or an embedding: the projections of
library models (Hugging Face GPT-2's ``Conv1D``, quantised or LoRA linears) are weighted layers too.
Embeddings get their own kind: a lookup table, not a layer whose output spread says anything about depth.
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
CONVS: tuple[type[nn.Module], ...] = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)  # channels on dim 1 of the output; every other weighted layer has its features last
WEIGHTED: tuple[type[nn.Module], ...] = (nn.Linear, nn.Bilinear, *CONVS)
EMBEDDINGS: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)
# Hugging Face's Conv1D (GPT-2 and relatives) is a linear layer whose weight is stored transposed, (in, out):
# its fan-in is shape[0], not the product of the other dims. Matched by class name: transformers is optional.
TRANSPOSED_WEIGHT = ("Conv1D",)
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
    kind: str  # weighted | activation | norm | embedding | softmax | other
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
    if isinstance(module, EMBEDDINGS):
        return "embedding"
    if isinstance(module, (nn.Softmax, nn.LogSoftmax, nn.Softmin)):
        return "softmax"
    weight = getattr(module, "weight", None)
    if isinstance(weight, nn.Parameter) and weight.dim() >= 2 and "norm" not in type(module).__name__.lower():
        return "weighted"  # a library's own projection (HF Conv1D, a quantised Linear, ...)
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
    transposed = {id(m.weight) for m in model.modules()
                  if type(m).__name__ in TRANSPOSED_WEIGHT and isinstance(getattr(m, "weight", None), nn.Parameter)}
    records = []
    for name, p in model.named_parameters():
        fan_in = (p.shape[0] if id(p) in transposed else p[0].numel()) if p.dim() > 1 else None
        records.append(
            {
                "name": name,
                "shape": list(p.shape),
                "numel": p.numel(),
                "fan_in": fan_in,
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
