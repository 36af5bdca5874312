"""What a search leaves: one record per trial, the stages, the warnings, the best settings, ``search.json``.

``search.json`` in the search folder is what the report draws (validation accuracy against each
hyperparameter on its own scale, stages coloured, warnings listed); ``SearchResult.load(folder)`` reads it
back. Its schema is written out in :func:`SearchResult.to_dict`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from babysit._io import read_json_object, write_json_atomic
from babysit._redact import redact_config
from babysit.findings import Finding
from babysit.hpsearch import _ledger
from babysit.hpsearch._trust import safe_trial_folder
from babysit.hpsearch.space import Param, Range, space_from_dict, space_to_dict

SEARCH_FILE = "search.json"
FORMAT = 1
STATES = ("complete", "pruned", "diverged", "failed", "interrupted", "running", "waiting")


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a search, detached from the study (optuna's FrozenTrial idea, in babysit's words).

    Attributes:
        number: the trial's number in the study.
        params: the hyperparameters it trained with.
        value: its best validation accuracy (None when it failed before an epoch, or still runs).
        state: ``complete``, ``pruned``, ``diverged``, ``failed``, ``interrupted`` (stopped by Ctrl-C or SIGTERM:
            run again when the search resumes), ``running`` or ``waiting``.
        stage: the stage it belongs to (1 = the coarsest).
        epochs: epochs it trained itself (pruned and diverged trials stop early; a continued trial does not
            count the epochs it inherited).
        planned_epochs: epochs it was given (its setting's total length).
        curve: validation accuracy after each epoch of its setting (None where not reported); for a continued
            trial the first ``start_epoch`` values are those of the trial it continued.
        worker: ``host:pid`` of the process that ran it.
        duration_s: wall time of the trial.
        run_dir: its folder (checkpoint + statistics; the name holds the validation accuracy), or None.
        retry_of: the number of the failed trial this one re-runs, or None.
        requeued: True for a failed trial whose worker died and which was queued again.
        error: why it failed, when it did.
        continued_from: the number of the shorter trial of the same setting it continued, or None.
        start_epoch: the epochs it inherited from that trial (0: trained from scratch).
    """

    number: int
    params: dict[str, Any]
    value: float | None
    state: str
    stage: int | None
    epochs: int
    planned_epochs: int | None = None
    curve: list[float | None] = field(default_factory=list)
    worker: str | None = None
    duration_s: float | None = None
    run_dir: str | None = None
    retry_of: int | None = None
    requeued: bool = False
    error: str | None = None
    continued_from: int | None = None
    start_epoch: int = 0

    @property
    def last_epoch(self) -> int:
        """The epoch its setting stopped at (inherited epochs included)."""
        return self.start_epoch + self.epochs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_from_trial(trial: Any, retried: set[int]) -> TrialRecord:
    """Read one Optuna FrozenTrial into a TrialRecord."""
    attrs = trial.user_attrs
    result = _ledger.result_of(trial)
    outcome = result.get("outcome")
    if trial.state == TrialState.RUNNING:
        state = "running"
    elif trial.state == TrialState.WAITING:
        state = "waiting"
    elif trial.state == TrialState.COMPLETE:
        state = "complete"
    elif trial.state == TrialState.PRUNED:
        state = "diverged" if outcome == "diverged" else "pruned"
    else:
        state = "interrupted" if outcome == "interrupted" else "failed"
    value: float | None
    if state == "complete":
        value = float(trial.value)
    else:
        value = result.get("best_val_acc")
        if value is None and trial.intermediate_values:
            value = max(trial.intermediate_values.values())
    steps = trial.intermediate_values
    curve = [steps.get(e) for e in range(1, int(max(steps)) + 1)] if steps else []
    start = _ledger.start_epoch(trial)
    return TrialRecord(
        number=trial.number,
        params=dict(trial.params),
        value=None if value is None or not math.isfinite(value) else float(value),
        state=state,
        stage=attrs.get("stage"),
        epochs=_ledger.epochs_spent(trial),
        planned_epochs=attrs.get("epochs"),
        curve=curve,
        worker=attrs.get("worker"),
        duration_s=result.get("duration_s"),
        run_dir=safe_trial_folder(None, result.get("run_dir")),  # only trials/<name>: what the report may read
        retry_of=trial.system_attrs.get("failed_trial"),
        requeued=trial.number in retried,
        error=result.get("error"),
        continued_from=result.get("continues", attrs.get("continues")) if start else None,
        start_epoch=start,
    )


