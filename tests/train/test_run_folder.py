"""The run folder keeps its promises: one writer, no new run over an old one, durable atomic files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import babysit
from babysit import models
from babysit.config import config_from_dict
from babysit.errors import CheckpointError
from babysit.history import History
from babysit.train.from_config import choose_run_dir, train_from_config


def _mlp(digits):
    return models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[16], seed=0)


def test_a_new_run_never_writes_over_an_earlier_one(digits, tmp_path: Path) -> None:
    babysit.fit(_mlp(digits), digits, epochs=1, run_dir=tmp_path)
    before = (tmp_path / "checkpoints" / "last.pt").read_bytes()
    # the earlier run's checkpoint would otherwise be continued by somebody's --resume
    with pytest.raises(CheckpointError, match=r"already holds a run.*resume=True"):
        babysit.fit(_mlp(digits), digits, epochs=1, run_dir=tmp_path)
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == before
    assert History.load(tmp_path).status == "completed"


def test_files_are_atomic_and_leave_no_temporary_behind(digits, tmp_path: Path) -> None:
    babysit.fit(_mlp(digits), digits, epochs=3, run_dir=tmp_path)
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    # best.pt is a whole checkpoint of the best epoch, readable with weights_only
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == History.load(tmp_path).best_epoch["epoch"]
    # files get the umask's permissions, not mkstemp's 0600: teammates can read a shared run folder
    mask = os.umask(0)
    os.umask(mask)
    for path in (tmp_path / "history.jsonl", tmp_path / "checkpoints" / "last.pt"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask


HOLD = textwrap.dedent("""
    import sys, time
    from babysit.train._lock import RunLock
    lock = RunLock(sys.argv[1]); lock.acquire(); print("locked", flush=True); time.sleep(60)
""")


def test_a_folder_being_written_is_locked(digits, tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        # a second writer is told who holds the folder, and writes nothing
        with pytest.raises(CheckpointError, match=r"being written by pid \d+"):
            babysit.fit(_mlp(digits), digits, epochs=1, run_dir=tmp_path)
        assert not (tmp_path / "history.jsonl").exists()
        cfg = config_from_dict({"name": tmp_path.name, "runs_dir": str(tmp_path.parent)})
        with pytest.raises(CheckpointError, match="still going"):
            choose_run_dir(cfg, resume=False, overwrite=True)
    finally:
        holder.kill()
        holder.wait()
    # the OS drops the lock of a dead process: the folder is usable again at once
    babysit.fit(_mlp(digits), digits, epochs=1, run_dir=tmp_path)


def test_two_runs_of_one_name_get_two_folders(tmp_path: Path) -> None:
    cfg = config_from_dict({"name": "same", "runs_dir": str(tmp_path)})
    # two runs started at the same moment: each claims its folder by creating config.toml exclusively
    first = choose_run_dir(cfg, resume=False, overwrite=False)
    second = choose_run_dir(cfg, resume=False, overwrite=False)
    assert first != second and {first.name, second.name} == {"same", "same-2"}


def test_overwrite_starts_from_scratch(tmp_path: Path) -> None:
    cfg = config_from_dict({"name": "ow", "runs_dir": str(tmp_path), "train": {"epochs": 2, "report": False},
                            "model": {"hidden": [16]}})
    train_from_config(cfg)
    (tmp_path / "ow" / "notes.txt").write_text("mine")
    old = torch.load(tmp_path / "ow" / "checkpoints" / "last.pt", weights_only=True)
    short = config_from_dict({**cfg.model_dump(), "train": {"epochs": 1, "report": False}})
    h = train_from_config(short, overwrite=True)
    # a fresh run: one epoch, its own checkpoint, nothing of the old run continued; the user's file is kept
    assert len(h.epochs) == 1 and h.run_dir == tmp_path / "ow"
    new = torch.load(tmp_path / "ow" / "checkpoints" / "last.pt", weights_only=True)
    assert new["epoch"] == 1 and old["epoch"] == 2
    assert (tmp_path / "ow" / "notes.txt").read_text() == "mine"
