"""Synthetic objectives with a known optimum, for tests, benchmarks and examples (no training involved).

``Peak`` is a pretend validation accuracy that rises with epochs towards a ceiling set by how close the
hyperparameters are to ``optimum`` (in decades for ``log`` parameters): cheap, deterministic and
picklable, so searches with several worker processes can use it. It follows the whole trial protocol,
continuing a shorter trial of the same setting from ``trial.parent_state`` when the search offers one.

Example:
    >>> from babysit.hpsearch.toys import Peak
    >>> objective = Peak(log={"lr": 1e-2})
    >>> round(objective.ceiling({"lr": 1e-2}), 3)
    0.98
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Peak:
    """``objective(params, trial)`` peaking at ``log`` / ``linear`` optima, following the trial protocol.

    Args:
        log: optima of log-scale parameters (values); the ceiling falls off over ``width`` decades.
        linear: optima of linear parameters; the ceiling falls off over ``linear_width``.
        width, linear_width: how sharp the peak is.
        diverge_above: parameters above these values "explode": NaN after the first epoch.
        sleep_s: seconds each epoch pretends to take (to test workers and heartbeats).
    """

    log: Mapping[str, float] = field(default_factory=dict)
    linear: Mapping[str, float] = field(default_factory=dict)
    width: float = 1.0
    linear_width: float = 0.5
    diverge_above: Mapping[str, float] = field(default_factory=dict)
    sleep_s: float = 0.0

    def ceiling(self, params: Mapping[str, Any]) -> float:
        """The accuracy a long enough run reaches with ``params``: 0.98 at the optimum, 0.1 far away."""
        score = 1.0
        for name, best in self.log.items():
            score *= math.exp(-(((math.log10(params[name]) - math.log10(best)) / self.width) ** 2))
        for name, best in self.linear.items():
            score *= math.exp(-(((params[name] - best) / self.linear_width) ** 2))
        return 0.1 + 0.88 * score

    def __call__(self, params: Mapping[str, Any], trial: Any) -> float:
        ceiling = self.ceiling(params)
        explode = any(params.get(k, -math.inf) > v for k, v in self.diverge_above.items())
        # the trial protocol's optional part: continue a shorter trial of this setting from its kept state
        state = getattr(trial, "parent_state", None)
        first = 1 if state is None else int(state["epoch"]) + 1
        acc = 0.1 if state is None else float(state["acc"])
        epoch = first - 1
        for epoch in range(first, trial.epochs + 1):
            if self.sleep_s:
                time.sleep(self.sleep_s)
            acc = math.nan if explode and epoch > 1 else 0.1 + (ceiling - 0.1) * (1 - 0.5**epoch)
            trial.report(epoch, acc)
            if trial.should_stop():
                break
        if hasattr(trial, "keep_state") and math.isfinite(acc):
            trial.keep_state({"epoch": epoch, "acc": acc})
        return acc


def failing(params: Mapping[str, Any], trial: Any) -> float:
    """An objective that always raises (to test how a search handles a broken objective)."""
    raise RuntimeError(f"this objective always fails (params {dict(params)})")
