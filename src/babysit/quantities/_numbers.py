"""Small numeric helpers the quantities share: float64 sums on the device, the std from them on the host."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

F64 = torch.float64  # device sums are float64: exploding activations do not overflow, vanishing ones not underflow


def sums_for_moments(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(sum x, ||x||)`` on the device, both accumulated in float64: what :func:`moments_from_sums` reads."""
    return torch.sum(x, dtype=F64), torch.linalg.vector_norm(x, dtype=F64)


def moments_from_sums(scalars: Sequence[float], n: int) -> dict[str, float]:
    """``{"mean", "std"}`` of ``n`` values from :func:`sums_for_moments`' two numbers."""
    total, norm = scalars
    return {"mean": total / n, "std": std_from_sums(norm * norm, total, n)}


def std_from_sums(sq_sum: float, total: float, n: int) -> float:
    """Population std from ``sum x^2`` and ``sum x`` over ``n`` values (NaN when the sums are not finite)."""
    var = sq_sum / n - (total / n) ** 2
    return math.sqrt(max(var, 0.0)) if math.isfinite(var) else math.nan
