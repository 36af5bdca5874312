"""Strategies as stages: what each stage trains, how long, how many trials, with which sampler and pruner.

Every strategy is a list of stages. ``random``, ``grid`` and ``bayes`` are one stage over the full ranges;
``coarse_to_fine`` (lecture H5) is three: many ~1-epoch trials over the full ranges (random sampling: most
settings do not learn at all or explode, and one epoch tells), then ~5-epoch trials in ranges narrowed
around the best of stage 1, then full-length trials in ranges narrowed again (each only where the stage's
results depend on the parameter, see ``_refine``). Stages 2 and 3 sample with
TPE (Bayesian, lecture H6), warm-started with the earlier stages' trials inside their ranges. Each starts
by continuing the best settings of the stage before to its longer length (successive halving's promotion:
only the new epochs are paid), then samples around them. Stage 2 prunes with the median rule, stage 3 by
successive halving (Hyperband's rungs at 1, 3, 9 epochs), each among its own stage's trials.

The default sizes (``_epoch_shares``) come from ``bench/search_efficiency.py`` on the digits MLP: 20
1-epoch trials, then about ten 5-epoch trials' worth of epochs, then the full-length stage with the rest
of the budget, so the first full-length trials start early whatever the budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from babysit._names import unknown_name
from babysit.errors import ConfigError

STRATEGIES = ("coarse_to_fine", "random", "grid", "bayes")
SAMPLERS = ("random", "tpe", "gp", "grid")
PRUNERS = ("none", "median", "successive_halving")
DEFAULT_TRIALS = 20  # one-stage strategies without a budget or a trial count
C2F_TRIALS = 40  # coarse_to_fine without a budget or a trial count
C2F_COARSE_TRIALS = 20  # stage 1: this many 1-epoch trials (they find the decades that learn) ...
C2F_MEDIUM_TRIALS = 10  # ... stage 2: the epochs of this many ~5-epoch trials (the best of stage 1 continued) ...
C2F_EARLY_SHARE = 0.2  # ... each at most this share of budget_epochs; the full-length stage gets the rest
C2F_TRIAL_SHARES = (0.6, 0.25, 0.15)  # of trials, when only a trial count is given


@dataclass(frozen=True)
class Stage:
    """One stage of a search.

    Args:
        epochs: epochs each trial trains (``trial.epochs``).
        trials: the most trials this stage runs (None: as many as its epoch budget allows).
        share: this stage's share of ``budget_epochs`` (unspent epochs carry over to the next stage).
        top_k: how many of this stage's best trials the next stage narrows around (None: 20%, at least 3).
        sampler: ``random``, ``tpe``, ``gp`` (Gaussian process) or ``grid``.
        pruner: ``none``, ``median`` or ``successive_halving`` (compared within the stage only).
    """

    epochs: int
    trials: int | None = None
    share: float | None = None
    top_k: int | None = None
    sampler: str = "random"
    pruner: str = "none"

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"a stage's epochs must be an integer >= 1, got epochs={self.epochs!r}.")
        if self.trials is not None and (not isinstance(self.trials, int) or self.trials < 1):
            raise ConfigError(f"a stage's trials must be an integer >= 1, got trials={self.trials!r}.")
        if self.share is not None and not 0 < self.share <= 1:
            raise ConfigError(f"a stage's share of the budget must be in (0, 1], got share={self.share!r}.")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got top_k={self.top_k!r}.")
        if self.sampler not in SAMPLERS:
            raise ConfigError(unknown_name("sampler", self.sampler, SAMPLERS))
        pruner = "none" if self.pruner in (None, "") else self.pruner
        if pruner not in PRUNERS:
            raise ConfigError(unknown_name("pruner", str(pruner), PRUNERS))
        object.__setattr__(self, "pruner", pruner)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_stages(
    strategy: str,
    *,
    epochs: int,
    budget_epochs: int | None,
    trials: int | None,
    pruner: str | None,
    stages: Sequence[Stage | Mapping[str, Any]] | None,
) -> list[Stage]:
    """The stages of a strategy, with trial counts or budget shares filled in."""
    if strategy not in STRATEGIES:
        raise ConfigError(unknown_name("strategy", strategy, STRATEGIES))
    if budget_epochs is not None and (not isinstance(budget_epochs, int) or budget_epochs < 1):
        raise ConfigError(f"budget_epochs must be an integer >= 1, got budget_epochs={budget_epochs!r}.")
    if trials is not None and (not isinstance(trials, int) or trials < 1):
        raise ConfigError(f"trials must be an integer >= 1, got trials={trials!r}.")
    if stages is not None:
        if strategy != "coarse_to_fine":
            raise ConfigError(f"stages are for strategy='coarse_to_fine', not {strategy!r}.")
        plan = [s if isinstance(s, Stage) else Stage(**dict(s)) for s in stages]
        if not plan:
            raise ConfigError("stages is empty; give at least one stage or leave it out for the default.")
        return _fill(plan, budget_epochs, trials)
    if strategy != "coarse_to_fine":
        sampler = {"random": "random", "grid": "grid", "bayes": "tpe"}[strategy]
        if budget_epochs is not None and budget_epochs < epochs:
            raise ConfigError(
                f"budget_epochs={budget_epochs} is less than one trial of {epochs} epochs; raise the budget."
            )
        count = trials if trials is not None else (None if budget_epochs is not None else DEFAULT_TRIALS)
        return [Stage(epochs=epochs, trials=count, share=1.0, sampler=sampler, pruner=pruner or "none")]
    lengths = _c2f_lengths(epochs)
    last = len(lengths) - 1
    plan = [
        Stage(epochs=n, sampler="random" if i == 0 else "tpe",
              pruner="none" if n == 1 else pruner or ("successive_halving" if i == last else "median"))
        for i, n in enumerate(lengths)
    ]
    if budget_epochs is None and trials is None:
        trials = C2F_TRIALS
    return _fill(plan, budget_epochs, trials)


def _c2f_lengths(epochs: int) -> list[int]:
    """1 epoch, then about 5 (never more than half the full length), then the full length."""
    middle = max(2, min(5, epochs // 2))
    lengths = [1] + ([middle] if middle < epochs else []) + ([epochs] if epochs > 1 else [])
    return lengths if len(lengths) > 1 else [1, 1]


def _fill(plan: list[Stage], budget_epochs: int | None, trials: int | None) -> list[Stage]:
    """Give every stage a budget share and/or a trial count from the totals (shares that are set are kept)."""
    n = len(plan)
    shares = _epoch_shares(plan, budget_epochs)
    out = []
    for i, stage in enumerate(plan):
        share = stage.share if stage.share is not None else (shares[i] if budget_epochs is not None else None)
        count = stage.trials
        if count is None and trials is not None:
            count = max(1, round(trials * _default_shares(C2F_TRIAL_SHARES, n)[i]))
        out.append(replace(stage, share=share, trials=count))
    if budget_epochs is None and any(s.trials is None for s in out):
        raise ConfigError("give budget_epochs, trials, or a trial count for every stage.")
    return out


def _epoch_shares(plan: Sequence[Stage], budget_epochs: int | None) -> list[float]:
    """The default split of the epoch budget: a fixed number of epochs for the short stages, the rest long.

    The coarse and medium stages only have to find where in the ranges the good settings lie, and how many trials
    that takes depends on the ranges, not on the budget: ``C2F_COARSE_TRIALS`` 1-epoch trials, then
    ``C2F_MEDIUM_TRIALS`` medium-length trials' worth of epochs (the best coarse settings continued, then new
    ones: enough that a value past the best coarse ones can win and move a range's edge). Everything else goes to
    the full-length stage, whose successive halving still stops most trials early. Shares that grew with the
    budget (5% coarse, then a quarter of the rest) kept the first full-length trial waiting for 28% of any budget:
    with a budget of 1,200 epochs coarse_to_fine first reached the target accuracy after 343 epochs (median of 6
    seeds, bench/search_efficiency.py), with these fixed sizes after 69 (10 seeds; with ranges narrowed only
    where the results depend on them). Half this medium stage reached it a little sooner (62.5) but widened a
    too-low learning-rate range in 2 of 5 seeds instead of 4 of 6: its few new trials seldom beat the continued ones,
    so its best seldom sat at an edge.
    """
    n = len(plan)
    if n != 3 or budget_epochs is None:
        return [1.0 / n] * n
    coarse = min(C2F_EARLY_SHARE, C2F_COARSE_TRIALS * plan[0].epochs / budget_epochs)
    medium = min(C2F_EARLY_SHARE, C2F_MEDIUM_TRIALS * plan[1].epochs / budget_epochs)
    return [coarse, medium, 1.0 - coarse - medium]


def _default_shares(shares: Sequence[float], n: int) -> list[float]:
    if n == len(shares):
        return list(shares)
    return [1.0 / n] * n


def stage_budget(plan: Sequence[Stage], index: int, budget_epochs: int | None, spent_before: int) -> int | None:
    """Epochs stage ``index`` (0-based) may spend: its cumulative share minus what earlier stages spent."""
    if budget_epochs is None:
        return None
    if index == len(plan) - 1:
        return max(0, budget_epochs - spent_before)
    total = sum(s.share or 0.0 for s in plan) or 1.0
    cumulative = sum((s.share or 0.0) for s in plan[: index + 1]) / total
    return max(0, math.floor(cumulative * budget_epochs) - spent_before)


def default_top_k(finished: int, top_k: int | None) -> int:
    """The number of top trials the next stage narrows around: 20% of the stage, at least 3."""
    return top_k if top_k is not None else max(3, round(0.2 * finished))
