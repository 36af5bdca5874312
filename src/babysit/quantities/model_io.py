"""The model's input and output on a sampled step: are the inputs normalised, are the outputs already
probabilities? (the notes' preprocessing; a softmax before a loss that applies its own)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from babysit.quantities._base import Measurement
from babysit.quantities._families import InputQuantity, OutputQuantity
from babysit.quantities._numbers import F64, moments_from_sums, sums_for_moments


class InputMoments(InputQuantity):
    """Mean and std of the (sub-sampled) model input: standardised data has about 0 and 1."""

    name: ClassVar[str] = "input_moments"
    keys: ClassVar[dict[str, str]] = {"mean": "input/mean", "std": "input/std"}

    def measure(self, source: Tensor) -> Measurement:
        return Measurement(sums_for_moments(source), None, max(source.numel(), 1))

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        return moments_from_sums(scalars, context)


class OutputRange(OutputQuantity):
    """Min, max and the largest ``|row sum - 1|`` of the outputs: probabilities have min >= 0, max <= 1 and rows
    summing to 1. A row is the last dimension: ``(N, C)`` for a classifier, ``(N, T, V)`` for a language model
    (NaN for a 1-D output)."""

    name: ClassVar[str] = "output_range"
    keys: ClassVar[dict[str, str]] = {"min": "output/min", "max": "output/max", "rowsum_err": "output/rowsum_err"}

    def measure(self, source: Tensor) -> Measurement:
        low, high = torch.aminmax(source)
        if source.dim() < 2:
            return Measurement((low, high))
        # the largest |row sum - 1| is max(largest sum - 1, 1 - smallest sum): one more kernel, not three
        least, most = torch.aminmax(torch.sum(source, dim=-1, dtype=F64))
        return Measurement((low, high, least, most))

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        if len(scalars) == 2:
            return {"min": scalars[0], "max": scalars[1], "rowsum_err": math.nan}
        low, high, least, most = scalars
        err = max(most - 1, 1 - least) if least == least and most == most else math.nan  # NaN stays NaN
        return {"min": low, "max": high, "rowsum_err": err}
