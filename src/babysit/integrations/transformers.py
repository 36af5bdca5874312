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
- ``on_train_end``: diagnosis, findings logged to ``logging.getLogger("babysit")``, ``history.jsonl`` saved.

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
from babysit.history import History
from babysit.integrations._findings import metric_number as _number
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
        # The Trainer evaluates under no_grad in eval mode itself, so the own-loop evaluation watch is off.
        settings = {"every": self.every, "watch_eval": False, **self.monitor_settings}
        self.monitor = Monitor(model, _torch_optimizer(optimizer), **settings)
        self.monitor.history.meta.setdefault("framework", "transformers")
        self._hook = model.register_forward_hook(self._on_forward, with_kwargs=True)
        self.findings = []
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

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.monitor is None:
            return
        if self._closing:
            self._close_epoch()
        self._release()
        self.findings = self.monitor.diagnose()
        self.monitor.close()
        history = self.monitor.history
        history.status = "completed"
        history.findings = [f.to_dict() for f in self.findings]
        for finding in self.findings:
            log.info("babysit: %s", finding)
        if self.run_dir is not None:
            history.save(self.run_dir)

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

    def _release(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
