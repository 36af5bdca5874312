"""The short coarse-to-fine search ``babysit demo`` runs on the digits MLP (a few seconds on 2 cores).

    result = run_demo_search("runs")            # runs/demo-search/: trials, search.json
    result.best_config                          # the demo config with the best values, full length:
    babysit.train.from_config.train_from_config(babysit.config.config_from_dict(result.best_config))
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from babysit.hpsearch._search import search
from babysit.hpsearch.results import SearchResult
from babysit.hpsearch.space import logint, loguniform, uniform

DEMO_SEARCH_CONFIG: dict[str, Any] = {
    "name": "demo",
    "seed": 0,
    "data": {"source": "digits", "normalize": "standardize"},
    "model": {"kind": "mlp", "hidden": 64, "activation": "relu", "init": "he"},
    "train": {"loss": "softmax", "reg": 1e-4, "epochs": 10, "batch_size": 64, "monitor": False},
    "optimizer": {"name": "nesterov", "lr": 0.05, "momentum": 0.9},
}
DEMO_SPACE = {
    "optimizer.lr": loguniform(1e-4, 1.0),
    "train.reg": loguniform(1e-6, 1e-1),
    "model.hidden": logint(16, 256),
    "optimizer.momentum": uniform(0.5, 0.99, limits=(0.0, 0.999)),
}


def run_demo_search(
    runs_dir: str | Path = "runs", *, budget_epochs: int = 80, workers: int = 1, progress: bool | None = None,
    config: dict[str, Any] | None = None,
) -> SearchResult:
    """Search the demo config's lr, L2, width and momentum coarse to fine within ``budget_epochs`` epochs.

    Always starts over in ``<runs_dir>/demo-search``. ``result.best_config`` is the demo config with the best
    values and its full training length: train it for the final model.
    """
    raw = copy.deepcopy(config or DEMO_SEARCH_CONFIG)
    raw["runs_dir"] = str(runs_dir)
    return search(
        raw, DEMO_SPACE, strategy="coarse_to_fine", budget_epochs=budget_epochs, workers=workers, seed=0,
        search_dir=Path(runs_dir) / "demo-search", overwrite=True, progress=progress, threads=1,
    )
