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
EVERY_EPOCH = {"checkpoint_every_epochs": 1}  # a save at each epoch's end, however cheap the epoch


def _model(digits):
    return models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=0)


def _epochs(history: History) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in history.epochs]


def _fit(digits, folder, *, background: bool):
    """fit with its own RunFolder (the one fit adds itself saves in the background)."""
    folder = RunFolder(folder, background=background, every_epochs=1)
    return babysit.fit(_model(digits), digits, callbacks=[folder], **SETTINGS)


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
    real = run_folder.stage_checkpoint
    calls = []

    def disk_full(path, payload):
        calls.append(path)
        if len(calls) == failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, payload)

    monkeypatch.setattr(run_folder, "stage_checkpoint", disk_full)
    with pytest.raises(CheckpointError, match=r"saving the run's last\.pt failed: OSError.*No space left on device"):
        babysit.fit(_model(digits), digits, run_dir=tmp_path, options=EVERY_EPOCH, **SETTINGS)
    monkeypatch.setattr(run_folder, "stage_checkpoint", real)
    # the epochs before the failed save are on disk; resuming continues from there like an uninterrupted run
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["epoch"] == failing - 1
    resumed = babysit.fit(_model(digits), digits, run_dir=tmp_path, resume=True, options=EVERY_EPOCH, **SETTINGS)
    straight = babysit.fit(_model(digits), digits, run_dir=tmp_path / "straight", **SETTINGS)
    assert _epochs(resumed) == _epochs(straight)


def _commits(folder) -> list[int]:
    """The epochs each commit of the run log reached (one commit per save)."""
    import json

    lines = (folder / "history.jsonl").read_text().splitlines()
    return [r["epochs"] for r in map(json.loads, lines) if r.get("t") == "commit"]


def test_a_model_whose_epoch_is_shorter_than_its_save_is_saved_within_the_time_budget(digits, tmp_path) -> None:
    h = babysit.fit(_model(digits), digits, run_dir=tmp_path, **{**SETTINGS, "epochs": 12})
    commits = _commits(tmp_path)
    # a few-millisecond epoch: fewer saves than epochs, the end always saved, and best.pt is the best epoch's
    # (kept in memory when its epoch was not saved)
    assert len(commits) < 12 and commits[-1] == 12
    last = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    assert last["epoch"] == 12 and best["epoch"] == h.best_epoch["epoch"]
    resumed = babysit.fit(_model(digits), digits, run_dir=tmp_path, resume=True, **{**SETTINGS, "epochs": 14})
    straight = babysit.fit(_model(digits), digits, **{**SETTINGS, "epochs": 14})
    assert _epochs(resumed) == _epochs(straight)


class _BestAtEpoch(babysit.Callback):
    """Reports the highest validation accuracy at one early epoch, so the best epoch is not the last one."""

    order = 0  # before the run folder judges the epoch

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_validation_end(self, run, record) -> None:
        record["val_acc"] = 0.99 if record["epoch"] == self.epoch else 0.5


def test_an_earlier_best_epoch_kept_in_memory_is_written_whole_by_the_final_save(digits, tmp_path) -> None:
    # a few-millisecond epoch: epoch 2 is not saved when it ends, so its state waits in memory for the run's
    # final save, which writes it as best.pt beside the log and last.pt
    babysit.fit(_model(digits), digits, run_dir=tmp_path, callbacks=[_BestAtEpoch(2)], **{**SETTINGS, "epochs": 8})
    assert 2 not in _commits(tmp_path) and _commits(tmp_path)[-1] == 8
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == 2 and {"optimizer", "rng_torch", "rng_shuffle"} <= set(best)  # a whole checkpoint
    two_epochs = _model(digits)
    babysit.fit(two_epochs, digits, callbacks=[_BestAtEpoch(2)], **{**SETTINGS, "epochs": 2})
    for name, weights in two_epochs.state_dict().items():
        assert torch.equal(best["model"][name], weights), name
    assert not list(tmp_path.glob("checkpoints/.*.tmp"))


def test_a_disk_error_writing_the_kept_best_epoch_is_a_clear_error_and_the_commit_stays(digits, tmp_path,
                                                                                         monkeypatch) -> None:
    real = run_folder.stage_checkpoint

    def best_fails(path, payload):
        if path.name == "best.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, payload)

    monkeypatch.setattr(run_folder, "stage_checkpoint", best_fails)
    with pytest.raises(CheckpointError, match=r"best\.pt failed: OSError.*No space left on device"):
        babysit.fit(_model(digits), digits, run_dir=tmp_path, callbacks=[_BestAtEpoch(2)],
                    options={"checkpoint_every_epochs": 100}, **{**SETTINGS, "epochs": 8})  # the final save only,
    # however slow the machine (the default policy would save mid-run once 0.5 s of training passed)
    # the log and last.pt of the final save were committed all the same: the run's end is on disk
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 8
    assert _commits(tmp_path)[-1] == 8 and not (tmp_path / "checkpoints" / "best.pt").exists()
    assert not list(tmp_path.glob("checkpoints/.*.tmp"))


def test_checkpoint_every_epochs_saves_at_each_whatever_it_costs(digits, tmp_path) -> None:
    babysit.fit(_model(digits), digits, run_dir=tmp_path, options={"checkpoint_every_epochs": 1}, **SETTINGS)
    assert _commits(tmp_path) == [1, 2, 3, 4, 4]  # the last: the final status and findings
    babysit.fit(_model(digits), digits, run_dir=tmp_path / "two", options={"checkpoint_every_epochs": 3},
                **{**SETTINGS, "epochs": 7})
    assert _commits(tmp_path / "two") == [3, 6, 7]  # and the end
