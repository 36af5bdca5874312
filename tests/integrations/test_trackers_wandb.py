"""WandbLogger in offline mode (``WANDB_MODE=offline``, every W&B folder in a temp dir): the run's ``.wandb``
file, read back record by record with W&B's own protobuf schema, holds the per-epoch numbers, the per-layer
series at their steps, the config, the findings (table, summary, tags), an artifact with the findings and the
report, and the exit code."""

from __future__ import annotations

import json
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _tracker_runs import EndAfterEpoch, highest_severities, need, sick_run

from babysit.config import config_from_dict
from babysit.errors import ConfigError
from babysit.integrations.wandb import WandbLogger
from babysit.train.from_config import train_from_config

wandb = need("wandb")
SERIES = ("ratio/fc1.weight", "grad/fc1.weight/norm", "act/act1/std", "act/act1/dead")


@pytest.fixture(autouse=True)
def _offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, quiet, and every folder W&B writes (settings, cache, artifact staging) inside tmp_path."""
    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": tmp_path / "wandb-dir",
                        "WANDB_CACHE_DIR": tmp_path / "wandb-cache", "WANDB_DATA_DIR": tmp_path / "wandb-data",
                        "WANDB_CONFIG_DIR": tmp_path / "wandb-config"}.items():
        monkeypatch.setenv(name, str(value))


# --- reading a .wandb file ------------------------------------------------------------------------------------
BLOCK, HEADER = 32768, 7  # the file's framing: 32 KiB blocks of records, each behind a 7-byte header
FULL, LAST = 1, 4  # a record in one piece, the last piece of a record split across blocks


def records(path: Path) -> Iterator[Any]:
    """Every record of a ``.wandb`` file as ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    i, pending = HEADER, b""
    while i + HEADER <= len(data):
        if BLOCK - i % BLOCK < HEADER:  # too little room for a header: the block is padded
            i += BLOCK - i % BLOCK
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[i : i + HEADER])
        if kind == 0 and length == 0:
            break
        pending += data[i + HEADER : i + HEADER + length]
        i += HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


class OfflineRun:
    """What one offline run wrote: history rows, the summary, the config, tags, artifacts, the exit code."""

    def __init__(self, folder: Path) -> None:
        (self.file,) = folder.glob("wandb/offline-run-*/run-*.wandb")
        self._read()

    @classmethod
    def of(cls, run_folder: Path) -> OfflineRun:
        """The run whose W&B folder (``offline-run-...``) is given."""
        run = cls.__new__(cls)
        (run.file,) = run_folder.glob("run-*.wandb")
        run._read()
        return run

    def _read(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}
        self.config: dict[str, Any] = {}
        self.tags: list[str] = []
        self.artifacts: dict[str, list[str]] = {}
        self.exit_code: int | None = None
        for record in records(self.file):
            kind = record.WhichOneof("record_type")
            if kind == "history":
                self.rows.append({_key(item): json.loads(item.value_json) for item in record.history.item})
            elif kind == "summary":
                self.summary.update({_key(item): json.loads(item.value_json) for item in record.summary.update})
            elif kind == "run":
                self.config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
                self.tags = list(record.run.tags)
            elif kind == "artifact":
                self.artifacts[record.artifact.name] = [e.path for e in record.artifact.manifest.contents]
            elif kind == "exit":
                self.exit_code = record.exit.exit_code

    def series(self, key: str, x: str) -> list[tuple[int, float]]:
        return [(row[x], row[key]) for row in self.rows if key in row]


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


