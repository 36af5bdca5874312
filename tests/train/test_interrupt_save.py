"""Ctrl-C or SIGTERM inside an epoch: the step in progress finishes, the run folder saves there, and a resume
continues at the next step as if nothing happened; a second Ctrl-C stops at once; a run stopped before its
first save starts again from its beginning."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from _resume_setup import SETTINGS as RUN
from _resume_setup import resumable_model as _model
from _resume_setup import strip_seconds as _strip_seconds

import babysit
from babysit.errors import CheckpointError
from babysit.history import History
from babysit.train import loop

# the default save policy: a save costs at most 1 % of training (rare here)
SETTINGS = {**RUN, "options": {"report": False}}
EPOCHS = 3


@pytest.fixture(scope="module")
def straight(digits):
    """The uninterrupted run, its model and History."""
    model = _model(digits)
    return model, babysit.fit(model, digits, epochs=EPOCHS, **SETTINGS)


def _signal_in_step(monkeypatch, at: int, signals: list[int]) -> list[int]:
    """Send ``signals`` from inside step ``at`` (1-based, counted over the whole run), before its update runs;
    return the list of steps begun."""
    begun: list[int] = []
    real_step = loop.Step._plain  # the update fit's loop calls for these settings

    def step_with_signal(step, X, y):
        begun.append(1)
        if len(begun) == at:
            for sig in signals:
                os.kill(os.getpid(), sig)  # handled right here, between two bytecodes of this step
        return real_step(step, X, y)

    monkeypatch.setattr(loop.Step, "_plain", step_with_signal)
    return begun


def _assert_resumes_to_the_straight_run(digits, folder, straight) -> None:
    model, expected = straight
    resumed = _model(digits)
    history = babysit.fit(resumed, digits, epochs=EPOCHS, run_dir=folder, resume=True, **SETTINGS)
    assert history.status == "completed"
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert _strip_seconds(history.epochs) == _strip_seconds(expected.epochs)
    assert history.steps == expected.steps


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_inside_an_epoch_saves_after_the_step_in_progress(digits, tmp_path, monkeypatch, sig,
                                                                       straight, plain_sigint, caplog) -> None:
    per_epoch = straight[1].meta["steps_per_epoch"]
    at = per_epoch + 5  # inside epoch 2, which the default save policy would not have saved
    begun = _signal_in_step(monkeypatch, at, [sig])
    with pytest.raises(KeyboardInterrupt):
        babysit.fit(_model(digits), digits, epochs=EPOCHS, run_dir=tmp_path, **SETTINGS)
    # the step the signal landed in finished, and no other began
    assert len(begun) == at
    assert "stopping after the step in progress" in caplog.text
    payload = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    saved = History.load(tmp_path)
    assert payload["num_steps"] == saved.num_steps == at and payload["epoch"] == len(saved.epochs) == 1
    assert saved.status == "interrupted"
    monkeypatch.undo()
    _assert_resumes_to_the_straight_run(digits, tmp_path, straight)


def test_an_interrupt_in_an_epochs_last_step_saves_once_the_epoch_closed(digits, tmp_path, monkeypatch, straight,
                                                                       plain_sigint) -> None:
    per_epoch = straight[1].meta["steps_per_epoch"]
    begun = _signal_in_step(monkeypatch, 2 * per_epoch, [signal.SIGINT])
    with pytest.raises(KeyboardInterrupt):
        babysit.fit(_model(digits), digits, epochs=EPOCHS, run_dir=tmp_path, **SETTINGS)
    assert len(begun) == 2 * per_epoch
    saved = History.load(tmp_path)
    assert saved.num_steps == 2 * per_epoch and len(saved.epochs) == 2  # epoch 2 closed (validated) first
    monkeypatch.undo()
    _assert_resumes_to_the_straight_run(digits, tmp_path, straight)


class _SignalsAtEpochStart(babysit.Callback):
    def on_epoch_start(self, run) -> None:
        if run.epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)


def test_an_interrupt_as_an_epoch_starts_stops_before_its_first_step(digits, tmp_path, straight) -> None:
    with pytest.raises(KeyboardInterrupt):
        babysit.fit(_model(digits), digits, epochs=EPOCHS, run_dir=tmp_path, callbacks=[_SignalsAtEpochStart()],
                    **SETTINGS)
    per_epoch = straight[1].meta["steps_per_epoch"]
    saved = History.load(tmp_path)
    assert saved.num_steps == per_epoch and len(saved.epochs) == 1
    _assert_resumes_to_the_straight_run(digits, tmp_path, straight)


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_save(digits, tmp_path, monkeypatch, straight,
                                                               plain_sigint) -> None:
    per_epoch = straight[1].meta["steps_per_epoch"]
    at = 2 * per_epoch - 3
    _signal_in_step(monkeypatch, at, [signal.SIGINT, signal.SIGINT])
    every_epoch = {**SETTINGS, "options": {"report": False, "checkpoint_every_epochs": 1}}
    with pytest.raises(KeyboardInterrupt):
        babysit.fit(_model(digits), digits, epochs=EPOCHS, run_dir=tmp_path, **every_epoch)
    # stopped inside the step, where nothing may be saved: the folder keeps the last save before it, epoch 1's
    saved = History.load(tmp_path)
    payload = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert saved.status == "interrupted" and payload["num_steps"] == saved.num_steps == per_epoch
    monkeypatch.undo()
    _assert_resumes_to_the_straight_run(digits, tmp_path, straight)


class _RaisesCtrlC(babysit.Callback):
    """Ctrl-C raised where fit cannot tell that the step was done (as a user's own code might)."""

    def on_step_end(self, run, loss) -> None:
        if run.step == 5:  # before the run's first save
            raise KeyboardInterrupt


def test_a_run_interrupted_before_its_first_save_resumes_from_its_beginning(digits, tmp_path, straight,
                                                                          caplog) -> None:
    with pytest.raises(KeyboardInterrupt):
        babysit.fit(_model(digits), digits, epochs=EPOCHS, run_dir=tmp_path, callbacks=[_RaisesCtrlC()], **SETTINGS)
    assert "starts it again from the beginning" in caplog.text
    _assert_resumes_to_the_straight_run(digits, tmp_path, straight)
    assert "holds no checkpoint" in caplog.text


class _FailsAtEpochEnd(babysit.Callback):
    def on_epoch_end(self, run, record) -> None:
        if record["epoch"] == 2:
            raise RuntimeError("a bug in a callback")


def test_a_run_that_failed_before_its_first_save_is_not_replaced_by_a_resume(digits, tmp_path) -> None:
    no_saves = {**SETTINGS, "options": {"report": False, "checkpoint_every_epochs": 100}}
    with pytest.raises(RuntimeError):
        babysit.fit(_model(digits), digits, epochs=EPOCHS, run_dir=tmp_path, callbacks=[_FailsAtEpochEnd()],
                    **no_saves)
    # its record (two epochs and the error) stays; resuming says why it cannot continue and what to do instead
    with pytest.raises(CheckpointError, match=r"failed, 2 epochs\) with no checkpoint.*another run_dir.*--overwrite"):
        babysit.fit(_model(digits), digits, epochs=EPOCHS, run_dir=tmp_path, resume=True, **no_saves)
    saved = History.load(tmp_path)
    assert saved.status == "failed" and len(saved.epochs) == 2


LOADER_RUN = """
import sys, time, torch, babysit
from torch.utils.data import DataLoader, Dataset

class Slow(Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.X = torch.randn(640, 20, generator=g)
        self.y = (self.X[:, 0] > 0).long()
    def __len__(self):
        return len(self.X)
    def __getitem__(self, i):
        time.sleep(0.001)
        return self.X[i], self.y[i]

class Started(babysit.Callback):
    def on_step_end(self, run, loss):
        if run.step == 3:
            print("started", flush=True)

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
loader = DataLoader(Slow(), batch_size=32, shuffle=True, num_workers=2)
resume = sys.argv[2] == "resume"
try:
    h = babysit.fit(model, loader, epochs=4, run_dir=sys.argv[1], resume=resume,
                    callbacks=[] if resume else [Started()], options={"report": False, "progress": False})
    print("status", h.status, len(h.epochs))
except KeyboardInterrupt:
    print("interrupted")
"""


def test_ctrl_c_in_a_terminal_with_dataloader_workers_stops_cleanly(tmp_path) -> None:
    # a terminal's Ctrl-C goes to the whole process group: the DataLoader's workers get it too
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(LOADER_RUN)
    folder = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script), str(folder), "start"], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = iter(proc.stdout.readline, "")
        assert "started" in (line.strip() for line in lines)  # after fit's warnings (no validation data)
        os.killpg(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=120)[0]
    finally:
        proc.kill()
    # interrupted (not failed), saved where it stopped, and said once (not by every worker)
    assert output.strip().endswith("interrupted"), output
    assert output.count("stopping after the step in progress") == 1, output
    saved = History.load(folder)
    payload = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    assert saved.status == "interrupted" and payload["num_steps"] == saved.num_steps >= 3
    resumed = subprocess.run([sys.executable, str(script), str(folder), "resume"], capture_output=True, text=True,
                             timeout=120)
    assert resumed.stdout.strip().endswith("status completed 4"), resumed.stdout + resumed.stderr


