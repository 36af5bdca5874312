"""The gradients the optimizer saw, read just after ``optimizer.step()`` (lecture B5).

They are read after the step, not in backward: an optimizer given a closure (L-BFGS, Lightning) runs
backward inside ``step()``, and ``step()`` leaves ``.grad`` as it was.

- ``gradient_norm``: ``||g||`` of every parameter, one fused ``torch._foreach_norm`` for all of them;
- ``gradient_std``: from the same norms and one sum per tensor, ``std^2 = |g|^2/n - (sum g / n)^2``; a kernel
  per tensor, so only on the histogram steps;
- ``gradient_carry``: the share of ``.grad`` not explained by this step's backward,
  ``min_c ||g - c i|| / ||g||`` with ``i`` what backward delivered to one bias (the best scale ``c``, so loss
  scaling and deliberate accumulation do not count): ``carry^2 = 1 - <g, i>^2 / (|g|^2 |i|^2)``; a missing
  ``zero_grad`` leaves earlier gradients in ``g``;
- ``gradient_histogram``: the distribution of every weight matrix's gradient, on the histogram steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import torch

from babysit.quantities._base import Measurement
from babysit.quantities._families import GradientQuantity, Gradients, PerName, PerParameter
from babysit.quantities._histogram import Histogram, bin_values, histogram_sample
from babysit.quantities._numbers import F64, std_from_sums


class GradientNorm(PerParameter, GradientQuantity):
    """``||dL/dW||`` of every parameter with a gradient."""

    name: ClassVar[str] = "gradient_norm"
    keys: ClassVar[dict[str, str]] = {"norm": "grad/{target}/norm"}

    def measure(self, source: Gradients) -> Measurement | None:
        if not source.grads:
            return None
        return Measurement((), torch.stack(source.norms), PerName(source.names))

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        return {"norm": vector[0]}


class GradientStd(PerParameter, GradientQuantity):
    """The std of every parameter's gradient entries (on the histogram steps)."""

    name: ClassVar[str] = "gradient_std"
    keys: ClassVar[dict[str, str]] = {"std": "grad/{target}/std"}
    histogram_steps_only: ClassVar[bool] = True

    def measure(self, source: Gradients) -> Measurement | None:
        if not source.grads:
            return None
        sums = [torch.sum(g, dtype=F64) for g in source.grads]
        sizes = [max(g.numel(), 1) for g in source.grads]
        return Measurement((), torch.stack([*source.norms, *sums]), PerName(source.names, sizes))

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        norm, total = vector
        return {"std": std_from_sums(norm * norm, total, context)}


class GradientCarry(GradientQuantity):
    """How much of ``.grad`` was left over from earlier steps (``zero_grad`` missing), on one watched bias."""

    name: ClassVar[str] = "gradient_carry"
    keys: ClassVar[dict[str, str]] = {"carry": "grad/carry"}
    scope: ClassVar[str] = "model"
    wants_incoming: ClassVar[bool] = True

    def measure(self, source: Gradients) -> Measurement | None:
        if source.carry is None:
            return None
        grad, incoming = source.carry
        g, i = grad.reshape(-1).to(F64), incoming.reshape(-1).to(F64)
        return Measurement((), torch.stack([torch.dot(g, i), torch.dot(g, g), torch.dot(i, i)]))

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        dot, g2, i2 = vector
        if g2 > 0 and i2 > 0:
            return {"carry": math.sqrt(max(0.0, 1.0 - dot * dot / (g2 * i2)))}
        return {"carry": 0.0 if g2 == 0 else math.nan}


class GradientHistogram(Histogram, GradientQuantity):
    """The distribution of each weight matrix's (or kernel's) gradient; biases are left out."""

    name: ClassVar[str] = "gradient_histogram"
    keys: ClassVar[dict[str, str]] = {"histogram": "grad/{target}"}

    def measure(self, source: Gradients) -> Measurement | None:
        picked = [(name, histogram_sample(g, copy=False)) for name, g in zip(source.names, source.grads) if g.dim() > 1]
        if not picked:
            return None
        names, samples = zip(*picked)
        return Measurement((), torch.cat(samples), PerName(names, [s.numel() for s in samples]))  # cat copies

    def readings(self, target: str | None, scalars: Sequence[float], vector: Sequence[float],
                 context: PerName) -> Iterator[tuple[str, Any]]:
        start = 0
        for name, size in zip(context.names, context.items or ()):
            yield self.key("histogram", name), bin_values(vector[start : start + size])
            start += size
