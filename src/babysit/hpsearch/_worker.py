"""A worker (lecture H7): keep taking trials of the current stage, train, report every epoch, record.

Workers never plan. They read the stage the master published in the study, run one trial at a time
through ``study.optimize(n_trials=1)``, beating while a trial runs (``_liveness``), and wait when
the stage is full until the master publishes the next stage or says the search is done. Each trial's
folder is renamed at the end to hold its validation accuracy: ``trials/0042_val0.9751/`` (plus
``_pruned`` or ``_diverged``), with ``history.jsonl`` (its statistics) and ``checkpoints/best.pt`` inside.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import optuna

from babysit._redact import redact_text
from babysit.errors import BabysitError
from babysit.hpsearch import _ledger
from babysit.hpsearch._errors import SearchError, UntrustedStudyError
from babysit.hpsearch._liveness import HEARTBEAT_INTERVAL_S, Heartbeat
from babysit.hpsearch._objective import SearchTrial
from babysit.hpsearch._states import TrialStates
from babysit.hpsearch._storage import make_storage, trial_id
from babysit.hpsearch._trust import check_params, check_stage
from babysit.hpsearch._view import StageSampler, make_pruner, make_sampler
from babysit.hpsearch.space import Param, space_from_dict
from babysit.train._interrupt import interrupt_behind, interrupts_deferred, interrupts_resumed

log = logging.getLogger("babysit")
MAX_FAILURES = 3  # this many failed trials in a row (errors, not dead workers) stop the search


@dataclass
class WorkerSpec:
    """Everything a worker process needs (picklable: sent to spawned processes)."""

    url: str | None
    study_name: str
    objective: Any  # a ConfigObjective or a module-level callable
    search_dir: str | None
    seed: int = 0
    index: int = 0  # the worker's number on this machine: samplers are seeded apart
    threads: int | None = None  # torch threads per worker (cores / workers)
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S
    parent_pid: int | None = None  # a local worker stops when its master is gone
    idle_timeout_s: float | None = None  # a joining worker gives up after waiting this long for work
    poll_s: float = 0.25
    parallel: bool = False  # other workers share the study (TPE then uses constant liar)
    states: TrialStates | None = None  # what trials keep for those that continue them (default: by search_dir)
    # the space the search declares (space_to_dict form): what this worker accepts from the study (_trust);
    # None only for a callable objective joined without one (its parameters are still checked to be data)
    space: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.states is None:
            self.states = TrialStates(self.search_dir)

    @property
    def declared(self) -> dict[str, Param] | None:
        return None if self.space is None else space_from_dict(self.space)


def published_stages(attrs: Mapping[str, Any], declared: Mapping[str, Param] | None) -> list[dict[str, Any]]:
    """The stages the study holds, each checked against the declared space (``_trust``) before anything uses it.

    Raises:
        UntrustedStudyError: a stage names what the search did not declare.
    """
    stages = attrs.get(_ledger.STAGES) or []
    if not isinstance(stages, list):
        raise UntrustedStudyError(f"the study's stages are a {type(stages).__name__}, not a list; refusing them.")
    return [check_stage(s, declared) for s in stages]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _Surplus(Exception):
    """The stage was already full when this trial started (another worker won the race)."""


class _Runner:
    """The Optuna objective a worker optimizes: one babysit trial."""

    def __init__(self, spec: WorkerSpec, stages: Callable[[], list[dict[str, Any]]]) -> None:
        self.spec = spec
        self.stages = stages
        self.fatal: BaseException | None = None
        self.last_outcome: str | None = None
        self.last_error: str | None = None

    def __call__(self, ot: Any) -> float:
        self.last_outcome, self.last_error = "failed", None
        try:
            with interrupts_resumed(), Heartbeat(ot, self.spec.heartbeat_interval):  # see work() for interrupts
                return self._run(ot)
        except (_Surplus, optuna.TrialPruned):
            raise
        except UntrustedStudyError as exc:  # the study was altered: stop this worker and the search
            self.fatal = exc
            self.last_error = str(exc)
            log.error("trial %d refused: %s", ot.number, exc)
            raise
        except (KeyboardInterrupt, Exception) as exc:
            interrupt = interrupt_behind(exc)  # also a call to the study that the interrupt cut short
            if interrupt is not None:
                self._interrupted_before(ot)
                _raise_interrupt(interrupt, exc)
            if self.last_error is None:  # failed before the objective ran: a bug of the search itself
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("trial %d could not start: %s", ot.number, self.last_error)
            raise

    def _interrupted_before(self, ot: Any) -> None:
        if self.last_outcome != "interrupted":  # before its objective ran: it runs again on resume too
            self.last_outcome = "interrupted"
            with suppress(Exception):
                ot.set_user_attr(_ledger.RESULT, {"outcome": "interrupted", "epochs_run": 0})

    def _run(self, ot: Any) -> float:
        index = ot.user_attrs.get("stage")
        stage = next((s for s in self.stages() if s["index"] == index), None)
        if stage is None:
            raise UntrustedStudyError(f"trial {ot.number} belongs to stage {index!r}, which the study does not hold; "
                                      "refusing it.")
        trials = ot.study.get_trials(deepcopy=False)
        frozen = next(t for t in trials if t.number == ot.number)
        # a re-queued trial takes the place of the one that died; any other needs room in its stage
        if "failed_trial" not in frozen.system_attrs and not _ledger.has_room(trials, stage, before=ot.number):
            ot.set_user_attr(_ledger.RESULT, {"outcome": "surplus"})
            self.last_outcome = "surplus"
            raise _Surplus(f"stage {index} was full when trial {ot.number} started")
        ot.set_user_attr("worker", worker_id())
        params = {name: p.suggest(ot, name) for name, p in space_from_dict(stage["space"]).items()}
        check_params(params, self.spec.declared, what=f"trial {ot.number}")  # before any config holds them
        folder = None if self.spec.search_dir is None else Path(self.spec.search_dir) / "trials" / f"{ot.number:04d}"
        parent, parent_state = self._parent(ot)
        keeper = None
        if stage.get("keep_state"):
            def keeper(state: Any) -> None:
                self.spec.states.put(ot.number, folder, state)  # type: ignore[union-attr]
        trial = SearchTrial(
            ot, params=params, stage=index, epochs=stage["epochs"], run_dir=folder, pruning=stage["pruner"] != "none",
            continues=parent, parent_state=parent_state, start_epoch=_count(ot.user_attrs.get("start_epoch", 0)),
            keeper=keeper,
        )
        if trial.start_epoch != ot.user_attrs.get("start_epoch", 0):  # no state to continue: charged in full
            ot.set_user_attr("start_epoch", trial.start_epoch)
        started = time.perf_counter()
        try:
            value = self.spec.objective(params, trial)
        except (KeyboardInterrupt, Exception) as exc:
            interrupt = interrupt_behind(exc)  # also a clean-up of the objective that the interrupt cut short
            if interrupt is not None:
                self._interrupted(ot, trial, started)
                _raise_interrupt(interrupt, exc)
            if isinstance(exc, BabysitError):
                self.fatal = exc
                self._finish(ot, trial, "failed", started, error=str(exc))
                raise
            self._finish(ot, trial, "failed", started, error=f"{type(exc).__name__}: {exc}")
            log.warning("trial %d failed: %s", ot.number, self.last_error)
            raise
        if value is None or not math.isfinite(float(value)):
            trial.mark_diverged()
        if trial.diverged:
            self._finish(ot, trial, "diverged", started)
            raise optuna.TrialPruned(f"diverged after {trial.epochs_run} epochs")
        if trial.pruned and trial.epochs_run < trial.epochs:  # pruned after its last epoch = trained in full
            self._finish(ot, trial, "pruned", started)
            raise optuna.TrialPruned(f"pruned after {trial.epochs_run} epochs")
        self._finish(ot, trial, "complete", started, value=float(value))
        return float(value)

    def _interrupted(self, ot: Any, trial: SearchTrial, started: float) -> None:
        self.last_outcome = "interrupted"
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN) if _main_thread() else None
        try:  # a second SIGTERM must not cut this record short; if it cannot be written, the master marks it
            with suppress(Exception):
                self._finish(ot, trial, "interrupted", started)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _parent(self, ot: Any) -> tuple[int | None, Any]:
        """The shorter trial this one continues and the state it kept (None, None: train from scratch)."""
        number = ot.user_attrs.get("continues")
        if number is None:
            return None, None
        number = _count(number)
        parent = next((t for t in ot.study.get_trials(deepcopy=False) if t.number == number), None)
        run_dir = None if parent is None else _ledger.result_of(parent).get("run_dir")
        state = self.spec.states.get(number, run_dir)  # type: ignore[union-attr]
        if state is None:
            log.info("trial %d: no state of trial %d to continue; training its setting from scratch", ot.number, number)
        return number, state

    def _finish(
        self, ot: Any, trial: SearchTrial, outcome: str, started: float, *, value: float | None = None,
        error: str | None = None,
    ) -> None:
        self.last_outcome, self.last_error = outcome, error
        best = value if value is not None else trial.best_reported
        unreported = trial.epochs - trial.start_epoch if outcome == "complete" else 0  # never called report()
        epochs = trial.epochs_trained if trial.curve else unreported
        attrs: dict[str, Any] = {
            "outcome": outcome, "epochs_run": epochs, "duration_s": round(time.perf_counter() - started, 3),
        }
        if trial.continues is not None:
            attrs.update(continues=trial.continues, start_epoch=trial.start_epoch)
        if best is not None and math.isfinite(best):
            attrs["best_val_acc"] = best
        if error is not None:
            attrs["error"] = redact_text(error)[:2000]  # the study is shared: no password goes into it
        folder = trial.run_dir
        if folder is not None and folder.is_dir() and outcome != "interrupted":
            named = folder.with_name(_folder_name(ot.number, best, outcome))
            folder.rename(named)
            folder = named
        if folder is not None and folder.is_dir():
            attrs["run_dir"] = str(folder.relative_to(Path(self.spec.search_dir or ".")))
        ot.set_user_attr(_ledger.RESULT, attrs)


def _count(value: Any) -> int:
    """A count read from the study (an epoch, a trial number): an integer >= 0, else refused."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UntrustedStudyError(f"the study holds {value!r} where a count belongs; refusing it.")
    return value


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _folder_name(number: int, best: float | None, outcome: str) -> str:
    """``0042_val0.9751`` (+ ``_pruned`` / ``_diverged`` / ``_failed``): the lecture's accuracy in the name."""
    val = "nan" if best is None or not math.isfinite(best) else f"{best:.4f}"
    suffix = "" if outcome == "complete" else f"_{outcome}"
    return f"{number:04d}_val{val}{suffix}"


