"""From the arguments of ``babysit.search`` to what the master runs: the objective, its [search] settings.

A config (a TOML path or its dict) becomes a :class:`ConfigObjective`; its ``[search]`` table supplies the
settings the call left at their defaults. The space is checked against the config at once (a misspelt key
fails before any training).
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna

from babysit.errors import ConfigError
from babysit.hpsearch._objective import ConfigObjective
from babysit.hpsearch.space import Param, Range

_DEFAULTS: dict[str, Any] = {
    "strategy": "coarse_to_fine", "budget_epochs": None, "trials": None, "workers": 1, "storage": None, "seed": 0,
    "epochs": None, "stages": None, "pruner": None, "search_dir": None, "study_name": None,
}


def resolve_objective(objective: Any) -> tuple[Any, dict[str, Any]]:
    """A config path or dict becomes a ConfigObjective; its ``[search]`` table comes back as settings."""
    from babysit.config import config_from_dict, load_config

    if isinstance(objective, (str, Path)):
        cfg, source = load_config(objective), str(objective)
    elif isinstance(objective, Mapping):
        cfg, source = config_from_dict(copy.deepcopy(dict(objective))), "config"
    else:
        return objective, {}
    table = {} if cfg.search is None else cfg.search.settings()
    return ConfigObjective(cfg.model_dump(exclude_none=True), source=source), table


def merge_table(table: Mapping[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
    """Settings of a config's [search] table apply where the call left the default."""
    out = dict(kw)
    for key, default in _DEFAULTS.items():
        if key in table and out.get(key) == default:
            out[key] = table[key]
    return out


def check_keys(objective: ConfigObjective, space: Mapping[str, Param]) -> None:
    """Build the config of one trial now, so a misspelt key fails before any training."""
    probe = {}
    for name, param in space.items():
        if isinstance(param, Range):
            mid = param.inverse(0.5 * (param.forward(param.low) + param.forward(param.high)))
            probe[name] = round(mid) if param.integer else mid
        else:
            probe[name] = param.options[0]
    try:
        objective.trial_config(probe)
    except ConfigError as exc:
        raise ConfigError(f"the search space does not fit the config: {exc}") from None


def objective_name(objective: Any) -> str:
    if isinstance(objective, ConfigObjective):
        return objective.name
    return getattr(objective, "__name__", type(objective).__name__)


def check_picklable(objective: Any) -> None:
    try:
        pickle.dumps(objective)
    except Exception as exc:
        raise ConfigError(
            f"with workers > 1 the objective must be importable by the worker processes (a module-level function, "
            f"not a lambda or a nested function): {exc}"
        ) from None


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial at INFO; the search shows its own progress instead."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` torch threads inside the block (None: leave them as they are)."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