# --- the tests ------------------------------------------------------------------------------------------------
def test_an_offline_run_holds_numbers_series_config_findings_and_report(tmp_path: Path) -> None:
    tracker = WandbLogger(project="babysit-test", settings=wandb.Settings(console="off"))
    h = sick_run(tmp_path / "run", [tracker])
    run = OfflineRun(tmp_path / "run")  # the W&B files go into the run folder
    assert run.file.name == f"run-{tracker.run_id}.wandb" and run.exit_code == 0
    # the per-epoch numbers against the epoch, with the History's values
    assert run.series("epoch/val_acc", "epoch") == [(e["epoch"], pytest.approx(e["val_acc"])) for e in h.epochs]
    assert [x for x, _ in run.series("epoch/train_loss", "epoch")] == [1, 2]
    # every per-layer series the Monitor read out, each point at its step
    for key in SERIES:
        points = run.series(key, "step")
        assert [x for x, _ in points] == [int(s) for s in h.series[key]["step"]], key
        assert [v for _, v in points] == pytest.approx(h.series[key]["value"]), key
    assert len(run.series("step/loss", "step")) == len(h.steps["step"])
    # the settings as the config
    assert run.config["optimizer"] == "sgd" and run.config["lr"] == 2.0 and run.config["epochs"] == 2
    # the findings: the highest severity of each code in the summary, each code a tag, the table as a file
    assert h.findings, "the sick run must have findings to send"
    assert {k.removeprefix("babysit/finding/"): v for k, v in run.summary.items()
            if k.startswith("babysit/finding/")} == highest_severities(h.findings)
    assert run.summary["babysit/status"] == "completed" and run.summary["babysit/num_findings"] == len(h.findings)
    assert run.summary["best_val_acc"] == pytest.approx(h.best_val_acc)
    assert {f"babysit:{f['code']}" for f in h.findings} | {"babysit"} == set(run.tags)
    table = json.loads((run.file.parent / "files" / run.summary["babysit/findings/path"]).read_text())
    assert [row[0] for row in table["data"]] == [f["code"] for f in h.findings]
    # the artifact: the findings and the run folder's report page
    assert set(run.artifacts[f"babysit-{tracker.run_id}"]) == {"findings.json", "findings.md", "report.html"}


def test_an_interrupted_run_exits_with_130(tmp_path: Path) -> None:
    tracker = WandbLogger(project="babysit-test", settings=wandb.Settings(console="off"))
    with pytest.raises(KeyboardInterrupt):
        sick_run(tmp_path / "run", [tracker, EndAfterEpoch(KeyboardInterrupt(), epoch=2)], report=False)
    run = OfflineRun(tmp_path / "run")
    assert run.exit_code == 130 and run.summary["babysit/status"] == "interrupted"
    # the epochs the run folder keeps (the last checkpoint's): epoch 2 was cut short by the interrupt
    assert [x for x, _ in run.series("epoch/val_acc", "epoch")] == [1]


def test_a_resumed_run_continues_its_wandb_run(tmp_path: Path) -> None:
    first = WandbLogger(project="babysit-test", settings=wandb.Settings(console="off"))
    sick_run(tmp_path / "run", [first], epochs=1, report=False)
    time.sleep(1.1)  # W&B names an offline run's folder by the second it started: two folders, not one
    again = WandbLogger(project="babysit-test", settings=wandb.Settings(console="off"))
    sick_run(tmp_path / "run", [again], epochs=2, report=False, resume=True)
    # the same W&B run id; the resumed part logs epoch 2 only, the first part logged epoch 1
    assert again.run_id == first.run_id
    files = sorted((tmp_path / "run").glob("wandb/offline-run-*"))
    assert len(files) == 2
    epochs = [[x for x, _ in OfflineRun.of(folder).series("epoch/val_acc", "epoch")] for folder in files]
    assert epochs == [[1], [2]]


def test_trackers_wandb_in_a_config(tmp_path: Path) -> None:
    cfg = config_from_dict({"name": "cfg", "runs_dir": str(tmp_path), "train": {"epochs": 2, "report": False},
                            "model": {"hidden": [16]},
                            "trackers": {"wandb": {"project": "from-config", "mode": "offline", "tags": ["digits"]}}})
    h = train_from_config(cfg, progress=False)
    run = OfflineRun(tmp_path / "cfg")
    # the whole config in the W&B config, the tags given, every epoch
    assert run.config["config"]["train"]["epochs"] == 2 and run.config["config"]["model"]["hidden"] == [16]
    assert {"babysit", "digits"} <= set(run.tags) and run.exit_code == 0
    assert [x for x, _ in run.series("epoch/val_acc", "epoch")] == [e["epoch"] for e in h.epochs]


def test_a_wrong_wandb_mode_names_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"trackers.wandb.mode.*'online', 'offline' or 'disabled'"):
        config_from_dict({"trackers": {"wandb": {"mode": "ofline"}}})


def test_a_missing_wandb_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'babysit\[trackers\]' \(or pip install wandb\)"):
        WandbLogger()