def records_from_study(trials: Sequence[Any]) -> list[TrialRecord]:
    """Every trial that trained or tried to (surplus trials, which never trained, are left out); a continued
    trial's curve starts with the values of the trial it continued."""
    retried = _ledger.retried_numbers(trials)
    records = [record_from_trial(t, retried) for t in trials if _ledger.outcome_of(t) != "surplus"]
    by_number = {r.number: r for r in records}
    for i, r in enumerate(records):  # in trial order: a parent's own inherited part is filled in first
        parent = by_number.get(r.continued_from) if r.continued_from is not None else None
        if parent is not None and r.start_epoch:
            inherited = (parent.curve + [None] * r.start_epoch)[: r.start_epoch]
            records[i] = by_number[r.number] = replace(r, curve=inherited + r.curve[r.start_epoch:])
    return records


def best_record(records: Sequence[TrialRecord]) -> TrialRecord | None:
    """The best finished trial: highest validation accuracy among complete trials (longer runs win ties)."""
    for states in (("complete",), ("pruned", "diverged")):
        scored = [r for r in records if r.state in states and r.value is not None]
        if scored:
            return max(scored, key=lambda r: (r.value, r.last_epoch, -r.number))
    return None


def top_records(records: Sequence[TrialRecord], stage: int, k: int) -> list[TrialRecord]:
    """The ``k`` best trials of a stage (complete ones first, then pruned ones)."""
    mine = [r for r in records if r.stage == stage and r.value is not None]
    ranked = sorted(
        mine, key=lambda r: (r.state == "complete", r.state != "diverged", r.value, -r.number), reverse=True
    )
    return ranked[:k]