def current_stage(attrs: dict[str, Any], declared: Mapping[str, Param] | None = None) -> dict[str, Any] | None:
    stages = published_stages(attrs, declared)
    return stages[-1] if stages and stages[-1].get("status") == "running" else None


def runnable(trials: list[Any], stage: dict[str, Any]) -> bool:
    """Whether the stage has room, or a re-queued trial of it waits."""
    waiting = any(
        t.state == optuna.trial.TrialState.WAITING and t.user_attrs.get("stage") == stage["index"] for t in trials
    )
    return waiting or _ledger.has_room(trials, stage)


def _raise_interrupt(interrupt: KeyboardInterrupt, caught: BaseException) -> NoReturn:
    """Raise ``interrupt`` again: as it is when it was what was caught, else instead of the error it caused."""
    if interrupt is caught:
        raise interrupt
    raise interrupt from None


def work(
    spec: WorkerSpec, *, storage: Any = None, in_process: bool = False, on_trial: Callable[[], None] | None = None
) -> int:
    """Run trials until the search is done (a worker) or, ``in_process``, until the current stage is full.

    Returns the number of trials this call ran. Raises the objective's BabysitError (bad config or data)
    and SearchError after ``MAX_FAILURES`` failed trials in a row; both are also written into the study so
    that the master and the other workers stop.
    """
    storage = storage if storage is not None else make_storage(spec.url)
    base = _wait_for_study(storage, spec)
    if base is None:
        return 0
    declared = spec.declared
    published_stages(base.user_attrs, declared)  # an altered study is refused before anything is imported
    _warm_up(spec.objective)
    runner = _Runner(spec, lambda: published_stages(base.user_attrs, declared))
    studies: dict[int, Any] = {}
    ran = failures = 0
    idle_since = time.monotonic()
    while True:
        attrs = base.user_attrs
        if attrs.get(_ledger.ERROR) or attrs.get(_ledger.DONE) or _orphaned(spec):
            return ran
        try:
            stage = current_stage(attrs, declared)
        except UntrustedStudyError as exc:
            base.set_user_attr(_ledger.ERROR, redact_text(exc))
            raise
        if stage is None or not runnable(base.get_trials(deepcopy=False), stage):
            if in_process:
                return ran
            if spec.idle_timeout_s is not None and time.monotonic() - idle_since > spec.idle_timeout_s:
                log.info("worker %s: no work for %.0f s; stopping", worker_id(), spec.idle_timeout_s)
                return ran
            time.sleep(spec.poll_s)
            continue
        idle_since = time.monotonic()
        study = studies.get(stage["index"])
        if study is None:
            study = studies[stage["index"]] = _stage_study(storage, spec, stage)
        runner.fatal = None
        # an interrupt while Optuna creates or closes the trial would leave it running with no worker named on it,
        # so the master could not mark it interrupted: interrupts wait for the objective (interrupts_resumed)
        with interrupts_deferred():
            study.optimize(runner, n_trials=1, catch=(Exception,), gc_after_trial=False)
        ran += 1
        if runner.fatal is not None:
            base.set_user_attr(_ledger.ERROR, redact_text(runner.fatal))
            raise runner.fatal
        failures = failures + 1 if runner.last_outcome == "failed" else 0
        if failures >= MAX_FAILURES:
            message = f"{failures} trials in a row failed; the last with {runner.last_error}"
            base.set_user_attr(_ledger.ERROR, redact_text(message))
            raise SearchError(message + ". Fix the objective and run the same search again to resume.")
        if on_trial is not None:
            on_trial()


