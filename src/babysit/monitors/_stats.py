"""The statistics of one sampled step: raw sums on the device (few kernels), finished on the host.

Each function returns a :class:`Chunk`: series keys, a float64 vector of raw sums that stays on the
device, and a host-side ``finish`` that turns the sums into the recorded values once the vector has been
copied over (one transfer per epoch for everything). Plain sums are much cheaper than ``var_mean`` or
``std`` per tensor, and float64 sums neither overflow for exploding activations nor underflow for
vanishing ones. Formulas (lecture B4, B5):

- mean and std of a layer's output over a sub-sample of the batch: ``mean = S1/n``,
  ``std = sqrt(S2/n - mean^2)`` from ``S1 = sum y`` and ``S2 = sum y^2``;
- dead fraction of a ReLU layer: the share of units (features, or channels of a conv output) never
  positive over the sub-sample, ``mean_u [max_{n,h,w} y[n,u,h,w] <= 0]``;
- saturated fraction of a tanh/sigmoid layer: the share of its *inputs* (pre-activations) beyond
  ``+-SATURATION_INPUT`` (DeepDiagnosis' criterion; tanh(5) = 0.9999, sigmoid(5) = 0.993);
- update/weight ratio: ``||W_after - W_before|| / ||W_before||`` around ``optimizer.step()``, the step
  Adam or momentum actually took, not ``lr * ||dW||``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

SATURATION_INPUT = 5.0  # |pre-activation| beyond which tanh/sigmoid count as saturated (DeepDiagnosis)
HISTOGRAM_VALUES = 1024  # values kept per histogram snapshot until the epoch's readout
CARRY_ELEMENTS = 1 << 20  # gradient values compared by the zero_grad check
F64 = torch.float64


@dataclass
class Chunk:
    """Raw values of one sampled step on the device, and how to finish them on the host."""

    keys: list[str]
    values: Tensor  # (m,) float64, on the device
    finish: Callable[[Sequence[float]], list[float]] | None = None  # m raw values -> len(keys) values


def first_tensor(value: object) -> Tensor | None:
    """The tensor of a module output (or the first tensor of a tuple output), else None."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], Tensor):
        return value[0]
    return None


def subsample(x: Tensor, k: int) -> Tensor:
    """The first ``k`` examples of a batch (batches are shuffled, so a random sub-sample), detached."""
    x = x.detach()
    return x[:k] if x.dim() > 0 and x.shape[0] > k else x


def _moments(n: int) -> Callable[[Sequence[float]], list[float]]:
    def finish(raw: Sequence[float]) -> list[float]:
        mean = raw[0] / n
        var = raw[1] / n - mean * mean
        std = math.sqrt(max(var, 0.0)) if math.isfinite(var) else float("nan")
        return [mean, std, *raw[2:]]

    return finish


def layer_chunk(name: str, y: Tensor, pre: Tensor | None, *, dead: bool, saturating: bool) -> Chunk:
    """``act/<name>/mean|std`` (+ ``dead`` for ReLUs, ``saturated`` for tanh/sigmoid) of a sub-sampled output."""
    n = max(y.numel(), 1)
    keys = [f"act/{name}/mean", f"act/{name}/std"]
    raw = [torch.sum(y, dtype=F64), torch.sum(torch.square(y), dtype=F64)]
    divisors: list[int] = []
    if dead:
        dims = (0, *range(2, y.dim())) if y.dim() > 1 else (0,)
        peak = y.amax(dim=dims)  # (units,): the largest output of each unit over examples and positions
        keys.append(f"act/{name}/dead")
        raw.append(torch.sum(peak <= 0, dtype=F64))
        divisors.append(max(peak.numel(), 1))
    if saturating and pre is not None:
        keys.append(f"act/{name}/saturated")
        raw.append(torch.sum(pre.abs() > SATURATION_INPUT, dtype=F64))
        divisors.append(max(pre.numel(), 1))
    moments = _moments(n)

    def finish(values: Sequence[float]) -> list[float]:
        head = moments(values[:2])
        return head + [v / d for v, d in zip(values[2:], divisors)]

    return Chunk(keys, torch.stack(raw), finish)