@dataclass
class SearchResult:
    """What :func:`babysit.search` returns.

    Attributes:
        best_params: the hyperparameters of the best trial.
        best_value: its validation accuracy.
        trials: every trial, as :class:`TrialRecord`.
        warnings: findings of the search, e.g. ``best_at_range_edge`` (lecture H4).
        stages: one dict per stage (its ranges, epochs, budget, best trial, findings).
        space: the ranges as given.
        best_config: for a config objective, the config dict with the best values and full training length.
        search_dir: the search folder (None for an in-memory search).
        ensemble: the ``--ensemble K`` evaluation on the test split, when asked for.
        status: ``done``, ``running``, ``interrupted`` (Ctrl-C or SIGTERM; run the search again to resume) or
            ``error``; None: ``done`` when ``done`` else ``running``.
    """

    best_params: dict[str, Any]
    best_value: float | None
    trials: list[TrialRecord]
    warnings: list[Finding]
    stages: list[dict[str, Any]]
    space: dict[str, Param]
    strategy: str
    study_name: str
    storage: str
    budget_epochs: int | None = None
    seed: int = 0
    done: bool = True
    best_config: dict[str, Any] | None = None
    search_dir: Path | None = None
    ensemble: dict[str, Any] | None = None
    status: str | None = None

    @property
    def state(self) -> str:
        """``done``, ``running``, ``interrupted`` or ``error``."""
        return self.status or ("done" if self.done else "running")

    @property
    def best_trial(self) -> TrialRecord | None:
        return best_record(self.trials)

    @property
    def epochs_used(self) -> int:
        return sum(t.epochs for t in self.trials)

    def __repr__(self) -> str:
        value = "n/a" if self.best_value is None else f"{self.best_value:.4f}"
        return (
            f"SearchResult(strategy={self.strategy!r}, trials={len(self.trials)}, epochs={self.epochs_used}, "
            f"best_value={value}, best_params={self.best_params}, warnings={len(self.warnings)})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``search.json`` record::

            {"format": 1, "strategy": str, "study": {"name": str, "storage": str (password hidden)},
             "status": "done" | "running" | "interrupted" | "error", "budget_epochs": int | null,
             "epochs_used": int, "seed": int,
             "space": {param: {"kind": "loguniform"|"uniform"|"int"|"logint"|"choice", "scale": "log"|
                       "linear"|"categorical", "low", "high" (ranges) | "options" (choice), ["limits"]}},
             "stages": [{"index": 1, "epochs", "trials", "budget_epochs", "sampler", "pruner", "top_k",
                         "space": {...}, "status", "n_trials", "epochs_used", "best": {"number", "value",
                         "params"} | null, "top": [numbers], "findings": [Finding dicts],
                         "next_space": {...} | null}],
             "trials": [TrialRecord dicts: {"number", "params", "value", "state", "stage", "epochs",
                        "planned_epochs", "curve", "worker", "duration_s", "run_dir", "retry_of",
                        "requeued", "error"}],
             "warnings": [Finding dicts], "best": {"number", "params", "value", "stage", "epochs",
             "run_dir"} | null, "best_config": {...} | null, "ensemble": {...} | null}
        """
        best = self.best_trial
        return {
            "format": FORMAT,
            "strategy": self.strategy,
            "study": {"name": self.study_name, "storage": self.storage},
            "status": self.state,
            "budget_epochs": self.budget_epochs,
            "epochs_used": self.epochs_used,
            "seed": self.seed,
            "space": space_to_dict(self.space),
            "stages": self.stages,
            "trials": [t.to_dict() for t in self.trials],
            "warnings": [w.to_dict() for w in self.warnings],
            "best": None if best is None else {
                "number": best.number, "params": best.params, "value": best.value, "stage": best.stage,
                "epochs": best.last_epoch, "run_dir": best.run_dir,
            },
            "best_config": None if self.best_config is None else redact_config(self.best_config),
            "ensemble": self.ensemble,
        }

    def save(self, folder: str | Path | None = None) -> Path:
        """Write ``search.json`` (atomically) into ``folder`` (default: the search folder)."""
        target = Path(folder) if folder is not None else self.search_dir
        if target is None:
            from babysit.hpsearch._errors import SearchError

            raise SearchError("an in-memory search has no folder; pass save(folder=...).")
        path = target / SEARCH_FILE
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def load(cls, folder: str | Path) -> SearchResult:
        """Read the ``search.json`` a search wrote into ``folder``."""
        path = Path(folder) / SEARCH_FILE
        from babysit.hpsearch._errors import SearchError

        if not path.is_file():
            raise SearchError(f"no {SEARCH_FILE} in {str(folder)!r}: is it a search folder? Run babysit search first.")
        fix = "run the search again to rewrite it (finished trials are kept in its study)"
        data = read_json_object(path, what="search record", fix=fix, error=SearchError)
        try:
            trials = [TrialRecord(**t) for t in data.get("trials", [])]
            space = space_from_dict(data["space"])
        except (TypeError, KeyError, AttributeError, ValueError) as exc:
            raise SearchError(f"{path} is not a search record babysit can read ({type(exc).__name__}: {exc}); "
                              f"{fix}.") from None
        best = best_record(trials)
        return cls(
            best_params={} if best is None else dict(best.params),
            best_value=None if best is None else best.value,
            trials=trials,
            warnings=[Finding(**w) for w in data.get("warnings", [])],
            stages=list(data.get("stages", [])),
            space=space,
            strategy=data.get("strategy", "?"),
            study_name=data.get("study", {}).get("name", "?"),
            storage=data.get("study", {}).get("storage", "?"),
            budget_epochs=data.get("budget_epochs"),
            seed=data.get("seed", 0),
            done=data.get("status") == "done",
            status=data.get("status") if isinstance(data.get("status"), str) else None,
            best_config=data.get("best_config"),
            search_dir=Path(folder),
            ensemble=data.get("ensemble"),
        )

    def table(self, top: int | None = 20) -> Any:
        """A rich table of the trials, best first (``top`` rows; None for all)."""
        return trials_table(self.trials, self.space, top=top)


def format_value(param: Param | None, value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(param, Range) and param.integer:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def short_names(space: Mapping[str, Any]) -> dict[str, str]:
    """Column headers: the last part of each dotted key (``optimizer.lr`` -> ``lr``) where that is unique."""
    last = [name.rsplit(".", 1)[-1] for name in space]
    return {name: short if last.count(short) == 1 else name for name, short in zip(space, last)}


def trials_table(records: Sequence[TrialRecord], space: Mapping[str, Param], *, top: int | None = 20) -> Any:
    """Trials sorted by validation accuracy: stage, state, epochs, accuracy and every hyperparameter."""
    from rich.table import Table

    ranked = sorted(records, key=lambda r: (r.value is not None, r.value or 0.0, r.last_epoch), reverse=True)
    shown = ranked if top is None else ranked[:top]
    title = f"trials ({len(shown)} of {len(records)}, best first)"
    table = Table(title=title)
    for column in ("#", "stage", "state", "epochs", "val acc", *short_names(space).values()):
        table.add_column(column, justify="right")
    styles = {"pruned": "dim", "diverged": "red", "failed": "red", "interrupted": "yellow", "running": "cyan",
              "waiting": "cyan"}
    for r in shown:
        table.add_row(
            str(r.number), str(r.stage or "–"), r.state, _epochs_cell(r),
            "–" if r.value is None else f"{r.value:.4f}",
            *(format_value(space.get(name), r.params.get(name)) for name in space),
            style=styles.get(r.state),
        )
    return table


def _epochs_cell(record: TrialRecord) -> str:
    """``10`` for a trial trained from scratch, ``10 (#7+5)`` for one that continued trial 7 for 5 epochs."""
    if record.continued_from is None:
        return str(record.epochs)
    return f"{record.last_epoch} (#{record.continued_from}+{record.epochs})"
