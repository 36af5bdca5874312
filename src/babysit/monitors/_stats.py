"""The statistics of one sampled step: raw sums on the device (few kernels), decoded on the host.

A :class:`Sample` collects, for one sampled step, 0-d tensors (per-layer sums) and small vectors
(per-parameter norms) without reading any of them, plus a host-side *spec* per entry. At the step's end
they are stacked into one device vector that waits for the epoch's readout (one transfer for the whole
epoch), where :func:`decode` turns the raw sums into the recorded values. Plain sums are much cheaper than
``var_mean`` or ``std`` per tensor, and float64 sums neither overflow for exploding activations nor
underflow for vanishing ones. Formulas (lecture B4, B5):

- mean and std of a layer's output over a sub-sample of the batch: ``mean = S1/n``,
  ``std = sqrt(S2/n - mean^2)`` from ``S1 = sum y`` and ``S2 = sum y^2``;
- dead fraction of a ReLU layer: the share of units (features, or channels of a conv output) never
  positive over the sub-sample, ``mean_u [max_{n,h,w} y[n,u,h,w] <= 0]``;
- saturated fraction of a tanh/sigmoid layer: the share of its *inputs* (pre-activations) beyond
  ``+-SATURATION_INPUT`` (DeepDiagnosis' criterion; tanh(5) = 0.9999, sigmoid(5) = 0.993);
- gradient std of a parameter from its norm and sum: ``std^2 = |g|^2/n - (sum g / n)^2`` (on the sampled
  steps that also keep histograms);
- update/weight ratio: ``||W_after - W_before|| / ||W_before||`` around ``optimizer.step()``, the step
  Adam or momentum actually took, not ``lr * ||dW||``;
- ``grad/carry``: the share of ``.grad`` not explained by this step's backward, ``min_c ||g - c i|| / ||g||``
  with ``i`` what backward delivered (the best scale ``c``, so loss scaling does not count):
  ``carry^2 = 1 - <g, i>^2 / (|g|^2 |i|^2)``; a missing ``zero_grad`` leaves earlier gradients in ``g``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

SATURATION_INPUT = 5.0  # |pre-activation| beyond which tanh/sigmoid count as saturated (DeepDiagnosis)
HISTOGRAM_VALUES = 1024  # values kept per histogram snapshot until the epoch's readout
F64 = torch.float64


class Sample:
    """Device values of one sampled step, in order, and the specs that decode them.

    ``scalars`` are 0-d tensors (stacked at the end), ``vectors`` 1-d ones (concatenated after them);
    each spec is ``(kind, payload, scalars_taken, vector_values_taken)``.
    """

    __slots__ = ("scalars", "specs", "vectors")

    def __init__(self) -> None:
        self.scalars: list[Tensor] = []
        self.vectors: list[Tensor] = []
        self.specs: list[tuple[str, Any, int, int]] = []

    def layer(self, name: str, y: Tensor, pre: Tensor | None, *, dead: bool, saturating: bool) -> None:
        """``act/<name>/mean|std`` (+ ``dead`` for ReLUs, ``saturated`` for tanh/sigmoid) of a sub-sampled output."""
        s = self.scalars
        s.append(torch.sum(y, dtype=F64))
        s.append(torch.sum(torch.square(y), dtype=F64))
        units = 0
        if dead:
            peak = y.amax(dim=(0, *range(2, y.dim()))) if y.dim() > 1 else y.amax()  # (units,): max per unit
            s.append(torch.sum(peak <= 0, dtype=F64))
            units = max(peak.numel(), 1)
        npre = 0
        if saturating and pre is not None:
            s.append(torch.sum(pre.abs() > SATURATION_INPUT, dtype=F64))
            npre = max(pre.numel(), 1)
        self.specs.append(("layer", (name, max(y.numel(), 1), units, npre), 2 + bool(units) + bool(npre), 0))

    def inputs(self, x: Tensor) -> None:
        """``input/mean|std`` of the (sub-sampled) model input."""
        self.scalars += [torch.sum(x, dtype=F64), torch.sum(torch.square(x), dtype=F64)]
        self.specs.append(("input", max(x.numel(), 1), 2, 0))

    def outputs(self, scores: Tensor) -> None:
        """``output/min|max|rowsum_err``: probabilities have min >= 0, max <= 1 and rows summing to 1."""
        low, high = torch.aminmax(scores)
        self.scalars += [low, high]
        if scores.dim() == 2:
            self.scalars.append((torch.sum(scores, dim=1, dtype=F64) - 1).abs().amax())
        else:
            self.scalars.append(torch.full((), math.nan, dtype=F64, device=scores.device))
        self.specs.append(("output", None, 3, 0))

    def gradients(self, names: list[str], grads: list[Tensor], *, std: bool) -> None:
        """``grad/<p>/norm`` of every parameter with a gradient (one fused kernel), and ``grad/<p>/std`` when
        ``std`` (one more kernel per tensor, so only on the steps that keep histograms too)."""
        self.vectors.append(torch.stack(torch._foreach_norm(grads)))
        if std:
            self.vectors.append(torch.stack([torch.sum(g, dtype=F64) for g in grads]))
        sizes = [max(g.numel(), 1) for g in grads] if std else None
        self.specs.append(("grads", (names, sizes), 0, (2 if std else 1) * len(grads)))

    def carry(self, grad: Tensor, incoming: Tensor) -> None:
        """``grad/carry`` of one tensor (a missing ``zero_grad`` shows in every one)."""
        g, i = grad.reshape(-1).to(F64), incoming.reshape(-1).to(F64)
        self.vectors.append(torch.stack([torch.dot(g, i), torch.dot(g, g), torch.dot(i, i)]))
        self.specs.append(("carry", None, 0, 3))

    def updates(self, names: list[str], update_norms: Tensor, weight_norms: Tensor) -> None:
        """``weight/<p>/norm`` and ``ratio/<p>`` = update norm / weight norm."""
        self.vectors += [update_norms, weight_norms]
        self.specs.append(("update", names, 0, 2 * len(names)))

    def scalar(self, key: str, value: Tensor) -> None:
        self.scalars.append(value.reshape(()))
        self.specs.append(("scalar", key, 1, 0))

    def extend(self, other: Sample) -> None:
        self.scalars += other.scalars
        self.vectors += other.vectors
        self.specs += other.specs

    def pack(self) -> Tensor:
        """All values as one float64 device vector: the scalars stacked, then the vectors."""
        parts = ([torch.stack(self.scalars).to(F64)] if self.scalars else []) + [v.to(F64) for v in self.vectors]
        return torch.cat(parts) if len(parts) > 1 else parts[0]


def _std(sq_sum: float, total: float, n: int) -> float:
    var = sq_sum / n - (total / n) ** 2
    return math.sqrt(max(var, 0.0)) if math.isfinite(var) else math.nan


def decode(specs: list[tuple[str, Any, int, int]], scalars: Iterator[float],
           vectors: Iterator[float]) -> Iterator[tuple[str, float]]:
    """Turn raw sums back into ``(series key, value)`` pairs, in the order the specs were written."""
    for kind, payload, _, taken in specs:
        if kind == "layer":
            name, n, units, npre = payload
            s1, s2 = next(scalars), next(scalars)
            yield f"act/{name}/mean", s1 / n
            yield f"act/{name}/std", _std(s2, s1, n)
            if units:
                yield f"act/{name}/dead", next(scalars) / units
            if npre:
                yield f"act/{name}/saturated", next(scalars) / npre
        elif kind == "input":
            s1, s2 = next(scalars), next(scalars)
            yield "input/mean", s1 / payload
            yield "input/std", _std(s2, s1, payload)
        elif kind == "output":
            yield "output/min", next(scalars)
            yield "output/max", next(scalars)
            yield "output/rowsum_err", next(scalars)
        elif kind == "scalar":
            yield payload, next(scalars)
        elif kind == "grads":
            names, sizes = payload
            values = [next(vectors) for _ in range(taken)]
            norms, sums = values[: len(names)], values[len(names) :]
            for i, (name, nrm) in enumerate(zip(names, norms)):
                yield f"grad/{name}/norm", nrm
                if sizes is not None:
                    yield f"grad/{name}/std", _std(nrm * nrm, sums[i], sizes[i])
        elif kind == "carry":
            dot, g2, i2 = next(vectors), next(vectors), next(vectors)
            if g2 > 0 and i2 > 0:
                yield "grad/carry", math.sqrt(max(0.0, 1.0 - dot * dot / (g2 * i2)))
            else:
                yield "grad/carry", 0.0 if g2 == 0 else math.nan
        elif kind == "update":
            values = [next(vectors) for _ in range(taken)]
            m = len(payload)
            for name, update, weight in zip(payload, values[:m], values[m:]):
                yield f"weight/{name}/norm", weight
                yield f"ratio/{name}", update / weight if weight > 0 else math.nan


def first_tensor(value: object) -> Tensor | None:
    """The tensor of a module output (or the first tensor of a tuple output), else None."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], Tensor):
        return value[0]
    return None


def histogram_sample(x: Tensor) -> Tensor:
    """At most ``HISTOGRAM_VALUES`` evenly strided values of ``x``, detached, as float64."""
    flat = x.detach().reshape(-1)
    if flat.numel() > HISTOGRAM_VALUES:
        flat = flat[:: flat.numel() // HISTOGRAM_VALUES][:HISTOGRAM_VALUES]
    return flat.to(F64, copy=True)
