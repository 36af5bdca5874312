"""Which hyperparameters mattered in a search (lecture H2, H5): Optuna's fANOVA on a search's trials.

A coarse-to-fine search holds stages of different lengths over different ranges; their accuracies do not
compare, and an importance needs one range per parameter. So the importances are computed on one stage:
the one with the most finished trials (usually the coarse stage, which spans the full ranges). A diverged
trial counts at the stage's worst accuracy, not as missing: that a learning rate diverges is the most
important thing it can show.

It reads ``search.json`` (a dict), so a report can show it for any saved search; Optuna is imported when it
is called.

Example:
    >>> from babysit.hpsearch.importance import param_importances
    >>> trials = [{"params": {"lr": 10 ** (-4 + i / 4), "width": 16 + (7 * i) % 17}, "value": 1 - abs(i - 8) / 10,
    ...            "state": "complete", "stage": 1} for i in range(16)]  # the accuracy depends on lr only
    >>> space = {"lr": {"kind": "loguniform", "low": 1e-4, "high": 1.0},
    ...          "width": {"kind": "int", "low": 16, "high": 32}}
    >>> found = param_importances({"trials": trials, "stages": [{"index": 1, "space": space}]})
    >>> max(found.importances, key=found.importances.get), found.stage, found.trials
    ('lr', 1, 16)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MIN_TRIALS = 6  # fewer finished trials in every stage: no importances (a forest on 5 points says nothing)
COUNTED = ("complete", "pruned", "diverged")
N_TREES = 32  # Optuna's default 64 takes ~3 s on 100 trials; the ranking is the same to the eye


@dataclass(frozen=True)
class Importances:
    """Each parameter's share of the explained variance of the accuracy (they sum to 1), on one stage."""

    importances: dict[str, float]  # largest first
    stage: Any  # the stage's index (or label) they were computed on
    trials: int  # how many of its trials

    def top(self, k: int = 2) -> list[str]:
        return list(self.importances)[:k]


def param_importances(search: Mapping[str, Any], *, seed: int = 0) -> Importances | None:
    """fANOVA importances of a saved search (``search.json`` as a dict); None with too few trials or no
    numeric-or-choice parameters to rank."""
    stage, rows = _largest_stage(search)
    if stage is None or len(rows) < MIN_TRIALS:
        return None
    distributions = _distributions(search, stage, rows)
    if len(distributions) < 1:
        return None
    import optuna

    from babysit.hpsearch._resolve import quiet_optuna
    from babysit.hpsearch._view import inside

    finite = [r["value"] for r in rows if _finite(r.get("value"))]
    worst = min(finite) if finite else 0.0
    with quiet_optuna():
        study = optuna.create_study(direction="maximize")
    for row in rows:
        params = {name: row["params"][name] for name in distributions if name in row["params"]}
        trial = optuna.create_trial(params=params, distributions=distributions,
                                    value=row["value"] if _finite(row.get("value")) else worst)
        if len(params) == len(distributions) and inside(trial, distributions):
            study.add_trial(trial)
    if len(study.trials) < MIN_TRIALS or len({t.value for t in study.trials}) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-feature and sklearn warnings say nothing to the user
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(n_trees=N_TREES, seed=seed), normalize=True)
    ranked = dict(sorted(((k, float(v)) for k, v in found.items()), key=lambda kv: -kv[1]))
    return Importances(ranked, stage, len(study.trials))


def _largest_stage(search: Mapping[str, Any]) -> tuple[Any, list[Mapping[str, Any]]]:
    by_stage: dict[Any, list[Mapping[str, Any]]] = {}
    for row in search.get("trials") or []:
        if isinstance(row, Mapping) and row.get("state") in COUNTED and isinstance(row.get("params"), Mapping):
            by_stage.setdefault(row.get("stage"), []).append(row)
    if not by_stage:
        return None, []
    stage = max(by_stage, key=lambda s: len(by_stage[s]))
    return stage, by_stage[stage]


def _distributions(search: Mapping[str, Any], stage: Any, rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The stage's ranges as Optuna distributions (the search's declared space when the stage has none)."""
    from babysit.hpsearch.space import space_from_dict

    spaces = [s.get("space") for s in search.get("stages") or [] if isinstance(s, Mapping) and s.get("index") == stage]
    raw = spaces[0] if spaces and isinstance(spaces[0], Mapping) else search.get("space")
    if not isinstance(raw, Mapping):
        return {}
    try:
        space = space_from_dict(raw)
    except Exception:  # a hand-written or damaged search.json: no importances rather than no report
        return {}
    names = set.intersection(*(set(r["params"]) for r in rows))
    return {name: p.distribution() for name, p in space.items() if name in names}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
