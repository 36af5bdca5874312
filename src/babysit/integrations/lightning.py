"""``BabysitCallback``: babysit a PyTorch Lightning run (lecture B2-B5) with the same Monitor as ``fit``.

Example::

    import lightning as L
    from babysit.integrations.lightning import BabysitCallback

    babysit_cb = BabysitCallback(run_dir="runs/lit")  # every=..., val_acc_key="val_acc", ...
    L.Trainer(max_epochs=10, callbacks=[babysit_cb]).fit(module, train_loader, val_loader)
    for finding in babysit_cb.findings:
        print(finding)

The Monitor hooks the LightningModule's layers and its (first) optimizer. Lightning runs backward inside
``optimizer.step(closure)``, which the Monitor's step hooks handle; with ``accumulate_grad_batches`` a
step is counted per optimizer step, and the gradients of all micro-batches are summed. Accuracies are
read from ``trainer.callback_metrics`` under the names you log (``self.log("val_acc", ...)``).

At the end the findings also go to the Trainer's loggers: ``log_metrics`` with ``babysit/findings`` (how
many) and one ``babysit/finding/<code>`` per code (its severity: 1 info, 2 warning, 3 error), and, where the
logger's experiment has ``add_text`` (TensorBoard), the findings as a text entry ``babysit/findings``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from babysit.errors import ConfigError
from babysit.findings import Finding
from babysit.history import History
from babysit.integrations._findings import findings_metrics, findings_text
from babysit.integrations._findings import metric_number as _number
from babysit.monitors import DEFAULT_EVERY, Monitor

try:
    import lightning.pytorch as pl
except ImportError as exc:  # pragma: no cover - exercised only without the optional dependency
    raise ImportError(
        "babysit.integrations.lightning needs PyTorch Lightning: pip install 'babysit[lightning]' "
        "(or pip install lightning)."
    ) from exc

__all__ = ["BabysitCallback"]
log = logging.getLogger("babysit")


def _log_findings(trainer: pl.Trainer, findings: list[Finding]) -> None:
    """Hand the findings to every logger of the Trainer (metrics, and text where the experiment takes it)."""
    loggers = list(getattr(trainer, "loggers", None) or [])
    if not loggers:
        return
    metrics, text, step = findings_metrics(findings), findings_text(findings), trainer.global_step
    for logger in loggers:
        logger.log_metrics(metrics, step=step)
        add_text = getattr(getattr(logger, "experiment", None), "add_text", None)
        if callable(add_text):
            add_text("babysit/findings", text, global_step=step)


class BabysitCallback(pl.Callback):
    """Record every layer of a LightningModule's training into a History and diagnose it at the end.

    Args:
        every: sample every ``every``-th optimizer step (see :class:`babysit.Monitor`).
        run_dir: also save ``history.jsonl`` (with the findings) there at the end.
        train_acc_key, val_acc_key, val_loss_key: the names your module logs these under.
        **monitor_settings: further :class:`babysit.Monitor` settings (``sample_size``, ``max_points``, ...).

    Attributes:
        monitor: the Monitor (from ``on_fit_start`` on).
        findings: the diagnosis, after ``on_fit_end`` (also logged to the Trainer's loggers).
    """

    def __init__(self, every: int = DEFAULT_EVERY, run_dir: str | Path | None = None, *,
                 train_acc_key: str | None = "train_acc", val_acc_key: str | None = "val_acc",
                 val_loss_key: str | None = "val_loss", **monitor_settings: Any) -> None:
        super().__init__()
        self.every, self.run_dir = every, None if run_dir is None else Path(run_dir)
        self.keys = {"train_acc": train_acc_key, "val_acc": val_acc_key, "val_loss": val_loss_key}
        self.monitor_settings = monitor_settings
        self.monitor: Monitor | None = None
        self.findings: list[Finding] = []

    @property
    def history(self) -> History:
        if self.monitor is None:
            raise ConfigError("BabysitCallback has recorded nothing yet: pass it to a Trainer and call fit().")
        return self.monitor.history

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.optimizers:
            raise ConfigError("BabysitCallback needs the module's optimizer (configure_optimizers returned none).")
        # Lightning evaluates under no_grad in eval mode itself, so the own-loop evaluation watch is off.
        settings = {"every": self.every, "watch_eval": False, **self.monitor_settings}
        self.monitor = Monitor(pl_module, trainer.optimizers[0], **settings)
        self.monitor.history.meta.setdefault("framework", "lightning")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.monitor is None:
            return
        accumulate = max(1, int(getattr(trainer, "accumulate_grad_batches", 1)))
        last = trainer.num_training_batches != float("inf") and batch_idx + 1 == trainer.num_training_batches
        if (batch_idx + 1) % accumulate and not last:
            return  # no optimizer step after this micro-batch
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        self.monitor.step(loss)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor is None:
            return
        metrics = dict(trainer.callback_metrics)
        self.monitor.end_epoch(**{name: _number(metrics, key) for name, key in self.keys.items()})

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor is None:
            return
        self.findings = self.monitor.diagnose()
        self.monitor.close()
        history = self.monitor.history
        history.status = "completed"
        history.findings = [f.to_dict() for f in self.findings]
        for finding in self.findings:
            log.info("babysit: %s", finding)
        _log_findings(trainer, self.findings)
        if self.run_dir is not None:
            history.save(self.run_dir)
