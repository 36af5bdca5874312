"""A module checked where it sits: the function ``<g, m(x; theta)>`` over its recorded calls.

Every parameter tensor is checked inside the smallest module that accounts for its whole gradient:
first the module that owns it; if that module's own backward, summed over its recorded calls, does
not reproduce the gradient the whole model computed (the tensor is also used elsewhere: tied
weights, a parent that reads ``child.weight`` directly, an in-place op on an output), the tensor
moves up to the parent, and so on up to the whole model, where it always does.  So an evaluation
costs the owning module, not the model, and nothing the model does with the tensor is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ._capture import Call, float_tensors
from ._errors import GradcheckError

__all__ = ["Unit", "agrees", "parent_of"]


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in _tensors(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in _tensors(item)]
    return []


def _copy(obj: Any) -> Any:
    """``obj`` with its tensors cloned (not detached: gradients flow back to the originals)."""
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_copy(item) for item in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(_copy(item) for item in obj)
    if isinstance(obj, dict):
        return {key: _copy(value) for key, value in obj.items()}
    return obj


# The module's own backward reproduces the model's gradient to this relative accuracy when it accounts
# for all of it (same float64 operations, at most another summation order); a tensor used elsewhere
# too misses a whole term.
_AGREE = 1e-6


def parent_of(path: str) -> str:
    """``"blocks.3.mlp"`` for ``"blocks.3.mlp.fc1"``; ``""`` (the model) for a top-level module."""
    return path.rpartition(".")[0]


def agrees(local: torch.Tensor, full: torch.Tensor) -> bool:
    """Whether a module's own gradient of a tensor equals the whole model's (it accounts for all uses)."""
    scale = max(float(full.abs().max()) if full.numel() else 0.0, float(local.abs().max()) if local.numel() else 0.0)
    if scale == 0.0:
        return True
    return float((local - full).abs().max()) <= _AGREE * scale


@dataclass
class Unit:
    """One module and its recorded calls, evaluated as ``sum over calls <g_out, m(args)>``.

    Attributes:
        name: The module's path in the model (``"blocks.3.mlp.fc1"``).
        module: The module (inside the float64 copy).
        calls: Its recorded calls.
        restore: Puts the model's buffers back before every evaluation (batch-norm statistics).
        inputs: The floating tensors among the first call's arguments (checked as ``name:input``).
    """

    name: str
    module: nn.Module
    calls: list[Call]
    restore: Callable[[], None]
    inputs: list[torch.Tensor] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.inputs = float_tensors((self.calls[0].args, self.calls[0].kwargs)) if self.calls else []
        self.weights = torch.cat([c.weights() for c in self.calls]) if self.calls else torch.zeros(0)
        self._mutates: bool | None = None  # whether the module writes into its arguments (ReLU(inplace=True))

    def _arguments(self, call: Call) -> tuple[tuple[Any, ...], dict[str, Any]]:
        # A module that modifies its arguments in place gets copies (through autograd, so input gradients
        # still reach the recorded tensors); the first call of each module finds out on copies.
        if self._mutates is False:
            return call.args, call.kwargs
        return _copy(call.args), _copy(call.kwargs)

    def outputs(self) -> torch.Tensor:
        """Run the module on every recorded call (its RNG state restored first); floating outputs, flat."""
        self.restore()
        parts = []
        for call in self.calls:
            call.restore_rng()
            args, kwargs = self._arguments(call)
            versions = [t._version for t in _tensors((args, kwargs))]
            outs = float_tensors(self.module(*args, **kwargs))
            if self._mutates is None:
                self._mutates = versions != [t._version for t in _tensors((args, kwargs))]
            if [tuple(t.shape) for t in outs] != call.out_shapes:
                raise GradcheckError(
                    f"module {self.name or 'model'} returned outputs of shapes {[tuple(t.shape) for t in outs]} "
                    f"when re-run on its recorded inputs, but {call.out_shapes} in the model's forward; "
                    "a module checked in place must be a function of its arguments, parameters and buffers."
                )
            parts += [t.reshape(-1).to(torch.float64) for t in outs]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)

    def gradients(self, leaves: list[torch.Tensor]) -> list[torch.Tensor]:
        """The module's own vector-Jacobian products: d <g_out, m(x)> / d leaf, flat float64."""
        with torch.enable_grad():
            v = self.outputs()
            w = self.weights.to(v.device)
            grads = (
                torch.autograd.grad((w * v).sum(), leaves, allow_unused=True)
                if v.requires_grad
                else [None] * len(leaves)
            )
        return [
            torch.zeros(t.numel(), dtype=torch.float64, device=t.device)
            if g is None
            else g.detach().reshape(-1).to(torch.float64)
            for g, t in zip(grads, leaves, strict=True)
        ]

    def depth(self) -> int:
        """Modules holding parameters inside it (round-off of its output grows with them)."""
        return max(1, sum(1 for mod in self.module.modules() if next(mod.parameters(recurse=False), None) is not None))
