"""BabysitCallback on a real LightningModule trained by a real Trainer on the digits data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from babysit import models
from babysit.history import History
from babysit.testing.contracts import check_series_scheme

L = pytest.importorskip("lightning")
from babysit.integrations.lightning import BabysitCallback  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*LeafSpec.*")  # lightning's own deprecation notice


class DigitsModule(L.LightningModule):
    def __init__(self, bundle, *, lr: float = 1e-3, bias_init: float = 0.0) -> None:
        super().__init__()
        self.net = models.build("mlp", input_shape=bundle.input_shape, num_classes=10, seed=0, hidden=[64],
                                bias_init=bias_init)
        self.lr = lr

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        scores = self(x)
        self.log("train_acc", (scores.argmax(1) == y).float().mean(), on_step=False, on_epoch=True)
        return F.cross_entropy(scores, y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        scores = self(x)
        self.log("val_acc", (scores.argmax(1) == y).float().mean())
        self.log("val_loss", F.cross_entropy(scores, y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def _trainer(callback, epochs: int = 3, logger=False, **kw):
    return L.Trainer(max_epochs=epochs, callbacks=[callback], logger=logger, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", **kw)


def _loaders(bundle):
    torch.manual_seed(0)
    train = DataLoader(TensorDataset(bundle.X_train, bundle.y_train), batch_size=64, shuffle=True)
    return train, DataLoader(TensorDataset(bundle.X_val, bundle.y_val), batch_size=512)


def test_callback_records_layers_epochs_and_findings(digits, tmp_path) -> None:
    callback = BabysitCallback(every=5, run_dir=tmp_path)
    _trainer(callback).fit(DigitsModule(digits, lr=3e-3), *_loaders(digits))
    h = callback.history
    # the module's layers, Lightning's logged accuracies per epoch, update ratios of the real optimizer steps
    assert [x["name"] for x in h.layers] == ["net.fc1", "net.act1", "net.fc2"]
    assert len(h.epochs) == 3 and h.epochs[-1]["val_acc"] > 0.8 and h.epochs[-1]["train_acc"] is not None
    assert h.series["ratio/net.fc1.weight"]["step"][:3] == [1, 6, 11]
    assert all(r > 0 for r in h.series["ratio/net.fc1.weight"]["value"])
    assert max(h.series["grad/carry"]["value"]) < 1e-3  # Lightning zeroes gradients
    check_series_scheme(h)
    # a healthy run: no warning or error; the History is saved with its findings
    assert not [f for f in callback.findings if f.severity != "info"]
    assert History.load(tmp_path).findings == [f.to_dict() for f in callback.findings]


def test_callback_diagnoses_dead_relus(digits) -> None:
    callback = BabysitCallback(every=5)
    _trainer(callback, epochs=2).fit(DigitsModule(digits, bias_init=-5.0), *_loaders(digits))
    # the same rules as fit's: the dead layer is named
    assert "dead_units" in {f.code for f in callback.findings}


def test_callback_counts_optimizer_steps_with_accumulation(digits) -> None:
    callback = BabysitCallback(every=1)
    _trainer(callback, epochs=1, accumulate_grad_batches=2).fit(DigitsModule(digits), *_loaders(digits))
    h = callback.history
    # 17 batches, accumulated in pairs: 9 optimizer steps, each one measured, gradients of both micro-batches summed
    assert h.epochs[0]["steps"] == 9
    assert len(h.series["ratio/net.fc1.weight"]["step"]) == 9
    assert max(h.series["grad/carry"]["value"]) < 1e-3


def test_callback_logs_findings_to_the_trainers_loggers(digits, tmp_path) -> None:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    csv_logger, tb_logger = CSVLogger(tmp_path, name="csv"), TensorBoardLogger(tmp_path, name="tb")
    callback = BabysitCallback(every=5)
    trainer = _trainer(callback, epochs=2, logger=[csv_logger, tb_logger], log_every_n_steps=1)
    trainer.fit(DigitsModule(digits, bias_init=-5.0), *_loaders(digits))
    severity = {"info": 1.0, "warning": 2.0, "error": 3.0}
    expected = {f"babysit/finding/{f.code}": severity[f.severity] for f in callback.findings}
    assert expected["babysit/finding/dead_units"] == 2.0

    # CSVLogger: one column per finding code (its severity) and the count, in the row of the last step
    with open(Path(csv_logger.log_dir) / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert set(expected) | {"babysit/findings", "val_acc"} <= set(rows[0])
    row = next(r for r in rows if r["babysit/findings"])
    assert {key: float(row[key]) for key in expected} == expected
    assert float(row["babysit/findings"]) == len(callback.findings) and int(row["step"]) == 2 * 17

    # TensorBoard: the same scalars, and the findings as a text entry
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(tb_logger.log_dir, size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    assert "babysit/finding/dead_units" in events.Tags()["scalars"]
    text = events.Tensors("babysit/findings/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "`dead_units`" in text and all(f.message in text for f in callback.findings)


def _hooks(module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in module.modules())


def test_a_fit_resumed_from_a_checkpoint_continues_the_record(digits, tmp_path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from babysit.errors import ConfigError

    def trainer(callback, epochs, **kw):
        return L.Trainer(max_epochs=epochs, callbacks=[callback, ModelCheckpoint(tmp_path / "ckpt", save_last=True)],
                         logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", **kw)

    first = BabysitCallback(every=5, run_dir=tmp_path / "run")
    trainer(first, 2).fit(DigitsModule(digits), *_loaders(digits))
    before = [e["train_loss"] for e in first.history.epochs]
    # a new fit into the same folder that does not resume: refused, the folder's record untouched
    log = (tmp_path / "run" / "history.jsonl").read_bytes()
    with pytest.raises(ConfigError, match=r"already holds a run's history.jsonl.*ckpt_path"):
        _trainer(BabysitCallback(every=5, run_dir=tmp_path / "run"), epochs=1).fit(DigitsModule(digits),
                                                                                    *_loaders(digits))
    assert (tmp_path / "run" / "history.jsonl").read_bytes() == log

    resumed = BabysitCallback(every=5, run_dir=tmp_path / "run")
    t = trainer(resumed, 4)
    t.fit(DigitsModule(digits), *_loaders(digits), ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    h = resumed.history
    # epochs and steps go on from the checkpoint's; the first fit's epochs are kept
    assert [e["epoch"] for e in h.epochs] == [1, 2, 3, 4] and h.num_steps == t.global_step == 4 * 17
    assert [e["train_loss"] for e in h.epochs[:2]] == before and all(e["steps"] == 17 for e in h.epochs)
    assert h.series["ratio/net.fc1.weight"]["step"][:3] == [1, 6, 11]
    saved = History.load(tmp_path / "run")
    assert [e["epoch"] for e in saved.epochs] == [1, 2, 3, 4] and saved.num_steps == 68


def test_a_checkpoint_from_the_middle_of_an_epoch_counts_the_epochs_earlier_steps(digits, tmp_path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    first = BabysitCallback(every=5)
    checkpoints = ModelCheckpoint(tmp_path / "ckpt", every_n_train_steps=20, save_top_k=-1)
    L.Trainer(max_epochs=2, callbacks=[first, checkpoints], logger=False, enable_progress_bar=False,
              enable_model_summary=False, accelerator="cpu").fit(DigitsModule(digits), *_loaders(digits))
    resumed = BabysitCallback(every=5)
    _trainer(resumed, epochs=2).fit(DigitsModule(digits), *_loaders(digits),
                                    ckpt_path=tmp_path / "ckpt" / "epoch=1-step=20.ckpt")
    h = resumed.history
    assert [(e["epoch"], e["steps"]) for e in h.epochs] == [(1, 17), (2, 17)] and h.num_steps == 34
    assert h.epochs[0]["train_loss"] == first.history.epochs[0]["train_loss"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_a_fit_that_raises_saves_the_record_and_takes_the_hooks_off(error, digits, tmp_path) -> None:
    class Stops(DigitsModule):
        def training_step(self, batch, batch_idx):
            if self.global_step == 20:
                raise error("stop")
            return super().training_step(batch, batch_idx)

    module = Stops(digits, bias_init=-5.0)
    callback = BabysitCallback(every=5, run_dir=tmp_path)
    # Lightning turns Ctrl-C (KeyboardInterrupt) into SystemExit after its on_exception
    with pytest.raises(SystemExit if error is KeyboardInterrupt else RuntimeError):
        _trainer(callback, epochs=3).fit(module, *_loaders(digits))
    assert _hooks(module) == 0
    saved = History.load(tmp_path)
    assert saved.status == ("interrupted" if error is KeyboardInterrupt else "failed")
    assert saved.num_steps == 20 and [e["epoch"] for e in saved.epochs] == [1]
    assert "dead_units" in {f["code"] for f in saved.findings} == {f.code for f in callback.findings}


def test_configure_optimizers_returning_none_is_a_config_error(digits) -> None:
    from babysit.errors import ConfigError

    class NoOptimizer(DigitsModule):
        def configure_optimizers(self):
            return None

    with pytest.raises(ConfigError, match="configure_optimizers returned none"):
        _trainer(BabysitCallback(every=5), epochs=1).fit(NoOptimizer(digits), *_loaders(digits))


def test_warning_findings_are_shown_by_default_logging(digits, caplog) -> None:
    import logging

    caplog.set_level(logging.WARNING)  # Python's default: INFO is not shown
    callback = BabysitCallback(every=5)
    _trainer(callback, epochs=2).fit(DigitsModule(digits, bias_init=-5.0), *_loaders(digits))
    shown = [r.getMessage() for r in caplog.records if r.name == "babysit" and r.levelno == logging.WARNING]
    assert any("dead_units" in m for m in shown)
    assert all(any(f.code in m for m in shown) for f in callback.findings if f.severity != "info")


def test_epochs_without_validation_record_no_validation_numbers(digits) -> None:
    callback = BabysitCallback(every=5)
    _trainer(callback, epochs=4, check_val_every_n_epoch=2).fit(DigitsModule(digits), *_loaders(digits))
    h = callback.history
    assert [e["val_acc"] is None for e in h.epochs] == [True, False, True, False]
    assert [e["val_loss"] is None for e in h.epochs] == [True, False, True, False]


def test_settings_are_checked_when_the_callback_is_built_and_callbacks_name_their_framework(digits) -> None:
    from babysit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown Monitor setting.*'samplesize'.*sample_size"):
        BabysitCallback(samplesize=3)
    with pytest.raises(ConfigError, match="every must be an integer >= 1"):
        BabysitCallback(every=0)
    pytest.importorskip("transformers")
    from babysit.integrations.transformers import BabysitTrainerCallback

    with pytest.raises(ConfigError, match=r"BabysitTrainerCallback is the transformers\.Trainer callback.*Callback"):
        _trainer(BabysitTrainerCallback(), epochs=1).fit(DigitsModule(digits), *_loaders(digits))
