"""What the recorded weight norms say beside the update ratios: weights pulled towards zero (L2 or weight decay,
wherever it is computed), and updates too small for float32 to apply.

Both read only ``update_ratio`` (its ``ratio`` and ``weight_norm`` stats) and ``gradient_norm``, which the
Monitor records anyway: an L2 term inside a user's own loss never shows up as ``reg_loss``, but its steps point
the weights at zero, and the weight norm then falls by about the size of each step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from babysit.diagnose import _view as v
from babysit.diagnose import thresholds as T
from babysit.history import History
from babysit.quantities import GradientNorm, UpdateRatio


@dataclass(frozen=True)
class Shrinkage:
    """How one weight tensor's norm fell while it was updated."""

    shrink: float  # lowest norm / first norm
    alignment: float  # fall of log ||W|| / sum of update ratios, steepest interval: -1 when every step points at zero
    step: int  # the sampled step of the lowest norm


def shrinkage(history: History, name: str) -> Shrinkage | None:
    """The fall of ``name``'s weight norm from its first sample to its lowest, and how straight at zero it was
    pulled on the way: the steepest interval's fall of ``log ||W||`` over the sum of the update ratios in it.

    Each step changes ``log ||W||`` by at most the update ratio (to first order), and by exactly minus it when the
    step points straight at zero (``dW = -eta * lam * W``). The steepest interval is taken, not the whole way
    down: with momentum a strong pull makes the norm overshoot and oscillate, which lengthens the path.
    """
    steps, norms = v.series(history, UpdateRatio, "weight_norm", name)
    ratio_at = dict(zip(*v.series(history, UpdateRatio, "ratio", name)))
    points = [(s, n, ratio_at.get(s)) for s, n in zip(steps, norms)
              if isinstance(n, float) and math.isfinite(n) and n > 0 and isinstance(ratio_at.get(s), float)
              and math.isfinite(ratio_at[s])]
    if len(points) < 2:
        return None
    low = min(range(len(points)), key=lambda i: points[i][1])
    if low == 0:
        return Shrinkage(1.0, 0.0, points[0][0])
    slopes = []
    for (s1, n1, r1), (s2, n2, r2) in zip(points[:low], points[1 : low + 1]):
        path = (s2 - s1) * (r1 + r2) / 2
        if n2 < _FALL * n1 and path > 0:
            slopes.append(math.log(n2 / n1) / path)
    return Shrinkage(points[low][1] / points[0][1], min(slopes, default=0.0), points[low][0])


_FALL = 0.95  # an interval counts when the norm fell by at least 5% in it (smaller changes are noise)


def pulled_to_zero(history: History) -> dict[str, Shrinkage]:
    """Weight tensors whose norm fell to at most ``REG_SHRUNK`` of its first value, pulled straight at zero."""
    found = {}
    for name in v.weight_names(history):
        s = shrinkage(history, name)
        if s is not None and s.shrink <= T.REG_SHRUNK and s.alignment <= T.REG_ALIGNED:
            found[name] = s
    return found


def below_precision(history: History) -> dict[str, float]:
    """Tensors that never changed although their gradient is non-zero, because ``lr * |grad| / |W|`` (the step
    plain SGD would take) is below float32's resolution: ``{name: that ratio}``."""
    lr = v.run_lr(history)
    if not lr or lr <= 0:
        return {}
    out = {}
    for p in v.parameters(history):
        name = p["name"]
        ratios = v.finite(v.series(history, UpdateRatio, "ratio", name)[1])
        grad = v.median(v.series(history, GradientNorm, "norm", name)[1])
        weight = v.median(v.series(history, UpdateRatio, "weight_norm", name)[1])
        if not ratios or any(r > 0 for r in ratios) or not grad or not weight:
            continue
        intended = lr * grad / weight
        # a step below ~1e-18 is lost either way: float32 squares underflow, so neither applying nor measuring it works
        if intended < T.FLOAT32_RESOLUTION or lr * grad < T.FLOAT32_TINY:
            out[name] = intended
    return out