def input_chunk(x: Tensor) -> Chunk:
    """``input/mean|std`` of the (sub-sampled) model input."""
    raw = torch.stack([torch.sum(x, dtype=F64), torch.sum(torch.square(x), dtype=F64)])
    return Chunk(["input/mean", "input/std"], raw, _moments(max(x.numel(), 1)))


def output_chunk(scores: Tensor) -> Chunk:
    """``output/min|max|rowsum_err``: probabilities have min >= 0, max <= 1 and rows summing to 1."""
    low, high = torch.aminmax(scores)
    if scores.dim() == 2:
        err = (torch.sum(scores, dim=1, dtype=F64) - 1).abs().amax()
    else:
        err = torch.full((), float("nan"), dtype=F64, device=scores.device)
    return Chunk(["output/min", "output/max", "output/rowsum_err"], torch.stack([low.to(F64), high.to(F64), err]))


def norms(tensors: list[Tensor]) -> Tensor:
    """L2 norm of each tensor as float64: one fused kernel per dtype/device group (``_foreach_norm``)."""
    return torch.stack(torch._foreach_norm(tensors)).to(F64)


def gradient_chunk(names: list[str], grads: list[Tensor]) -> Chunk:
    """``grad/<p>/norm`` and ``grad/<p>/std`` (from the norm and the sum: ``std^2 = |g|^2/n - mean^2``)."""
    sizes = [max(g.numel(), 1) for g in grads]
    raw = torch.cat([norms(grads), torch.stack([torch.sum(g, dtype=F64) for g in grads])])
    m = len(grads)

    def finish(values: Sequence[float]) -> list[float]:
        norm, total = values[:m], values[m:]
        stds = []
        for nrm, s, n in zip(norm, total, sizes):
            var = nrm * nrm / n - (s / n) ** 2
            stds.append(math.sqrt(max(var, 0.0)) if math.isfinite(var) else float("nan"))
        return list(norm) + stds

    return Chunk([f"grad/{n}/norm" for n in names] + [f"grad/{n}/std" for n in names], raw, finish)


def carry_chunk(grads: list[Tensor], incoming: list[Tensor]) -> Chunk:
    """``grad/carry``: share of ``.grad`` not explained by this step's backward (0 when ``zero_grad`` ran).

    With ``g`` the gradients the optimizer sees and ``i`` the sum of what backward delivered this step,
    ``carry = min_c ||g - c i|| / ||g||`` (the best scale ``c``, so loss scaling does not count):
    ``carry^2 = 1 - <g, i>^2 / (|g|^2 |i|^2)``. A missing ``zero_grad`` leaves earlier gradients in ``g``.
    Only the smallest tensors up to ``CARRY_ELEMENTS`` values are compared: a missing ``zero_grad``
    shows in every tensor, and the copy stays small for large models.
    """
    order = sorted(range(len(grads)), key=lambda j: grads[j].numel())
    chosen, total = [], 0
    for j in order:
        if chosen and total + grads[j].numel() > CARRY_ELEMENTS:
            break
        chosen.append(j)
        total += grads[j].numel()
    g = torch.cat([grads[j].reshape(-1) for j in chosen]).to(F64)
    i = torch.cat([incoming[j].reshape(-1) for j in chosen]).to(F64)
    raw = torch.stack([torch.dot(g, i), torch.dot(g, g), torch.dot(i, i)])

    def finish(values: Sequence[float]) -> list[float]:
        dot, g2, i2 = values
        if not (g2 > 0 and i2 > 0):
            return [0.0 if g2 == 0 else float("nan")]
        return [math.sqrt(max(0.0, 1.0 - dot * dot / (g2 * i2)))]

    return Chunk(["grad/carry"], raw, finish)


def histogram_sample(x: Tensor) -> Tensor:
    """At most ``HISTOGRAM_VALUES`` evenly strided values of ``x``, detached, as float64."""
    flat = x.detach().reshape(-1)
    if flat.numel() > HISTOGRAM_VALUES:
        flat = flat[:: flat.numel() // HISTOGRAM_VALUES][:HISTOGRAM_VALUES]
    return flat.to(F64, copy=True)