def test_an_error_raised_while_an_interrupt_is_held_ends_the_run_interrupted(digits, tmp_path, monkeypatch,
                                                                            plain_sigint) -> None:
    real_step = loop.Step._plain

    def step_then_loader_error(step, X, y):
        out = real_step(step, X, y)
        if step.opt.state and not getattr(step, "_signalled", False):
            step._signalled = True
            os.kill(os.getpid(), signal.SIGINT)  # held for the step in progress
            raise RuntimeError("DataLoader worker (pid 4242) exited unexpectedly")  # what a stopped worker causes
        return out

    monkeypatch.setattr(loop.Step, "_plain", step_then_loader_error)
    with pytest.raises(KeyboardInterrupt) as caught:
        babysit.fit(_model(digits), digits, epochs=EPOCHS, run_dir=tmp_path, **SETTINGS)
    assert isinstance(caught.value.__context__, RuntimeError)
    assert History.load(tmp_path).status == "interrupted"


class _SignalsThenStops(babysit.Callback):
    def on_epoch_end(self, run, record) -> None:
        if record["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # held for the loop, which never gets to raise it
            raise babysit.StopTraining("enough")


def test_an_interrupt_held_when_the_run_stops_is_raised_after_it_closed(digits, tmp_path, plain_sigint) -> None:
    with pytest.raises(KeyboardInterrupt):
        babysit.fit(_model(digits), digits, epochs=EPOCHS, run_dir=tmp_path, callbacks=[_SignalsThenStops()],
                    **SETTINGS)
    # the run closed as it ended (stopped, saved), and the Ctrl-C still reached the caller
    saved = History.load(tmp_path)
    assert saved.status == "stopped" and len(saved.epochs) == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
