"""``babysit.search``: the master (lecture H7) that plans stages, runs workers and gathers the results.

The master publishes one stage at a time in the study (its ranges, trial length, caps, sampler, pruner),
lets workers fill it (itself in-process when ``workers=1``, else N local processes; more may join from
other machines with ``babysit search CONFIG --worker --storage postgresql://...``), waits until the stage
is complete, checks the best values against the range edges (lecture H4) and derives the next stage's
ranges (lecture H5). A search folder resumes where it stopped: finished stages and trials are kept, a
trial that was running is run again.

Ctrl-C and SIGTERM stop a search the way they stop ``fit``: the master stops its worker processes (SIGTERM; they
ignore the terminal's SIGINT), marks the trials they were running ``interrupted`` (not failed), rewrites
``search.json`` with status ``interrupted`` and raises :class:`SearchInterrupted` (a KeyboardInterrupt). Running
the same search again resumes it and runs the interrupted trials again. Stage changes in the study are made with
interrupts held, so an interrupt never leaves half a stage published.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna

from babysit.errors import ConfigError
from babysit.findings import Finding
from babysit.hpsearch import _ledger
from babysit.hpsearch._errors import SearchError, SearchInterrupted
from babysit.hpsearch._liveness import HEARTBEAT_INTERVAL_S, StaleTrials, requeue
from babysit.hpsearch._objective import ConfigObjective
from babysit.hpsearch._pool import LocalWorkers
from babysit.hpsearch._progress import SearchProgress
from babysit.hpsearch._refine import boundary_findings, refine_space
from babysit.hpsearch._resolve import (
    check_keys,
    check_picklable,
    merge_table,
    objective_name,
    quiet_optuna,
    resolve_objective,
    torch_threads,
)
from babysit.hpsearch._stages import Stage, default_top_k, plan_stages, stage_budget
from babysit.hpsearch._states import TrialStates
from babysit.hpsearch._storage import default_url, display_url, make_storage, resolve_url
from babysit.hpsearch._view import grid_points, inside
from babysit.hpsearch._worker import WorkerSpec, mark_interrupted, published_stages, runnable, work, worker_id
from babysit.hpsearch.results import SEARCH_FILE, SearchResult, best_record, records_from_study, top_records
from babysit.hpsearch.space import Param, Range, space_from_dict, space_to_dict
from babysit.hpsearch.status import write_pointer
from babysit.train._interrupt import interrupts_deferred, raise_if_interrupted, sigterm_as_interrupt

log = logging.getLogger("babysit")
POLL_S = 0.25  # waiting for workers elsewhere while this process has no trial to run
POOL_POLL_S = 1.0  # watching local workers: each look costs ~10 ms of a core they need (stage end <= 1 s late)
PROMOTE = 4  # a stage of coarse_to_fine first continues this many of the previous stage's best settings
MEMORY = "memory"  # storage="memory": the study lives in this process only (no folder unless search_dir)


def search(
    objective: Any,
    space: Mapping[str, Any] | None = None,
    *,
    strategy: str = "coarse_to_fine",
    budget_epochs: int | None = None,
    trials: int | None = None,
    workers: int = 1,
    storage: str | None = None,
    seed: int = 0,
    epochs: int | None = None,
    stages: Sequence[Stage | Mapping[str, Any]] | None = None,
    pruner: str | None = None,
    search_dir: str | Path | None = None,
    study_name: str | None = None,
    overwrite: bool = False,
    ensemble: int = 0,
    progress: bool | None = None,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    threads: int | None = None,
) -> SearchResult:
    """Search hyperparameters on the validation split: log ranges, coarse to fine, boundary warnings, workers.

    Args:
        objective: a training config (a TOML path or its dict) whose dotted keys the space overrides
            (``"optimizer.lr"``, ``"train.reg"``, ``"model.hidden"``), or a callable
            ``objective(params, trial) -> validation accuracy`` that trains ``trial.epochs`` epochs, calls
            ``trial.report(epoch, val_acc)`` after each and returns early when ``trial.should_stop()``.
        space: parameter name -> ``babysit.space.loguniform(...)`` etc. (or the TOML form
            ``{"loguniform": [1e-4, 1]}``); None takes a config's ``[search.space]``.
        strategy: ``coarse_to_fine`` (lecture H5), ``random`` (H3), ``grid`` (for comparison), ``bayes``
            (H6: Optuna's TPE).
        budget_epochs: the most epochs all trials together may train (the fair unit to compare strategies).
        trials: the most trials (split over the stages of coarse_to_fine).
        workers: local worker processes sharing the study (1: train in this process).
        storage: an Optuna storage URL; default a journal file in the search folder (in memory for a callable
            with one worker and no folder); ``postgresql://...`` lets workers on other machines join;
            ``"memory"`` keeps the study in this process (nothing written, nothing to resume).
        seed: seeds the samplers (each worker and stage apart).
        epochs: epochs of a full-length trial (default: the config's ``train.epochs``, or 10).
        stages: coarse_to_fine's stages (:class:`Stage` or dicts) instead of the default three.
        pruner: ``median``, ``successive_halving`` or ``none`` (default: none for one-stage strategies; in
            coarse_to_fine, median in the medium stage and successive halving in the full-length one).
        search_dir: the search folder (default ``<runs_dir>/<name>-search`` for a config).
        study_name: the study's name (default: the config's or the callable's name).
        overwrite: start over instead of resuming the search in the folder.
        ensemble: evaluate the average prediction of the top-K trials on the test split (config objectives).
        progress: show progress bars (None: when stderr is a terminal).
        heartbeat_interval: seconds between a running trial's heartbeats; a trial silent for three is re-queued.
        threads: torch threads for trials trained in this process (restored afterwards; e.g. 1 for tiny
            models on a busy CPU); worker processes get ``cores // workers`` each.

    Returns:
        A :class:`SearchResult`; with a folder, also written to ``<search_dir>/search.json``.
    """
    job = _Job.build(
        objective, space, strategy=strategy, budget_epochs=budget_epochs, trials=trials, workers=workers,
        storage=storage, seed=seed, epochs=epochs, stages=stages, pruner=pruner, search_dir=search_dir,
        study_name=study_name, heartbeat_interval=heartbeat_interval,
    )
    with torch_threads(threads):
        return job.run(overwrite=overwrite, ensemble=ensemble, progress=progress)


@dataclass
class _Job:
    """A search resolved from the arguments: objective, ranges, stages, where the study lives."""

    objective: Any
    user_space: dict[str, Param]
    plan: list[Stage]
    strategy: str
    budget_epochs: int | None
    trials: int | None
    workers: int
    seed: int
    url: str | None
    search_dir: Path | None
    study_name: str
    heartbeat_interval: int
    spec: dict[str, Any] = field(default_factory=dict)
    states: TrialStates = field(default_factory=lambda: TrialStates(None, memory=True))
    pool_ids: set[str] = field(default_factory=set)  # host:pid of this master and its worker processes

    @classmethod
    def build(cls, objective: Any, space: Mapping[str, Any] | None, **kw: Any) -> _Job:
        objective, table = resolve_objective(objective)
        kw = merge_table(table, kw)
        if space is None:
            space = table.get("space")
        if space is None:
            raise ConfigError("no search space: pass space={...} or add a [search.space] table to the config.")
        user_space = space_from_dict(space)
        if isinstance(objective, ConfigObjective):
            check_keys(objective, user_space)
        elif not callable(objective):
            raise ConfigError(f"objective must be a config (TOML path or dict) or a callable, got {objective!r}.")
        workers = kw["workers"]
        if not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be an integer >= 1, got workers={workers!r}.")
        full = kw["epochs"] or (objective.epochs if isinstance(objective, ConfigObjective) else 10)
        plan = plan_stages(
            kw["strategy"], epochs=full, budget_epochs=kw["budget_epochs"], trials=kw["trials"],
            pruner=kw["pruner"], stages=kw["stages"],
        )
        name = kw["study_name"] or objective_name(objective)
        folder, storage = kw["search_dir"], kw["storage"]
        in_memory = storage == MEMORY
        if in_memory and workers > 1:
            raise ConfigError("storage='memory' keeps the study in this process: it needs workers=1.")
        if folder is None and not in_memory and isinstance(objective, ConfigObjective):
            folder = Path(objective.base.runs_dir) / f"{objective.name}-search"
        elif folder is None and not in_memory and (workers > 1 or storage is not None):
            folder = Path("runs") / f"search-{name}"
        folder = None if folder is None else Path(folder)
        url = None
        if not in_memory and (storage or folder):
            url = resolve_url(storage) if storage else default_url(folder)  # type: ignore[arg-type]
        if workers > 1 and not isinstance(objective, ConfigObjective):
            check_picklable(objective)
        job = cls(
            objective=objective, user_space=user_space, plan=plan, strategy=kw["strategy"],
            budget_epochs=kw["budget_epochs"], trials=kw["trials"], workers=workers, seed=kw["seed"], url=url,
            search_dir=folder, study_name=name, heartbeat_interval=kw["heartbeat_interval"],
        )
        job.states = TrialStates(None if folder is None else folder.resolve(), memory=workers == 1)
        job.spec = {
            "format": 1, "strategy": job.strategy, "space": space_to_dict(user_space),
            "stages": [s.to_dict() for s in plan], "budget_epochs": job.budget_epochs, "trials": job.trials,
            "seed": job.seed, "objective": name,
        }
        return job

    # --- running ---------------------------------------------------------------------------------------------
    def run(self, *, overwrite: bool, ensemble: int, progress: bool | None) -> SearchResult:
        self.pool_ids = {worker_id()}
        self.stale = StaleTrials(self.heartbeat_interval)
        with quiet_optuna(), sigterm_as_interrupt():  # SIGTERM stops the search like Ctrl-C
            storage = None
            try:
                storage = make_storage(self.url)
                if overwrite:
                    self._clear(storage)
                study = optuna.create_study(
                    storage=storage, study_name=self.study_name, direction="maximize", load_if_exists=True
                )
                self._adopt(study)
                if self.search_dir is not None:
                    write_pointer(self.search_dir, self.study_name, self.url)
                if not study.user_attrs.get(_ledger.DONE):
                    log.info("search %r: %s in %s", self.study_name, self.strategy, self.search_dir or "memory")
                    with SearchProgress(progress, self.plan) as bar:
                        self._drive(study, storage, bar)
                result = self._result(study)
            except SearchInterrupted:
                raise
            except KeyboardInterrupt as exc:
                raise self._interrupted(storage, exc) from None
        if self.search_dir is not None:
            result.save()
        if ensemble:
            from babysit.hpsearch.ensemble import evaluate_ensemble

            result.ensemble = evaluate_ensemble(result, ensemble, objective=self.objective, space=self.user_space)
            if self.search_dir is not None:
                result.save()
        return result

    def _interrupted(self, storage: Any, exc: BaseException) -> SearchInterrupted:
        """After Ctrl-C / SIGTERM (the workers are stopped already): mark the trials this master's processes were
        running ``interrupted``, note the interrupt in the study, rewrite search.json; further interrupts wait."""
        with _signals_ignored():
            why = "SIGTERM" if str(exc).startswith("received signal SIGTERM") else "Ctrl-C"
            result = None
            try:
                if self.url is not None:  # a fresh connection: the interrupt may have cut one short mid-call
                    _release(storage)  # ... and that one may still hold the SQLite write lock
                    storage = make_storage(self.url)
                if storage is not None:
                    marked = mark_interrupted(storage, self.study_name, self.pool_ids)
                    study = optuna.load_study(study_name=self.study_name, storage=storage)
                    study.set_user_attr(_ledger.INTERRUPTED, _now())
                    result = self._result(study, done=False)
                    result.status = "interrupted"
                    if self.search_dir is not None:
                        result.save()
                    log.debug("interrupted; trials marked interrupted: %s", marked)
            except Exception as error:  # the clean-up must not hide the interrupt; resuming still works
                log.warning("while stopping the search: %s: %s", type(error).__name__, error)
        done = 0 if result is None else sum(t.state == "complete" for t in result.trials)
        where = f" in {self.search_dir}" if self.search_dir is not None else ""
        return SearchInterrupted(
            f"search {self.study_name!r} interrupted by {why}: {done} completed trials kept{where}; running trials "
            "were marked interrupted and run again when the same search is started again.",
            result=result, search_dir=self.search_dir,
        )

    def _clear(self, storage: Any) -> None:
        with suppress(KeyError):
            optuna.delete_study(study_name=self.study_name, storage=storage)
        if self.search_dir is not None:
            shutil.rmtree(self.search_dir / "trials", ignore_errors=True)
            (self.search_dir / SEARCH_FILE).unlink(missing_ok=True)

    def _adopt(self, study: Any) -> None:
        """Store this search's plan in a new study, or check that a resumed study holds the same search."""
        stored = study.user_attrs.get(_ledger.SPEC)
        if stored is None:
            study.set_user_attr(_ledger.SPEC, self.spec)
            return
        keys = ("strategy", "space", "stages", "budget_epochs", "trials", "seed")
        changed = [k for k in keys if stored.get(k) != self.spec.get(k)]
        if changed:
            where = self.search_dir or display_url(self.url)
            raise SearchError(
                f"{where} already holds a different search (it differs in {', '.join(changed)}); "
                "resume it with the same settings, pass overwrite=True (CLI: --overwrite) to start over, "
                "or choose another folder."
            )
        if study.user_attrs.get(_ledger.ERROR):
            study.set_user_attr(_ledger.ERROR, None)
        if study.user_attrs.get(_ledger.INTERRUPTED):
            study.set_user_attr(_ledger.INTERRUPTED, None)
        log.info("resuming search %r (%d trials so far)", self.study_name, len(study.trials))

    def _published(self, study: Any) -> list[dict[str, Any]]:
        """The stages in the study, checked against the declared space before any is used (``_trust``)."""
        return published_stages(study.user_attrs, self.user_space)

    def _drive(self, study: Any, storage: Any, bar: SearchProgress) -> None:
        worker = WorkerSpec(
            url=self.url, study_name=self.study_name, objective=self.objective,
            search_dir=None if self.search_dir is None else str(self.search_dir.resolve()), seed=self.seed,
            heartbeat_interval=self.heartbeat_interval, parallel=self.workers > 1,
            threads=max(1, (os.cpu_count() or 1) // self.workers) if self.workers > 1 else None,
            states=self.states, space=space_to_dict(self.user_space),
        )
        pool = LocalWorkers(self.workers, worker, on_start=self.pool_ids.add) if self.workers > 1 else None
        try:
            for i, stage in enumerate(self.plan):
                published = self._published(study)
                if i < len(published) and published[i]["status"] == "done":
                    continue
                if i < len(published):
                    current = published[i]
                    self._requeue_interrupted(study, current["index"])
                else:
                    with interrupts_deferred():  # queued trials and the published stage go in together
                        current = self._publish(study, i, stage, published)
                bar.start_stage(current)
                if pool is None:
                    self._fill_in_process(study, storage, worker, current, bar)
                else:
                    self._fill_with_pool(study, pool, current, bar)
                with interrupts_deferred():
                    self._finish_stage(study, i)
                    if self.search_dir is not None:
                        self._result(study, done=False).save()
            study.set_user_attr(_ledger.DONE, True)
        except BaseException:
            if pool is not None:  # Ctrl-C, SIGTERM, a fatal error: the workers stop now, their trials marked
                with _signals_ignored():
                    pool.stop(wait=False)
            raise
        if pool is not None:
            pool.stop(wait=True)

    def _publish(self, study: Any, i: int, stage: Stage, published: list[dict[str, Any]]) -> dict[str, Any]:
        space = self.user_space if i == 0 else space_from_dict(published[i - 1].get("next_space") or
                                                                 published[i - 1]["space"])
        trials = study.get_trials(deepcopy=False)
        spent = sum(_ledger.usage(trials, s["index"])[1] for s in published)
        cap = stage.trials
        if stage.sampler == "grid":
            size = _grid_size(space, cap or (self.budget_epochs or 0) // stage.epochs or None)
            cap = size if cap is None else min(cap, size)
        current = {
            "index": i + 1, "epochs": stage.epochs, "trials": cap,
            "budget_epochs": stage_budget(self.plan, i, self.budget_epochs, spent),
            "sampler": stage.sampler, "pruner": stage.pruner, "top_k": stage.top_k,
            "space": space_to_dict(space), "status": "running", "started": _now(),
            "keep_state": i + 1 < len(self.plan),  # the next stage may continue this one's best trials
        }
        log.info(
            "stage %d/%d: %s-epoch trials, %s, sampler %s, pruner %s", i + 1, len(self.plan), stage.epochs,
            _caps(current), stage.sampler, stage.pruner,
        )
        if i > 0:  # queued before the stage is published, so no worker samples ahead of them
            promoted = self._promote(study, published[i - 1], current, space)
            self._drop_states(study, published[i - 1]["index"], keep=promoted)
        study.set_user_attr(_ledger.STAGES, [*published, current])
        return current

    def _promote(
        self, study: Any, previous: dict[str, Any], current: dict[str, Any], space: Mapping[str, Param]
    ) -> list[int]:
        """Queue the previous stage's best settings as the first trials of this longer stage (lecture H5).

        The coarse stage ranked them on short runs; training them longer first is what successive halving
        does with its survivors, and it makes the search's first long trials its most promising ones. Each
        continues its shorter trial from where it stopped (the trial kept its state), so the stage pays only
        the new epochs. New samples around them follow. At most ``PROMOTE`` trials, and only settings inside
        this stage's ranges. Returns the numbers of the trials continued.
        """
        by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
        ranges = {name: param.distribution() for name, param in space.items()}
        promoted: list[int] = []
        for number in previous.get("top") or []:
            trial = by_number.get(number)
            if len(promoted) >= PROMOTE or trial is None or not inside(trial, ranges):
                continue
            attrs = {"stage": current["index"], "epochs": current["epochs"], "promoted_from": number}
            start = _ledger.last_epoch(trial)
            if previous.get("keep_state") and _ledger.outcome_of(trial) in ("complete", "pruned") \
                    and 0 < start < current["epochs"]:
                attrs.update(continues=number, start_epoch=start)
            study.enqueue_trial(dict(trial.params), user_attrs=attrs)
            promoted.append(number)
        if promoted:
            log.info("stage %d starts with the %d best settings of stage %d, continued to %d epochs each",
                     current["index"], len(promoted), previous["index"], current["epochs"])
        return promoted

    def _drop_states(self, study: Any, stage: int, keep: Sequence[int] = ()) -> None:
        """Forget the kept states of a stage's trials that no trial will continue (they can be large)."""
        for t in study.get_trials(deepcopy=False):
            if t.user_attrs.get("stage") == stage and t.number not in keep:
                self.states.drop(t.number, _ledger.result_of(t).get("run_dir"))

    def _requeue_interrupted(self, study: Any, index: int) -> None:
        """On resume: queue again the trials of this stage that were interrupted (Ctrl-C, SIGTERM)."""
        trials = study.get_trials(deepcopy=False)
        retried = _ledger.retried_numbers(trials)
        for t in trials:
            if (t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("stage") == index
                    and _ledger.outcome_of(t) == "interrupted" and t.number not in retried):
                requeue(study, t)
                log.info("trial %d was interrupted; queued again", t.number)

    def _fill_in_process(
        self, study: Any, storage: Any, worker: WorkerSpec, stage: dict[str, Any], bar: SearchProgress
    ) -> None:
        """Train the stage's trials here; then wait for trials that workers elsewhere still run."""
        while True:
            work(worker, storage=storage, in_process=True, on_trial=lambda: bar.update(study))
            trials = self._check(study, stage)
            bar.update(study, trials)
            if _ledger.complete(trials, stage):
                return
            if not runnable(trials, stage):
                time.sleep(POLL_S)

    def _fill_with_pool(self, study: Any, pool: LocalWorkers, stage: dict[str, Any], bar: SearchProgress) -> None:
        pool.start()
        while True:
            trials = self._check(study, stage)
            bar.update(study, trials)
            if _ledger.complete(trials, stage):
                return
            pool.check(done=bool(study.user_attrs.get(_ledger.DONE)))
            time.sleep(POOL_POLL_S)

    def _check(self, study: Any, stage: dict[str, Any] | None = None) -> list[Any]:
        """Fail and re-queue trials of dead workers, queue again trials a stopped worker elsewhere left
        interrupted; stop on a worker's fatal error."""
        raise_if_interrupted()  # a Ctrl-C that a finalizer swallowed still stops the search
        self.stale.fail(study)
        error = study.user_attrs.get(_ledger.ERROR)
        if error:
            raise SearchError(f"a worker stopped the search: {error}")
        if stage is not None:
            self._requeue_interrupted(study, stage["index"])
        return study.get_trials(deepcopy=False)

    def _finish_stage(self, study: Any, i: int) -> None:
        """Close a stage: its best trials, the boundary warning, the next stage's ranges."""
        published = self._published(study)
        current = dict(published[i])
        trials = study.get_trials(deepcopy=False)
        records = [r for r in records_from_study(trials) if r.stage == current["index"]]
        finished = [r for r in records if r.state in ("complete", "pruned", "diverged")]
        ranked = top_records(records, current["index"], len(records))
        top = ranked[: default_top_k(len(finished), current.get("top_k"))]
        space = space_from_dict(current["space"])
        has_next = i + 1 < len(self.plan)
        next_space = None
        if top and has_next:
            next_space = refine_space(space, [r.params for r in top], top[0].params, [r.params for r in ranked])
            kept = [name for name, param in space.items() if isinstance(param, Range) and next_space[name] == param]
            if kept:
                log.info("stage %d keeps the whole range of %s: stage %d's results do not tell its values apart",
                         current["index"] + 1, ", ".join(kept), current["index"])
        findings = [] if not top else boundary_findings(
            space, top[0].params, stage=current["index"], user_space=self.user_space, next_space=next_space
        )
        for finding in findings:
            (log.warning if finding.severity == "warning" else log.info)("%s", finding.message)
        current.update(
            status="done", finished=_now(), n_trials=len(records),
            epochs_used=_ledger.usage(trials, current["index"])[1],
            best=None if not top else {"number": top[0].number, "value": top[0].value, "params": top[0].params},
            top=[r.number for r in top], findings=[f.to_dict() for f in findings],
            next_space=None if next_space is None else space_to_dict(next_space),
        )
        published[i] = current
        study.set_user_attr(_ledger.STAGES, published)
        if i > 0:  # this stage's promoted trials have continued their parents: nobody needs those states now
            self._drop_states(study, published[i - 1]["index"])

    # --- results ---------------------------------------------------------------------------------------------
    def _result(self, study: Any, *, done: bool = True) -> SearchResult:
        trials = study.get_trials(deepcopy=False)
        records = records_from_study(trials)
        stages = self._published(study)
        warnings = [Finding(**f) for s in stages for f in s.get("findings") or [] if isinstance(f, dict)]
        best = best_record(records)
        best_config = None
        if best is not None and isinstance(self.objective, ConfigObjective):
            best_config = self.objective.trial_raw(best.params, self.plan[-1].epochs)
        return SearchResult(
            best_params={} if best is None else dict(best.params),
            best_value=None if best is None else best.value,
            trials=records, warnings=warnings, stages=stages, space=dict(self.user_space),
            strategy=self.strategy, study_name=self.study_name, storage=display_url(self.url),
            budget_epochs=self.budget_epochs, seed=self.seed, done=done and bool(study.user_attrs.get(_ledger.DONE)),
            best_config=best_config, search_dir=self.search_dir,
        )


# --- helpers -------------------------------------------------------------------------------------------------
def _grid_size(space: Mapping[str, Param], trials: int | None) -> int:
    import math

    return math.prod(len(points) for points in grid_points(space, trials).values())


def _caps(stage: Mapping[str, Any]) -> str:
    parts = []
    if stage.get("trials") is not None:
        parts.append(f"up to {stage['trials']} trials")
    if stage.get("budget_epochs") is not None:
        parts.append(f"{stage['budget_epochs']} epochs")
    return ", ".join(parts)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _release(storage: Any) -> None:
    """Close a storage's connections (rolling back what an interrupt left open), so a new one is not kept
    waiting for a lock the old one holds."""
    import gc

    with suppress(Exception):
        storage.remove_session()
    with suppress(Exception):
        storage.engine.dispose()
    gc.collect()  # a connection an interrupt left between session and pool closes with its last reference


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """While the master stops its workers and records the interrupt, more Ctrl-C / SIGTERM change nothing (the
    search is stopping already); the handlers are put back afterwards. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous = {sig: handler for sig, handler in previous.items() if handler is not None}
    for sig in previous:
        signal.signal(sig, signal.SIG_IGN)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
