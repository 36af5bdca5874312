"""Per-parameter statistics around ``optimizer.step()``: the weights before it, the update it took, the gradients.

The weights are copied just before the step and compared just after, so the update/weight ratio (lecture
B4) is the step the optimizer really took, right for Adam, momentum and weight decay alike. Gradients are
read after the step: an optimizer given a closure (L-BFGS, Lightning) runs backward inside ``step()``, and
``step()`` leaves ``.grad`` as it was. What backward delivered during the step to one bias (the last
Linear/Conv layer's) is summed from the gradient of that layer's *output* (``dL/db = sum dL/dz``), which
tells a gradient left over from an earlier step (``zero_grad`` missing) from this step's own. (A hook on
the parameter itself would do too, but a parameter keeps a trace of every hook ever put on it and every
later backward pays for it; the output is a new tensor each step.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from babysit.monitors import _stats


class ParameterProbe:
    """Armed for one sampled step: writes gradient, weight and update statistics into a Sample."""

    def __init__(self, named: list[tuple[str, nn.Parameter]], watched: nn.Parameter | None, histograms: bool,
                 sample: _stats.Sample, emit_histogram: Callable[[str, Tensor], None]) -> None:
        self.named, self.watched, self.histograms = named, watched, histograms
        self.sample, self.emit_histogram = sample, emit_histogram
        self.incoming: dict[int, Tensor] = {}
        self.before: list[Tensor] | None = None
        self.handles: list[torch.utils.hooks.RemovableHandle] = []

    def arm(self, optimizer: torch.optim.Optimizer | None) -> None:
        """Hook the optimizer's step (before: copy the weights; after: measure)."""
        if optimizer is not None:
            self.handles.append(optimizer.register_step_pre_hook(self._before_step))
            self.handles.append(optimizer.register_step_post_hook(self._after_step))

    def disarm(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.incoming.clear()
        self.before = None

    def watch_output(self, output: Tensor, channel_dim: int) -> None:
        """Sum what backward delivers to the watched bias, from the gradient of its layer's output."""
        if self.watched is None or not output.requires_grad:
            return
        dims = [d for d in range(output.dim()) if d != channel_dim % output.dim()]
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
        self.before = torch._foreach_mul([p.detach() for _, p in self.named], 1.0) if self.named else []

    @torch.no_grad()
    def _after_step(self, optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        if self.before is None:
            return
        self._gradients()
        if self.named:
            now = [p.detach() for _, p in self.named]
            update = torch.stack(torch._foreach_norm(torch._foreach_sub(now, self.before)))
            weight = torch.stack(torch._foreach_norm(self.before))
            self.sample.updates([name for name, _ in self.named], update, weight)
        self.before = None

    def _gradients(self) -> None:
        names, grads = [], []
        for name, p in self.named:
            if p.grad is not None:
                names.append(name)
                grads.append(p.grad.detach())
        if grads:
            self.sample.gradients(names, grads, std=self.histograms)
        w = self.watched
        if w is not None and w.grad is not None and id(w) in self.incoming:
            self.sample.carry(w.grad.detach(), self.incoming[id(w)])
        if self.histograms:
            for name, g in zip(names, grads):
                if g.dim() > 1:
                    self.emit_histogram(f"grad/{name}", _stats.histogram_sample(g))
