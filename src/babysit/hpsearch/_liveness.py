"""Whether a trial's worker is still alive; a dead worker's trial runs again (lecture H7: workers come and go).

A worker beats while its trial runs: every ``HEARTBEAT_INTERVAL_S`` seconds it writes a counter into the trial
(the user attribute ``BEAT``). The master watches: a running trial whose beat and reported epochs have not
changed for ``STALE_BEATS`` intervals, on the master's own clock, has lost its worker. It is failed and queued
again with the same parameters by Optuna's retry callback (any storage can run it), at most ``MAX_RETRY`` times;
its epochs stay spent (``_ledger``). A trial whose worker was killed between creating it and its first beat is
caught the same way: nothing about it changes.

The beat is a trial attribute, so it works on every storage (Optuna's own heartbeat exists only for its RDB
storage, and never calls a trial stale that did not beat once), and the master compares only what it saw
itself, so the clocks of different machines never meet.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from types import TracebackType
from typing import Any

import optuna
from optuna.trial import TrialState

from babysit.hpsearch import _ledger

log = logging.getLogger("babysit")

HEARTBEAT_INTERVAL_S = 5
STALE_BEATS = 3  # silent for this many intervals: the worker is gone
MAX_RETRY = 3  # a trial whose worker died is queued again at most this often
BEAT = "babysit:beat"


class Heartbeat:
    """Beats for one running trial from a daemon thread, from entering until leaving the ``with`` block."""

    def __init__(self, trial: Any, interval: float = HEARTBEAT_INTERVAL_S) -> None:
        self.trial = trial
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"babysit-heartbeat-{trial.number}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        count = 0
        while True:
            count += 1
            try:
                self.trial.set_user_attr(BEAT, count)
            except Exception as exc:  # a dropped connection: the next beat tries again; silence only if it lasts
                log.debug("trial %d: heartbeat not recorded (%s: %s)", self.trial.number, type(exc).__name__, exc)
            if self._stop.wait(self.interval):
                return


class StaleTrials:
    """The master's watch over running trials: ``fail(study)`` fails and re-queues those that went silent."""

    def __init__(self, interval: float = HEARTBEAT_INTERVAL_S) -> None:
        self.grace = STALE_BEATS * interval
        self._seen: dict[int, tuple[Any, float]] = {}  # trial number -> (what it showed, since when, on this clock)

    def fail(self, study: Any) -> list[int]:
        """Fail and re-queue the running trials silent for longer than the grace period; their numbers."""
        now = time.monotonic()
        seen: dict[int, tuple[Any, float]] = {}
        silent = []
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            mark = (trial.user_attrs.get(BEAT), len(trial.intermediate_values))
            last = self._seen.get(trial.number)
            since = last[1] if last is not None and last[0] == mark else now
            seen[trial.number] = (mark, since)
            if now - since > self.grace:
                silent.append(trial.number)
        self._seen = seen
        failed = [number for number in silent if fail_trial(study, number)]
        if failed:
            by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
            for number in failed:
                log.warning("trial %d: its worker went silent for %.0f s; queued again", number, self.grace)
                requeue(study, by_number[number])
        return failed


def fail_trial(study: Any, number: int) -> bool:
    """Fail running trial ``number`` (of any process). False when it ended first (its worker was alive after all),
    or when its worker recorded the trial's result and died before telling the study: the trial is then ended as
    that result says (complete with its value, or pruned), since its training is done."""
    finished = _recorded_ending(next(t for t in study.get_trials(deepcopy=False) if t.number == number))
    try:
        if finished is not None:
            study.tell(number, finished[1], state=finished[0], skip_if_finished=True)
            log.info("trial %d: its worker recorded the trial's result, then went silent; ended as %s", number,
                     finished[0].name.lower())
            return False
        study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    # a journal keeps whichever ending came first: the worker's own may have beaten this one
    return trial.state == TrialState.FAIL and _ledger.RESULT not in trial.user_attrs


def _recorded_ending(trial: Any) -> tuple[TrialState, float | None] | None:
    """How a silent trial ended by the result its worker recorded (complete with its value, or pruned); None when
    it recorded none, or another outcome (failed, diverged, interrupted: failed here, as before)."""
    result = _ledger.result_of(trial)
    value = result.get("best_val_acc")
    if result.get("outcome") == "complete" and isinstance(value, (int, float)) and math.isfinite(value):
        return TrialState.COMPLETE, float(value)
    if result.get("outcome") == "pruned":
        return TrialState.PRUNED, None
    return None


def requeue(study: Any, trial: Any) -> None:
    """Queue a failed trial again with the same parameters, stage and length (at most ``MAX_RETRY`` times)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)  # its name since Optuna 4.9
        (retry or optuna.storages.RetryFailedTrialCallback)(max_retry=MAX_RETRY)(study, trial)
