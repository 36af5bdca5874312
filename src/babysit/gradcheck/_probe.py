"""One check, from a centered difference at h = 1e-5 to a verdict (L-G3, L-G4, L-G5).

The path of a check::

    centered difference at h            passes, no kink crossed      -> done (2 evaluations)
    fallback steps                      kink crossed: h/10, h/100, h/1000 until no kink is crossed
                                        otherwise:    h/10 and 10h (round-off or truncation);
                                        10h, 100h, h/10 when f really computes in float32.
                                        A fallback step only passes a check if it resolves the
                                        derivative (|a| or |n| above its round-off)
    kink *at* the point (a tie)         second-order one-sided differences on each side:
                                        D+ = (-3 f(x) + 4 f(x+h) - f(x+2h)) / 2h  (and mirrored);
                                        a correct subgradient equals one of them
    still unresolved                    the shifted point: move x by 10h along d, recompute the
                                        analytic gradient there, check again

A failing check is judged on the step, among those that cross no kink and resolve the derivative,
whose estimate is closest to the analytic value: a gradient is only called wrong when no usable
step agrees with it.  A kink alone never makes a check "wrong" (an unresolved kink is at most
"suspicious").
"""

from __future__ import annotations

import torch

from ._check import Check
from ._kinks import kink_at_point, same_branches
from ._numeric import Attempt, Evaluator, Slot
from ._relative_error import KINK_OK, TINY, relative_error, verdict

__all__ = ["probe", "quick_gap"]


def _judge(a: float, n: float, res: float, *, kink: bool) -> tuple[float, str, bool]:
    """Relative error, verdict and the tiny flag (L-G6) of one comparison."""
    rel = relative_error(a, n)
    mag = max(abs(a), abs(n))
    tiny = mag > 0.0 and (mag < TINY or mag <= res)
    # f did not change in its last bit (n exactly 0) and a is below 1e-10: nothing can be resolved there
    # (e.g. a saturated cross-entropy that rounds to 0); flagged tiny, never called wrong
    silent = n == 0.0 and abs(a) < TINY
    return rel, verdict(rel, kink=kink, within_noise=abs(a - n) <= res or silent), tiny


def _check(slot: Slot, where: str, a: float, n: float, h: float, res: float, *, kink: bool, note: str = "") -> Check:
    rel, v, tiny = _judge(a, n, res, kink=kink)
    return Check(slot.name, where, a, n, rel, h, v, res, kink, tiny, note)


def _resolved(a: float, at: Attempt) -> bool:
    """Whether the step resolves the derivative at all (it is above the step's round-off)."""
    return max(abs(a), abs(at.numerical)) > at.resolution


def _passes(a: float, at: Attempt, kink: bool, *, fallback: bool = False) -> bool:
    """A pass; at a fallback step only a resolved one (a noisier step agreeing proves nothing)."""
    if at.crossed or (fallback and not _resolved(a, at)):
        return False
    return _judge(a, at.numerical, at.resolution, kink=kink)[1] in ("ideal", "ok")


def _one_sided(
    ev: Evaluator, slot: Slot, span: tuple[int, int, torch.Tensor], a: float, h: float, where: str
) -> Check | None:
    """Accept ``a`` if it equals a one-sided derivative at a kink sitting on the point itself."""
    lo, hi, dvec = span
    res = 40.0 * ev.roundoff(ev.base_v) / h
    for side in (1.0, -1.0):
        v1, s1 = ev.at(slot, lo, hi, dvec, side * h)
        v2, s2 = ev.at(slot, lo, hi, dvec, 2.0 * side * h)
        if not same_branches(s1, s2):
            continue  # another kink between x+h and x+2h: this side is not one smooth piece
        # -3 f(x) + 4 f(x+h) - f(x+2h) written with differences, so unchanged outputs cancel exactly
        d = side * float(ev.weights @ (4.0 * (v1 - ev.base_v) - (v2 - ev.base_v))) / (2.0 * h)
        if relative_error(a, d) < KINK_OK or abs(a - d) <= res:
            label = "right" if side > 0 else "left"
            return _check(slot, where, a, d, h, res, kink=True, note=f"kink at the point: {label} derivative")
    return None


