"""Workers and a master (lecture H7) on a real SQLite study: 4 processes, a SIGKILLed worker, a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from typer.testing import CliRunner

import babysit
from babysit.cli import app
from babysit.hpsearch import SearchResult
from babysit.hpsearch._storage import default_url, make_storage
from babysit.hpsearch.toys import Peak

SPACE = {"lr": babysit.space.loguniform(1e-4, 1.0)}

# The master of the kill and restart tests, run as its own process: 8 random trials of 5 epochs, 0.15 s each.
MASTER = """
import sys, babysit
from babysit.hpsearch.toys import Peak
if __name__ == "__main__":
    babysit.search(Peak(log={"lr": 1e-2}, sleep_s=0.15), {"lr": babysit.space.loguniform(1e-4, 1.0)},
                   strategy="random", trials=8, epochs=5, workers=2, search_dir=sys.argv[1], study_name="kill",
                   heartbeat_interval=1, progress=False)
"""


def test_four_local_workers_share_one_journal_study(tmp_path: Path) -> None:
    result = babysit.search(
        Peak(log={"lr": 1e-2}, sleep_s=0.01), SPACE, strategy="coarse_to_fine", budget_epochs=160, epochs=6,
        workers=4, search_dir=tmp_path, progress=False, heartbeat_interval=1,
    )
    states = Counter(t.state for t in result.trials)
    # every trial finished: no "database is locked", no failed trial, and all four processes took trials
    assert states["failed"] == 0 and states["complete"] + states["pruned"] > 50 and states["complete"] > 10, states
    assert len({t.worker for t in result.trials}) == 4
    # the stages' caps hold although four workers raced for the last places
    for stage in result.stages:
        assert stage["epochs_used"] <= stage["budget_epochs"]
    assert result.epochs_used <= 160 and (tmp_path / "search.json").is_file()


def _study(folder: Path, master: subprocess.Popen[bytes], *, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    while True:
        assert master.poll() is None, master.communicate()[0].decode()[-3000:]
        assert time.monotonic() < deadline, "the master never created its study"
        if (folder / "study.json").is_file():  # written once the study exists
            return optuna.load_study(study_name="kill", storage=make_storage(default_url(folder)))
        time.sleep(0.1)


def _wait_until_one_trial_done_and_one_running(study: Any, timeout: float = 60) -> tuple[list[Any], Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trials = study.get_trials(deepcopy=False)
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING and t.intermediate_values
                   and "worker" in t.user_attrs]
        if done and running:
            return done, running[0]
        time.sleep(0.1)
    raise AssertionError("no trial finished while another ran")


def _start_master(folder: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", MASTER, str(folder)], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _recorded_its_result_first(trial) -> bool:
    """The kill landed after the trial's worker recorded its result, before it told the study (a window of
    milliseconds at the end of a trial): the trial is then kept complete with its value, not failed and re-run."""
    if trial.state != "complete":
        return False
    assert not trial.requeued and trial.value is not None
    return True


def test_a_killed_worker_loses_only_its_trial_which_is_requeued(tmp_path: Path) -> None:
    master = _start_master(tmp_path)
    try:
        study = _study(tmp_path, master)
        done, victim = _wait_until_one_trial_done_and_one_running(study)
        kept = {t.number: t.value for t in done}
        os.kill(int(victim.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)  # mid-trial
        output, _ = master.communicate(timeout=120)
    finally:
        if master.poll() is None:
            os.killpg(master.pid, signal.SIGKILL)
    assert master.returncode == 0, output.decode()[-2000:]
    result = SearchResult.load(tmp_path)
    by_number = {t.number: t for t in result.trials}
    # the trials completed before the kill are kept as they were
    assert all(by_number[n].state == "complete" and by_number[n].value == v for n, v in kept.items())
    # the killed trial is failed and re-queued; its copy ran with the same parameters and completed
    killed = by_number[victim.number]
    if not _recorded_its_result_first(killed):
        assert killed.state == "failed" and killed.requeued
        [retry] = [t for t in result.trials if t.retry_of == victim.number]
        assert retry.state == "complete" and retry.params == killed.params
    # the search still delivered its 8 trials
    assert sum(t.state == "complete" for t in result.trials) == 8


def test_restarting_a_killed_search_resumes_it(tmp_path: Path) -> None:
    master = _start_master(tmp_path)
    try:
        study = _study(tmp_path, master)
        done, running = _wait_until_one_trial_done_and_one_running(study)
        kept = {t.number: (t.params, t.value) for t in done}
    finally:
        os.killpg(master.pid, signal.SIGKILL)  # the master and its workers, mid-trial
        master.communicate(timeout=30)
    # the same search, started again in the same folder
    result = babysit.search(
        Peak(log={"lr": 1e-2}, sleep_s=0.15), SPACE, strategy="random", trials=8, epochs=5, workers=2,
        search_dir=tmp_path, study_name="kill", heartbeat_interval=1, progress=False,
    )
    by_number = {t.number: t for t in result.trials}
    # finished trials are kept, not run again; the interrupted one is re-queued and completed
    assert all((by_number[n].params, by_number[n].value) == pv for n, pv in kept.items())
    if not _recorded_its_result_first(by_number[running.number]):
        assert by_number[running.number].state == "failed" and by_number[running.number].requeued
        assert any(t.retry_of == running.number and t.state == "complete" for t in result.trials)
    assert sum(t.state == "complete" for t in result.trials) == 8


@pytest.mark.parametrize("workers", [1, 2])
def test_trial_folders_hold_the_validation_accuracy_in_their_name(tmp_path: Path, workers: int) -> None:
    raw = {
        "name": "tiny", "runs_dir": str(tmp_path), "data": {"source": "digits"},
        "model": {"kind": "mlp", "hidden": 16}, "train": {"epochs": 2, "monitor": False},
        "optimizer": {"name": "momentum", "lr": 0.05, "momentum": 0.9},
    }
    result = babysit.search(raw, {"optimizer.lr": babysit.space.loguniform(1e-2, 0.5)}, strategy="random",
                            trials=4, workers=workers, progress=False)
    folder = tmp_path / "tiny-search"
    names = sorted(p.name for p in (folder / "trials").iterdir())
    # the lecture's worker: checkpoint + statistics per trial, the validation accuracy in the folder name
    assert names == sorted(f"{t.number:04d}_val{t.value:.4f}" for t in result.trials)
    for t in result.trials:
        run = folder / t.run_dir
        assert (run / "history.jsonl").is_file() and (run / "checkpoints" / "best.pt").is_file()
        assert (run / "config.toml").is_file()
        # saved once at the end, not every epoch: the best weights only, and they are the best epoch's
        assert not (run / "checkpoints" / "last.pt").exists()
        assert _validation_accuracy(run) == pytest.approx(t.value, abs=1e-9)


def _validation_accuracy(run: Path) -> float:
    from babysit import models
    from babysit.config import load_config
    from babysit.hpsearch._objective import load_data
    from babysit.train import load_weights

    cfg = load_config(run / "config.toml")
    bundle = load_data(cfg)
    model = models.build(cfg.model.kind, input_shape=bundle.input_shape, num_classes=bundle.num_classes,
                         **cfg.model_options())
    load_weights(run, model, "best")
    model.eval()
    with torch.no_grad():
        return int((model(bundle.X_val).argmax(dim=1) == bundle.y_val).sum()) / len(bundle.y_val)


def test_a_script_without_a_main_guard_gets_told_how_to_fix_it(tmp_path: Path) -> None:
    # spawned workers import the script; without `if __name__ == "__main__":` each one dies at start-up
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import babysit\n"
        "from babysit.hpsearch.toys import Peak\n"
        "babysit.search(Peak(log={'lr': 1e-2}), {'lr': babysit.space.loguniform(1e-4, 1)}, strategy='random',\n"
        f"               trials=4, epochs=1, workers=2, search_dir={str(tmp_path / 'search')!r}, progress=False)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "worker processes keep dying" in done.stderr and 'if __name__ == "__main__":' in done.stderr


def test_a_search_folder_from_before_journals_still_opens_from_its_sqlite_study(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    first = babysit.search(Peak(log={"lr": 1e-2}), SPACE, strategy="random", trials=3, epochs=2, search_dir=folder,
                           storage=f"sqlite:///{folder / 'study.db'}", study_name="old", progress=False)
    assert (folder / "study.db").is_file() and not (folder / "study.journal").exists()
    # the same search again, with no storage named: the folder's own study.db is found and resumed (nothing runs)
    again = babysit.search(Peak(log={"lr": 1e-2}), SPACE, strategy="random", trials=3, epochs=2, search_dir=folder,
                           study_name="old", progress=False)
    assert [(t.number, t.value) for t in again.trials] == [(t.number, t.value) for t in first.trials]
    assert not (folder / "study.journal").exists()
    status = CliRunner().invoke(app, ["search", "status", str(folder)], env={"COLUMNS": "200"})
    assert status.exit_code == 0 and "3 complete" in status.output.replace("\n", " "), status.output
