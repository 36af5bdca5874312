"""The same sick runs babysat four ways (``fit``, an own loop with ``Monitor``, Lightning's ``BabysitCallback``,
the Trainer's ``BabysitTrainerCallback``) must give the same diagnosis.

Every path trains the same digits MLP (seed 0, two hidden ReLU layers of 64) with plain SGD, batches of 64
drawn in ``fit``'s shuffling order, 3 epochs, a full validation pass per epoch, and the Monitor sampling
every 3rd step. So the four runs are the same run: the test checks that first (step losses and validation
numbers against a plain loop without any Monitor), then that each path's findings hold the setup's codes.

- ``lr_too_high``: SGD at lr 2.0 (the healthy range here is ~0.05-0.5). Within the first ten steps the
  update/weight ratios reach ~0.4, the loss jumps to ~40 and most ReLUs of a layer die: update_ratio_too_high,
  loss_diverged, dead_units. What the run does after that is chaotic: whether it recovers to ~30 % or sits at
  chance (no_learning too) changes with the float rounding of the CPU's kernels (an AMD and an Intel machine
  differ), so that code is not pinned.
- ``dead_relus``: the first hidden layer's biases start at -10, so its ReLUs never fire: dead_units, and so
  vanishing_activations and no_learning.

Every path must give exactly the codes ``fit`` gives, these among them: the Trainer's keyword forward
(``model(**batch)``, a dict out) and Lightning's ``training_step`` (the module's own forward never runs) are
sampled like ``fit``'s ``model(x)``.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from _integration_setups import DictDataset, FitOrder, ScoresWithLoss, accuracy, ordered_trainer, trainer_args
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import babysit
from babysit import Monitor, data, models

EVERY, EPOCHS, BATCH = 3, 3, 64
SETUPS = {"lr_too_high": {"lr": 2.0, "dead_bias": None}, "dead_relus": {"lr": 0.05, "dead_bias": -10.0}}
EXPECTED = {"lr_too_high": {"update_ratio_too_high", "loss_diverged", "dead_units"},  # at least these
            "dead_relus": {"dead_units", "vanishing_activations", "no_learning"}}


@functools.cache
def _digits():
    return data.load("digits", seed=0)


def _net(setup: str) -> nn.Module:
    bundle = _digits()
    net = models.build("mlp", input_shape=bundle.input_shape, num_classes=10, hidden=[64, 64], seed=0)
    if SETUPS[setup]["dead_bias"] is not None:
        with torch.no_grad():
            net.fc1.bias.fill_(SETUPS[setup]["dead_bias"])
    return net


def _sgd(model: nn.Module, setup: str) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=SETUPS[setup]["lr"])


def _loader() -> DataLoader:
    bundle = _digits()
    return DataLoader(TensorDataset(bundle.X_train, bundle.y_train), batch_size=BATCH,
                      sampler=FitOrder(len(bundle.y_train)))


@torch.no_grad()
def _validate(net: nn.Module) -> tuple[float, float]:
    bundle = _digits()
    net.eval()
    scores = net(bundle.X_val)
    net.train()
    return F.cross_entropy(scores, bundle.y_val).item(), (scores.argmax(1) == bundle.y_val).float().mean().item()


@functools.cache
def _plain_run(setup: str) -> tuple[list[float], list[float], list[float]]:
    """The run without any Monitor: step losses, val losses, val accuracies."""
    net = _net(setup)
    opt, loader, losses, val_losses, val_accs = _sgd(net, setup), _loader(), [], [], []
    for _ in range(EPOCHS):
        for x, y in loader:
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        val_loss, val_acc = _validate(net)
        val_losses.append(val_loss)
        val_accs.append(val_acc)
    return losses, val_losses, val_accs


# --- the four paths: each returns (History, findings as dicts) ------------------------------------------------
def _by_fit(setup: str, tmp_path):
    net = _net(setup)
    history = babysit.fit(net, _digits(), optimizer=_sgd(net, setup), epochs=EPOCHS, batch_size=BATCH,
                          monitor={"every": EVERY}, seed=0, device="cpu")
    return history, history.findings


def _by_own_loop(setup: str, tmp_path):
    net = _net(setup)
    opt = _sgd(net, setup)
    monitor, loader = Monitor(net, opt, every=EVERY), _loader()
    for _ in range(EPOCHS):
        correct, seen = [], 0
        for x, y in loader:
            scores = net(x)
            loss = F.cross_entropy(scores, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            monitor.step(loss)
            correct.append((scores.detach().argmax(1) == y).sum())
            seen += len(y)
        val_loss, val_acc = _validate(net)
        monitor.end_epoch(train_acc=int(torch.stack(correct).sum()) / seen, val_loss=val_loss, val_acc=val_acc)
    findings = monitor.diagnose()
    monitor.close()
    return monitor.history, [f.to_dict() for f in findings]


def _by_lightning(setup: str, tmp_path):
    L = pytest.importorskip("lightning")
    from babysit.integrations.lightning import BabysitCallback

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = _net(setup)

        def training_step(self, batch, batch_idx):
            x, y = batch
            scores = self.net(x)
            self.log("train_acc", (scores.argmax(1) == y).float().mean(), on_step=False, on_epoch=True)
            return F.cross_entropy(scores, y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            scores = self.net(x)
            self.log("val_loss", F.cross_entropy(scores, y))
            self.log("val_acc", (scores.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return _sgd(self, setup)

    bundle = _digits()
    callback = BabysitCallback(every=EVERY)
    trainer = L.Trainer(max_epochs=EPOCHS, callbacks=[callback], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        num_sanity_val_steps=0)
    val = DataLoader(TensorDataset(bundle.X_val, bundle.y_val), batch_size=len(bundle.y_val))
    trainer.fit(Module(), _loader(), val)
    return callback.history, [f.to_dict() for f in callback.findings]


def _by_trainer(setup: str, tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from babysit.integrations.transformers import BabysitTrainerCallback

    bundle = _digits()
    model = ScoresWithLoss(_net(setup))
    callback = BabysitTrainerCallback(every=EVERY)
    args = trainer_args(tmp_path, num_train_epochs=EPOCHS, per_device_train_batch_size=BATCH,
                        per_device_eval_batch_size=len(bundle.y_val), max_grad_norm=0.0,  # no clipping
                        lr_scheduler_type="constant", weight_decay=0.0)
    ordered_trainer(model=model, args=args, optimizers=(_sgd(model, setup), None), compute_metrics=accuracy,
                    train_dataset=DictDataset(bundle.X_train, bundle.y_train),
                    eval_dataset=DictDataset(bundle.X_val, bundle.y_val), callbacks=[callback]).train()
    return callback.history, [f.to_dict() for f in callback.findings]


@functools.cache
def _codes_by_fit(setup: str) -> frozenset[str]:
    return frozenset(f["code"] for f in _by_fit(setup, None)[1])


PATHS = {"fit": _by_fit, "monitor": _by_own_loop, "lightning": _by_lightning, "transformers": _by_trainer}


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*", "ignore:.*does not have many workers.*")
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("setup", list(SETUPS))
def test_every_path_gives_the_same_diagnosis(setup: str, path: str, tmp_path) -> None:
    history, findings = PATHS[path](setup, tmp_path)
    losses, val_losses, val_accs = _plain_run(setup)

    # the same run: the plain loop's step losses and validation numbers, epoch by epoch
    assert history.steps["loss"] == pytest.approx(losses, rel=1e-4, abs=1e-5)
    assert [e["val_loss"] for e in history.epochs] == pytest.approx(val_losses, rel=1e-4)
    assert [e["val_acc"] for e in history.epochs] == pytest.approx(val_accs, abs=1e-6)
    # sampled on the same steps (Lightning and the Trainer hold the net as the attribute "net")
    wrapped = path in ("lightning", "transformers")
    ratio = history.series["ratio/" + ("net." if wrapped else "") + "fc1.weight"]
    assert ratio["step"] == list(range(1, EPOCHS * 17 + 1, EVERY))

    # the same diagnosis: fit's codes, the setup's hallmarks among them
    codes = {f["code"] for f in findings}
    assert EXPECTED[setup] <= codes, f"{path} found {sorted(codes)} for {setup}"
    assert codes == _codes_by_fit(setup), f"{path} found {sorted(codes)}, fit {sorted(_codes_by_fit(setup))}"
    if setup == "dead_relus":  # naming the layer whose biases were pushed down
        dead = next(f for f in findings if f["code"] == "dead_units")
        assert dead["evidence"]["layers"][("net." if wrapped else "") + "act1"] > 0.8
