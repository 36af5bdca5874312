"""The study as a ledger: what a stage has committed while several workers race for its last places."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState, create_trial

from babysit.hpsearch import _ledger

STAGE = {"index": 1, "epochs": 1, "trials": None, "budget_epochs": 3}


def _trial(number: int, state: TrialState, **user_attrs: object) -> optuna.trial.FrozenTrial:
    trial = create_trial(state=state, value=0.5 if state == TrialState.COMPLETE else None, user_attrs=user_attrs)
    trial.number = number
    return trial


def test_a_trial_being_tagged_counts_at_the_stages_length() -> None:
    # a worker sees another's new trial between two writes of its tags: it has a stage, not yet its length
    trials = [
        _trial(0, TrialState.COMPLETE, stage=1, epochs=1, result={"outcome": "complete", "epochs_run": 1}),
        _trial(1, TrialState.RUNNING, stage=1),  # tagged with its stage, length not yet written
        _trial(2, TrialState.RUNNING),  # not tagged at all yet
    ]
    assert _ledger.usage(trials, 1, untagged=STAGE["epochs"]) == (3, 3)
    # so a fourth trial finds the stage full (budget 3 epochs) instead of over-committing it
    assert not _ledger.has_room(trials, STAGE)
    assert _ledger.has_room(trials, STAGE, before=2)  # trial 2 itself still had its place


def test_surplus_and_requeued_trials() -> None:
    trials = [
        _trial(0, TrialState.FAIL, stage=1, epochs=1, result={"outcome": "surplus"}),
        _trial(1, TrialState.COMPLETE, stage=1, epochs=1, result={"outcome": "complete", "epochs_run": 1}),
    ]
    # a surplus trial never trained: it counts nothing
    assert _ledger.usage(trials, 1) == (1, 1)