_WARMED: set[int] = set()  # objectives this process has warmed up


def _warm_up(objective: Any) -> None:
    """Pay the process's one-time costs (imports, data) before the first trial, so trial times compare.
    A failure here is left to the first trial, which reports it the usual way (a fatal config error stops
    the search with its message)."""
    warm_up = getattr(objective, "warm_up", None)
    if warm_up is None or id(objective) in _WARMED:  # in process, work() runs again for every stage
        return
    _WARMED.add(id(objective))
    try:
        warm_up()
    except Exception as exc:
        log.debug("warm-up failed (%s: %s); the first trial will report it", type(exc).__name__, exc)


def _stage_study(storage: Any, spec: WorkerSpec, stage: dict[str, Any]) -> Any:
    space = space_from_dict(stage["space"])
    seed = (spec.seed * 1009 + stage["index"] * 101 + spec.index) % 2**31
    inner = make_sampler(stage["sampler"], seed=seed, space=space, trials=stage.get("trials"), parallel=spec.parallel)
    warm = stage["index"] > 1 and stage["sampler"] in ("tpe", "gp")  # learn from the coarser stages too
    prior = {name: p.distribution() for name, p in space.items()} if warm else None
    return optuna.load_study(
        study_name=spec.study_name, storage=storage,
        sampler=StageSampler(inner, stage["index"], stage["epochs"], prior, storage=storage),
        pruner=make_pruner(stage["pruner"], epochs=stage["epochs"]),
    )


