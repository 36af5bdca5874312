"""Saves written on a background thread: the folder holds exactly what a save in the foreground writes, and a
save that fails on disk stops the run with a clear error instead of being lost."""

from __future__ import annotations

import errno

import pytest
import torch

import babysit
from babysit import models
from babysit.errors import CheckpointError
from babysit.history import History
from babysit.train import run_folder
from babysit.train.run_folder import RunFolder

SETTINGS = dict(optimizer="nesterov", lr=0.05, reg=1e-3, epochs=4, batch_size=64, seed=3, monitor={"every": 5})


def _model(digits):
    return models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=0)


def _epochs(history: History) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in history.epochs]


def _fit(digits, folder, *, background: bool):
    """fit with its own RunFolder (the one fit adds itself saves in the background)."""
    return babysit.fit(_model(digits), digits, callbacks=[RunFolder(folder, background=background)], **SETTINGS)


def test_a_background_save_writes_what_a_foreground_save_writes(digits, tmp_path) -> None:
    _fit(digits, tmp_path / "fg", background=False)
    _fit(digits, tmp_path / "bg", background=True)
    assert _epochs(History.load(tmp_path / "fg")) == _epochs(History.load(tmp_path / "bg"))
    for which in ("last", "best"):
        fg = torch.load(tmp_path / "fg" / "checkpoints" / f"{which}.pt", weights_only=True)
        bg = torch.load(tmp_path / "bg" / "checkpoints" / f"{which}.pt", weights_only=True)
        assert fg["epoch"] == bg["epoch"] and fg["num_steps"] == bg["num_steps"]
        # the weights of that epoch, not of a later one: the writer saved a copy taken at the save
        assert all(torch.equal(fg["model"][k], bg["model"][k]) for k in fg["model"])
        fg_state, bg_state = fg["optimizer"]["state"][0], bg["optimizer"]["state"][0]
        assert torch.equal(fg_state["momentum_buffer"], bg_state["momentum_buffer"])


@pytest.mark.parametrize("failing", [3, 4])  # a save in the middle, and the last one (found as the run closes)
def test_a_save_that_fails_on_disk_stops_the_run_and_the_last_good_save_resumes(digits, tmp_path, monkeypatch,
                                                                                failing: int) -> None:
    real = run_folder.save_checkpoint
    calls = []

    def disk_full(path, payload):
        calls.append(path)
        if len(calls) == failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, payload)

    monkeypatch.setattr(run_folder, "save_checkpoint", disk_full)
    with pytest.raises(CheckpointError, match=r"saving the run failed: OSError.*No space left on device"):
        babysit.fit(_model(digits), digits, run_dir=tmp_path, **SETTINGS)
    monkeypatch.setattr(run_folder, "save_checkpoint", real)
    # the epochs before the failed save are on disk; resuming continues from there like an uninterrupted run
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["epoch"] == failing - 1
    resumed = babysit.fit(_model(digits), digits, run_dir=tmp_path, resume=True, **SETTINGS)
    straight = babysit.fit(_model(digits), digits, run_dir=tmp_path / "straight", **SETTINGS)
    assert _epochs(resumed) == _epochs(straight)
