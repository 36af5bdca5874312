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
logger's experiment has ``add_text`` (TensorBoard), the findings as a text entry ``babysit/findings``;
warning and error findings are logged to ``logging.getLogger("babysit")`` at WARNING (shown by Python's
default logging), info findings at INFO.

Resuming: the callback's state (the History so far, as JSON text) goes into Lightning's checkpoint, so
``trainer.fit(..., ckpt_path=...)`` continues the record (epochs and steps go on from the checkpoint's, the
earlier part is kept) and saves it whole into ``run_dir``. A ``run_dir`` that already holds a run's
``history.jsonl`` is never overwritten otherwise: a fit that does not resume babysit's record refuses it.

A fit that raises or is interrupted (Ctrl-C; Lightning's ``on_exception``) closes the Monitor (its hooks come
off the module), diagnoses what was recorded and saves it with status ``interrupted`` or ``failed``.
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
from babysit.integrations._runstate import (
    check_settings,
    close_carried_epoch,
    count_carried,
    end_run,
    failure_status,
    history_of_state,
    history_state,
    log_findings,
    note_resumed,
    open_epoch_losses,
    refuse_run_dir,
)
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
        run_dir: also save ``history.jsonl`` (with the findings) there at the end; a folder that already
            holds a run is refused unless this fit resumes it from a checkpoint.
        train_acc_key, val_acc_key, val_loss_key: the names your module logs these under.
        **monitor_settings: further :class:`babysit.Monitor` settings (``sample_size``, ``max_points``, ...).

    Attributes:
        monitor: the Monitor (from ``on_fit_start`` on).
        findings: the diagnosis, after ``on_fit_end`` (also logged to the Trainer's loggers), or after a fit
            that raised.

    Raises:
        ConfigError: an unknown or bad Monitor setting (at once), no optimizer, or a ``run_dir`` that holds
            another run (when fit starts).
    """

    def __init__(self, every: int = DEFAULT_EVERY, run_dir: str | Path | None = None, *,
                 train_acc_key: str | None = "train_acc", val_acc_key: str | None = "val_acc",
                 val_loss_key: str | None = "val_loss", **monitor_settings: Any) -> None:
        super().__init__()
        check_settings("BabysitCallback", every, monitor_settings)
        self.every, self.run_dir = every, None if run_dir is None else Path(run_dir)
        self.keys = {"train_acc": train_acc_key, "val_acc": val_acc_key, "val_loss": val_loss_key}
        self.monitor_settings = monitor_settings
        self.monitor: Monitor | None = None
        self.findings: list[Finding] = []
        self._resumed: History | None = None  # the record a checkpoint brought back (load_state_dict)
        self._validated = False  # a validation ran during this epoch
        self._save = True  # this process writes run_dir (rank zero)
        self._carried: list[float] = []  # losses of the epoch a mid-epoch checkpoint was taken in
        self._running = False  # a fit is under way: its end (on_fit_end or on_exception) is still to come

    @property
    def history(self) -> History:
        if self.monitor is None:
            raise ConfigError("BabysitCallback has recorded nothing yet: pass it to a Trainer and call fit().")
        return self.monitor.history

    # --- Lightning's checkpoint ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {} if self.monitor is None else history_state(self.monitor.history)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        history = history_of_state(state_dict, "BabysitCallback's state in the Lightning checkpoint")
        if history is None:
            return
        self._resumed = history
        if self.monitor is not None:  # a strategy that restores the checkpoint after on_fit_start
            self.monitor.bind(history)

    # --- the fit -----------------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning puts an empty _MockOptimizer in when configure_optimizers returns None
        if not trainer.optimizers or not trainer.optimizers[0].param_groups:
            raise ConfigError("BabysitCallback needs the module's optimizer (configure_optimizers returned none): "
                              "return the optimizer from configure_optimizers, or train without BabysitCallback.")
        # Lightning evaluates under no_grad in eval mode itself, so the own-loop evaluation watch is off.
        settings = {"every": self.every, "watch_eval": False, **self.monitor_settings}
        self.monitor = Monitor(pl_module, trainer.optimizers[0], history=self._resumed, **settings)
        self.monitor.history.meta.setdefault("framework", "lightning")
        self.findings, self._validated, self._save = [], False, bool(trainer.is_global_zero)
        self._running = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor is None:
            return
        resumed, self._resumed = self._resumed, None  # the checkpoint is restored by now, whatever the strategy
        if resumed is not None:
            note_resumed(self.run_dir, resumed)
            self._carried = open_epoch_losses(resumed)  # a checkpoint from the middle of an epoch
            if trainer.current_epoch > len(resumed.epochs):  # saved at the epoch's last batch, before its end
                close_carried_epoch(self.monitor, self._carried)
                self._carried = []
            return
        try:
            refuse_run_dir(self.run_dir, "BabysitCallback",
                           "resume it with trainer.fit(..., ckpt_path=...) from a checkpoint saved with this callback")
        except ConfigError:
            self.monitor.close()
            self.monitor, self._running = None, False  # nothing of this fit is saved over the folder
            raise
        if trainer.global_step > 0:
            log.warning("babysit: this fit resumes at step %d from a checkpoint without babysit's record (saved "
                        "without BabysitCallback): the record starts here, at step 1", trainer.global_step)

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

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor is None:
            return
        metrics = dict(trainer.callback_metrics)  # keeps the last validation's numbers in epochs without one
        values = {name: _number(metrics, key) for name, key in self.keys.items()
                  if self._validated or not name.startswith("val_")}
        self._validated = False
        self.monitor.end_epoch(**values)
        carried, self._carried = self._carried, []
        count_carried(self.monitor.history.epochs[-1], carried, losses_from_steps=values.get("train_loss") is None)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor is None or not self._running:
            return
        self._running = False
        self.findings = end_run(self.monitor, "completed", self.run_dir, save=self._save)
        if self._save:
            log_findings(self.findings)
        _log_findings(trainer, self.findings)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """A fit that raised or was interrupted: hooks off, what was recorded diagnosed and saved."""
        if self.monitor is None or not self._running:
            return
        self._running = False
        status, reason = failure_status(exception)
        self.findings = end_run(self.monitor, status, self.run_dir, stop_reason=reason, save=self._save)
        if self._save:
            log.warning("babysit: fit %s (%s); the record so far is diagnosed%s", status, reason,
                        f" and saved in {self.run_dir}" if self.run_dir is not None else "")
            log_findings(self.findings)
        _log_findings(trainer, self.findings)

    # --- the wrong framework -------------------------------------------------------------------------------------
    def on_init_end(self, *args: Any, **kwargs: Any) -> None:
        """``transformers.Trainer``'s first event: this callback was given to the wrong framework."""
        raise ConfigError("BabysitCallback is the PyTorch Lightning callback; for a transformers.Trainer use "
                          "babysit.integrations.transformers.BabysitTrainerCallback.")
