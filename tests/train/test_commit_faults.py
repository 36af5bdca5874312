"""One commit point: a run killed (SIGKILL) at any write of a save, or at a random moment, resumes to exactly
the per-epoch numbers of an uninterrupted run; a log and a checkpoint that disagree are never continued."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import babysit
from babysit import models
from babysit.errors import CheckpointError
from babysit.history import History

SETTINGS = dict(optimizer="nesterov", lr=0.05, reg=1e-3, epochs=3, batch_size=64, seed=2,
                schedule={"name": "step", "every": 1, "factor": 0.5}, monitor={"every": 5})
OPTIONS = {"checkpoint_every_steps": 7, "checkpoint_every_epochs": 1,  # saves inside epochs too: 17 steps an epoch
           "report": False}  # what is tested is the commit; a page drawn in each child would only cost time
# no save at epoch ends: the 8th save (after steps 7, 14, ..., 49) is the final one, written as the run closes,
# with the best epoch kept in memory since its end
FINAL_SAVE = {**OPTIONS, "checkpoint_every_epochs": 100}

# The child trains; a patched write function kills it with SIGKILL at the chosen write of the chosen save.
CHILD = textwrap.dedent("""
    import json, os, signal, sys
    import babysit
    from babysit import _io, _runlog, models
    from babysit.train import checkpoint

    folder, point, save_number = sys.argv[1], sys.argv[2], int(sys.argv[3])
    settings, options = json.loads(sys.argv[4]), json.loads(sys.argv[5])
    seen = {"log": 0, "ckpt": 0}

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    real_append, real_stage, real_link_atomic = _runlog.RunLog.append, _io.stage_atomic, _io.link_atomic
    real_put_in_place = _io.StagedFile.put_in_place

    def append(self, records, **kw):
        seen["log"] += 1
        if point == "before_log" and seen["log"] == save_number:
            die()
        size = real_append(self, records, **kw)
        if point == "after_log" and seen["log"] == save_number:
            die()
        return size

    def stage_atomic(path, write):  # a checkpoint written beside its place, before the fsyncs
        if path.name == "last.pt":
            seen["ckpt"] += 1
            if point == "inside_checkpoint" and seen["ckpt"] == save_number:
                def torn(fh):  # half a checkpoint in the temporary file, then the kill
                    fh.write(b"x" * 100)
                    fh.flush()
                    die()
                return real_stage(path, torn)
        return real_stage(path, write)

    def put_in_place(self):  # the rename, after the fsyncs
        real_put_in_place(self)
        if point == "after_checkpoint" and self.target.name == "last.pt" and seen["ckpt"] == save_number:
            die()
        if point == "after_best" and self.target.name == "best.pt" and seen["ckpt"] >= save_number:
            die()

    def link_atomic(source, target, **kw):  # best.pt as a second name of last.pt
        real_link_atomic(source, target, **kw)
        if point == "after_best" and target.name == "best.pt" and seen["ckpt"] >= save_number:
            die()

    _runlog.RunLog.append = append
    checkpoint.stage_atomic = stage_atomic
    _io.StagedFile.put_in_place = put_in_place
    checkpoint.link_atomic = link_atomic
    digits = babysit.data.load("digits", seed=0)
    model = models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=0)
    babysit.fit(model, digits, run_dir=folder, options=options, **settings)
    print("finished without being killed", flush=True)
