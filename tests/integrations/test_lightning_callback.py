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
