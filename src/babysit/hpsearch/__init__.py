"""Hyperparameter search (lecture H1-H7, E1), built on Optuna's samplers, pruners and storages.

What Optuna lacks and this package adds: ranges in values on their own scale (``space``), coarse-to-fine
stages that narrow around the best trials (``_stages``, ``_refine``), the ``best_at_range_edge`` warning
that widens a range instead, stage-aware samplers and pruners (``_view``), a master and workers sharing
one study with heartbeats and re-queued trials (``_search``, ``_worker``, ``_pool``, ``_join``,
``_ledger``, ``_storage``),
per-trial folders named by validation accuracy, ensembles of the top trials on the test split
(``ensemble``), ``search.json`` for the report (``results``) and the master's live view (``status``).
"""

from __future__ import annotations

from babysit.hpsearch import space as space
from babysit.hpsearch._errors import SearchError
from babysit.hpsearch._join import join_search
from babysit.hpsearch._objective import SearchTrial
from babysit.hpsearch._search import search
from babysit.hpsearch._stages import STRATEGIES, Stage
from babysit.hpsearch._worker import WorkerSpec, work
from babysit.hpsearch.demo import run_demo_search
from babysit.hpsearch.ensemble import evaluate_ensemble
from babysit.hpsearch.results import SearchResult, TrialRecord
from babysit.hpsearch.status import render_status, search_status

__all__ = [
    "STRATEGIES",
    "SearchError",
    "SearchResult",
    "SearchTrial",
    "Stage",
    "TrialRecord",
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
