"""Strategies, budgets, pruning and the trial protocol, on cheap synthetic objectives (in memory)."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import babysit
from babysit.errors import ConfigError
from babysit.hpsearch import SearchError, SearchResult, Stage
from babysit.hpsearch._stages import plan_stages
from babysit.hpsearch.toys import Peak, failing

SPACE = {"lr": babysit.space.loguniform(1e-5, 1.0), "reg": babysit.space.loguniform(1e-7, 1e-1)}
OBJECTIVE = Peak(log={"lr": 1e-2, "reg": 1e-4})


@pytest.mark.parametrize("strategy", ["random", "grid", "bayes", "coarse_to_fine"])
def test_every_strategy_stays_within_the_epoch_budget(strategy: str) -> None:
    result = babysit.search(OBJECTIVE, SPACE, strategy=strategy, budget_epochs=120, epochs=10, progress=False)
    # the budget caps the epochs of all trials together, and most of it is used (a grid: 3 x 3 points)
    assert (90 if strategy == "grid" else 100) <= result.epochs_used <= 120
    assert result.best_value is not None and result.best_value == max(
        t.value for t in result.trials if t.state == "complete")
    assert set(result.best_params) == set(SPACE)


def test_grid_visits_points_evenly_spaced_in_log_scale() -> None:
    result = babysit.search(Peak(log={"lr": 1e-2}), {"lr": babysit.space.loguniform(1e-4, 1.0)}, strategy="grid",
                            trials=5, epochs=1, progress=False)
    # 5 points at the centres of 5 equal cells in log scale, each once
    assert sorted(round(math.log10(t.params["lr"]), 6) for t in result.trials) == [-3.6, -2.8, -2.0, -1.2, -0.4]


def test_coarse_to_fine_trains_short_then_long_and_keeps_every_trial() -> None:
    seen: list[tuple[int, int]] = []

    def objective(params: dict[str, Any], trial: Any) -> float:
        seen.append((trial.stage, trial.epochs))
        return OBJECTIVE(params, trial)

    result = babysit.search(objective, SPACE, budget_epochs=200, epochs=10, progress=False)
    # the lecture's stages: ~1 epoch, ~5 epochs, full length; every trial stays in the result
    assert sorted(set(seen)) == [(1, 1), (2, 5), (3, 10)]
    assert Counter(t.stage for t in result.trials) == Counter(stage for stage, _ in seen)
    assert [s["epochs"] for s in result.stages] == [1, 5, 10]
    assert all(s["status"] == "done" for s in result.stages)
    # stage 1: many 1-epoch trials for a small share of the epochs (20 of 200); stage 2: ten 5-epoch trials'
    # worth, at most 20% of the budget (40 of 200); stage 3 the rest
    assert result.stages[0]["n_trials"] == 20 and result.stages[0]["budget_epochs"] == 20
    assert result.stages[1]["budget_epochs"] == 40
    assert result.stages[2]["budget_epochs"] == 200 - result.stages[0]["epochs_used"] - result.stages[1]["epochs_used"]


@pytest.mark.parametrize("budget", [300, 1200, 10_000])
def test_coarse_to_fine_short_stages_do_not_grow_with_the_budget(budget: int) -> None:
    # the short stages find where the good settings lie, which does not take longer with a bigger budget:
    # the first full-length trial starts after 70 epochs whatever the budget (with shares it waited 28%)
    plan = plan_stages("coarse_to_fine", epochs=10, budget_epochs=budget, trials=None, pruner=None, stages=None)
    assert [round(s.share * budget) for s in plan] == [20, 50, budget - 70]
    assert plan_stages("coarse_to_fine", epochs=10, budget_epochs=100, trials=None, pruner=None,
                       stages=None)[0].share == 0.2  # a small budget: each short stage at most 20%


def test_trials_cap_splits_over_stages() -> None:
    result = babysit.search(OBJECTIVE, SPACE, trials=20, epochs=4, progress=False)
    # 60% / 25% / 15% of the trials, and the stages are 1, 2, 4 epochs long
    assert [s["n_trials"] for s in result.stages] == [12, 5, 3]
    assert [s["epochs"] for s in result.stages] == [1, 2, 4]


@pytest.mark.parametrize("pruner", ["median", "successive_halving"])
def test_pruned_trials_stop_early_and_are_visible(pruner: str) -> None:
    result = babysit.search(OBJECTIVE, SPACE, strategy="random", trials=30, epochs=9, pruner=pruner, progress=False)
    pruned = [t for t in result.trials if t.state == "pruned"]
    # some trials were stopped early, after reporting fewer epochs than planned
    assert pruned and all(t.epochs < 9 and len(t.curve) == t.epochs for t in pruned)
    assert result.epochs_used < 30 * 9


def test_diverged_trials_stop_early_and_are_marked() -> None:
    objective = Peak(log={"lr": 1e-2}, diverge_above={"lr": 0.1})
    result = babysit.search(objective, {"lr": babysit.space.loguniform(1e-4, 1.0)}, strategy="random", trials=20,
                            epochs=5, progress=False)
    diverged = [t for t in result.trials if t.state == "diverged"]
    # trials with lr > 0.1 explode (NaN after epoch 1): stopped at epoch 2 and shown as diverged
    assert diverged and all(t.params["lr"] > 0.1 and t.epochs == 2 for t in diverged)
    assert all(t.params["lr"] <= 0.1 for t in result.trials if t.state == "complete")


def test_custom_stages_and_validation() -> None:
    stages = [Stage(epochs=1, trials=8), Stage(epochs=3, trials=4, sampler="tpe", top_k=2)]
    result = babysit.search(OBJECTIVE, SPACE, stages=stages, progress=False)
    # the stages as given: 8 one-epoch trials, then 4 three-epoch trials; stage 2 keeps its top 2 (top_k=2)
    assert [(s["epochs"], s["n_trials"], len(s["top"])) for s in result.stages] == [(1, 8, 3), (3, 4, 2)]
    with pytest.raises(ConfigError, match="unknown strategy 'coarse'"):
        babysit.search(OBJECTIVE, SPACE, strategy="coarse")
    with pytest.raises(ConfigError, match="budget_epochs=5 is less than one trial of 10 epochs"):
        babysit.search(OBJECTIVE, SPACE, strategy="random", budget_epochs=5, epochs=10)
    with pytest.raises(ConfigError, match="unknown sampler"):
        Stage(epochs=1, sampler="cmaes")


def test_a_failing_objective_stops_the_search_with_its_error() -> None:
    # three failed trials in a row end the search with the objective's error
    with pytest.raises(SearchError, match=r"3 trials in a row failed.*always fails"):
        babysit.search(failing, SPACE, strategy="random", trials=10, progress=False)


def test_search_json_is_written_and_reads_back(tmp_path: Path) -> None:
    result = babysit.search(OBJECTIVE, SPACE, budget_epochs=60, epochs=4, search_dir=tmp_path, progress=False)
    data = json.loads((tmp_path / "search.json").read_text())
    # the schema the report reads: trials, stages, warnings, space, best
    assert {"trials", "stages", "warnings", "space", "best", "strategy", "budget_epochs"} <= set(data)
    assert set(data["trials"][0]) >= {"number", "params", "value", "state", "stage", "epochs", "curve"}
    assert data["space"]["lr"] == {"kind": "loguniform", "low": 1e-5, "high": 1.0, "scale": "log"}
    assert data["best"]["value"] == result.best_value and data["status"] == "done"
    loaded = SearchResult.load(tmp_path)
    assert loaded.best_params == result.best_params and len(loaded.trials) == len(result.trials)


def test_resuming_a_finished_search_trains_nothing_more(tmp_path: Path) -> None:
    calls: list[int] = []

    first = babysit.search(OBJECTIVE, SPACE, strategy="random", trials=6, epochs=2, search_dir=tmp_path,
                           progress=False)
    again = babysit.search(_counting(calls), SPACE, strategy="random", trials=6, epochs=2, search_dir=tmp_path,
                           study_name="Peak", progress=False)
    # the same folder and settings: the stored trials come back, no trial runs again
    assert calls == [] and [t.number for t in again.trials] == [t.number for t in first.trials]
    with pytest.raises(SearchError, match=r"different search.*trials"):
        babysit.search(OBJECTIVE, SPACE, strategy="random", trials=9, epochs=2, search_dir=tmp_path, progress=False)


def _counting(calls: list[int]) -> Any:
    def objective(params: dict[str, Any], trial: Any) -> float:
        calls.append(trial.number)
        return 0.5

    return objective


def test_trial_report_rejects_non_numbers() -> None:
    def objective(params: dict[str, Any], trial: Any) -> float:
        trial.report(1, "good")
        return 1.0

    # a ConfigError from the objective stops the search at once (bad input, not a flaky trial)
    with pytest.raises(ConfigError, match="needs a number"):
        babysit.search(objective, SPACE, strategy="random", trials=3, progress=False)


def test_memory_storage_writes_nothing_for_a_config(tmp_path: Path) -> None:
    raw = {"name": "mem", "runs_dir": str(tmp_path), "model": {"kind": "mlp", "hidden": 8},
           "train": {"epochs": 1, "monitor": False}, "optimizer": {"name": "sgd", "lr": 0.1}}
    result = babysit.search(raw, {"optimizer.lr": babysit.space.loguniform(1e-2, 1.0)}, strategy="random",
                            trials=2, storage="memory", threads=1, progress=False)
    # a study kept in this process: no folder, no trial checkpoints, but the trials and their values
    assert result.search_dir is None and not any(tmp_path.iterdir())
    assert len(result.trials) == 2 and all(t.run_dir is None for t in result.trials)
    with pytest.raises(ConfigError, match="needs workers=1"):
        babysit.search(raw, {"optimizer.lr": babysit.space.loguniform(1e-2, 1.0)}, storage="memory", workers=2)


class _WarmedPeak:
    """A Peak that must be warmed up (the one-time costs of a worker) before its first trial."""

    def __init__(self, fail_warm_up: bool = False) -> None:
        self.peak, self.warmed, self.fail_warm_up = Peak(log={"lr": 1e-2}), 0, fail_warm_up

    def warm_up(self) -> None:
        if self.fail_warm_up:
            raise RuntimeError("warm-up broke")
        self.warmed += 1

    def __call__(self, params: dict[str, Any], trial: Any) -> float:
        if not self.fail_warm_up:
            assert self.warmed, "a trial ran before the worker warmed up"
        return self.peak(params, trial)


def test_the_objective_is_warmed_up_before_the_first_trial() -> None:
    objective = _WarmedPeak()
    result = babysit.search(objective, {"lr": babysit.space.loguniform(1e-4, 1)}, strategy="random", trials=3,
                            epochs=2, progress=False)
    assert objective.warmed >= 1 and len(result.trials) == 3
    assert all(t.state == "complete" for t in result.trials)


def test_a_failing_warm_up_is_left_to_the_trials() -> None:
    # a warm-up error is not fatal by itself; the trials run (and would report a real error the usual way)
    objective = _WarmedPeak(fail_warm_up=True)
    result = babysit.search(objective, {"lr": babysit.space.loguniform(1e-4, 1)}, strategy="random", trials=2,
                            epochs=2, progress=False)
    assert len(result.trials) == 2


def test_each_longer_stage_first_trains_the_previous_stages_best_settings() -> None:
    # successive halving's promotion inside coarse_to_fine: the first trials of stages 2 and 3 are the best
    # settings of the stage before, trained longer; new samples around them follow
    result = babysit.search(Peak(log={"lr": 1e-2}), {"lr": babysit.space.loguniform(1e-5, 1)}, budget_epochs=150,
                            epochs=6, seed=3, progress=False)
    by_number = {t.number: t for t in result.trials}
    for previous, stage in zip(result.stages, result.stages[1:]):
        first = sorted(t.number for t in result.trials if t.stage == stage["index"])[:2]
        assert [by_number[n].params for n in first] == [by_number[n].params for n in previous["top"][:2]]
        assert all(by_number[n].planned_epochs == stage["epochs"] for n in first)


def test_an_interrupt_while_optuna_creates_a_trial_leaves_no_trial_running(monkeypatch, tmp_path: Path) -> None:
    # SIGTERM lands just after Optuna stored trial 1 and before babysit's objective claimed it: the trial must still
    # end interrupted (run again on resume), not stay "running" with no worker named on it
    import signal

    from optuna.storages import JournalStorage

    from babysit.hpsearch import SearchInterrupted

    create = JournalStorage.create_new_trial

    def create_then_sigterm(self, study_id, template_trial=None):
        trial_id = create(self, study_id, template_trial)
        if self.get_trial(trial_id).number == 1:
            signal.raise_signal(signal.SIGTERM)
        return trial_id

    monkeypatch.setattr(JournalStorage, "create_new_trial", create_then_sigterm)
    with pytest.raises(SearchInterrupted):
        babysit.search(OBJECTIVE, SPACE, strategy="random", trials=4, epochs=2, progress=False,
                       search_dir=tmp_path / "s")
    states = {t["number"]: t["state"] for t in json.loads((tmp_path / "s" / "search.json").read_text())["trials"]}
    assert states == {0: "complete", 1: "interrupted"}, states
    # the search's report says so too (it read "completed" before)
    from babysit.reporting import report

    page = report(tmp_path / "s").read_text()
    assert 'class="pill status-interrupted">interrupted<' in page and "status-completed\">" not in page


def test_a_trial_whose_clean_up_ctrl_c_cut_short_is_interrupted_not_failed(tmp_path: Path) -> None:
    # Optuna's journal lock, interrupted while it is released, fails on its way out (FileNotFoundError for the
    # rename it never made): that trial was interrupted, and runs again when the search resumes
    def objective(params: dict[str, Any], trial: Any) -> float:
        if trial.number == 2:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise FileNotFoundError("study.journal.lock-0f3c.rename")  # noqa: B904 (as the lock does)
        return OBJECTIVE(params, trial)

    with pytest.raises(KeyboardInterrupt):
        babysit.search(objective, SPACE, strategy="random", trials=4, epochs=1, search_dir=tmp_path, progress=False)
    states = {t["number"]: t["state"] for t in json.loads((tmp_path / "search.json").read_text())["trials"]}
    assert states[0] == states[1] == "complete" and states[2] == "interrupted", states
    resumed = babysit.search(OBJECTIVE, SPACE, strategy="random", trials=4, epochs=1, search_dir=tmp_path,
                             progress=False)
    assert sorted(t.state for t in resumed.trials).count("complete") == 4
