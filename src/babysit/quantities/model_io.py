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
from babysit.quantities._numbers import F64, std_from_sums


class InputMoments(InputQuantity):
    """Mean and std of the (sub-sampled) model input: standardised data has about 0 and 1."""

    name: ClassVar[str] = "input_moments"
    keys: ClassVar[dict[str, str]] = {"mean": "input/mean", "std": "input/std"}

    def measure(self, source: Tensor) -> Measurement:
        x = source
        return Measurement((torch.sum(x, dtype=F64), torch.sum(torch.square(x), dtype=F64)), None, max(x.numel(), 1))

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        s1, s2 = scalars
        return {"mean": s1 / context, "std": std_from_sums(s2, s1, context)}


class OutputRange(OutputQuantity):
    """Min, max and the largest ``|row sum - 1|`` of the outputs: probabilities have min >= 0, max <= 1 and rows
    summing to 1. A row is the last dimension: ``(N, C)`` for a classifier, ``(N, T, V)`` for a language model
    (NaN for a 1-D output)."""

    name: ClassVar[str] = "output_range"
    keys: ClassVar[dict[str, str]] = {"min": "output/min", "max": "output/max", "rowsum_err": "output/rowsum_err"}

    def measure(self, source: Tensor) -> Measurement:
        low, high = torch.aminmax(source)
        if source.dim() >= 2:
            err = (torch.sum(source, dim=-1, dtype=F64) - 1).abs().amax()
        else:
            err = torch.full((), math.nan, dtype=F64, device=source.device)
        return Measurement((low, high, err))

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        low, high, err = scalars
        return {"min": low, "max": high, "rowsum_err": err}
