"""Hyperparameter search (lecture H1-H7, E1), built on Optuna's samplers, pruners and storages.

What Optuna lacks and this package adds: ranges in values on their own scale (``space``), coarse-to-fine
stages that narrow around the best trials (``_stages``, ``_refine``), the ``best_at_range_edge`` warning
that widens a range instead, stage-aware samplers and pruners (``_view``), a master and workers sharing
one study with heartbeats and re-queued trials (``_search``, ``_worker``, ``_pool``, ``_join``,
``_ledger``, ``_storage``),
per-trial folders named by validation accuracy, ensembles of the top trials on the test split
(``ensemble``), ``search.json`` for the report (``results``) and the master's live view (``status``).

Optuna (and through it SQLAlchemy) loads when a name that needs it is first used, not on import: ``space``,
``Stage``, ``STRATEGIES`` and ``SearchError`` are plain Python; the other names are imported from their
modules by ``__getattr__`` below, so ``babysit.hpsearch.search`` is the function itself (``help`` shows its
signature and docstring).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from babysit.hpsearch import space as space
from babysit.hpsearch._errors import SearchError, SearchInterrupted, UntrustedStudyError
from babysit.hpsearch._stages import STRATEGIES, Stage

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time these load on first use (__getattr__)
    from babysit.hpsearch._join import join_search
    from babysit.hpsearch._objective import SearchTrial
    from babysit.hpsearch._search import search
    from babysit.hpsearch._worker import WorkerSpec, work
    from babysit.hpsearch.demo import run_demo_search
    from babysit.hpsearch.ensemble import evaluate_ensemble
    from babysit.hpsearch.results import SearchResult, TrialRecord
    from babysit.hpsearch.status import render_status, search_status

__all__ = [
    "STRATEGIES",
    "SearchError",
    "SearchInterrupted",
    "SearchResult",
    "SearchTrial",
    "Stage",
    "TrialRecord",
    "UntrustedStudyError",
    "WorkerSpec",
    "evaluate_ensemble",
    "join_search",
    "render_status",
    "run_demo_search",
    "search",
    "search_status",
    "space",
    "work",
]

# name -> the module that defines it; these modules import Optuna (or pydantic, through babysit.config)
_LAZY = {
    "SearchResult": "babysit.hpsearch.results",
    "SearchTrial": "babysit.hpsearch._objective",
    "TrialRecord": "babysit.hpsearch.results",
    "WorkerSpec": "babysit.hpsearch._worker",
    "evaluate_ensemble": "babysit.hpsearch.ensemble",
    "join_search": "babysit.hpsearch._join",
    "render_status": "babysit.hpsearch.status",
    "run_demo_search": "babysit.hpsearch.demo",
    "search": "babysit.hpsearch._search",
    "search_status": "babysit.hpsearch.status",
    "work": "babysit.hpsearch._worker",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
