"""fit() on the real digits data: learning, the records it keeps, divergence, inputs it accepts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import babysit
from babysit import models
from babysit.callbacks import EMA
from babysit.history import History
from babysit.reporting import TensorBoardLogger


def _mlp(bundle, **kw):
    return models.build("mlp", input_shape=bundle.input_shape, num_classes=bundle.num_classes, seed=0, **kw)


def test_fit_learns_digits(digits) -> None:
    h = babysit.fit(_mlp(digits, hidden=[64]), digits, optimizer="nesterov", lr=0.05, epochs=5)
    # five epochs of a small MLP on standardized digits are far above chance (10%)
    assert h.status == "completed"
    assert h.best_val_acc > 0.9
    assert h.epochs[-1]["train_loss"] < h.epochs[0]["train_loss"]


def test_fit_records_every_epoch_and_step(digits) -> None:
    h = babysit.fit(_mlp(digits), digits, lr=0.05, reg=1e-3, epochs=3, batch_size=100)
    steps_per_epoch = math.ceil(len(digits.y_train) / 100)
    # the keys the README promises, one record per epoch, with the data and regularization losses apart
    for i, e in enumerate(h.epochs, start=1):
        assert e["epoch"] == i
        assert {"train_loss", "val_loss", "train_acc", "val_acc", "data_loss", "reg_loss", "lr"} <= e.keys()
        assert e["reg_loss"] > 0
        assert e["train_loss"] == pytest.approx(e["data_loss"] + e["reg_loss"])
    assert len(h.steps["loss"]) == 3 * steps_per_epoch
    # step epochs are fractional and end on whole epochs
    assert h.steps["epoch"][steps_per_epoch - 1] == pytest.approx(1.0)
    assert h.steps["epoch"][0] == pytest.approx(1 / steps_per_epoch)


def test_reg_zero_records_zero_reg_loss(digits) -> None:
    h = babysit.fit(_mlp(digits), digits, epochs=1)
    # without L2 the regularization loss is exactly zero and the train loss is the data loss
    assert h.epochs[0]["reg_loss"] == 0.0
    assert h.epochs[0]["train_loss"] == h.epochs[0]["data_loss"]


def test_fit_reg_loss_matches_half_l2_of_weights(digits) -> None:
    model = _mlp(digits, hidden=[32])
    h = babysit.fit(model, digits, lr=1e-9, reg=0.1, epochs=1)  # lr ~0: weights barely move
    expected = 0.5 * 0.1 * (model.fc1.weight.pow(2).sum() + model.fc2.weight.pow(2).sum()).item()
    # the L2 term is 0.5 * reg * sum(W^2) over weights only, not biases
    assert h.epochs[0]["reg_loss"] == pytest.approx(expected, rel=1e-4)


def test_schedule_changes_lr_per_epoch(digits) -> None:
    h = babysit.fit(_mlp(digits), digits, lr=0.1, epochs=4, schedule={"name": "step", "every": 2, "factor": 0.5})
    # step decay: halved every 2 epochs
    assert h.per_epoch("lr") == pytest.approx([0.1, 0.1, 0.05, 0.05])


def test_diverging_run_stops_cleanly_and_keeps_last_good_checkpoint(digits, tmp_path) -> None:
    model = _mlp(digits, hidden=[64])
    h = babysit.fit(model, digits, optimizer="sgd", lr=0.05, epochs=2, run_dir=tmp_path)
    assert h.status == "completed"
    # the rate jumps to 1e6 at the start of epoch 3 (as a bad schedule would): epochs 1-2 are finite and saved
    h2 = babysit.fit(model, digits, optimizer="sgd", lr=0.05, epochs=6, run_dir=tmp_path / "b",
                     callbacks=[_RateJump(epoch=3, lr=1e6)], options={"checkpoint_every_epochs": 1})
    # a huge learning rate makes the loss non-finite: the run stops, says where, and raises nothing
    assert h2.status == "diverged"
    assert "step" in h2.stop_reason and "learning rate" in h2.stop_reason
    assert not math.isfinite(h2.steps["loss"][-1])
    assert all(math.isfinite(x) for x in h2.steps["loss"][:-1])
    assert len(h2.epochs) < 6
    saved = History.load(tmp_path / "b")
    assert saved.status == "diverged"
    # the checkpoint on disk is the last good epoch's: epoch 2, with finite weights
    payload = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=True)
    assert payload["epoch"] == 2 and [e["epoch"] for e in saved.epochs][:2] == [1, 2]
    assert all(torch.isfinite(t).all() for t in payload["model"].values() if t.is_floating_point())


class _RateJump(babysit.Callback):
    def __init__(self, epoch: int, lr: float) -> None:
        self.epoch, self.lr = epoch, lr

    def on_epoch_start(self, run) -> None:
        if run.epoch == self.epoch:
            for group in run.optimizer.param_groups:
                group["lr"] = self.lr


def test_fit_accepts_arrays_dataset_and_loader(digits) -> None:
    X, y = digits.X_train.numpy(), digits.y_train.numpy()
    val = (digits.X_val, digits.y_val)
    forms = [
        (X, y),
        TensorDataset(digits.X_train, digits.y_train),
        DataLoader(TensorDataset(digits.X_train, digits.y_train), batch_size=64, shuffle=True),
    ]
    for train in forms:
        h = babysit.fit(_mlp(digits, hidden=[32]), train, val, lr=0.05, epochs=2)
        # every form trains and is validated
        assert h.status == "completed" and h.best_val_acc > 0.5, type(train).__name__


def test_fit_svm_loss_and_adam(digits) -> None:
    h = babysit.fit(_mlp(digits, hidden=[64]), digits, loss_fn="svm", optimizer="adam", lr=1e-2, epochs=3)
    # the multiclass hinge loss also trains the net
    assert h.best_val_acc > 0.85


def test_fit_lbfgs_full_batch(digits) -> None:
    model = models.build("linear", input_shape=digits.input_shape, num_classes=10, seed=0)
    h = babysit.fit(model, digits, optimizer="lbfgs", lr=1, epochs=3, batch_size=len(digits.y_train),
                    reg=1e-3)
    # L-BFGS with full batches (U4) fits the linear softmax classifier
    assert h.status == "completed" and h.best_val_acc > 0.85


def test_fit_bf16_autocast_runs(digits) -> None:
    h = babysit.fit(_mlp(digits, hidden=[64]), digits, optimizer="nesterov", lr=0.05, epochs=3,
                    options={"precision": "bf16"})
    # bf16 autocast trains too (a little less precisely)
    assert h.status == "completed" and h.best_val_acc > 0.8


def test_momentum_annealing_raises_momentum(digits) -> None:
    h = babysit.fit(_mlp(digits), digits, optimizer="momentum", lr=0.01, epochs=4,
                    callbacks=[babysit.optim.AnnealMomentum(start=0.5, end=0.99, epochs=3)])
    momenta = h.per_epoch("momentum")
    # momentum rises from 0.5 to 0.99 over the epochs and stays there
    assert momenta[0] == pytest.approx(0.5) and momenta[-1] == pytest.approx(0.99)
    assert all(a <= b for a, b in zip(momenta, momenta[1:]))


def test_history_roundtrip(digits, tmp_path) -> None:
    h = babysit.fit(_mlp(digits), digits, epochs=2, run_dir=tmp_path)
    loaded = History.load(tmp_path)
    # what is saved is what was recorded
    assert loaded.epochs == h.epochs
    assert loaded.steps == h.steps
    assert loaded.status == "completed" and loaded.best_val_acc == h.best_val_acc
    assert (tmp_path / "checkpoints" / "best.pt").is_file()


def test_best_checkpoint_holds_best_epoch(digits, tmp_path) -> None:
    model = _mlp(digits, hidden=[32])
    h = babysit.fit(model, digits, lr=0.05, epochs=4, run_dir=tmp_path)
    payload = babysit.train.load_weights(tmp_path, _mlp(digits, hidden=[32]), "best")
    # best.pt is the epoch with the highest validation accuracy
    assert payload["epoch"] == h.best_epoch["epoch"]


def test_numpy_float_labels_that_are_whole_numbers_are_accepted(digits) -> None:
    y = digits.y_train.numpy().astype(np.float64)
    h = babysit.fit(_mlp(digits, hidden=[16]), (digits.X_train, y), epochs=1)
    assert h.status == "completed"


def test_plateau_halves_when_validation_stalls_also_with_per_batch(digits) -> None:
    for per_batch in (False, True):
        h = babysit.fit(_mlp(digits, hidden=[16]), digits, lr=1e-6, epochs=5,
                        schedule={"name": "plateau", "factor": 0.5, "patience": 0, "per_batch": per_batch})
        lrs = h.per_epoch("lr")
        # a learning rate this small barely changes validation accuracy, so the plateau rule halves the rate
        assert lrs[-1] < lrs[0], (per_batch, lrs)


def test_per_batch_schedule_decays_within_epochs(digits) -> None:
    h = babysit.fit(_mlp(digits, hidden=[16]), digits, lr=0.1, epochs=2,
                    schedule={"name": "exponential", "k": 1.0, "per_batch": True})
    lrs = h.steps["lr"]
    # stepped every batch, t counts fractional epochs: lr0 * exp(-t) just before each step
    assert lrs[0] == pytest.approx(0.1)
    spe = len(lrs) // 2
    assert lrs[spe] == pytest.approx(0.1 * math.exp(-1.0), rel=1e-6)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_callback_can_stop_the_run(digits) -> None:
    seen = []

    def prune_after_two(history: History) -> bool:
        seen.append(history.epochs[-1]["epoch"])
        return len(history.epochs) >= 2

    h = babysit.fit(_mlp(digits, hidden=[16]), digits, epochs=5, callbacks=[prune_after_two])
    # the callback sees every epoch and stops the run after the second
    assert seen == [1, 2]
    assert h.status == "stopped" and "prune_after_two" in h.stop_reason
    assert len(h.epochs) == 2


def test_ema_of_weights_is_evaluated_and_resumed(digits, tmp_path) -> None:
    kw = dict(optimizer="nesterov", lr=0.05, seed=0)
    h = babysit.fit(_mlp(digits, hidden=[32]), digits, epochs=4, run_dir=tmp_path / "a", callbacks=[EMA(0.9)], **kw)
    # the moving average of the weights gets its own validation numbers (lecture E1)
    assert all(0.5 < e["val_acc_ema"] <= 1.0 for e in h.epochs)
    assert h.epochs[-1]["val_acc_ema"] != h.epochs[-1]["val_loss_ema"]
    babysit.fit(_mlp(digits, hidden=[32]), digits, epochs=2, run_dir=tmp_path / "b", callbacks=[EMA(0.9)], **kw)
    h2 = babysit.fit(_mlp(digits, hidden=[32]), digits, epochs=4, run_dir=tmp_path / "b", resume=True,
                     callbacks=[EMA(0.9)], **kw)
    # the average is checkpointed, so a resumed run averages exactly as the uninterrupted one
    assert [e["val_loss_ema"] for e in h2.epochs] == [e["val_loss_ema"] for e in h.epochs]


def test_fit_tensorboard_writes_event_files(digits, tmp_path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    babysit.fit(_mlp(digits, hidden=[16]), digits, epochs=2, run_dir=tmp_path,
                callbacks=[TensorBoardLogger()])
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    # one scalar point per epoch, readable by TensorBoard itself
    tags = events.Tags()["scalars"]
    assert tags, events.Tags()
    assert len(events.Scalars(tags[0])) == 2