""")


def _model(digits):
    return models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=0)


def _numbers(history: History) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in history.epochs]


@pytest.fixture(scope="module")
def straight(digits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("straight")
    model = _model(digits)
    h = babysit.fit(model, digits, run_dir=folder, options=OPTIONS, **SETTINGS)
    return h, model


def _child(folder: Path, point: str, save_number: int, options: dict = OPTIONS) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, str(folder), point, str(save_number),
                           json.dumps(SETTINGS), json.dumps(options)], capture_output=True, text=True, timeout=120)


def _resume_and_compare(digits, folder: Path, straight) -> None:
    h_straight, model_straight = straight
    model = _model(digits)
    if (folder / "checkpoints" / "last.pt").exists():
        h = babysit.fit(model, digits, run_dir=folder, resume=True, options=OPTIONS, **SETTINGS)
    else:  # killed before the first checkpoint: nothing to resume, the run starts over
        for name in ("history.jsonl", ".lock"):
            (folder / name).unlink(missing_ok=True)
        h = babysit.fit(model, digits, run_dir=folder, options=OPTIONS, **SETTINGS)
    # the same per-epoch numbers and the same weights as the run that was never killed, to the last bit
    assert _numbers(h) == _numbers(h_straight)
    assert _numbers(History.load(folder)) == _numbers(h_straight)
    for a, b in zip(model.state_dict().values(), model_straight.state_dict().values()):
        assert torch.equal(a, b)
    assert not [p.name for p in folder.rglob("*.tmp")]  # no temporary file is left behind after the resume


POINTS = ["before_log", "after_log", "inside_checkpoint", "after_checkpoint", "after_best"]


# every write point of a save inside epoch 2 (the 4th save; after_best: at the next best epoch's end), and the
# first save of the run (inside epoch 1) where only the log or half a checkpoint was written
@pytest.mark.parametrize(("point", "save_number"), [(p, 4) for p in POINTS] + [("after_log", 1),
                                                                                ("inside_checkpoint", 1)])
def test_sigkill_at_every_write_of_a_save_resumes_exactly(digits, tmp_path: Path, straight, point: str,
                                                          save_number: int) -> None:
    result = _child(tmp_path, point, save_number)
    assert result.returncode == -signal.SIGKILL, result.stdout + result.stderr[-2000:]
    _resume_and_compare(digits, tmp_path, straight)


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_every_write_of_the_final_save_resumes_exactly(digits, tmp_path: Path, straight,
                                                                  point: str) -> None:
    result = _child(tmp_path, point, 8, FINAL_SAVE)
    assert result.returncode == -signal.SIGKILL, result.stdout + result.stderr[-2000:]
    # killed in the final save: last.pt is the run's end once it was put in place, else the save at step 49
    last = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    in_place = point in ("after_checkpoint", "after_best")
    assert (last["epoch"], last["num_steps"]) == ((3, 51) if in_place else (2, 49))
    _resume_and_compare(digits, tmp_path, straight)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_sigkill_at_a_random_moment_resumes_exactly(digits, tmp_path: Path, straight, seed: int) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), "none", "0", json.dumps(SETTINGS),
                             json.dumps(OPTIONS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (tmp_path / "history.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(random.Random(seed).uniform(0.0, 0.6))  # somewhere in the run, often inside a save
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _resume_and_compare(digits, tmp_path, straight)


def test_a_checkpoint_ahead_of_its_log_is_refused(digits, tmp_path: Path) -> None:
    babysit.fit(_model(digits), digits, run_dir=tmp_path, options=OPTIONS, **{**SETTINGS, "epochs": 2})
    log = tmp_path / "history.jsonl"
    log.write_bytes(log.read_bytes()[:-200])  # the log lost its last records; the checkpoint names them
    with pytest.raises(CheckpointError, match="ahead of the run log"):
        babysit.fit(_model(digits), digits, run_dir=tmp_path, resume=True, options=OPTIONS, **SETTINGS)


def test_a_log_from_another_run_is_refused(digits, tmp_path: Path) -> None:
    babysit.fit(_model(digits), digits, run_dir=tmp_path / "a", options=OPTIONS, **{**SETTINGS, "epochs": 2})
    babysit.fit(_model(digits), digits, run_dir=tmp_path / "b", **{**SETTINGS, "epochs": 1})
    (tmp_path / "a" / "history.jsonl").write_bytes((tmp_path / "b" / "history.jsonl").read_bytes() + b"\n" * 10**5)
    with pytest.raises(CheckpointError, match="does not end where the checkpoint says"):
        babysit.fit(_model(digits), digits, run_dir=tmp_path / "a", resume=True, options=OPTIONS, **SETTINGS)


def test_a_log_running_ahead_is_cut_back(digits, tmp_path: Path, straight) -> None:
    babysit.fit(_model(digits), digits, run_dir=tmp_path, **{**SETTINGS, "epochs": 1}, options=OPTIONS)
    payload = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    with open(tmp_path / "history.jsonl", "ab") as fh:  # records of a save whose checkpoint never came
        fh.write(b'{"t":"epochs","epochs":[{"epoch":99}]}\n')
    h = babysit.fit(_model(digits), digits, run_dir=tmp_path, resume=True, options=OPTIONS, **SETTINGS)
    assert _numbers(h) == _numbers(straight[0]) and payload["epoch"] == 1
