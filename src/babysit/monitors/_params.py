"""Per-parameter statistics around ``optimizer.step()``: gradients before it, the update it took after it.

The weights are copied just before the step and compared just after, so the update/weight ratio (lecture
B4) is the step the optimizer really took, right for Adam, momentum and weight decay alike. Gradients
that backward delivered during the step are summed by tensor hooks, which tells a gradient left over from
an earlier step (``zero_grad`` missing) from this step's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from babysit.monitors import _stats


class ParameterProbe:
    """Armed for one sampled step: collects gradient, weight and update statistics as (keys, vector) chunks."""

    def __init__(self, named: list[tuple[str, nn.Parameter]], optimized: set[int], histograms: bool,
                 emit: Callable[[_stats.Chunk], None], emit_histogram: Callable[[str, Tensor], None]) -> None:
        self.named = named
        self.optimized = optimized
        self.histograms = histograms
        self.emit, self.emit_histogram = emit, emit_histogram
        self.incoming: dict[int, Tensor] = {}
        self.before: list[Tensor] | None = None
        self.handles: list[torch.utils.hooks.RemovableHandle] = []

    def arm(self, optimizer: torch.optim.Optimizer | None) -> None:
        """Hook backward (incoming gradients) and, when there is an optimizer, its step."""
        for _, p in self.named:
            if id(p) in self.optimized:
                self.handles.append(p.register_hook(self._collector(id(p))))
        if optimizer is not None:
            self.handles.append(optimizer.register_step_pre_hook(self._before_step))
            self.handles.append(optimizer.register_step_post_hook(self._after_step))

    def disarm(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.incoming.clear()
        self.before = None

    def _collector(self, key: int) -> Callable[[Tensor], None]:
        def collect(grad: Tensor) -> None:
            seen = self.incoming.get(key)
            self.incoming[key] = grad.detach() if seen is None else seen + grad.detach()

        return collect

    @torch.no_grad()
    def _before_step(self, optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        self.before = torch._foreach_mul([p.detach() for _, p in self.named], 1.0) if self.named else []

    @torch.no_grad()
    def _after_step(self, optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        """Gradients are read after the step: an optimizer given a closure (L-BFGS, Lightning) runs backward
        inside ``step()``, and ``step()`` itself leaves ``.grad`` as it was."""
        if self.before is None:
            return
        self._gradients()
        if self.named:
            now = [p.detach() for _, p in self.named]
            update = _stats.norms(torch._foreach_sub(now, self.before))
            weight = _stats.norms(self.before)
            names = [name for name, _ in self.named]

            def finish(raw: Sequence[float]) -> list[float]:
                m = len(names)
                ratios = [u / w if w > 0 else float("nan") for u, w in zip(raw[:m], raw[m:])]
                return list(raw[m:]) + ratios

            keys = [f"weight/{n}/norm" for n in names] + [f"ratio/{n}" for n in names]
            self.emit(_stats.Chunk(keys, torch.cat([update, weight]), finish))
        self.before = None

    def _gradients(self) -> None:
        names, grads, pairs = [], [], []
        for name, p in self.named:
            if p.grad is not None:
                names.append(name)
                grads.append(p.grad.detach())
                if id(p) in self.incoming:
                    pairs.append((grads[-1], self.incoming[id(p)]))
        if grads:
            self.emit(_stats.gradient_chunk(names, grads))
        if pairs:
            self.emit(_stats.carry_chunk([g for g, _ in pairs], [i for _, i in pairs]))
        if self.histograms:
            for name, g in zip(names, grads):
                if g.dim() > 1:
                    self.emit_histogram(f"grad/{name}", _stats.histogram_sample(g))
