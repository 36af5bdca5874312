"""Around ``optimizer.step()`` on a sampled step: the weights before it, the update it took, the gradients.

The gradient and update quantities (:mod:`babysit.quantities.gradients`, :mod:`~babysit.quantities.updates`)
get what they measure from here. The weights are copied just before the step only when an update quantity
is recorded (``update_ratio``): the one copy of the model a sampled step makes. Gradients are read after
the step: an optimizer given a closure (L-BFGS, Lightning) runs backward inside ``step()``, and ``step()``
leaves ``.grad`` as it was. What backward delivered during the step to one bias (the last weighted layer's)
is summed from the gradient of that layer's *output* (``dL/db = sum dL/dz``) when a gradient quantity
``wants_incoming`` (``gradient_carry``): it tells a gradient left over from an earlier step (``zero_grad``
missing) from this step's own. (A hook on the parameter itself would do too, but a parameter keeps a trace
of every hook ever put on it and every later backward pays for it; the output is a new tensor each step.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from babysit.monitors._stats import Sample
from babysit.quantities import GradientQuantity, Gradients, Update, UpdateQuantity


class ParameterProbe:
    """Armed for one sampled step: writes the gradient and update quantities' measurements into a Sample."""

    def __init__(self, named: list[tuple[str, nn.Parameter]], watched: nn.Parameter | None,
                 gradients: Sequence[GradientQuantity], updates: Sequence[UpdateQuantity], sample: Sample) -> None:
        self.named, self.gradients, self.updates, self.sample = named, gradients, updates, sample
        self.watched = watched if any(q.wants_incoming for q in gradients) else None
        self.incoming: dict[int, Tensor] = {}
        self.before: list[Tensor] | None = None
        self.stepping = False
        self.handles: list[torch.utils.hooks.RemovableHandle] = []

    def arm(self, optimizer: torch.optim.Optimizer | None) -> None:
        """Hook the optimizer's step (before: copy the weights if asked; after: measure), when there is work."""
        if optimizer is not None and (self.gradients or self.updates):
            self.handles.append(optimizer.register_step_pre_hook(self._before_step))
            self.handles.append(optimizer.register_step_post_hook(self._after_step))

    def disarm(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.incoming.clear()
        self.before, self.stepping = None, False

    def watch_output(self, output: Tensor, channel_dim: int) -> None:
        """Sum what backward delivers to the watched bias, from the gradient of its layer's output."""
        if self.watched is None or not output.requires_grad or output.dim() == 0:
            return
        channel = channel_dim % output.dim()
        if output.shape[channel] != self.watched.numel():  # not laid out as assumed: no carry, rather than a crash
            return
        dims = [d for d in range(output.dim()) if d != channel]
        key = id(self.watched)

        def collect(grad: Tensor) -> None:
            part = grad.detach().sum(dim=dims) if dims else grad.detach()
            seen = self.incoming.get(key)
            self.incoming[key] = part if seen is None else seen + part

        output.register_hook(collect)

    def new_forward(self) -> None:
        """A forward pass begins: a gradient set to None since the last one means zero_grad ran in between."""
        if self.watched is not None and self.watched.grad is None:
            self.incoming.clear()

    @torch.no_grad()
    def _before_step(self, optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        self.stepping = True
        if self.updates:
            self.before = torch._foreach_mul([p for _, p in self.named], 1.0) if self.named else []  # no_grad: a copy

    @torch.no_grad()
    def _after_step(self, optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        if not self.stepping:
            return
        self.stepping = False
        if self.gradients:
            self._gradients()
        if self.before is not None:
            now = [p.detach() for _, p in self.named]
            update = Update([name for name, _ in self.named], self.before, now)
            for q in self.updates:
                self.sample.add(q, None, q.measure(update))
        self.before = None

    def _gradients(self) -> None:
        names, grads = [], []
        for name, p in self.named:
            if p.grad is not None:
                names.append(name)
                grads.append(p.grad)  # read under no_grad: nothing computed from it joins a graph
        w = self.watched
        carry = (w.grad.detach(), self.incoming[id(w)]) if w is not None and w.grad is not None \
            and id(w) in self.incoming else None
        source = Gradients(names, grads, carry)
        for q in self.gradients:
            self.sample.add(q, None, q.measure(source))
