"""The master's view of a search while it runs (lecture H7): ``babysit search status DIR``.

Reads the study live (not ``search.json``): trials running / done / pruned / diverged / failed, the stage,
the epochs spent against the budget, the best so far, and the same per worker (``host:pid``).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import optuna

from babysit._redact import redact_url
from babysit.hpsearch import _ledger
from babysit.hpsearch._errors import SearchError
from babysit.hpsearch._storage import (
    ENV_STORAGE,
    JOURNAL_FILE,
    default_url,
    display_url,
    local_study,
    make_storage,
    resolve_url,
)
from babysit.hpsearch.results import best_record, records_from_study

POINTER_FILE = "study.json"  # written by the master: the study's name and storage (password hidden)
COUNTED = ("running", "complete", "pruned", "diverged", "failed", "interrupted", "waiting")


def write_pointer(folder: Path, study_name: str, url: str | None) -> None:
    """Leave the study's name and storage in the search folder, so ``status`` can find it."""
    from babysit._io import write_json_atomic

    write_json_atomic(folder / POINTER_FILE, {"name": study_name, "storage": display_url(url)})


def open_study(folder: str | Path, *, storage: str | None = None, study_name: str | None = None) -> Any:
    """Load the study a search folder belongs to, read-only: its journal (or SQLite) file, or ``storage`` for a server.

    Nothing is created or changed (no folder, file, table or attribute). The URL a folder's ``study.json``
    records is only shown, never opened: a planted file must not make ``status`` connect anywhere.
    """
    folder = Path(folder)
    recorded = _read_pointer(folder / POINTER_FILE)
    if storage is not None:
        url = resolve_url(storage)
    elif local_study(folder) is not None:
        url = default_url(folder)
    elif recorded.get("storage"):
        raise SearchError(
            f"{str(folder)!r}'s study lives in {redact_url(recorded['storage'])} (says its {POINTER_FILE}); status "
            f"opens only URLs given to it: pass --storage URL (or set {ENV_STORAGE})."
        )
    else:
        raise SearchError(
            f"{str(folder)!r} holds no search (no {JOURNAL_FILE} or {POINTER_FILE}); give a search folder, "
            "or --storage URL for a study on a server."
        )
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    backend = make_storage(url, read_only=True)
    names = [s.study_name for s in optuna.get_all_study_summaries(backend, include_best_trial=False)]
    wanted = study_name or recorded.get("name")
    name = wanted if isinstance(wanted, str) and wanted in names else (names[0] if len(names) == 1 else None)
    if (study_name is not None and study_name not in names) or name is None:
        shown = ", ".join(names) or "none"
        which = "no study" if wanted is None else f"no study {wanted!r}"
        raise SearchError(f"{which} in {display_url(url)}; studies there: {shown}.")
    return optuna.load_study(study_name=name, storage=backend)


def _read_pointer(path: Path) -> dict[str, Any]:
    """``study.json`` as a dict of strings ({} when missing or damaged: it is only a hint)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def search_status(folder: str | Path, *, storage: str | None = None, study_name: str | None = None) -> dict[str, Any]:
    """A summary of a running or finished search, as a JSON-friendly dict."""
    study = open_study(folder, storage=storage, study_name=study_name)
    trials = study.get_trials(deepcopy=False)
    records = records_from_study(trials)
    attrs = study.user_attrs
    spec = attrs.get(_ledger.SPEC) or {}
    stages = attrs.get(_ledger.STAGES) or []
    best = best_record(records)
    workers: dict[str, dict[str, Any]] = {}
    for r in records:
        row = workers.setdefault(r.worker or "?", {"worker": r.worker or "?", "running": [], "best": None,
                                                   **{s: 0 for s in ("complete", "pruned", "diverged", "failed")}})
        if r.state == "running":
            row["running"].append({"number": r.number, "epoch": len(r.curve), "of": r.planned_epochs})
        elif r.state in row:
            row[r.state] += 1
        if r.state == "complete" and r.value is not None and (row["best"] is None or r.value > row["best"]):
            row["best"] = r.value
    status = ("error" if attrs.get(_ledger.ERROR) else "done" if attrs.get(_ledger.DONE)
              else "interrupted" if attrs.get(_ledger.INTERRUPTED) else "running")
    return {
        "study": study.study_name,
        "strategy": spec.get("strategy"),
        "status": status,
        "error": attrs.get(_ledger.ERROR),
        "stage": None if not stages else {
            k: stages[-1].get(k) for k in ("index", "epochs", "trials", "budget_epochs", "sampler", "pruner", "status")
        },
        "stages": len(spec.get("stages") or []),
        "counts": dict(Counter(r.state for r in records)),
        "epochs_used": _ledger.total_epochs(trials),
        "budget_epochs": spec.get("budget_epochs"),
        "best": None if best is None else {"number": best.number, "value": best.value, "params": best.params,
                                           "stage": best.stage},
        "workers": sorted(workers.values(), key=lambda w: w["worker"]),
        "warnings": [f for s in stages for f in s.get("findings") or []],
    }


def render_status(status: dict[str, Any]) -> list[Any]:
    """Rich renderables for a status dict: a summary line and a table per worker (what the study holds is shown as
    text, never read as markup)."""
    from rich.markup import escape
    from rich.table import Table

    def text(value: Any) -> str:
        return escape(str(value))

    stage = status["stage"]
    counts = status["counts"]
    budget = f"/{status['budget_epochs']}" if status["budget_epochs"] else ""
    head = (
        f"study [bold]{text(status['study'])}[/] ({text(status['strategy'])}): [bold]{text(status['status'])}[/]"
        + ("" if stage is None else
           f", stage {text(stage['index'])}/{text(status['stages'])} ({text(stage['epochs'])}-epoch trials)")
        + f", epochs {status['epochs_used']}{text(budget)}; "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in COUNTED if counts.get(s, 0) or s in COUNTED[:5])
    )
    lines: list[Any] = [head]
    if status["best"] is not None:
        best = status["best"]
        lines.append(f"best so far: [bold]{best['value']:.4f}[/] (trial {best['number']}, stage {text(best['stage'])}) "
                     f"with {text(best['params'])}")
    if status["error"]:
        lines.append(f"[red]stopped by an error:[/] {text(status['error'])}")
    table = Table(title="workers")
    for column in ("worker", "running (trial: epoch/of)", "complete", "pruned", "diverged", "failed", "best"):
        table.add_column(column, justify="right")
    for w in status["workers"]:
        running = ", ".join(f"{r['number']}: {r['epoch']}/{r['of']}" for r in w["running"]) or "–"
        table.add_row(text(w["worker"]), running, str(w["complete"]), str(w["pruned"]), str(w["diverged"]),
                      str(w["failed"]), "–" if w["best"] is None else f"{w['best']:.4f}")
    lines.append(table)
    lines.extend(f"[yellow]{text(f.get('code'))}[/]: {text(f.get('message'))}" for f in status["warnings"]
                 if isinstance(f, dict))
    return lines
