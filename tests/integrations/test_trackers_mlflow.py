"""MLflowLogger against a real ``mlflow server`` (started here on a free localhost port, with its own SQLite
store) and against MLflow's local file store; everything is read back with ``MlflowClient``: the per-epoch
numbers, the per-layer series at their steps, the settings as params, the findings as tags and artifacts,
the report, and the run's status however the run ended."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _tracker_runs import EndAfterEpoch, highest_severities, need, sick_run

import babysit
from babysit.config import config_from_dict
from babysit.errors import ConfigError
from babysit.history import History
from babysit.integrations.mlflow import MLflowLogger
from babysit.train.from_config import train_from_config

mlflow = need("mlflow")

SERIES = ("ratio/fc1.weight", "grad/fc1.weight/norm", "act/act1/std", "act/act1/dead")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server on localhost (its own SQLite store and artifact folder), killed after."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no background job workers
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'store.db'}", "--artifacts-destination",
         str(folder / "artifacts")], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"mlflow server exited ({server.returncode}): {_tail(folder / 'server.log')}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer in 120 s: {_tail(folder / 'server.log')}")
            time.sleep(0.25)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn worker: the group started here
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


@pytest.fixture
def file_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for this to use a folder as its store
    return f"file:{tmp_path / 'mlruns'}"


def _download(client: Any, run_id: str, name: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, name, str(into)))


def assert_run_holds(client: Any, run_id: str, h: History, tmp_path: Path) -> None:
    """What MLflow holds of the run ``h``: numbers, series, params, findings, report, status."""
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == h.run_dir.name
    # the per-epoch numbers, x = the epoch, with the History's values
    val_acc = client.get_metric_history(run_id, "epoch/val_acc")
    assert [m.step for m in val_acc] == [1, 2]
    assert [m.value for m in val_acc] == pytest.approx([e["val_acc"] for e in h.epochs])
    assert {"epoch/train_loss", "epoch/val_loss", "epoch/train_acc", "epoch/lr"} <= set(run.data.metrics)
    # every per-layer series the Monitor read out, each point at its step
    for key in SERIES:
        points = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
        assert [m.step for m in points] == [int(s) for s in h.series[key]["step"]], key
        assert [m.value for m in points] == pytest.approx(h.series[key]["value"]), key
    assert len(client.get_metric_history(run_id, "step/loss")) == len(h.steps["step"])
    # the settings as params
    params = run.data.params
    assert params["optimizer"] == "sgd" and float(params["lr"]) == 2.0 and params["epochs"] == "2"
    assert params["model"] == "MLP" and int(params["num_parameters"]) > 0
    # the findings as tags, with the highest severity of each code
    assert h.findings, "the sick run must have findings to send"
    tags = run.data.tags
    assert {k.removeprefix("babysit.finding."): v for k, v in tags.items()
            if k.startswith("babysit.finding.")} == highest_severities(h.findings)
    assert tags["babysit.status"] == "completed" and tags["babysit.findings"] == str(len(h.findings))
    # ... and as artifacts, with the final report page of the run folder
    assert {"findings.json", "findings.md", "report.html"} <= {a.path for a in client.list_artifacts(run_id)}
    assert json.loads(_download(client, run_id, "findings.json", tmp_path / "a").read_text()) == h.findings
    markdown = _download(client, run_id, "findings.md", tmp_path / "b").read_text()
    assert all(f"`{f['code']}`" in markdown for f in h.findings)
    report = _download(client, run_id, "report.html", tmp_path / "c").read_bytes()
    assert report == (h.run_dir / "report.html").read_bytes()


@pytest.mark.slow  # the server's start (its SQLite schema) takes 10-20 s on 2 busy cores
def test_a_run_goes_to_a_real_mlflow_server(mlflow_server: str, tmp_path: Path) -> None:
    tracker = MLflowLogger(mlflow_server, experiment="babysit-test")
    h = sick_run(tmp_path / "served", [tracker])
    client = mlflow.MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("babysit-test")
    assert client.get_run(tracker.run_id).info.experiment_id == experiment.experiment_id
    assert_run_holds(client, tracker.run_id, h, tmp_path / "downloads")


def test_a_run_goes_to_the_local_file_store(file_store: str, tmp_path: Path) -> None:
    tracker = MLflowLogger(file_store)
    h = sick_run(tmp_path / "local", [tracker])
    assert_run_holds(mlflow.MlflowClient(file_store), tracker.run_id, h, tmp_path / "downloads")


@pytest.mark.parametrize(("ending", "status", "mlflow_status"), [
    (babysit.StopTraining("enough"), "stopped", "FINISHED"),
    (KeyboardInterrupt(), "interrupted", "KILLED"),
    (RuntimeError("broken"), "failed", "FAILED"),
    ("diverged", "diverged", "FAILED"),
])
def test_the_mlflow_status_follows_how_the_run_ended(file_store: str, tmp_path: Path, ending: Any, status: str,
                                                     mlflow_status: str) -> None:
    tracker = MLflowLogger(file_store)
    if ending == "diverged":  # lr 1000: the loss is NaN within the first epoch
        h = sick_run(tmp_path / "run", [tracker], lr=1e3, report=False)
    else:
        try:
            h = sick_run(tmp_path / "run", [tracker, EndAfterEpoch(ending)], report=False)
        except (KeyboardInterrupt, RuntimeError):
            h = History.load(tmp_path / "run")
    run = mlflow.MlflowClient(file_store).get_run(tracker.run_id)
    # MLflow's status, and babysit's own one as a tag
    assert h.status == status
    assert run.info.status == mlflow_status and run.data.tags["babysit.status"] == status


def test_a_resumed_run_continues_its_mlflow_run(file_store: str, tmp_path: Path) -> None:
    first = MLflowLogger(file_store)
    sick_run(tmp_path / "run", [first], epochs=1, report=False)
    again = MLflowLogger(file_store)
    h = sick_run(tmp_path / "run", [again], epochs=2, report=False, resume=True)
    client = mlflow.MlflowClient(file_store)
    # the same MLflow run, every epoch and every series point once
    assert again.run_id == first.run_id
    assert [m.step for m in client.get_metric_history(first.run_id, "epoch/val_acc")] == [1, 2]
    ratio = client.get_metric_history(first.run_id, "ratio/fc1.weight")
    assert sorted(m.step for m in ratio) == [int(s) for s in h.series["ratio/fc1.weight"]["step"]]
    assert client.get_run(first.run_id).info.status == "FINISHED"


def test_a_second_fit_with_the_same_logger_is_a_second_mlflow_run(file_store: str, tmp_path: Path) -> None:
    tracker = MLflowLogger(file_store)
    sick_run(tmp_path / "one", [tracker], epochs=1, report=False)
    first = tracker.run_id
    sick_run(tmp_path / "two", [tracker], epochs=1, report=False)
    client = mlflow.MlflowClient(file_store)
    assert tracker.run_id != first
    assert [client.get_run(i).info.run_name for i in (first, tracker.run_id)] == ["one", "two"]
    assert len(client.get_metric_history(first, "epoch/val_acc")) == 1


def test_trackers_mlflow_in_a_config(file_store: str, tmp_path: Path) -> None:
    cfg = config_from_dict({"name": "cfg", "runs_dir": str(tmp_path), "train": {"epochs": 2, "report": False},
                            "model": {"hidden": [16]},
                            "trackers": {"mlflow": {"tracking_uri": file_store, "experiment": "from-config"}}})
    h = train_from_config(cfg, progress=False)
    client = mlflow.MlflowClient(file_store)
    experiment = client.get_experiment_by_name("from-config")
    (run,) = client.search_runs([experiment.experiment_id])
    # the whole config as params, the run named after its folder
    assert run.info.run_name == "cfg" and run.info.status == "FINISHED"
    assert run.data.params["config.train.epochs"] == "2" and run.data.params["config.model.hidden"] == "[16]"
    assert run.data.metrics["epoch/val_acc"] == pytest.approx(h.epochs[-1]["val_acc"])


def test_a_wrong_trackers_key_names_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown key `trackers.mlflow.uri`.*tracking_uri"):
        config_from_dict({"trackers": {"mlflow": {"uri": "http://127.0.0.1:5000"}}})


def test_a_tracking_uri_that_cannot_be_opened_stops_the_run_before_training(tmp_path: Path) -> None:
    epochs: list[int] = []
    with pytest.raises(ConfigError, match=r"cannot open the MLflow tracking URI 'nosuchscheme://x'"):
        sick_run(tmp_path / "run", [MLflowLogger("nosuchscheme://x"), lambda h: epochs.append(len(h.epochs))],
                 report=False)
    assert epochs == []  # not one epoch trained


def test_a_missing_mlflow_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'babysit\[trackers\]' \(or pip install mlflow\)"):
        MLflowLogger("http://127.0.0.1:5000")
