"""The study as a ledger: what a stage has committed while several workers race for its last places."""

from __future__ import annotations

import optuna
import pytest
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


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_that_never_sent_a_heartbeat_is_failed_and_requeued(tmp_path) -> None:
    # a worker killed between creating its trial and its first heartbeat: Optuna never calls that trial
    # stale, and the stage would wait for it forever
    import time

    from babysit.hpsearch._storage import default_url, fail_stale_trials, make_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = make_storage(default_url(tmp_path), heartbeat_interval=1)  # grace: 3 heartbeats = 3 s
    study = optuna.create_study(study_name="silent", storage=storage)
    silent = study.ask()  # RUNNING, no heartbeat ever
    alive = study.ask()
    storage.record_heartbeat(alive._trial_id)
    fail_stale_trials(study)  # first seen silent now
    assert study.trials[silent.number].state == TrialState.RUNNING
    deadline = time.monotonic() + 10
    while study.trials[silent.number].state == TrialState.RUNNING and time.monotonic() < deadline:
        storage.record_heartbeat(alive._trial_id)
        time.sleep(0.5)
        fail_stale_trials(study)
    trials = study.trials
    assert trials[silent.number].state == TrialState.FAIL
    assert trials[alive.number].state == TrialState.RUNNING  # it kept beating
    # re-queued with the same parameters, like a trial whose heartbeat went stale
    assert any(t.state == TrialState.WAITING and t.system_attrs.get("failed_trial") == silent.number for t in trials)


def test_a_stage_is_not_complete_while_an_untagged_trial_runs() -> None:
    # the trial counts against the stage's places (usage), so the stage must also wait for it
    stage = {"index": 1, "epochs": 1, "trials": 2, "budget_epochs": None}
    trials = [
        _trial(0, TrialState.COMPLETE, stage=1, epochs=1, result={"outcome": "complete", "epochs_run": 1}),
        _trial(1, TrialState.RUNNING),  # created, not yet tagged (or its worker was killed right then)
    ]
    assert not _ledger.has_room(trials, stage)
    assert not _ledger.complete(trials, stage)
    trials[1] = _trial(1, TrialState.COMPLETE, stage=1, epochs=1, result={"outcome": "complete", "epochs_run": 1})
    assert _ledger.complete(trials, stage)
