"""``BabysitTrainerCallback``: babysit a Hugging Face ``transformers.Trainer`` run with the same Monitor as ``fit``.

Example::

    from transformers import Trainer, TrainingArguments
    from babysit.integrations.transformers import BabysitTrainerCallback

    babysit_cb = BabysitTrainerCallback(every=20, run_dir="runs/hf")  # val_acc_key="eval_accuracy", ...
    args = TrainingArguments("out", eval_strategy="epoch", report_to="none")
    Trainer(model=model, args=args, train_dataset=train, eval_dataset=val, callbacks=[babysit_cb]).train()
    for finding in babysit_cb.findings:
        print(finding)

How the Trainer's events drive the Monitor:

- ``on_train_begin``: the Monitor is built on the model and on the real torch optimizer (accelerate's
  ``AcceleratedOptimizer`` is unwrapped), with a forward hook on the model that keeps the loss of every
  training forward (``outputs.loss``, ``outputs["loss"]``) detached, on the device.
- ``on_optimizer_step`` (right after ``optimizer.step()``, before the scheduler steps; ``on_step_end`` on
  transformers without that event): one Monitor step, once per optimizer step, with the loss of the
  micro-batches of gradient accumulation combined as the Trainer combines them (averaged, or summed when
  the model normalised each by ``num_items_in_batch``). Nothing is read from the device per step.
- ``on_epoch_end`` comes *before* the Trainer's evaluation at the epoch's end, so the epoch is closed by
  the ``on_evaluate`` that follows (with ``eval_loss`` as ``val_loss``), else by the next ``on_epoch_begin``
  or by ``on_train_end``. An epoch's validation numbers are those of the last evaluation during it.
- ``on_save`` (right after the Trainer wrote ``checkpoint-<step>``): the History so far goes into that
  checkpoint as ``checkpoint-<step>/babysit/history.json``, and into ``run_dir``'s ``history.jsonl``.
- ``on_train_end``: diagnosis, findings logged to ``logging.getLogger("babysit")`` (warnings and errors at
  WARNING, which Python's default logging shows; info findings at INFO), ``history.jsonl`` saved.

Resuming: ``trainer.train(resume_from_checkpoint=...)`` from a checkpoint in ``output_dir`` continues the
record kept in it (epochs and steps go on from the checkpoint's, the earlier part is kept; a checkpoint from the
middle of an epoch counts that epoch's earlier steps too). A ``run_dir`` that already holds a run's
``history.jsonl`` is never overwritten otherwise: a training that does not resume babysit's record refuses it.

A training that raises: the Trainer has no exception event, so the callback cannot see it. The record is in
``run_dir`` as of the last checkpoint; call :meth:`BabysitTrainerCallback.close` in a ``finally`` to take the
hooks off the model and diagnose and save what was recorded::

    try:
        trainer.train()
    finally:
        babysit_cb.close()  # after train() returned: does nothing

A model whose forward returns no loss (a ``compute_loss_func`` or label smoothing takes the labels away)
gets no per-step losses; its epochs then take ``train_loss`` from the losses the Trainer logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from babysit.errors import ConfigError
from babysit.findings import Finding
from babysit.history import HISTORY_FILE, History
from babysit.integrations._findings import metric_number as _number
from babysit.integrations._runstate import (
    check_settings,
    close_carried_epoch,
    count_carried,
    end_run,
    failure_status,
    log_findings,
    note_resumed,
    open_epoch_losses,
    refuse_run_dir,
)
from babysit.monitors import DEFAULT_EVERY, Monitor

try:
    import transformers
except ImportError as exc:  # pragma: no cover - exercised only without the optional dependency
    raise ImportError(
        "babysit.integrations.transformers needs Hugging Face transformers: pip install 'babysit[transformers]' "
        "(or pip install transformers accelerate)."
    ) from exc

__all__ = ["BabysitTrainerCallback"]
log = logging.getLogger("babysit")


def _torch_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside accelerate's ``AcceleratedOptimizer`` (or another wrapper's ``.optimizer``)."""
    inner = getattr(optimizer, "optimizer", None)
    while isinstance(inner, torch.optim.Optimizer):
        optimizer, inner = inner, getattr(inner, "optimizer", None)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(f"BabysitTrainerCallback needs a torch optimizer, got {type(optimizer).__name__}.")
    return optimizer


def _loss_of(outputs: Any) -> Tensor | None:
    """The loss a model's forward returned: ``outputs.loss`` / ``outputs["loss"]`` (a ModelOutput is a dict)."""
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else getattr(outputs, "loss", None)
    return loss if isinstance(loss, Tensor) and loss.is_floating_point() else None


def _checkpoint_record(args: Any, state: Any) -> Path:
    """Where the record of a checkpoint goes: ``<output_dir>/checkpoint-<global step>/babysit``."""
    return Path(args.output_dir) / f"{transformers.trainer_utils.PREFIX_CHECKPOINT_DIR}-{state.global_step}" / "babysit"


