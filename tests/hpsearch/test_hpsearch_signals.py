"""Stopping a search the way a user does (lecture H7's master and workers, real processes and real signals):
Ctrl-C at the terminal (SIGINT to the whole process group), SIGINT to a master started in the background (where
the shell ignores SIGINT for it), and SIGTERM (a scheduler). Each exits with 130 and the resume command, prints no
traceback, keeps every completed trial, marks the running ones ``interrupted`` (not failed) in the study and in
search.json, and the same command afterwards finishes the search, running the interrupted trials again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from babysit.cli import app

pytestmark = pytest.mark.slow  # real processes: ~15-30 s each on 2 cores

HERE = Path(__file__).resolve().parent
BABYSIT = str(Path(sys.executable).with_name("babysit"))
TRIALS = 3

CONFIG = f"""
name = "sig"
runs_dir = "{{runs}}"
[data]
source = "spiral"
[model]
kind = "signal_slow:build"
[train]
epochs = 4
monitor = false
report = false
[optimizer]
name = "sgd"
lr = 0.1
[search]
strategy = "random"
trials = {TRIALS}
[search.space]
"optimizer.lr" = {{{{loguniform = [1e-2, 1.0]}}}}
"""


def _counts(folder: Path) -> tuple[dict[int, float], int]:
    """(number -> value of the complete trials, running trials that reported an epoch), read like any reader."""
    import optuna

    from babysit.hpsearch._storage import default_url, make_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = make_storage(default_url(folder), read_only=True)
    studies = optuna.get_all_study_summaries(storage, include_best_trial=False)
    if not studies:
        return {}, 0
    trials = optuna.load_study(study_name=studies[0].study_name, storage=storage).trials
    done = {t.number: t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    running = sum(t.state == optuna.trial.TrialState.RUNNING and bool(t.intermediate_values) for t in trials)
    return done, running


WORKERS = {"ctrl-c": 2, "background": 2, "sigterm": 1}  # SIGTERM: the master's own in-process trial (fit's path)


def _start(tmp: Path, how: str) -> tuple[subprocess.Popen[str], Path, Path]:
    config = tmp / "sig.toml"
    config.write_text(CONFIG.format(runs=tmp / "runs"))
    env = {**os.environ, "PYTHONPATH": str(HERE), "COLUMNS": "200"}
    env.pop("BABYSIT_STORAGE", None)

    def background() -> None:  # what `cmd &` in a non-interactive shell does
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    master = subprocess.Popen(
        [BABYSIT, "search", str(config), "--workers", str(WORKERS[how]), "--no-progress"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env, cwd=tmp, start_new_session=True,
        preexec_fn=background if how == "background" else None,
    )
    return master, config, tmp / "runs" / "sig-search"


def _wait_for_a_complete_and_a_running_trial(master: subprocess.Popen[str], folder: Path) -> dict[int, float]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert master.poll() is None, master.communicate()
        if (folder / "study.journal").is_file():
            done, running = _counts(folder)
            if done and running:
                return done
        time.sleep(0.1)
    raise AssertionError("no trial completed while another ran")


@pytest.mark.parametrize("how", ["ctrl-c", "background", "sigterm"])
def test_a_stopped_search_exits_130_keeps_its_trials_and_resumes(tmp_path: Path, how: str) -> None:
    master, config, folder = _start(tmp_path, how)
    try:
        done = _wait_for_a_complete_and_a_running_trial(master, folder)
        if how == "ctrl-c":
            os.killpg(master.pid, signal.SIGINT)  # the terminal sends it to the master and every worker
        elif how == "background":
            os.kill(master.pid, signal.SIGINT)
        else:
            os.kill(master.pid, signal.SIGTERM)
        out, err = master.communicate(timeout=60)
    finally:
        if master.poll() is None:
            os.killpg(master.pid, signal.SIGKILL)
    # exit 130, one message with the resume command, no traceback from the master or its workers
    assert master.returncode == 130, err
    assert "Traceback" not in out + err, err
    said = " ".join(err.split())
    assert "interrupted:" in said and f"resume with: babysit search {config} --workers {WORKERS[how]}" in said, said
    record = json.loads((folder / "search.json").read_text())
    states = {t["number"]: t["state"] for t in record["trials"]}
    # search.json says what happened, now: interrupted, the completed trials kept, the running ones interrupted
    assert record["status"] == "interrupted"
    assert all(states[n] == "complete" for n in done), states
    assert "interrupted" in states.values() and "failed" not in states.values() and "running" not in states.values()
    interrupted = [n for n, s in states.items() if s == "interrupted"]
    status = CliRunner().invoke(app, ["search", "status", str(folder)], env={"COLUMNS": "200"})
    assert status.exit_code == 0 and "interrupted" in status.output

    # the same command again (here in this process, one worker) resumes and finishes the search
    os.environ["PYTHONPATH"] = str(HERE)
    sys.path.insert(0, str(HERE))
    try:
        resumed = CliRunner().invoke(app, ["search", str(config), "--no-progress"], env={"COLUMNS": "200"})
    finally:
        sys.path.remove(str(HERE))
    assert resumed.exit_code == 0, resumed.output
    record = json.loads((folder / "search.json").read_text())
    trials = {t["number"]: t for t in record["trials"]}
    assert record["status"] == "done"
    assert all(trials[n]["state"] == "complete" and trials[n]["value"] == v for n, v in done.items())
    assert sum(t["state"] == "complete" for t in trials.values()) == TRIALS
    # each interrupted trial ran again, with its parameters when it had drawn them before the signal
    for n in interrupted:
        [again] = [t for t in trials.values() if t["retry_of"] == n]
        assert again["state"] == "complete"
        assert again["params"] == trials[n]["params"] or not trials[n]["params"], (again, trials[n])