def _wait_for_study(storage: Any, spec: WorkerSpec) -> Any:
    """Load the study, waiting (up to the idle timeout) for a master to create it."""
    started = time.monotonic()
    while True:
        try:
            return optuna.load_study(study_name=spec.study_name, storage=storage)
        except KeyError:
            if spec.idle_timeout_s is not None and time.monotonic() - started > spec.idle_timeout_s:
                log.warning("worker: no study %r appeared in %.0f s; stopping", spec.study_name, spec.idle_timeout_s)
                return None
            time.sleep(max(spec.poll_s, 1.0))


def _orphaned(spec: WorkerSpec) -> bool:
    return spec.parent_pid is not None and os.getppid() != spec.parent_pid


def mark_interrupted(storage: Any, study_name: str, workers: Collection[str]) -> list[int]:
    """Mark the running trials of ``workers`` (``host:pid``) interrupted: failed in Optuna's terms, ``interrupted``
    in babysit's, so that a resumed search runs them again. Returns their numbers."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    marked = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if t.user_attrs.get("worker") not in workers:
            continue
        result = {"epochs_run": len(t.intermediate_values), **_ledger.result_of(t), "outcome": "interrupted"}
        with suppress(Exception):  # it may have ended on its own meanwhile
            storage.set_trial_user_attr(trial_id(storage, study, t.number), _ledger.RESULT, result)
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            marked.append(t.number)
    return marked


def _stop(signum: int, frame: Any) -> None:
    from babysit.train._interrupt import TrainingInterrupted

    raise TrainingInterrupted(f"received signal {signal.Signals(signum).name}")


def worker_main(spec: WorkerSpec) -> None:
    """Entry point of a worker process: quiet logs, a share of the cores, exit 1 on a fatal error.

    Signals: Ctrl-C at a terminal reaches every process of the group, but the master decides; so a worker ignores
    SIGINT (the pool starts it with SIGINT ignored already) and stops on the master's SIGTERM: its trial is
    marked ``interrupted`` (here, or by the master once this process has exited: a second connection opened here
    could wait on a lock the interrupted one still holds) and it exits with 130, printing nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # babysit reports failed trials itself, in one line
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from babysit._redact import redact_logs

    redact_logs()
    if spec.threads:
        import torch

        torch.set_num_threads(spec.threads)
    try:
        work(spec)
    except KeyboardInterrupt:  # its trial is marked interrupted already, or by the master once this process is gone
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.exit(130)
    except BabysitError as exc:
        print(f"babysit worker {worker_id()}: {redact_text(exc)}", file=sys.stderr)
        sys.exit(1)
