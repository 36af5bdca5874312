"""Occasional probes off the hot path: evaluation determinism, and where a non-finite value first appears.

Both run on the few examples the Monitor kept from its last sampled step, at most once per epoch or once
on divergence, under ``torch.no_grad``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from babysit.monitors._layers import Watched
from babysit.monitors._stats import first_tensor


def disagreement(a: Any, b: Any) -> Tensor | None:
    """``max |a - b| / max |a|`` of two outputs of the same input (0 when evaluation is deterministic)."""
    x, y = first_tensor(a), first_tensor(b)
    if x is None or y is None or x.shape != y.shape:
        return None
    x, y = x.detach().float(), y.detach().float()
    return (x - y).abs().amax() / x.abs().amax().clamp_min(1e-12)


@torch.no_grad()
def eval_mode_disagreement(model: nn.Module, inputs: tuple[Any, ...]) -> Tensor | None:
    """Run ``model`` twice in evaluation mode on ``inputs``; how much the two outputs differ (on the device).

    A model whose evaluation is deterministic gives exactly 0; dropout applied regardless of
    ``model.eval()`` (``F.dropout(x, training=True)``, a custom stochastic layer) gives a large value.
    """
    was_training = model.training
    model.eval()
    try:
        return disagreement(model(*inputs), model(*inputs))
    finally:
        model.train(was_training)


@torch.no_grad()
def first_nonfinite_layer(model: nn.Module, layers: Sequence[Watched], inputs: tuple[Any, ...]) -> str | None:
    """Forward ``inputs`` and name the first watched layer (in call order) whose output is not finite.

    Returns ``"<input>"`` when the input itself is not finite, None when every output is finite.
    """
    first = first_tensor(inputs)
    if first is not None and first.is_floating_point() and not bool(torch.isfinite(first).all()):
        return "<input>"
    bad: list[str] = []

    def check(name: str):
        def hook(module: nn.Module, args: Any, out: Any) -> None:
            y = first_tensor(out)
            if not bad and y is not None and y.is_floating_point() and not bool(torch.isfinite(y).all()):
                bad.append(name)

        return hook

    handles = [layer.module.register_forward_hook(check(layer.name)) for layer in layers]
    was_training = model.training
    model.eval()
    try:
        out = first_tensor(model(*inputs))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    if bad:
        return bad[0]
    if out is not None and not bool(torch.isfinite(out).all()):
        return "<output>"
    return None


def nonfinite_parameters(model: nn.Module) -> list[str]:
    """Names of the parameters holding NaN or inf (one device sync; used only after a divergence)."""
    return [name for name, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
