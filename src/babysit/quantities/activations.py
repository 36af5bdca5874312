"""What each layer outputs on a sampled step (lecture B5), over the first ``sample_size`` examples.

- ``activation_moments``: mean and std of the output, ``mean = S1/n``, ``std = sqrt(S2/n - mean^2)`` from
  ``S1 = sum y`` and ``S2 = ||y||^2`` (two kernels, both accumulating in float64: the squares of exploding
  activations would overflow float32);
- ``dead_fraction`` (ReLU-like layers): the share of units (features, or channels of a conv output) never
  positive over the sub-sample, ``mean_u [max_{n,h,w} y[n,u,h,w] <= 0]``;
- ``saturation`` (tanh/sigmoid-like layers): the share of the layer's *inputs* (pre-activations) beyond
  ``+-SATURATION_INPUT``, where the unit is flat (DeepDiagnosis' criterion; tanh(5) = 0.9999,
  sigmoid(5) = 0.993); the only layer quantity that needs the input, which is kept only for these layers;
- ``activation_histogram``: the output's distribution, on the histogram steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from babysit.quantities._base import Measurement
from babysit.quantities._families import LayerOutput, LayerQuantity
from babysit.quantities._histogram import Histogram, histogram_sample
from babysit.quantities._numbers import F64, moments_from_sums, sums_for_moments

if TYPE_CHECKING:
    from babysit.monitors._layers import Watched

SATURATION_INPUT = 5.0  # |pre-activation| beyond which tanh/sigmoid count as saturated (DeepDiagnosis)


class ActivationMoments(LayerQuantity):
    """Mean and std of every watched layer's output: the lecture's per-layer activation statistics."""

    name: ClassVar[str] = "activation_moments"
    keys: ClassVar[dict[str, str]] = {"mean": "act/{target}/mean", "std": "act/{target}/std"}

    def measure(self, source: LayerOutput) -> Measurement:
        return Measurement(sums_for_moments(source.output), None, max(source.output.numel(), 1))

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        return moments_from_sums(scalars, context)


class DeadFraction(LayerQuantity):
    """Share of a ReLU layer's units that never fire on the sampled examples (dead ReLUs)."""

    name: ClassVar[str] = "dead_fraction"
    keys: ClassVar[dict[str, str]] = {"dead": "act/{target}/dead"}

    def applies(self, layer: Watched) -> bool:
        return layer.dead

    def measure(self, source: LayerOutput) -> Measurement:
        y = source.output
        peak = y.amax(dim=(0, *range(2, y.dim()))) if y.dim() > 1 else y.amax()  # (units,): max per unit
        return Measurement((torch.sum(peak <= 0, dtype=F64),), None, max(peak.numel(), 1))

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        return {"dead": scalars[0] / context}


class Saturation(LayerQuantity):
    """Share of a tanh/sigmoid layer's pre-activations beyond +-5, where its gradient is ~0."""

    name: ClassVar[str] = "saturation"
    keys: ClassVar[dict[str, str]] = {"saturated": "act/{target}/saturated"}

    def applies(self, layer: Watched) -> bool:
        return layer.saturating

    def wants_pre(self, layer: Watched) -> bool:
        return True

    def measure(self, source: LayerOutput) -> Measurement | None:
        pre = source.pre
        if pre is None:
            return None
        return Measurement((torch.sum(pre.abs() > SATURATION_INPUT, dtype=F64),), None, max(pre.numel(), 1))

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        return {"saturated": scalars[0] / context}


class ActivationHistogram(Histogram, LayerQuantity):
    """Each layer's output distribution (fixed edges for tanh, sigmoid and the like)."""

    name: ClassVar[str] = "activation_histogram"
    keys: ClassVar[dict[str, str]] = {"histogram": "act/{target}"}

    def measure(self, source: LayerOutput) -> Measurement:
        return Measurement((), histogram_sample(source.output), source.layer.activation)
