"""The callback core of fit: hook order, one close per run whatever ends it, stopping, state that resumes."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

import babysit
from babysit import Callback, StopTraining, models
from babysit.callbacks import EarlyStopping
from babysit.errors import ConfigError
from babysit.history import History


def _mlp(digits, hidden=(32,)):
    return models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=list(hidden), seed=0)


class Recorder(Callback):
    """Writes down every hook call (steps counted, not listed)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.statuses: list[str] = []
        self.exceptions: list[type[BaseException]] = []

    def on_fit_start(self, run) -> None:
        self.calls.append("fit_start")

    def on_epoch_start(self, run) -> None:
        self.calls.append(f"epoch_start {run.epoch}")

    def on_step_end(self, run, loss) -> None:
        if not self.calls[-1].startswith("steps"):
            self.calls.append("steps 0")
        self.calls[-1] = f"steps {int(self.calls[-1].split()[1]) + 1}"

    def on_validation_end(self, run, record) -> None:
        self.calls.append(f"validation_end {record['epoch']} {record['val_acc'] is not None}")

    def on_epoch_end(self, run, record) -> None:
        self.calls.append(f"epoch_end {record['epoch']} {run.history.epochs[-1] is record}")

    def on_exception(self, run, exc) -> None:
        self.exceptions.append(type(exc))
        self.calls.append("exception")

    def on_fit_end(self, run, status) -> None:
        self.statuses.append(status)
        self.calls.append(f"fit_end {status}")


def test_hooks_are_called_in_the_documented_order(digits) -> None:
    rec = Recorder()
    h = babysit.fit(_mlp(digits), digits, lr=0.05, epochs=2, batch_size=256, callbacks=[rec])
    steps = h.meta["steps_per_epoch"]
    # start once; per epoch: start, every step, validation, end (the record already in the History); end once
    assert rec.calls == [
        "fit_start",
        "epoch_start 1", f"steps {steps}", "validation_end 1 True", "epoch_end 1 True",
        "epoch_start 2", f"steps {steps}", "validation_end 2 True", "epoch_end 2 True",
        "fit_end completed",
    ]


def test_without_validation_data_there_is_no_validation_hook(digits) -> None:
    rec = Recorder()
    babysit.fit(_mlp(digits), (digits.X_train, digits.y_train), epochs=1, batch_size=512, callbacks=[rec])
    assert not any(c.startswith("validation_end") for c in rec.calls)


def test_order_decides_who_goes_first(digits) -> None:
    seen: list[str] = []

    class Named(Callback):
        def __init__(self, name: str, order: int) -> None:
            self.name, self.order = name, order

        def on_epoch_end(self, run, record) -> None:
            seen.append(self.name)

    babysit.fit(_mlp(digits), digits, epochs=1, callbacks=[Named("late", 5), Named("early", -5), Named("mid", 0)])
    # lower order first; the monitor (order -100) has read out its statistics before any user callback runs
    assert seen == ["early", "mid", "late"]


class Fails(Callback):
    def on_epoch_end(self, run, record) -> None:
        if record["epoch"] == 2:
            raise RuntimeError("broken callback")


class SendsCtrlC(Callback):
    def on_step_end(self, run, loss) -> None:
        if run.step == 20:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("case", ["completed", "diverged", "interrupted", "failed", "stopped"])
def test_on_fit_end_is_called_exactly_once_whatever_ends_the_run(digits, tmp_path: Path, case: str,
                                                                  plain_sigint) -> None:
    rec = Recorder()
    extra: list[Callback] = {"interrupted": [SendsCtrlC()], "failed": [Fails()],
                             "stopped": [EarlyStopping("train_loss", patience=1, min_delta=100.0)]}.get(case, [])
    lr = 1e6 if case == "diverged" else 0.05
    raises = {"interrupted": KeyboardInterrupt, "failed": RuntimeError}.get(case)
    if raises:
        with pytest.raises(raises):
            babysit.fit(_mlp(digits), digits, lr=lr, epochs=4, run_dir=tmp_path, callbacks=[rec, *extra])
    else:
        babysit.fit(_mlp(digits), digits, lr=lr, epochs=4, run_dir=tmp_path, callbacks=[rec, *extra])
    # one close, with the status that says how the run ended; on_exception only when something raised
    assert rec.statuses == [case]
    assert rec.exceptions == ([raises] if raises else [])
    assert History.load(tmp_path).status == case


