"""Is a fix real? Its finding must disappear and validation accuracy must rise by more than the split's noise.

Validation accuracy on ``n`` examples is a binomial proportion: its standard error is ``sqrt(p (1 - p) / n)``.
Two runs differ by noise alone by about ``sqrt(se_before^2 + se_after^2)``; a fix is kept only when the
accuracy rose by more than that (and by at least one example), so a lucky reshuffle is never called a cure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Verdict", "accuracy_noise", "judge"]

LOUD = ("warning", "error")


def accuracy_noise(before: float, after: float, n: int) -> float:
    """The standard error of the difference of two accuracies measured on the same ``n`` validation examples."""
    if n <= 0:
        return math.inf
    return math.sqrt((before * (1 - before) + after * (1 - after)) / n)


@dataclass(frozen=True)
class Verdict:
    """Whether an attempt's fix is kept, and why in words."""

    kept: bool
    why: str
    gain: float
    noise: float


def judge(code: str, before_acc: float | None, after_acc: float | None, n_val: int,
          after_codes: Iterable[str]) -> Verdict:
    """Keep a fix when the finding ``code`` is gone and validation accuracy rose by more than its noise.

    Args:
        code: the finding the fix was meant to cure.
        before_acc: the best validation accuracy before the fix (None: the run had none, counted as 0).
        after_acc: the best validation accuracy with the fix.
        n_val: the number of validation examples.
        after_codes: the loud (warning or error) finding codes of the run with the fix.
    """
    before = before_acc if before_acc is not None and math.isfinite(before_acc) else 0.0
    after = after_acc if after_acc is not None and math.isfinite(after_acc) else 0.0
    noise = accuracy_noise(before, after, n_val)
    gain = after - before
    needed = max(noise, 1.0 / max(n_val, 1))
    if code in set(after_codes):
        return Verdict(False, f"{code} is still there", gain, noise)
    if gain <= needed:
        what = "is within the noise" if gain > -needed else "is a loss"
        return Verdict(False, f"validation accuracy {before:.1%} -> {after:.1%}: {gain:+.1%} {what} "
                              f"(±{noise:.1%} on {n_val} examples)", gain, noise)
    return Verdict(True, f"{code} is gone and validation accuracy rose {before:.1%} -> {after:.1%} ({gain:+.1%}, "
                         f"noise ±{noise:.1%} on {n_val} examples)", gain, noise)