class BabysitTrainerCallback(transformers.TrainerCallback):
    """Record every layer of a ``transformers.Trainer`` run into a History and diagnose it at the end.

    Args:
        every: sample every ``every``-th optimizer step (see :class:`babysit.Monitor`).
        run_dir: also save ``history.jsonl`` (with the findings) there at the end.
        val_loss_key, val_acc_key: the evaluation metrics read as ``val_loss`` / ``val_acc`` (``eval_accuracy``
            is what a ``compute_metrics`` returning ``{"accuracy": ...}`` gives).
        train_acc_key: a key of the Trainer's logs read as ``train_acc`` (None: not recorded).
        **monitor_settings: further :class:`babysit.Monitor` settings (``sample_size``, ``max_points``, ...).

    Attributes:
        monitor: the Monitor (from ``on_train_begin`` on).
        findings: the diagnosis, after ``on_train_end``.
    """

    def __init__(self, every: int = DEFAULT_EVERY, run_dir: str | Path | None = None, *,
                 val_loss_key: str | None = "eval_loss", val_acc_key: str | None = "eval_accuracy",
                 train_acc_key: str | None = None, **monitor_settings: Any) -> None:
        super().__init__()
        check_settings("BabysitTrainerCallback", every, monitor_settings)
        self.every, self.run_dir = every, None if run_dir is None else Path(run_dir)
        self.keys = {"train_acc": train_acc_key, "val_acc": val_acc_key, "val_loss": val_loss_key}
        self.monitor_settings = monitor_settings
        self.monitor: Monitor | None = None
        self.findings: list[Finding] = []
        self._hook: Any = None
        self._micro: list[Tensor] = []  # this optimizer step's micro-batch losses, on the device
        self._normalized = False  # the model divided each micro-batch loss by the whole step's item count
        self._stepped = False  # on_optimizer_step ran for this step
        self._epoch_losses = 0  # steps of this epoch that came with a loss
        self._logged_losses: list[float] = []  # the Trainer's own logged losses this epoch (host floats)
        self._metrics: dict[str, Any] = {}  # the logs and evaluation metrics of this epoch
        self._closing = False  # on_epoch_end came, the epoch's evaluation may follow
        self._carried: list[float] = []  # losses of the epoch a mid-epoch checkpoint was taken in
        self._running = False  # a training is under way: on_train_end (or close) is still to come
        self._save = True  # this process writes run_dir and checkpoints (the world's process zero)

    @property
    def history(self) -> History:
        if self.monitor is None:
            raise ConfigError("BabysitTrainerCallback has recorded nothing yet: pass it to a Trainer and train().")
        return self.monitor.history

    # --- the Trainer's events ---------------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, model: nn.Module | None = None,
                       optimizer: Any = None, **kwargs: Any) -> None:
        if model is None or optimizer is None:
            raise ConfigError("BabysitTrainerCallback needs the Trainer's model and optimizer at on_train_begin.")
        self._release()
        resumed = self._resumed_history(args, state)
        # The Trainer evaluates under no_grad in eval mode itself, so the own-loop evaluation watch is off.
        settings = {"every": self.every, "watch_eval": False, **self.monitor_settings}
        self.monitor = Monitor(model, _torch_optimizer(optimizer), history=resumed, **settings)
        self.monitor.history.meta.setdefault("framework", "transformers")
        self._hook = model.register_forward_hook(self._on_forward, with_kwargs=True)
        self.findings, self._running = [], True
        self._save = bool(getattr(state, "is_world_process_zero", True))
        self._carried = open_epoch_losses(resumed) if resumed is not None else []
        epoch = float(getattr(state, "epoch", 0) or 0)
        if resumed is not None and abs(epoch - round(epoch)) < 1e-6 and round(epoch) > len(resumed.epochs):
            close_carried_epoch(self.monitor, self._carried)  # saved at the epoch's last step, before its end
            self._carried = []
        self._micro, self._stepped, self._closing = [], False, False
        self._new_epoch()

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._closing:
            self._close_epoch()
        self._new_epoch()

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._micro, self._stepped = [], False  # once per optimizer step, before its first micro-batch

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._step(args)
        self._stepped = True

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._stepped:  # transformers without on_optimizer_step
            self._step(args)
        self._stepped = False

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._closing = self.monitor is not None  # closed by the evaluation that follows, if one does

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        logs = logs or {}
        self._metrics.update(logs)
        loss = _number(logs, "loss")
        if loss is not None:
            self._logged_losses.append(loss)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None,
                    **kwargs: Any) -> None:
        self._metrics.update(metrics or {})
        if self._closing:
            self._close_epoch()

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """The Trainer just wrote ``checkpoint-<step>``: keep the record so far in it (and in ``run_dir``)."""
        if self.monitor is None or not self._running or not self._save:
            return
        if self._closing:  # the epoch's evaluation, if any, came before the save
            self._close_epoch()
        history = self.monitor.history
        folder = _checkpoint_record(args, state)
        if folder.parent.is_dir():
            history.export(folder / HISTORY_FILE)
        if self.run_dir is not None:
            history.save(self.run_dir)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.monitor is None or not self._running:
            return
        self._running = False
        if self._closing:
            self._close_epoch()
        self._release()
        self.findings = end_run(self.monitor, "completed", self.run_dir, save=self._save)
        if self._save:
            log_findings(self.findings)

    def close(self, exc: BaseException | None = None) -> None:
        """End a training that stopped without ``on_train_end`` (an exception, Ctrl-C): the hooks come off the
        model, what was recorded is diagnosed (``findings``) and saved into ``run_dir`` with status
        ``interrupted`` (or ``failed`` when ``exc`` is an error). After a finished training it does nothing."""
        self._release()
        if self.monitor is None or not self._running:
            return
        self._running = False
        status, reason = failure_status(exc)
        self.findings = end_run(self.monitor, status, self.run_dir, stop_reason=reason, save=self._save)
        if self._save:
            log_findings(self.findings)

    # --- the wrong framework -------------------------------------------------------------------------------------
    @property
    def state_key(self) -> str:
        """The name Lightning calls a callback's hooks under (so that :meth:`setup` can say what is wrong)."""
        return type(self).__name__

    def setup(self, *args: Any, **kwargs: Any) -> None:
        """PyTorch Lightning's first callback hook: this callback was given to the wrong framework."""
        raise ConfigError("BabysitTrainerCallback is the transformers.Trainer callback; for a PyTorch Lightning "
                          "Trainer use babysit.integrations.lightning.BabysitCallback.")

    def on_exception(self, *args: Any, **kwargs: Any) -> None:
        """Lightning calls this after :meth:`setup` refused; the error above is the one raised."""

    # --- inside ------------------------------------------------------------------------------------------------
    def _on_forward(self, module: nn.Module, args: Any, kwargs: dict[str, Any], outputs: Any) -> None:
        """Keep the loss of a training forward (grad on, training mode), detached and on the device."""
        if not torch.is_grad_enabled() or not module.training:
            return
        loss = _loss_of(outputs)
        if loss is not None:
            self._micro.append(loss.detach().float().mean())
            self._normalized = kwargs.get("num_items_in_batch") is not None

    def _step(self, args: Any) -> None:
        if self.monitor is None:
            return
        loss = None
        if self._micro:
            stacked = torch.stack(self._micro)
            # The Trainer averages per-batch mean losses over the micro-batches; a model given num_items_in_batch
            # already divided each by the whole step's item count (and the Trainer then scales by the processes).
            if self._normalized:
                loss = stacked.sum()
                if getattr(args, "average_tokens_across_devices", False) and getattr(args, "world_size", 1) > 1:
                    loss = loss * args.world_size
            else:
                loss = stacked.mean()
            self._epoch_losses += 1
        self._micro = []
        self.monitor.step(loss)

    def _resumed_history(self, args: Any, state: Any) -> History | None:
        """The record kept in the checkpoint this training resumes from, or None for a new training (whose
        ``run_dir`` must not hold another run)."""
        step = int(getattr(state, "global_step", 0) or 0)
        folder = _checkpoint_record(args, state)
        if step > 0 and (folder / HISTORY_FILE).is_file():
            history = History.load(folder)
            history.run_dir = None
            if history.num_steps == step:
                note_resumed(self.run_dir, history)
                return history
            log.warning("babysit: %s holds %d steps, the checkpoint %d: not continued", folder, history.num_steps,
                        step)
        refuse_run_dir(self.run_dir, "BabysitTrainerCallback", "resume it with "
                       "trainer.train(resume_from_checkpoint=...) from a checkpoint saved with this callback")
        if step > 0:
            log.warning("babysit: this training resumes at step %d from a checkpoint without babysit's record "
                        "(saved without BabysitTrainerCallback, or outside output_dir): the record starts here, "
                        "at step 1", step)
        return None

    def _new_epoch(self) -> None:
        self._closing, self._metrics, self._logged_losses, self._epoch_losses = False, {}, [], 0

    def _close_epoch(self) -> None:
        self._closing = False
        if self.monitor is None:
            return
        values = {name: _number(self._metrics, key) for name, key in self.keys.items()}
        if not self._epoch_losses and self._logged_losses:  # the forward returned no loss: the Trainer's logs
            values["train_loss"] = sum(self._logged_losses) / len(self._logged_losses)
        self.monitor.end_epoch(**values)
        carried, self._carried = self._carried, []
        count_carried(self.monitor.history.epochs[-1], carried, losses_from_steps=bool(self._epoch_losses))

    def _release(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
