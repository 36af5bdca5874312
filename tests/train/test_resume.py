"""Resuming a run reproduces the uninterrupted run exactly on the CPU; Ctrl-C and SIGTERM save cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _resume_setup import SETTINGS
from _resume_setup import resumable_model as _model
from _resume_setup import strip_seconds as _strip_seconds

import babysit
from babysit import models
from babysit.callbacks import EMA
from babysit.errors import CheckpointError, ConfigError
from babysit.history import History
from babysit.train import KeepFinalState

EVERY_EPOCH = {"checkpoint_every_epochs": 1}  # a save at each epoch's end, however short the epoch


def test_resume_reproduces_uninterrupted_run(digits, tmp_path) -> None:
    straight = _model(digits)
    h_straight = babysit.fit(straight, digits, epochs=5, run_dir=tmp_path / "a", **SETTINGS)

    first = _model(digits)
    babysit.fit(first, digits, epochs=2, run_dir=tmp_path / "b", **SETTINGS)
    resumed = _model(digits)  # a fresh process would rebuild the model from the config
    h_resumed = babysit.fit(resumed, digits, epochs=5, run_dir=tmp_path / "b", resume=True, **SETTINGS)

    # weights, batch-norm statistics, history and per-step losses are identical to the last bit
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert _strip_seconds(h_resumed.epochs) == _strip_seconds(h_straight.epochs)
    assert h_resumed.steps == h_straight.steps
    assert History.load(tmp_path / "b").status == "completed"
    # the run was started for 2 epochs and continued to 5: its record (and the report's "5 of 5") says 5
    assert h_resumed.meta["epochs"] == History.load(tmp_path / "b").meta["epochs"] == 5


def test_resume_from_a_history_in_memory_reproduces_uninterrupted_run(digits) -> None:
    # what a search does with a promising short trial: keep its state in memory, then train it on
    straight = _model(digits)
    h_straight = babysit.fit(straight, digits, epochs=5, callbacks=[EMA(0.9)], **SETTINGS)

    short = babysit.fit(_model(digits), digits, epochs=2, callbacks=[EMA(0.9), KeepFinalState()],
                         **SETTINGS)
    assert short.checkpoint is not None and short.checkpoint["epoch"] == 2
    resumed = _model(digits)
    h_resumed = babysit.fit(resumed, digits, epochs=5, callbacks=[EMA(0.9)], resume=short, **SETTINGS)

    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert _strip_seconds(h_resumed.epochs) == _strip_seconds(h_straight.epochs)
    assert h_resumed.steps == h_straight.steps
    assert h_resumed.meta["epochs"] == 5 and h_resumed.status == "completed"
    # the kept state is a copy: training on did not change it, so it can be continued twice
    assert len(short.epochs) == 2 and short.checkpoint["epoch"] == 2
    again = _model(digits)
    babysit.fit(again, digits, epochs=5, callbacks=[EMA(0.9)], resume=short, **SETTINGS)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), resumed.state_dict().values()))


def test_resume_from_a_history_without_checkpoint_says_what_to_do(digits) -> None:
    plain = babysit.fit(_model(digits), digits, epochs=1, **SETTINGS)
    assert plain.checkpoint is None  # kept only when asked: it costs a copy of the weights
    with pytest.raises(ConfigError, match="KeepFinalState"):
        babysit.fit(_model(digits), digits, epochs=2, resume=plain, **SETTINGS)


def test_resume_with_another_model_is_refused(digits, tmp_path) -> None:
    babysit.fit(_model(digits), digits, epochs=1, run_dir=tmp_path, **SETTINGS)
    other = models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[16], seed=0)
    with pytest.raises(CheckpointError, match="different model"):
        babysit.fit(other, digits, epochs=2, run_dir=tmp_path, resume=True, **SETTINGS)


CONFIG = """
name = "long"
runs_dir = "{runs}"
[data]
source = "digits"
[model]
kind = "mlp"
hidden = [256, 256]
[train]
epochs = 400
batch_size = 16
[optimizer]
name = "momentum"
lr = 0.01
"""


# Start the CLI as a terminal would: Ctrl-C and SIGTERM with their default disposition, unblocked. A test run
# started in the background by a non-interactive shell (`make test &`) ignores SIGINT, that survives exec,
# and the child would never see the Ctrl-C this test sends: seen as this test timing out.
PLAIN_SIGNALS = (
    "import os, signal, sys\n"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})\n"
    "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def _start_training(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    config = tmp_path / "long.toml"
    config.write_text(CONFIG.format(runs=tmp_path / "runs"))
    cli = Path(sys.executable).with_name("babysit")
    proc = subprocess.Popen([sys.executable, "-c", PLAIN_SIGNALS, str(cli), "train", str(config), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_dir = tmp_path / "runs" / "long"
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints" / "last.pt").exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint after 120 s"
        time.sleep(0.05)
    return proc, run_dir


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_saves_and_resume_continues(tmp_path, sig) -> None:
    proc, run_dir = _start_training(tmp_path)
    time.sleep(0.3)
    proc.send_signal(sig)
    try:
        output, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"training went on for 60 s after {signal.Signals(sig).name}:\n{proc.communicate()[0][-3000:]}")
    # the process exits with 130, says how to continue, and leaves a resumable run behind
    assert proc.returncode == 130, output
    assert "--resume" in output
    saved = History.load(run_dir)
    assert saved.status == "interrupted"
    done = len(saved.epochs)
    payload = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert payload["epoch"] == done >= 1

    cli = Path(sys.executable).with_name("babysit")
    config = tmp_path / "long.toml"
    result = subprocess.run([str(cli), "train", str(config), "--resume", "--no-progress",
                             "--set", f"train.epochs={done + 1}"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "200"})
    # resuming finishes the remaining epoch in the same folder
    assert result.returncode == 0, result.stdout + result.stderr
    final = History.load(run_dir)
    assert final.status == "completed" and len(final.epochs) == done + 1


@pytest.mark.parametrize("where", ["pending", "_commit"])  # taking the save, and writing it (background)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_while_saving_keeps_checkpoint_and_history_together(digits, tmp_path, monkeypatch, sig,
                                                                      where: str, plain_sigint) -> None:
    # the signal lands while epoch 1 is being committed (run log, then checkpoint): the race CI once hit
    from babysit.train import run_folder

    real = getattr(run_folder, where)
    sent = []

    def then_signal(*args, **kwargs):
        if not sent:
            sent.append(sig)
            os.kill(os.getpid(), sig)  # from the writer thread too, the signal is handled by the main thread
        return real(*args, **kwargs)

    monkeypatch.setattr(run_folder, where, then_signal)
    with pytest.raises(KeyboardInterrupt):
        babysit.fit(_model(digits), digits, epochs=3, run_dir=tmp_path, options=EVERY_EPOCH, **SETTINGS)
    assert sent
    saved = History.load(tmp_path)
    payload = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert saved.status == "interrupted"
    assert payload["epoch"] == len(saved.epochs) == 1
    assert payload["num_steps"] == len(saved.steps["step"])


class _CleanUpCutShort(babysit.Callback):
    """At epoch 2's end, a clean-up that Ctrl-C cuts short fails on its way out: what Optuna's journal lock does
    when the interrupt lands while it is being released (it removes a file the interrupted rename never made)."""

    def on_epoch_end(self, run, record) -> None:
        if record["epoch"] == 2:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise FileNotFoundError("study.journal.lock-0f3c.rename")  # noqa: B904 (as the lock does)


def test_an_error_raised_while_ctrl_c_is_handled_is_that_interrupt(digits, tmp_path) -> None:
    with pytest.raises(KeyboardInterrupt):
        babysit.fit(_model(digits), digits, epochs=4, run_dir=tmp_path, callbacks=[_CleanUpCutShort()],
                    options=EVERY_EPOCH, **SETTINGS)
    # interrupted, not failed: the history ends at the last checkpoint and the run resumes to its end
    saved = History.load(tmp_path)
    assert saved.status == "interrupted" and saved.stop_reason == "interrupted by Ctrl-C or SIGTERM"
    assert len(saved.epochs) == 1
    resumed = babysit.fit(_model(digits), digits, epochs=4, run_dir=tmp_path, resume=True, options=EVERY_EPOCH,
                          **SETTINGS)
    assert resumed.status == "completed" and len(resumed.epochs) == 4


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed one, on purpose
def test_a_ctrl_c_swallowed_by_a_finalizer_still_stops_the_run(digits, tmp_path, monkeypatch, plain_sigint) -> None:
    # CPython runs a signal's handler between any two bytecodes; inside a __del__ the KeyboardInterrupt it
    # raises is printed as "Exception ignored" and lost. fit remembers the signal and stops at the next step.
    from babysit.train import loop

    class SignalsWhenCollected:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs right here, inside the finalizer

    steps = []
    real_step = loop.Step._plain  # the update fit's loop calls for these settings

    def step_then_signal(step, X, y):
        steps.append(1)
        if len(steps) == 30:  # in epoch 2
            SignalsWhenCollected()  # collected at once: its __del__ sends Ctrl-C, whose exception is swallowed
        return real_step(step, X, y)

    monkeypatch.setattr(loop.Step, "_plain", step_then_signal)
    with pytest.raises(KeyboardInterrupt):
        babysit.fit(_model(digits), digits, epochs=4, run_dir=tmp_path, options=EVERY_EPOCH, **SETTINGS)
    assert len(steps) == 30  # stopped before the next step
    saved = History.load(tmp_path)
    assert saved.status == "interrupted" and len(saved.epochs) == 1
    # the handler is put back: a later Ctrl-C is the plain KeyboardInterrupt again
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
