"""Promoted trials continue their shorter trial (successive halving's saving): only new epochs are charged.

Each longer stage of coarse_to_fine first trains the best settings of the stage before. A trial keeps its
final state; the promoted trial of the same setting starts from it, on Peak (a callable following the
whole trial protocol) and on real digits training through a config (the weights go on exactly as in one
uninterrupted run), in memory, in trial folders and across worker processes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import babysit
from babysit.hpsearch import Stage
from babysit.hpsearch._objective import ConfigObjective
from babysit.hpsearch._states import STATE_FILE
from babysit.hpsearch.toys import Peak

SPACE = {"lr": babysit.space.loguniform(1e-5, 1.0)}
PEAK = Peak(log={"lr": 1e-2})


def _continued(result: Any) -> list[Any]:
    return [t for t in result.trials if t.continued_from is not None]


def test_promoted_trials_continue_and_are_charged_only_their_new_epochs() -> None:
    result = babysit.search(PEAK, SPACE, budget_epochs=150, epochs=6, seed=3, progress=False)
    by_number = {t.number: t for t in result.trials}
    continued = _continued(result)
    assert {t.stage for t in continued} == {2, 3}  # stages 2 and 3 each start with continued settings
    for t in continued:
        parent = by_number[t.continued_from]
        assert t.params == parent.params and parent.stage == t.stage - 1
        assert t.start_epoch == parent.last_epoch > 0
        # charged only what it trained: the rest of its stage's length, or less when the stage pruned it
        assert t.epochs == len(t.curve) - t.start_epoch > 0
        assert t.last_epoch == t.planned_epochs or t.state == "pruned"
        # its curve is the setting's whole curve: the parent's epochs, then its own, as one run would give
        ceiling = PEAK.ceiling(t.params)
        expected = [0.1 + (ceiling - 0.1) * (1 - 0.5**e) for e in range(1, t.last_epoch + 1)]
        assert t.curve == pytest.approx(expected)
    # the budget counts trained epochs only, stage by stage
    assert result.epochs_used == sum(t.epochs for t in result.trials) <= 150
    for stage in result.stages:
        assert stage["epochs_used"] == sum(t.epochs for t in result.trials if t.stage == stage["index"])
        assert stage["epochs_used"] <= stage["budget_epochs"]


def test_an_objective_that_ignores_the_kept_state_is_charged_every_epoch() -> None:
    def from_scratch(params: dict[str, Any], trial: Any) -> float:
        acc = 0.0
        for epoch in range(1, trial.epochs + 1):  # never looks at trial.parent_state
            acc = PEAK.ceiling(params) * (1 - 0.5**epoch)
            trial.report(epoch, acc)
        return acc

    result = babysit.search(from_scratch, SPACE, budget_epochs=150, epochs=6, seed=3, progress=False)
    assert not _continued(result)
    promoted = [t for t in result.trials if t.stage and t.stage > 1 and t.curve and len(t.curve) == t.planned_epochs]
    assert promoted and all(t.start_epoch == 0 and t.epochs == t.planned_epochs for t in promoted)
    assert result.epochs_used == sum(t.epochs for t in result.trials) <= 150


CONFIG = {
    "name": "cont",
    "seed": 0,
    "data": {"source": "digits"},
    "model": {"kind": "mlp", "hidden": 32},
    "train": {"epochs": 4, "batch_size": 64, "monitor": False},
    "optimizer": {"name": "momentum", "lr": 0.05, "momentum": 0.9},
}
CONFIG_SPACE = {"optimizer.lr": babysit.space.loguniform(1e-2, 0.5)}
STAGES = [Stage(epochs=1, trials=4), Stage(epochs=4, trials=2)]


class _Fresh:
    """The trial protocol for one uninterrupted run of a config (no search around it)."""

    def __init__(self, epochs: int) -> None:
        self.epochs, self.number, self.stage, self.run_dir = epochs, 0, 1, None
        self.parent_state, self.start_epoch, self.keeps_state, self.curve = None, 0, False, []

    def report(self, epoch: int, val_acc: float) -> None:
        self.curve.append(val_acc)

    def should_stop(self) -> bool:
        return False

    def mark_diverged(self) -> None:
        raise AssertionError("a fresh run diverged")

    def keep_state(self, state: Any) -> None:
        pass


def test_config_trials_continue_from_their_weights_exactly_in_memory() -> None:
    result = babysit.search(CONFIG, CONFIG_SPACE, stages=STAGES, storage="memory", seed=1, progress=False)
    continued = _continued(result)
    assert len(continued) == 2 and all(t.stage == 2 and t.start_epoch == 1 and t.epochs == 3 for t in continued)
    for t in continued:
        fresh = _Fresh(epochs=4)
        value = ConfigObjective(CONFIG)(t.params, fresh)
        # one epoch in stage 1, three more in stage 2: the same numbers as four epochs in one go
        assert t.curve == fresh.curve and t.value == value


def test_config_trials_continue_through_their_folders_and_the_states_are_cleared(tmp_path: Path) -> None:
    result = babysit.search(CONFIG, CONFIG_SPACE, stages=STAGES, search_dir=tmp_path, seed=1, progress=False)
    continued = _continued(result)
    assert len(continued) == 2
    for t in continued:
        fresh = _Fresh(epochs=4)
        ConfigObjective(CONFIG)(t.params, fresh)
        assert t.curve == fresh.curve
        # the continued trial's folder holds the whole run: four epochs of history and its best weights
        history = babysit.History.load(tmp_path / t.run_dir)
        assert [e["epoch"] for e in history.epochs] == [1, 2, 3, 4]
        assert (tmp_path / t.run_dir / "checkpoints" / "best.pt").is_file()
    # states are dropped once nobody will continue them; the trial folders stay
    assert not list(tmp_path.glob(f"trials/*/{STATE_FILE}"))
    assert len(list(tmp_path.glob("trials/*/history.jsonl"))) == len(result.trials)


def test_worker_processes_continue_trials_that_other_workers_ran(tmp_path: Path) -> None:
    result = babysit.search(
        Peak(log={"lr": 1e-2}, sleep_s=0.01), SPACE, budget_epochs=100, epochs=6, workers=2, search_dir=tmp_path,
        seed=0, progress=False, heartbeat_interval=1,
    )
    continued = _continued(result)
    assert continued, "no trial continued"
    by_number = {t.number: t for t in result.trials}
    assert all(t.start_epoch == by_number[t.continued_from].last_epoch for t in continued)
    assert math.isclose(result.epochs_used, sum(t.epochs for t in result.trials)) and result.epochs_used <= 100
    assert not list(tmp_path.glob(f"trials/*/{STATE_FILE}"))


def test_states_live_in_trial_folders_and_only_the_masters_own_worker_keeps_them_in_memory(tmp_path: Path) -> None:
    import pickle

    import torch

    from babysit.hpsearch._states import TrialStates

    state = {"weights": torch.arange(3.0), "epoch": 2, "history": "{}"}
    folder = TrialStates(tmp_path)
    folder.put(7, tmp_path / "trials" / "0007", state)
    # read back with weights_only=True: tensors and plain data only
    assert torch.equal(folder.get(7, "trials/0007")["weights"], torch.arange(3.0))
    # a worker process gets the folder, never another process's memory
    master = TrialStates(None, memory=True)
    master.put(1, None, state)
    assert master.get(1, None) is state and pickle.loads(pickle.dumps(master)).get(1, None) is None
    # a worker that joined without a folder keeps nothing (its memory would grow with every trial)
    joined = TrialStates(None)
    joined.put(1, None, state)
    assert joined.get(1, None) is None
    folder.drop(7, "trials/0007")
    assert folder.get(7, "trials/0007") is None and not (tmp_path / "trials" / "0007" / STATE_FILE).exists()
