"""Relative error and the lecture's verdict bands (L-G2, L-G3).

The relative error is scale free::

    rel = |a - n| / max(|a|, |n|)        (0 when both are exactly 0)

The seed notes write ``|a| + |n|`` in the denominator; ``max`` is used here, so our numbers are at
most 2x larger than the seed's (``rel`` lies in [0, 2]).

Verdict bands (``a`` analytic, ``n`` numerical, both in float64):

    ============  ==========================================================================
    ideal         rel <= 1e-7
    ok            rel < 1e-4 *only where a kink was involved* (ReLU, max, abs, clamp, hinge);
                  for a smooth function anything above 1e-7 is already suspicious
    suspicious    rel <= 1e-2
    wrong         rel > 1e-2
    ============  ==========================================================================

The only tolerance beyond these bands is the *resolution* of the numerical derivative itself
(see ``_numeric.resolution``): a discrepancy smaller than what round-off of the evaluations can
produce (``10 * eps * depth * |f| / h`` plus measured non-determinism) is "ok" and flagged, never
hidden by a fixed absolute tolerance.  In float64 with ``|f| ~ 1`` that is about 1e-10, so a wrong
gradient of size 1e-7 is still caught (torch.autograd.gradcheck's ``atol=1e-5`` misses it).
Derivatives below ``TINY = 1e-10`` (the lecture's "suspicious in themselves", L-G6) are still
compared relatively but flagged "tiny" with their raw magnitudes; only when ``f`` does not change in
its last bit (numerical exactly 0) is an analytic value below 1e-10 taken as unresolvable.
"""

from __future__ import annotations

import math

__all__ = ["IDEAL", "KINK_OK", "TINY", "VERDICTS", "WRONG", "relative_error", "verdict", "worst"]

IDEAL = 1e-7  # <= ideal (lecture: "1e-7 and less you should be happy")
KINK_OK = 1e-4  # < ok, but only for objectives with kinks
WRONG = 1e-2  # > probably wrong
TINY = 1e-10  # gradients at or below this are suspicious in themselves (L-G6): flagged "tiny"
VERDICTS: tuple[str, ...] = ("ideal", "ok", "suspicious", "wrong")


def relative_error(a: float, n: float) -> float:
    """Return ``|a - n| / max(|a|, |n|)``; 0 when both are 0, nan when either is nan.

    Example:
        >>> relative_error(0.0213, 0.0107) > 0.49
        True
        >>> relative_error(0.0, 0.0)
        0.0
    """
    if math.isnan(a) or math.isnan(n):
        return math.nan
    scale = max(abs(a), abs(n))
    if scale == 0.0:
        return 0.0
    if math.isinf(scale):
        return 0.0 if a == n else 2.0
    return abs(a - n) / scale


def verdict(rel: float, *, kink: bool = False, within_noise: bool = False) -> str:
    """Place one comparison in the lecture's bands.

    Args:
        rel: The relative error.
        kink: Whether a kink was involved (widens "ok" to rel < 1e-4, the lecture's allowance).
        within_noise: Whether ``|a - n|`` is below the resolution of the numerical derivative.
    """
    if math.isnan(rel):
        return "wrong"
    if rel <= IDEAL:
        return "ideal"
    if within_noise or (kink and rel < KINK_OK):
        return "ok"
    if rel <= WRONG:
        return "suspicious"
    return "wrong"


def worst(verdicts: list[str] | tuple[str, ...]) -> str:
    """Return the worst of several verdicts (``ideal`` for none)."""
    return max(verdicts, key=VERDICTS.index, default="ideal")
