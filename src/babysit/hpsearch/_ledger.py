"""The study as a ledger: which trials belong to which stage, how many epochs each stage has committed.

Several workers (processes, machines) share one study and no lock. A worker starts a trial only while its
stage has room (trials and epochs under the stage's caps, running trials counted at their full length);
a trial that still finds the stage full once it exists (another worker won the race: trial numbers decide)
ends at once as ``surplus`` without training. A trial whose worker died is failed by its stale heartbeat
and re-queued with the same parameters: the copy takes its place, its lost epochs stay spent.

The study's user attributes hold the plan the master publishes:
``babysit:spec`` (the search as asked), ``babysit:stages`` (one dict per published stage),
``babysit:done``, ``babysit:error`` and ``babysit:interrupted``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optuna.trial import TrialState

SPEC, STAGES, DONE, ERROR = "babysit:spec", "babysit:stages", "babysit:done", "babysit:error"
INTERRUPTED = "babysit:interrupted"  # set by a master stopped by Ctrl-C / SIGTERM (when), cleared on resume
RESULT = "result"  # a finished trial's user attribute: {"outcome", "epochs_run", "best_val_acc", ...}
# A promoted trial that continues a shorter one carries ``continues`` (that trial's number) and ``start_epoch``
# (the epochs it inherits) from the moment it is queued, so the stage's budget counts only its new epochs.
ACTIVE = (TrialState.RUNNING, TrialState.WAITING)


def result_of(trial: Any) -> dict[str, Any]:
    """What the worker recorded when the trial ended (one attribute, written once: fewer database writes)."""
    return trial.user_attrs.get(RESULT) or {}


def outcome_of(trial: Any) -> str | None:
    """``complete``, ``pruned``, ``diverged``, ``failed``, ``interrupted``, ``surplus``, or None (not ended)."""
    return result_of(trial).get("outcome")


def retried_numbers(trials: Sequence[Any]) -> set[int]:
    """Numbers of failed trials that have been re-queued (their copies carry them in ``retry_history``)."""
    return {n for t in trials for n in t.system_attrs.get("retry_history", [])}


def start_epoch(trial: Any) -> int:
    """The epochs a trial inherited from the shorter trial it continues (0: trained from scratch)."""
    result = result_of(trial)
    return int(result.get("start_epoch", 0) if "outcome" in result else trial.user_attrs.get("start_epoch", 0))


def last_epoch(trial: Any) -> int:
    """The epoch a trial's setting stopped at: the epochs it inherited plus the epochs it trained."""
    return start_epoch(trial) + epochs_spent(trial)


def epochs_spent(trial: Any) -> int:
    """Epochs a finished trial trained itself (a continued trial is not charged what it inherited; a running
    one is counted elsewhere)."""
    result = result_of(trial)
    if "epochs_run" in result:
        return int(result["epochs_run"])
    if trial.intermediate_values:
        return int(max(trial.intermediate_values)) - start_epoch(trial)
    if trial.state == TrialState.COMPLETE:
        return int(trial.user_attrs.get("epochs", 0)) - start_epoch(trial)
    return 0


def usage(trials: Sequence[Any], stage: int, *, before: int | None = None, untagged: int = 0) -> tuple[int, int]:
    """``(trials, epochs)`` that stage ``stage`` has committed (optionally only trials numbered below ``before``).

    Running and waiting trials count at their planned length; re-queued failures count their lost epochs but
    not as a trial; surplus trials count nothing. A running trial not yet tagged with a stage (it is being
    created) belongs to the current stage: with ``untagged`` > 0 it counts at that length.
    """
    retried = retried_numbers(trials)
    count = epochs = 0
    for t in trials:
        if before is not None and t.number >= before:
            continue
        if untagged and "stage" not in t.user_attrs and t.state == TrialState.RUNNING:
            count, epochs = count + 1, epochs + untagged
            continue
        if t.user_attrs.get("stage") != stage:
            continue
        if outcome_of(t) == "surplus":
            continue
        if t.state in ACTIVE:
            count += 1
            epochs += int(t.user_attrs.get("epochs", untagged)) - start_epoch(t)  # being tagged: the stage's length
        elif t.state == TrialState.FAIL and t.number in retried:
            epochs += epochs_spent(t)
        else:
            count += 1
            epochs += epochs_spent(t)
    return count, epochs


def has_room(trials: Sequence[Any], stage: Mapping[str, Any], *, before: int | None = None) -> bool:
    """Whether stage ``stage`` (a published stage dict) may start one more trial."""
    count, epochs = usage(trials, stage["index"], before=before, untagged=stage["epochs"])
    if stage.get("trials") is not None and count >= stage["trials"]:
        return False
    return not (stage.get("budget_epochs") is not None and epochs + stage["epochs"] > stage["budget_epochs"])


def active(trials: Sequence[Any], stage: int) -> list[Any]:
    """The stage's running and waiting trials, with running ones not yet tagged (being created for it, or
    left so by a worker killed in between: they count against the stage until they are failed and re-queued)."""
    return [
        t for t in trials
        if t.state in ACTIVE and t.user_attrs.get("stage", stage if t.state == TrialState.RUNNING else None) == stage
    ]


def complete(trials: Sequence[Any], stage: Mapping[str, Any]) -> bool:
    """A stage is complete when it has no room left and nothing of it runs or waits."""
    return not has_room(trials, stage) and not active(trials, stage["index"])


def total_epochs(trials: Sequence[Any]) -> int:
    """Epochs spent by the whole study so far (running trials at what they reported)."""
    return sum(epochs_spent(t) for t in trials if outcome_of(t) != "surplus")
