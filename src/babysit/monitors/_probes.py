"""Occasional probes off the hot path: two evaluation passes, and where a non-finite value first appears.

Both run on the few examples the Monitor kept from its last sampled step, at most once per epoch or once
on divergence, under ``torch.no_grad``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from babysit.monitors._layers import Watched
from babysit.monitors._stats import first_tensor


class ProbeInput(NamedTuple):
    """The first few examples of a sampled batch, positional and keyword, to run the model on again."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    @classmethod
    def of(cls, args: tuple[Any, ...], kwargs: dict[str, Any], k: int) -> ProbeInput:
        def first(v: Any) -> Any:
            return v.detach()[:k].clone() if isinstance(v, Tensor) and v.dim() > 0 else v

        return cls(tuple(first(a) for a in args), {name: first(v) for name, v in kwargs.items()})

    def __call__(self, model: nn.Module) -> Any:
        return model(*self.args, **self.kwargs)

    @property
    def tensors(self) -> list[Tensor]:
        return [v for v in (*self.args, *self.kwargs.values()) if isinstance(v, Tensor)]


@torch.no_grad()
def eval_mode_passes(model: nn.Module, inputs: ProbeInput) -> tuple[Any, Any]:
    """Run ``model`` twice in evaluation mode on ``inputs`` and return both outputs (still on the device).

    A model whose evaluation is deterministic gives the same output twice; dropout applied regardless of
    ``model.eval()`` (``F.dropout(x, training=True)``, a custom stochastic layer) does not
    (``eval_disagreement`` measures by how much).
    """
    was_training = model.training
    model.eval()
    try:
        return inputs(model), inputs(model)
    finally:
        model.train(was_training)


@torch.no_grad()
def first_nonfinite_layer(model: nn.Module, layers: Sequence[Watched], inputs: ProbeInput) -> str | None:
    """Forward ``inputs`` and name the first watched layer (in call order) whose output is not finite.

    Returns ``"<input>"`` when the input itself is not finite, None when every output is finite.
    """
    if any(t.is_floating_point() and not bool(torch.isfinite(t).all()) for t in inputs.tensors):
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
        out = first_tensor(inputs(model))
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