def test_stop_training_from_a_step_closes_the_epoch_in_progress(digits) -> None:
    class StopAtStep(Callback):
        def on_step_end(self, run, loss) -> None:
            if run.step == 5:
                raise StopTraining("enough after five steps")

    h = babysit.fit(_mlp(digits), digits, epochs=3, callbacks=[StopAtStep()])
    # the partial epoch is recorded with the steps it took, validated, and the run is stopped with the reason
    assert h.status == "stopped" and h.stop_reason == "enough after five steps"
    assert len(h.epochs) == 1 and h.epochs[0]["steps"] == 5 and h.epochs[0]["val_acc"] is not None
    assert len(h.steps["step"]) == 5


def test_a_stop_at_epoch_end_still_lets_the_run_folder_save_that_epoch(digits, tmp_path: Path) -> None:
    h = babysit.fit(_mlp(digits), digits, lr=0.05, epochs=10, run_dir=tmp_path,
                    callbacks=[EarlyStopping("train_loss", patience=2, min_delta=100.0)])
    # epoch 1 sets the best; 2 and 3 do not improve by 100: stopped after epoch 3, and epoch 3 is checkpointed
    assert h.status == "stopped" and len(h.epochs) == 3
    assert "did not improve in the last 2 epochs" in h.stop_reason
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 3


def test_early_stopping_names_the_metrics_that_exist(digits) -> None:
    with pytest.raises(ConfigError, match=r"'val_accuracy'.*they have: .*val_acc"):
        babysit.fit(_mlp(digits), digits, epochs=2, callbacks=[EarlyStopping("val_accuracy")])


class GradNormLogger(Callback):
    """A user's callback: the total gradient norm of every step, kept on the device, read once per epoch."""

    def __init__(self) -> None:
        self.norms: list[torch.Tensor] = []
        self.per_epoch: list[float] = []

    def on_step_end(self, run, loss) -> None:
        grads = [p.grad for p in run.model.parameters() if p.grad is not None]
        self.norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))

    def on_epoch_end(self, run, record) -> None:
        record["grad_norm"] = float(torch.stack(self.norms).mean())  # one device read per epoch
        self.per_epoch.append(record["grad_norm"])
        self.norms.clear()


def test_a_user_written_callback_works_with_no_change_to_babysit(digits) -> None:
    logger = GradNormLogger()
    h = babysit.fit(_mlp(digits), digits, lr=0.05, epochs=3, callbacks=[logger])
    # its numbers land in the epoch records (and so in history.json and the report's tables)
    assert [e["grad_norm"] for e in h.epochs] == logger.per_epoch
    assert all(0 < g < 100 for g in logger.per_epoch)


class SmoothedLoss(Callback):
    """A stateful callback: an exponential moving average of the step losses, carried across epochs."""

    def __init__(self) -> None:
        self.value: torch.Tensor | None = None
        self.seen = 0

    def on_step_end(self, run, loss) -> None:
        self.value = loss.clone() if self.value is None else 0.9 * self.value + 0.1 * loss
        self.seen += 1

    def on_epoch_end(self, run, record) -> None:
        record["smoothed_loss"], record["steps_seen"] = float(self.value), self.seen

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value, "seen": self.seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value, self.seen = state["value"], state["seen"]


def _strip_seconds(epochs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in epochs]


def test_a_stateful_callback_resumes_bit_identically(digits, tmp_path: Path) -> None:
    settings = dict(optimizer="nesterov", lr=0.05, schedule={"name": "step", "every": 2, "factor": 0.5}, seed=3)

    def callbacks() -> list[Callback]:
        return [SmoothedLoss(), EarlyStopping("val_acc", patience=50), babysit.callbacks.EMA(0.9),
                babysit.optim.AnnealMomentum(start=0.5, end=0.95, epochs=4)]

    straight = _mlp(digits)
    h_straight = babysit.fit(straight, digits, epochs=5, run_dir=tmp_path / "a", callbacks=callbacks(), **settings)
    babysit.fit(_mlp(digits), digits, epochs=2, run_dir=tmp_path / "b", callbacks=callbacks(), **settings)
    resumed = _mlp(digits)
    fresh = callbacks()
    h_resumed = babysit.fit(resumed, digits, epochs=5, run_dir=tmp_path / "b", resume=True, callbacks=fresh,
                            **settings)
    # every callback got its state back: the smoothed loss, EMA numbers and momenta equal the uninterrupted run's
    assert _strip_seconds(h_resumed.epochs) == _strip_seconds(h_straight.epochs)
    assert fresh[1].best == max(e["val_acc"] for e in h_straight.epochs)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_callbacks_must_be_callbacks(digits) -> None:
    with pytest.raises(ConfigError, match=r"Subclass babysit\.Callback"):
        babysit.fit(_mlp(digits), digits, epochs=1, callbacks=[42])
