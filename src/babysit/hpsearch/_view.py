"""Optuna samplers and pruners that see one stage of a search at a time.

A coarse-to-fine study holds trials of different lengths (1 epoch, 5, 20) and different ranges. Their
validation accuracies are not comparable, and Optuna's multivariate TPE skips parameters whose range
changed. So each stage's sampler and pruner get a *view* of the study that lists only that stage's trials;
the study itself keeps every trial (the report shows them all).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler

from babysit.hpsearch.space import Choice, Param

STAGE_KEY = "stage"


class StageView:
    """The study as one stage sees it: ``get_trials`` returns that stage's trials only.

    With ``prior`` (the stage's distributions), a sampler also sees the finished trials of earlier stages
    whose values lie inside this stage's ranges, relabelled with those ranges: TPE then starts from what
    the coarse stages learnt instead of from random startup trials. (Their accuracies come from shorter
    runs; TPE only ranks trials, and this stage's longer runs soon take the top ranks.)
    """

    def __init__(self, study: Any, stage: int, prior: Mapping[str, Any] | None = None) -> None:
        self._study = study
        self._stage = stage
        self._prior = prior

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _mine(self, trials: list[Any]) -> list[Any]:
        own = [t for t in trials if t.user_attrs.get(STAGE_KEY) == self._stage]
        if self._prior is None:
            return own
        earlier = []
        for t in trials:
            stage = t.user_attrs.get(STAGE_KEY)
            if isinstance(stage, int) and stage < self._stage and t.state.is_finished() and inside(t, self._prior):
                relabelled = copy.copy(t)
                relabelled.distributions = dict(self._prior)
                earlier.append(relabelled)
        return earlier + own

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[Any]:
        return self._mine(self._study.get_trials(deepcopy=deepcopy, states=states))

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list[Any]:
        # Optuna's samplers read a study's trials through this name: answering it is what makes the view a view
        # (a test pins that TPE sees only its stage); it is served from the public get_trials
        return self.get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[Any]:
        return self.get_trials()


class StageSampler(BaseSampler):
    """Sample with ``inner`` from this stage's trials (and, with ``prior``, earlier ones inside its ranges);
    tag each new trial with its stage and length."""

    def __init__(
        self, inner: BaseSampler, stage: int, epochs: int, prior: Mapping[str, Any] | None = None, *, storage: Any,
    ) -> None:
        self._inner = inner
        self._stage = stage
        self._epochs = epochs
        self._prior = prior
        self._storage = storage  # the study's storage: tags go on new trials through its public interface

    def _view(self, study: Any) -> StageView:
        return StageView(study, self._stage, self._prior)

    def __str__(self) -> str:
        return f"{self._inner} (stage {self._stage})"

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return self._inner.infer_relative_search_space(self._view(study), trial)

    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        return self._inner.sample_relative(self._view(study), trial, search_space)

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        return self._inner.sample_independent(self._view(study), trial, param_name, param_distribution)

    def before_trial(self, study: Any, trial: Any) -> None:
        if STAGE_KEY not in trial.user_attrs:  # a re-queued trial keeps the stage it was made for
            # "epochs" first: other workers count a trial that has its stage at its length (_ledger.usage), so
            # a trial must never be seen with a stage and no length
            from babysit.hpsearch._storage import trial_id

            number = trial_id(self._storage, study, trial.number)
            for key, value in (("epochs", self._epochs), (STAGE_KEY, self._stage)):
                self._storage.set_trial_user_attr(number, key, value)
                trial.user_attrs[key] = value
        self._inner.before_trial(StageView(study, trial.user_attrs[STAGE_KEY]), trial)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self._inner.after_trial(StageView(study, trial.user_attrs.get(STAGE_KEY, self._stage)), trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()


def inside(trial: Any, distributions: Mapping[str, Any]) -> bool:
    """Whether every parameter of ``trial`` lies inside ``distributions``."""
    if set(trial.params) != set(distributions):
        return False
    return all(_contains(dist, trial.params[name]) for name, dist in distributions.items())


def _contains(dist: Any, value: Any) -> bool:
    """Whether ``value`` is one of ``dist``'s values (its range and step, or its choices)."""
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return value in dist.choices
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not dist.low <= value <= dist.high:
        return False
    step = getattr(dist, "step", None)
    return step is None or math.isclose(round((value - dist.low) / step) * step + dist.low, value,
                                        rel_tol=1e-9, abs_tol=1e-12)


class StagePruner(BasePruner):
    """Prune with ``inner``, comparing a trial only with the trials of its own stage."""

    def __init__(self, inner: BasePruner) -> None:
        self._inner = inner

    def prune(self, study: Any, trial: Any) -> bool:
        return self._inner.prune(StageView(study, trial.user_attrs.get(STAGE_KEY)), trial)


def make_sampler(
    name: str, *, seed: int, space: Mapping[str, Param], trials: int | None, parallel: bool
) -> BaseSampler:
    """The Optuna sampler behind a sampler name (random, tpe, gp, grid)."""
    startup = 10 if trials is None else max(3, min(10, trials // 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=parallel
            )
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
        if name == "grid":
            return optuna.samplers.GridSampler(grid_points(space, trials), seed=seed)
    from babysit._names import unknown_name
    from babysit.errors import ConfigError

    raise ConfigError(unknown_name("sampler", str(name), ("random", "tpe", "gp", "grid")))


def grid_points(space: Mapping[str, Param], trials: int | None) -> dict[str, list[Any]]:
    """A grid with about ``trials`` points: every option of a choice, evenly spaced points of a range."""
    numeric = [n for n, p in space.items() if not isinstance(p, Choice)]
    combos = math.prod(len(p.options) for p in space.values() if isinstance(p, Choice))
    per = 3 if trials is None or not numeric else max(2, math.floor((trials / combos) ** (1 / len(numeric)) + 1e-9))
    return {name: param.grid(per) for name, param in space.items()}


def make_pruner(name: str, *, epochs: int) -> BasePruner:
    """The Optuna pruner behind a pruner name, compared within the stage."""
    if name == "median":
        inner: BasePruner = optuna.pruners.MedianPruner(
            n_startup_trials=3, n_warmup_steps=1 if epochs > 2 else 0, interval_steps=1
        )
    elif name == "successive_halving":
        inner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    else:
        inner = optuna.pruners.NopPruner()
    return StagePruner(inner)
