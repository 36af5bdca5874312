"""Updates against weights (lecture B4): ratios far from ~1e-3, parameters that never change, and gradients
that pile up because ``zero_grad`` is missing."""

from __future__ import annotations

from typing import Any

from babysit.diagnose import _facts, _rate, _weights
from babysit.diagnose import _view as v
from babysit.diagnose import thresholds as T
from babysit.diagnose._registry import rule
from babysit.findings import Finding
from babysit.history import History
from babysit.quantities import GradientNorm, UpdateRatio


def _listing(ratios: dict[str, float]) -> str:
    return ", ".join(f"{name} {v.fmt(r)}" for name, r in ratios.items())


@rule("update_ratio_too_high", "B4", needs=("update_ratio",), uses=("gradient_norm", "gradient_carry"))
def update_ratio_too_high(history: History) -> list[Finding]:
    """Median update/weight ratio above ``RATIO_HIGH`` in some weight tensors (first half of the run); when the
    gradients pile up (``zero_grad`` missing) that, not the learning rate, is named as the cause."""
    high = {n: r for n, r in _facts.ratio_medians(history).items() if r > T.RATIO_HIGH}
    if not high:
        return []
    name, worst = max(high.items(), key=lambda kv: kv[1])
    lr = v.run_lr(history)
    message = (f"lr {v.fmt(lr)}: the update/weight ratio is {v.fmt(worst)} in {name} (healthy ~1e-3)"
               + (f"; also high: {_listing({k: r for k, r in high.items() if k != name})}" if len(high) > 1 else ""))
    evidence: dict[str, Any] = {"lr": lr, "ratios": high}
    if _facts.regularization_dominates(history):
        message += "; the L2 term is shrinking the weights (see regularization_dominates)"
    carry = _facts.carried(history)
    if carry is not None:
        # each update applies the sum of all earlier gradients: large at any rate, so no rate is recommended
        message += (f"; {carry.value:.0%} of each gradient is left over from earlier steps (see "
                    "gradient_accumulation), so the learning rate is not the cause")
        evidence.update(cause_code="zero_grad_missing", carry=carry.value)
        return [Finding("update_ratio_too_high", "warning", message, evidence,
                        "fix that first: see gradient_accumulation (call optimizer.zero_grad() once per step, "
                        "before loss.backward())")]
    rate = _rate.recommend(history, 1 / 3)
    return [Finding("update_ratio_too_high", "warning", message, {**evidence, **rate.evidence()},
                    f"lower the learning rate: try {rate.text()}")]


@rule("update_ratio_too_low", "B4", needs=("update_ratio",), uses=("gradient_norm", *_facts.BLOCKED_SIGNAL_USES))
def update_ratio_too_low(history: History) -> list[Finding]:
    """Median update/weight ratio below ``RATIO_LOW`` in some weight tensors (first half of the run), or updates
    so small that float32 rounds them away (the weights never change although the gradient is not zero)."""
    low = {n: r for n, r in _facts.ratio_medians(history).items() if r < T.RATIO_LOW}
    lost = _weights.below_precision(history)
    if not low and not lost:
        return []
    lr = v.run_lr(history)
    parts = []
    if low:
        name, worst = min(low.items(), key=lambda kv: kv[1])
        parts.append(f"the update/weight ratio is only {v.fmt(worst)} in {name} (healthy ~1e-3)")
        if len(low) > 1:
            parts.append(f"also low: {_listing({k: r for k, r in low.items() if k != name})}")
    if lost:
        parts.append(f"lr x |grad| / |W| is {_listing(lost)}, below float32's resolution of ~1e-7 of a weight: "
                     "every update is rounded away and these weights never change (not frozen: too small to apply)")
    message = f"lr {v.fmt(lr)}: " + "; ".join(parts)
    evidence = {"lr": lr, "ratios": low, "below_precision": lost}
    blocked = _facts.blocked_signal(history)
    if blocked:
        message += f"; {blocked}, so the learning rate is not the cause"
        suggestion = "fix that first: " + _facts.blocked_fix(blocked)
    else:
        rate = _rate.recommend(history, 10.0)
        evidence.update(rate.evidence())
        suggestion = f"raise the learning rate: try {rate.text()}"
    return [Finding("update_ratio_too_low", "warning", message, evidence, suggestion)]


def _never_changed(history: History, name: str, lost: dict[str, float]) -> str | None:
    """Why an optimizer parameter never changed: no gradient at all, or a gradient the optimizer ignored (not one
    whose updates float32 rounds away: ``lost``, reported by update_ratio_too_low)."""
    _, ratios = v.series(history, UpdateRatio, "ratio", name)
    good = v.finite(ratios)
    if not good or any(r > 0 for r in good) or name in lost:
        return None
    _, grads = v.series(history, GradientNorm, "norm", name)
    if not grads:
        return "never receives a gradient (not used in the forward pass?)"
    if any(g > 0 for g in v.finite(grads)):
        return "has a gradient, but the optimizer does not change it (learning rate 0 in its group?)"
    return None  # a zero gradient: dead or vanishing upstream, reported by those rules


@rule("frozen_parameters", "B4", needs=("update_ratio", "gradient_norm"))
def frozen_parameters(history: History) -> list[Finding]:
    """Parameters that never change: requires_grad=False, missing from the optimizer, or never updated."""
    reasons: dict[str, list[str]] = {}
    lost = _weights.below_precision(history)
    for p in v.parameters(history):
        if not p.get("requires_grad", True):
            why = "have requires_grad=False"
        elif not p.get("in_optimizer", True):
            why = "are not in the optimizer (their gradients are computed, never applied)"
        else:
            why = _never_changed(history, p["name"], lost)
        if why:
            reasons.setdefault(why, []).append(p["name"])
    if not reasons:
        return []
    total = sum(p.get("numel", 0) for p in v.parameters(history)) or 1
    frozen = [n for names in reasons.values() for n in names]
    count = sum(p.get("numel", 0) for p in v.parameters(history) if p["name"] in frozen)
    parts = [f"{', '.join(names)} {why}" for why, names in reasons.items()]
    message = f"{len(frozen)} parameter tensors ({count / total:.0%} of the weights) never change: " + "; ".join(parts)
    suggestion = ("if this is not a deliberate freeze: set requires_grad=True and build the optimizer on "
                  "model.parameters() (after any change to the model)")
    return [Finding("frozen_parameters", "warning", message,
                    {"parameters": frozen, "reasons": reasons, "share": count / total}, suggestion)]


@rule("gradient_accumulation", needs=("gradient_carry",), uses=("gradient_norm",))
def gradient_accumulation(history: History) -> list[Finding]:
    """``.grad`` holds gradients of earlier steps: ``zero_grad`` is missing from a custom loop."""
    carry = _facts.carried(history)
    if carry is None:
        return []
    names = v.weight_names(history)
    growth = ""
    if names:
        _, norms = v.series(history, GradientNorm, "norm", names[0])
        good = v.finite(norms)
        if len(good) >= 2 and good[0] > 0:
            growth = f"; the gradient norm of {names[0]} went from {v.fmt(good[0])} to {v.fmt(good[-1])}"
    message = (f"{carry.value:.0%} of the gradient the optimizer sees was left over from earlier steps "
               f"(median of {carry.share:.0%} of sampled steps, first at step {carry.step}){growth}")
    return [Finding("gradient_accumulation", "error", message,
                    {"carry": carry.value, "share": carry.share, "first_step": carry.step},
                    "call optimizer.zero_grad() once per step, before loss.backward()")]