def _shifted(ev: Evaluator, slot: Slot, span: tuple[int, int, torch.Tensor], h: float, where: str) -> Check | None:
    """Re-check 10h away along d, with the analytic gradient recomputed there."""
    lo, hi, dvec = span
    if ev.grad_fn is None:
        return None
    found: Check | None = None
    for side in (1.0, -1.0):
        with ev.shifted(slot, lo, hi, dvec, side * 10.0 * h):
            a2 = float(ev.grad_fn()[slot.index][lo:hi] @ dvec)
            c = probe(ev, slot, lo, hi, dvec, a2, h=h, where=where, shift=False)
        c = Check(
            c.name,
            c.where,
            c.analytic,
            c.numerical,
            c.rel_error,
            c.h,
            c.verdict,
            c.resolution,
            True,
            c.tiny,
            f"shifted point x{'+' if side > 0 else '-'}10h; {c.note}".rstrip("; "),
        )
        if c.verdict in ("ideal", "ok"):
            return c
        found = found or c
    return found


def probe(
    ev: Evaluator,
    slot: Slot,
    lo: int,
    hi: int,
    dvec: torch.Tensor,
    a: float,
    *,
    h: float,
    where: str,
    shift: bool = True,
) -> Check:
    """Check the derivative of f along ``dvec`` on ``slot.flat[lo:hi]`` against ``a``."""
    first = ev.attempt(slot, lo, hi, dvec, h)
    attempts = [first]
    if _passes(a, first, kink=False):
        return _check(slot, where, a, first.numerical, h, first.resolution, kink=False)
    if first.crossed:
        ladder = [h / 10, h / 100, h / 1000]
    elif ev.eps > 1e-10:  # the function really computes in float32: round-off needs larger steps
        ladder = [10 * h, 100 * h, h / 10]
    else:
        ladder = [h / 10, 10 * h]
    for step in ladder:
        at = ev.attempt(slot, lo, hi, dvec, step)
        attempts.append(at)
        crossed = any(t.crossed for t in attempts)
        if _passes(a, at, kink=crossed, fallback=True):
            return _check(
                slot,
                where,
                a,
                at.numerical,
                step,
                at.resolution,
                kink=crossed,
                note="" if step == h else f"fallback h={step:.0e}",
            )
    crossed = any(t.crossed for t in attempts)
    smooth = [t for t in attempts if not t.crossed]
    floor = ev.roundoff(ev.base_v)
    at_point = not smooth or kink_at_point(
        ev.f0, [t.f_plus for t in smooth], [t.f_minus for t in smooth], [t.h for t in smooth], floor
    )
    span = (lo, hi, dvec)
    if at_point or crossed:
        found = _one_sided(ev, slot, span, a, h, where) or _one_sided(ev, slot, span, a, h / 100, where)
        if found is None and shift:
            found = _shifted(ev, slot, span, h, where)
        if found is not None:
            return found
    # judged on the closest estimate among the steps that resolve the derivative, if any do
    pool = [t for t in smooth if _resolved(a, t)] or smooth or attempts
    best = min(pool, key=lambda t: abs(a - t.numerical))
    c = _check(slot, where, a, best.numerical, best.h, best.resolution, kink=crossed or at_point)
    if not smooth and c.verdict == "wrong":  # every step crossed a kink: never call that wrong
        return Check(
            c.name,
            c.where,
            c.analytic,
            c.numerical,
            c.rel_error,
            c.h,
            "suspicious",
            c.resolution,
            True,
            c.tiny,
            "kink not resolved",
        )
    return c


def quick_gap(ev: Evaluator, slot: Slot, lo: int, hi: int, dvec: torch.Tensor, a: float, h: float) -> float:
    """How far ``|a - n|`` exceeds the resolution (<= 0: no discrepancy seen); used for bisection."""
    at = ev.attempt(slot, lo, hi, dvec, h)
    for step in (h / 10, h / 100, h / 1000):
        if not at.crossed:
            break
        at = ev.attempt(slot, lo, hi, dvec, step)
    return abs(a - at.numerical) - at.resolution
