"""Between stages: the boundary warning (lecture H4) and the next stage's ranges (lecture H5).

After a stage, the best value of each range is checked against the range's edges *in its own scale*
(decades for a log range): within ``EDGE_FRACTION`` of an edge means the optimum may lie outside, so the
stage gets a ``best_at_range_edge`` finding and ``coarse_to_fine`` widens that side for the next stage.
Every other range is narrowed around the stage's top-k values, padded, and kept inside its parent range,
but only where the stage's results depend on it: when trials that lie next to each other in the parameter
(in its own scale) rank alike more than in all but ``DEPENDS_P`` of random shufflings of the ranks. A short
stage cannot rank a parameter whose effect shows only in long training (1-epoch trials cannot tell one
weight decay from another), and narrowing around its noise would cut the good values out before the long
stages could find them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from babysit.findings import Finding
from babysit.hpsearch.space import Choice, Param, Range

EDGE_FRACTION = 0.1  # "near the edge": within 10% of the range's width, in its own scale
PAD_FRACTION = 0.5  # narrowed range = span of the top-k values, padded by half that span on each side
MIN_KEEP = 0.25  # a narrowed range keeps at least a quarter of its parent's width
MAX_LOG_WIDEN = 1.0  # a log range widens by its own width, at most one decade per stage
DEPENDS_P = 0.05  # narrow a range when its neighbours rank alike more than in 95% of random shufflings
SHUFFLES = 1000  # random shufflings that estimate that chance (seeded: the same stage gives the same ranges)


def edge_of(param: Range, value: float) -> str | None:
    """``"low"`` or ``"high"`` when ``value`` lies near that edge of ``param`` and the range could grow there."""
    position = param.position(value)
    lo_limit, hi_limit = param.limits if param.limits is not None else (-math.inf, math.inf)
    if position >= 1.0 - EDGE_FRACTION and param.high < hi_limit:
        return "high"
    if position <= EDGE_FRACTION and param.low > lo_limit and not (param.integer and param.log and param.low <= 1):
        return "low"
    return None


def boundary_findings(
    space: Mapping[str, Param],
    best_params: Mapping[str, Any],
    *,
    stage: int,
    user_space: Mapping[str, Param],
    next_space: Mapping[str, Param] | None,
) -> list[Finding]:
    """One ``best_at_range_edge`` finding per range whose best value sits at an edge (lecture H4)."""
    findings = []
    for name, param in space.items():
        if not isinstance(param, Range) or name not in best_params:
            continue
        value = best_params[name]
        edge = edge_of(param, value)
        if edge is None:
            continue
        bound = param.high if edge == "high" else param.low
        user = user_space.get(name)
        # at (or beyond) an edge of the user's own range: the lecture's warning; at an edge that only a
        # narrowed stage drew, well inside the user's range: a note
        outer = isinstance(user, Range) and (
            (edge == "high" and bound >= user.high) or (edge == "low" and bound <= user.low)
            or (user.low <= value <= user.high and edge_of(user, value) == edge)
        )
        widened = next_space.get(name) if next_space is not None else None
        evidence: dict[str, Any] = {
            "param": name, "value": value, "edge": edge, "bound": bound, "low": param.low, "high": param.high,
            "scale": param.scale, "position": round(param.position(value), 4), "stage": stage,
        }
        if isinstance(widened, Range):
            evidence["next_range"] = [widened.low, widened.high]
            then = f"; the next stage searches [{widened.low:.3g}, {widened.high:.3g}]"
            suggestion = f"coarse_to_fine widened {name} past {bound:.3g}; check the next stage's best value."
        else:
            then = ""
            suggestion = f"search again with {name} widened past {bound:.3g} (e.g. {_widen_hint(param, edge)})."
        findings.append(Finding(
            code="best_at_range_edge",
            severity="warning" if outer else "info",
            message=(
                f"stage {stage}: the best {name} = {value:.3g} lies at the {edge} edge of its range "
                f"[{param.low:.3g}, {param.high:.3g}] ({param.position(value):.0%} of the way in "
                f"{param.scale} scale), so the optimum may lie beyond {bound:.3g}{then}."
            ),
            evidence=evidence,
            suggestion=suggestion,
        ))
    return findings


def refine_space(
    space: Mapping[str, Param],
    top_params: Sequence[Mapping[str, Any]],
    best_params: Mapping[str, Any],
    ranked_params: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Param]:
    """The next stage's space: widened at an edge holding the best value, else narrowed around the top-k.

    With ``ranked_params`` (every finished trial of the stage, best first), a range is narrowed only where
    the results depend on it (:func:`results_depend_on`); without it, every range is narrowed.
    """
    out: dict[str, Param] = {}
    for name, param in space.items():
        values = [p[name] for p in top_params if name in p]
        if not values:
            out[name] = param
        elif isinstance(param, Choice):
            kept = tuple(o for o in param.options if o in values)
            out[name] = Choice(kept or param.options)
        else:
            edge = edge_of(param, best_params[name]) if name in best_params else None
            ranked = None if ranked_params is None else [p[name] for p in ranked_params if name in p]
            if ranked is not None and not results_depend_on(param, ranked):
                values = [param.low, param.high]  # no evidence to narrow on: keep the range (widen an edge)
            out[name] = _narrow(param, values, widen=edge)
    return out


def results_depend_on(param: Range, ranked: Sequence[float], *, seed: int = 0) -> bool:
    """Do a stage's results depend on this parameter? ``ranked`` holds its values, best trial first.

    Ordered by the parameter, neighbouring trials rank alike when the results depend on it (the sum of
    squared rank steps is small); the chance that a random shuffling of the ranks steps as little is the
    p-value, and below ``DEPENDS_P`` the results depend on it.
    """
    if len(ranked) < 4:
        return False  # too few trials to tell
    by_value = sorted(range(len(ranked)), key=lambda rank: param.forward(ranked[rank]))
    steps = _rank_steps(by_value)
    rng = random.Random(seed)
    shuffled = list(by_value)
    as_smooth = 0
    for _ in range(SHUFFLES):
        rng.shuffle(shuffled)
        as_smooth += _rank_steps(shuffled) <= steps
    return as_smooth / SHUFFLES < DEPENDS_P


def _rank_steps(ranks: Sequence[int]) -> int:
    return sum((a - b) ** 2 for a, b in zip(ranks, ranks[1:]))


def _narrow(param: Range, values: Sequence[float], *, widen: str | None) -> Range:
    lo, hi = param.forward(param.low), param.forward(param.high)
    width = hi - lo
    xs = [param.forward(v) for v in values]
    a, b = min(xs), max(xs)
    pad = PAD_FRACTION * (b - a)
    a, b = max(lo, a - pad), min(hi, b + pad)
    keep = MIN_KEEP * width
    if b - a < keep:  # too narrow: grow around the top values' centre, then slide back inside the parent
        centre = 0.5 * (a + b)
        a, b = centre - keep / 2, centre + keep / 2
        if a < lo:
            a, b = lo, lo + keep
        if b > hi:
            a, b = hi - keep, hi
    grow = min(width, MAX_LOG_WIDEN) if param.log else width
    if widen == "high":
        b = hi + grow
    elif widen == "low":
        a = lo - grow
    out = param.between(a, b)
    # an edge shared with the parent is the parent's own value (inverse(forward(x)) can miss x by an ulp)
    low = param.low if a == lo and out.low < param.low else out.low
    high = param.high if b == hi and out.high > param.high else out.high
    return out if (low, high) == (out.low, out.high) else Range(low, high, log=param.log, integer=param.integer,
                                                                limits=param.limits)


def _widen_hint(param: Range, edge: str) -> str:
    lo, hi = param.forward(param.low), param.forward(param.high)
    grow = min(hi - lo, MAX_LOG_WIDEN) if param.log else hi - lo
    wider = param.between(lo - grow, hi) if edge == "low" else param.between(lo, hi + grow)
    return f"[{wider.low:.3g}, {wider.high:.3g}]"
