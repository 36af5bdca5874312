"""One learning-rate recommendation per run: every rule that speaks about the rate names this number.

Several rules see the rate from different sides (a diverged loss, a slow loss, update/weight ratios far from
~1e-3, a run that learns nothing). Each computing its own number gave a user two rates for one run, so the
number is computed here once: the rate that brings the largest early update/weight ratio of the weight tensors
to the lecture's ~1e-3 (updates scale with the rate for SGD and momentum, roughly so for Adam). "The rate" is the
one the steps used (the peak of a schedule), never an epoch record's rate read after a decay to 0. The largest
ratio is the safe side both ways: raising the rate stops before any layer takes steps above ~1e-3, lowering
it brings the layer that moves most back there. Without recorded ratios a rule falls back to its own factor of
the recorded rate (10x for a diverged loss, 3x for a high plateau, 10x up for a slow loss); rules that can
fire together share their factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from babysit.diagnose import _facts
from babysit.diagnose import _view as v
from babysit.diagnose import thresholds as T
from babysit.history import History


@dataclass(frozen=True)
class Rate:
    """The recorded rate, the rate recommended instead, and what the recommendation rests on."""

    lr: float | None
    recommended: float | None
    param: str | None = None  # the weight tensor whose ratio set the number (None: a fixed factor)
    ratio: float | None = None

    def text(self) -> str:
        """``"lr 0.002"``, the form every suggestion uses (tests compare these across findings)."""
        return f"lr {self.recommended:g}" if self.recommended is not None else "a learning rate 3-10x different"

    def evidence(self) -> dict[str, Any]:
        basis: dict[str, Any] = {"lr": self.lr}
        if self.param is not None:
            basis.update(param=self.param, ratio=self.ratio, target_ratio=T.RATIO_TARGET)
        return {"recommended_lr": self.recommended, "recommended_from": basis}


def _round(x: float) -> float:
    return float(f"{x:.1g}")


def recommend(history: History, factor: float) -> Rate:
    """The run's recommended rate: from the largest early update/weight ratio, else ``factor`` x the rate.

    Each ratio sample is divided by the rate its step used when the steps' rates were recorded: under a warmup
    or a decay the measured steps ran at a fraction of the peak, and the rate to recommend is the peak that
    brings them to ~1e-3 (updates scale with the rate). ``lr`` is the rate the run trained with (its peak)."""
    lr = v.run_lr(history)
    per_lr = _ratio_per_lr(history, lr)
    if lr is not None and lr > 0 and per_lr:
        param, (ratio, unit) = max(per_lr.items(), key=lambda kv: kv[1][1])
        if unit > 0 and math.isfinite(unit):  # 0: nothing moved (a frozen run); inf/nan: the run blew up
            return Rate(lr, _round(T.RATIO_TARGET / unit), param, ratio)
    return Rate(lr, _round(lr * factor) if lr else None)


def _ratio_per_lr(history: History, lr: float | None) -> dict[str, tuple[float, float]]:
    """``{tensor: (median ratio, median ratio per unit of rate)}`` of the tensors ``ratio_medians`` judges."""
    out = {}
    for name, ratio in _facts.ratio_medians(history).items():
        units = []
        for step, x in _facts.ratio_samples(history, name):
            at = v.lr_at(history, step)
            at = lr if at is None else at
            if at is not None and at > 0:
                units.append(x / at)
        unit = v.median(units)
        if unit is not None:
            out[name] = (ratio, unit)
    return out
