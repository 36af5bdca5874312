"""What each module saw in one forward and backward of the whole model: its inputs and upstream gradient.

A module ``m`` inside a model is, to first order, the function ``<g, m(x; theta)>`` with ``x`` the
input it received and ``g`` the gradient of the loss with respect to its output.  Its parameters'
gradient and its input gradient are the vector-Jacobian products of that function, so checking it
there checks ``m``'s backward at the point where the model really uses it, at the cost of ``m``
alone.  One forward and backward of the whole model, with hooks, records per call of each module:

* the positional and keyword arguments (cloned: later in-place ops in the model cannot change them),
* the RNG state just before the call (dropout inside ``m`` redraws the very mask the model drew),
* the gradient that reached each floating output (a tensor hook on the output).

Later ops that modify a module's output in place would make the recorded gradient belong to another
tensor; the caller notices (the module's own gradient then disagrees with the model's) and checks
that parameter in a larger module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["Call", "capture", "clone_structure", "float_tensors"]


def float_tensors(obj: Any) -> list[torch.Tensor]:
    """The floating tensors in ``obj`` (a tensor, or nested tuples, lists and dicts), in a fixed order."""
    if isinstance(obj, torch.Tensor):
        return [obj] if obj.is_floating_point() else []
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in float_tensors(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in float_tensors(item)]
    return []


def clone_structure(obj: Any) -> Any:
    """``obj`` with every tensor replaced by a detached contiguous clone (containers rebuilt, others shared).

    Contiguous, because a checked input is perturbed through a flat view of it.
    """
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone(memory_format=torch.contiguous_format)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return type(obj)(*(clone_structure(item) for item in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(clone_structure(item) for item in obj)
    if isinstance(obj, dict):
        out = dict(obj)
        for key, value in obj.items():
            out[key] = clone_structure(value)
        try:
            return type(obj)(out)
        except TypeError:
            return out
    return obj


@dataclass
class Call:
    """One call of a module during the recorded forward pass."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    rng: torch.Tensor
    cuda_rng: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    out_grads: list[torch.Tensor | None] = field(default_factory=list)
    out_shapes: list[tuple[int, ...]] = field(default_factory=list)
    out_devices: list[torch.device] = field(default_factory=list)

    def restore_rng(self) -> None:
        """Put the RNG where it was when the model made this call."""
        torch.set_rng_state(self.rng)
        for device, state in self.cuda_rng:
            torch.cuda.set_rng_state(state, device)

    def weights(self) -> torch.Tensor:
        """The upstream gradients of the floating outputs, flat, in float64 (0 where none arrived)."""
        parts = [
            torch.zeros(shape, dtype=torch.float64, device=device).reshape(-1)
            if g is None
            else g.to(torch.float64).reshape(-1)
            for g, shape, device in zip(self.out_grads, self.out_shapes, self.out_devices, strict=True)
        ]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def _cuda_devices(module: nn.Module) -> list[int]:
    return sorted({p.device.index or 0 for p in module.parameters() if p.device.type == "cuda"})


def capture(
    modules: dict[str, nn.Module],
    run: Callable[[], torch.Tensor],
    leaves: Iterable[torch.Tensor],
) -> tuple[dict[str, list[Call]], list[torch.Tensor | None], torch.Tensor]:
    """Run ``run()`` (forward + loss) and its backward once, recording every call of ``modules``.

    Returns the calls per module name, the gradients of ``leaves`` and the loss.
    """
    calls: dict[str, list[Call]] = {name: [] for name in modules}
    stacks: dict[str, list[Call]] = {name: [] for name in modules}
    handles = []
    devices = sorted({d for mod in modules.values() for d in _cuda_devices(mod)})

    def pre_hook(name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            call = Call(
                clone_structure(args),
                clone_structure(kwargs),
                torch.get_rng_state(),
                [(d, torch.cuda.get_rng_state(d)) for d in devices],
            )
            calls[name].append(call)
            stacks[name].append(call)

        return hook

    def post_hook(name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
            call = stacks[name].pop()
            outs = float_tensors(out)
            call.out_grads = [None] * len(outs)
            call.out_shapes = [tuple(t.shape) for t in outs]
            call.out_devices = [t.device for t in outs]
            for k, t in enumerate(outs):
                if t.requires_grad:

                    def keep(g: torch.Tensor, call: Call = call, k: int = k) -> None:
                        call.out_grads[k] = g.detach().clone()

                    t.register_hook(keep)

        return hook

    for name, mod in modules.items():
        handles.append(mod.register_forward_pre_hook(pre_hook(name), with_kwargs=True))
        handles.append(mod.register_forward_hook(post_hook(name), with_kwargs=True))
    leaves = list(leaves)
    try:
        with torch.enable_grad():
            loss = run()
            grads = (
                list(torch.autograd.grad(loss.sum(), leaves, allow_unused=True))
                if loss.requires_grad
                else [None] * len(leaves)
            )
    finally:
        for handle in handles:
            handle.remove()
    return calls, grads, loss.detach()
