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


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_silent_trial_is_failed_and_requeued_and_a_beating_one_is_left_alone(tmp_path, kind) -> None:
    # the silent trial stands for a worker killed between creating its trial and its first beat (Optuna's own
    # heartbeat never calls such a trial stale) or killed later; the stage would wait for it forever
    import time

    from babysit.hpsearch._liveness import Heartbeat, StaleTrials
    from babysit.hpsearch._storage import default_url, make_storage

    if kind == "sqlite":
        (tmp_path / "study.db").touch()  # a search folder from before journals
    url = default_url(tmp_path)
    assert url.startswith("sqlite:///" if kind == "sqlite" else "journal:///"), url
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="silent", storage=make_storage(url))
    silent = study.ask()  # RUNNING, no beat ever
    silent.suggest_float("x", 0.0, 1.0)
    alive = study.ask()
    watch = StaleTrials(interval=0.5)  # grace: 3 beats = 1.5 s
    with Heartbeat(alive, interval=0.5):
        assert watch.fail(study) == []  # first seen now
        deadline = time.monotonic() + 10
        while study.trials[silent.number].state == TrialState.RUNNING and time.monotonic() < deadline:
            time.sleep(0.25)
            watch.fail(study)
        trials = study.trials
        assert trials[silent.number].state == TrialState.FAIL
        assert trials[alive.number].state == TrialState.RUNNING  # it kept beating
        assert trials[alive.number].user_attrs["babysit:beat"] >= 3
    # queued again with the same parameters; another process sees the same (the journal replayed from the file)
    again = optuna.load_study(study_name="silent", storage=make_storage(url)).trials
    queued = [t for t in again if t.state == TrialState.WAITING]
    assert [t.system_attrs.get("failed_trial") for t in queued] == [silent.number]
    assert queued[0].params == trials[silent.number].params


def test_a_trial_that_ended_while_it_was_judged_stale_is_not_requeued(tmp_path) -> None:
    from babysit.hpsearch._liveness import fail_trial
    from babysit.hpsearch._storage import default_url, make_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="ended", storage=make_storage(default_url(tmp_path)))
    trial = study.ask()
    other = optuna.load_study(study_name="ended", storage=make_storage(default_url(tmp_path)))  # another process
    other.tell(trial.number, 0.5)  # its worker finished after all
    assert fail_trial(study, trial.number) is False
    assert study.trials[trial.number].state == TrialState.COMPLETE


@pytest.mark.parametrize(("result", "state"), [
    ({"outcome": "complete", "epochs_run": 5, "best_val_acc": 0.83}, TrialState.COMPLETE),
    ({"outcome": "pruned", "epochs_run": 2, "best_val_acc": 0.4}, TrialState.PRUNED),
    ({"outcome": "diverged", "epochs_run": 1}, TrialState.FAIL),
])
def test_a_worker_killed_after_recording_its_result_has_its_trial_ended_as_recorded(tmp_path, result, state) -> None:
    # killed between writing the trial's result and telling the study: the training is done, so none is run again;
    # a trial that completed keeps its value (it used to be failed, its result lost), one that diverged is failed
    from babysit.hpsearch._liveness import fail_trial
    from babysit.hpsearch._storage import default_url, make_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="late", storage=make_storage(default_url(tmp_path)), direction="maximize")
    trial = study.ask()
    trial.report(0.4, 1)
    trial.set_user_attr(_ledger.RESULT, result)
    assert fail_trial(study, trial.number) is False  # not to be queued again
    ended = study.trials[trial.number]
    assert ended.state == state
    if state == TrialState.COMPLETE:
        assert ended.value == pytest.approx(0.83)


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
