"""Small numeric helpers the quantities share: float64 sums on the device, the std from them on the host."""

from __future__ import annotations

import math

import torch

F64 = torch.float64  # device sums are float64: exploding activations do not overflow, vanishing ones not underflow


def std_from_sums(sq_sum: float, total: float, n: int) -> float:
    """Population std from ``sum x^2`` and ``sum x`` over ``n`` values (NaN when the sums are not finite)."""
    var = sq_sum / n - (total / n) ** 2
    return math.sqrt(max(var, 0.0)) if math.isfinite(var) else math.nan
