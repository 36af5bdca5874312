"""Which fix to try next: the causes first, then the range test's rate, then every other remedy.

The lecture's order of causes: inputs and initialisation come before the learning rate, because a bad scale
upstream makes any rate look wrong. Where the rate is at fault (a divergence, a finding about the rate or the
updates, exploding or dead units) a range test measures it, and when the config's rate lies far outside what
the test suggests, that suggestion is tried before the remedies' own steps (``lr / 10``, ``lr * 10``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from babysit.config import RunConfig
from babysit.findings import Finding
from babysit.repair import remedies
from babysit.repair.attempt import Attempt
from babysit.repair.remedies import apply_fix
from babysit.repair.verify import LOUD

__all__ = ["LR_CODES", "candidates"]

LR_CODES = ("loss_diverged", "lr_too_high", "update_ratio_too_high", "lr_too_low", "update_ratio_too_low",
            "no_learning")
RATE_SIGNS = (*LR_CODES, "exploding_activations", "exploding_gradients", "dead_units", "loss_noisy")
CAUSE_KEYS = ("data.normalize", "model.init", "model.bias_init")
OUT_OF_RANGE = 3.0  # a rate more than 3x away from the range test's suggestion is far off

Candidate = tuple[str, dict[str, Any], str]


def candidates(cfg: RunConfig, current: Attempt, measure: Callable[[RunConfig], Any]) -> Iterator[Candidate]:
    """``(finding code, fix, reason)`` in the order to try them; ``measure(cfg)`` runs a config's range test
    (cached; None when it failed). Generated lazily: a range test runs only when its candidate is reached."""
    loud = [Finding.from_dict(f) for f in current.findings if f.get("severity") in LOUD]
    order = remedies.PRIORITY
    loud.sort(key=lambda f: order.index(f.code) if f.code in order else len(order))
    rated = [f for f in loud if f.code in RATE_SIGNS] or current.status == "diverged"
    for f in loud:  # 1. the causes upstream: inputs and initialisation (with the rate measured again after them)
        remedy = remedies.remedy_for(f, cfg)
        for fix in remedy.fixes if remedy is not None else []:
            if any(key in CAUSE_KEYS for key in fix):
                yield f.code, fix, remedy.reason
                if rated:  # tried only when the cause alone was not enough: a rate set for the old scale
                    rate = _measured_rate(apply_fix(cfg, fix), measure)
                    if rate is not None:
                        yield f.code, {**fix, "optimizer.lr": rate[0]}, f"{remedy.reason}; then {rate[1]}"
    code = next((f.code for f in loud if f.code in LR_CODES), loud[0].code if loud else "loss_diverged")
    rate = _measured_rate(cfg, measure) if rated else None
    if rate is not None:  # 2. the measured rate, when the config's is far from it
        yield code, {"optimizer.lr": rate[0]}, rate[1]
    found = measure(cfg) if rated else None
    hint = getattr(found, "suggestion", None)
    for f in loud:  # 3. every remedy, the rate steps measured against the range test
        remedy = remedies.remedy_for(f, cfg, lr_hint=hint)
        for fix in remedy.fixes if remedy is not None else []:
            yield f.code, fix, remedy.reason


def _measured_rate(cfg: RunConfig, measure: Callable[[RunConfig], Any]) -> tuple[float, str] | None:
    """The range test's rate for ``cfg`` and the reason, when the config's own rate is far from it."""
    found = measure(cfg)
    hint, lr = getattr(found, "suggestion", None), cfg.optimizer.lr
    if hint is None or not lr or hint / OUT_OF_RANGE <= lr <= hint * OUT_OF_RANGE:
        return None
    return float(f"{hint:.2g}"), (f"lr {lr:.3g} is {'far above' if lr > hint else 'far below'} what the range "
                                  f"test suggests: {found.reason}")
