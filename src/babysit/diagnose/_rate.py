"""One learning-rate recommendation per run: every rule that speaks about the rate names this number.

Several rules see the rate from different sides (a diverged loss, a slow loss, update/weight ratios far from
~1e-3, a run that learns nothing). Each computing its own number gave a user two rates for one run, so the
number is computed here once: the rate that brings the largest early update/weight ratio of the weight tensors
to the lecture's ~1e-3 (updates scale with the rate for SGD and momentum, roughly so for Adam). The largest
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
    """The run's recommended rate: from the largest early update/weight ratio, else ``factor`` x the rate."""
    lr = v.first_lr(history)
    ratios = _facts.ratio_medians(history)
    if lr is not None and lr > 0 and ratios:
        param, ratio = max(ratios.items(), key=lambda kv: kv[1])
        if ratio > 0 and math.isfinite(ratio):  # 0: nothing moved (a frozen run); inf/nan: the run blew up
            return Rate(lr, _round(lr * T.RATIO_TARGET / ratio), param, ratio)
    return Rate(lr, _round(lr * factor) if lr else None)
