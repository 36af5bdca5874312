"""``fit``: the lecture's training loop, readable top to bottom.

Epochs are the unit (lecture B1). Each step: forward, data loss, L2 term kept apart, backward, the update
rule, and nothing that waits for the device: per-step losses and correct counts stay on the device as
tensors and are read once per epoch. A non-finite loss is looked for every ``CHECK_EVERY`` steps and at
each epoch's end; it stops the run cleanly with the last good checkpoint kept.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from babysit import losses, optim, schedules
from babysit.diagnose import diagnose
from babysit.errors import ConfigError, DataError
from babysit.history import History
from babysit.monitors import Monitor
from babysit.train._batches import LoaderBatches, TensorBatches, make_batches
from babysit.train._device import resolve_device
from babysit.train._evaluate import evaluate, to_device_pair
from babysit.train._interrupt import interrupts_deferred, raise_if_interrupted, sigterm_as_interrupt
from babysit.train._meta import run_meta
from babysit.train._progress import EpochProgress
from babysit.train.checkpoint import (
    TrainingState,
    checkpoint_path,
    checkpoint_payload,
    read_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)

log = logging.getLogger("babysit")
CHECK_EVERY = 50  # steps between non-finite checks inside an epoch (one device sync each)
PRECISIONS = ("fp32", "bf16")


@dataclass
class _Setup:
    """What one epoch of training needs, built once by ``fit``."""

    model: nn.Module
    forward: nn.Module  # the model, or its torch.compile'd wrapper
    batches: TensorBatches | LoaderBatches
    data_loss: losses.LossFn
    reg: float
    reg_weights: list[Tensor]
    optimizer: torch.optim.Optimizer
    per_batch_schedule: Any | None
    autocast: Any  # a context-manager factory, or None for fp32
    monitor: Monitor | None  # None: nothing of the Monitor's on the hot path
    ema: torch.optim.swa_utils.AveragedModel | None


def fit(
    model: nn.Module,
    train_data: Any,
    val_data: Any = None,
    *,
    loss_fn: str | losses.LossFn = "softmax",
    optimizer: str | dict[str, Any] | torch.optim.Optimizer = "sgd",
    lr: float | None = None,
    reg: float = 0.0,
    schedule: str | dict[str, Any] | None = None,
    momentum_annealing: dict[str, Any] | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    monitor: bool | dict[str, Any] | Monitor = True,
    run_dir: str | Path | None = None,
    resume: bool | History = False,
    keep_checkpoint: bool = False,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    compile: bool = False,
    seed: int = 0,
    progress: bool | None = None,
    ema_decay: float | None = None,
    tensorboard: bool | str | Path = False,
    callbacks: Sequence[Callable[[History], bool | None]] = (),
    config: dict[str, Any] | None = None,
) -> History:
    """Train ``model`` with the lecture's update rules and schedules, recording everything into a History.

    Args:
        model: any ``nn.Module`` mapping a batch to class scores ``(N, C)``.
        train_data: an ``(X, y)`` pair of tensors or arrays, a ``Dataset`` of ``(x, y)``, a ``DataLoader``,
            or a ``babysit.data.DataBundle`` (its train and val splits are used).
        val_data: the same forms, or None (then no validation numbers and no best checkpoint).
        loss_fn: ``"softmax"``, ``"svm"`` or a callable ``(scores, targets) -> scalar`` data loss.
        optimizer: an update-rule name (``sgd``, ``momentum``, ``nesterov``, ``adagrad``, ``rmsprop``,
            ``adam``, ``adamw``, ``lbfgs``), a dict ``{"name": ..., **settings}``, or a built optimizer.
        lr: the initial learning rate (default: the rule's default, 1e-2 for SGD).
        reg: L2 strength; ``0.5 * reg * sum(W**2)`` is added as its own term and recorded apart.
        schedule: a schedule name or ``{"name": ..., **settings}`` (stepped once per epoch; add
            ``"per_batch": True`` to step it every batch with t counted in fractional epochs).
        momentum_annealing: ``{"start": 0.5, "end": 0.99, "epochs": N}`` raises momentum over epochs.
        epochs: the number of epochs to train in total (also when resuming).
        batch_size: examples per mini-batch.
        monitor: babysit every layer (lecture B4, B5): True builds a :class:`babysit.Monitor` sampling every
            ``monitors.DEFAULT_EVERY``-th step, a dict gives its settings (``{"every": 5}``), a Monitor
            instance is used as it is, False records nothing per layer. The diagnosis of the run
            (``history.findings``) is made in every case; without the Monitor it sees only the curves.
        run_dir: a folder for history, checkpoints (last and best) and the report; None keeps it in memory.
        resume: True continues the run saved in ``run_dir`` from its last checkpoint; a History returned by
            ``fit(..., keep_checkpoint=True)`` continues that run from memory (the same model, data and
            settings; ``epochs`` is the new total). Either way the result equals one uninterrupted run.
        keep_checkpoint: keep the final training state in memory as ``history.checkpoint`` (a search
            continues its promising short trials this way instead of training them again from scratch).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ...
        precision: ``"fp32"`` or ``"bf16"`` (autocast of forward and loss).
        compile: run the forward pass through ``torch.compile``.
        seed: seeds the global RNG (init, dropout) and the batch shuffling.
        progress: show a progress bar; None shows it when stderr is a terminal.
        ema_decay: also keep an exponential moving average of the weights (lecture E1, e.g. 0.999) and
            record its validation numbers as ``val_loss_ema`` / ``val_acc_ema``; saved in checkpoints.
        tensorboard: also write scalars and per-layer histograms as TensorBoard event files, into
            ``<run_dir>/tensorboard`` (True) or the folder given; needs the ``tensorboard`` package.
        callbacks: called with the History after every epoch (after the checkpoint); one that returns
            True stops the run with status ``stopped`` (a search prunes trials this way).
        config: the config this run was made from, stored in the history's meta.

    Returns:
        The History; ``history.status`` is ``completed``, ``diverged`` or ``stopped``. On Ctrl-C or SIGTERM the
        history and the last finished epoch's checkpoint are saved and the KeyboardInterrupt re-raised.
    """
    # --- settings and data -----------------------------------------------------------------------------
    _check_settings(epochs=epochs, batch_size=batch_size, reg=reg, precision=precision, lr=lr)
    if resume is True and run_dir is None:
        raise ConfigError("resume=True needs run_dir: the folder of the run to continue.")
    train_data, val_data = _split_bundle(train_data, val_data)
    dev = resolve_device(device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model.to(dev)
    batches = make_batches(train_data, batch_size, generator, dev)
    val = None if val_data is None else to_device_pair(val_data, dev)
    _check_labels(model, batches, val)
    data_loss = losses.resolve(loss_fn)

    # --- update rule, schedule, momentum annealing -----------------------------------------------------
    opt = optim.build_from_spec(optimizer, model.parameters(), lr=lr)
    schedule_spec, per_batch = _schedule_spec(schedule)
    sched = schedules.build_from_spec(schedule_spec, opt, steps_per_epoch=len(batches) if per_batch else 1)
    annealing = None if momentum_annealing is None else optim.MomentumAnnealing(opt, **momentum_annealing)
    ema = None if ema_decay is None else _ema_model(model, ema_decay)
    state = TrainingState(model, opt, sched, annealing, generator, ema)
    setup = _Setup(
        model=model,
        forward=torch.compile(model) if compile else model,
        batches=batches,
        data_loss=data_loss,
        reg=reg,
        reg_weights=losses.regularized_weights(model) if reg > 0 else [],
        optimizer=opt,
        per_batch_schedule=None if not per_batch or _is_plateau(sched) else sched,
        autocast=_autocast_factory(precision, dev),
        monitor=None,
        ema=ema,
    )

    # --- history, or where a resumed run left off ------------------------------------------------------
    folder = None if run_dir is None else Path(run_dir)
    history = History(run_dir=folder)
    history.meta = run_meta(
        model, dev, loss=loss_fn if isinstance(loss_fn, str) else getattr(loss_fn, "__name__", "custom"),
        optimizer=optimizer, lr=opt.param_groups[0]["lr"], reg=reg, schedule=schedule,
        momentum_annealing=momentum_annealing, epochs=epochs, batch_size=batch_size, seed=seed,
        precision=precision, compile=compile, steps_per_epoch=len(batches),
        num_train=batches.num_examples, config=config,
    )
    if isinstance(resume, History):
        history = _continue_in_memory(resume, state, history)
    elif resume:
        payload = read_checkpoint(checkpoint_path(folder, "last"))  # type: ignore[arg-type]
        restore_checkpoint(payload, state)
        history = History.load(folder)  # type: ignore[arg-type]
        history.truncate(payload["epoch"], payload["num_steps"])
        history.status, history.stop_reason = "running", None
        log.info("resuming %s after epoch %d", folder, payload["epoch"])
    setup.monitor, own_monitor = _attach_monitor(monitor, model, opt, history, compiled=compile)
    own_callbacks = _tensorboard_logger(tensorboard, folder)
    callbacks = [*callbacks, *own_callbacks]

    # --- the loop ----------------------------------------------------------------------------------------
    first_epoch = len(history.epochs) + 1
    saved = (len(history.epochs), len(history.steps["step"]))  # what the last checkpoint holds
    with sigterm_as_interrupt(), EpochProgress(progress, total=epochs, completed=first_epoch - 1) as bar:
        try:
            for epoch in range(first_epoch, epochs + 1):
                started = time.perf_counter()
                record = _train_epoch(setup, history, epoch)
                if record is None:  # diverged: stop, keep the last good checkpoint, name the layer
                    if setup.monitor is not None:
                        setup.monitor.locate_nonfinite()
                    break
                if val is not None:
                    record["val_loss"], record["val_acc"] = evaluate(model, val, data_loss, dev)
                    if ema is not None:
                        record["val_loss_ema"], record["val_acc_ema"] = evaluate(ema.module, val, data_loss, dev)
                if setup.monitor is not None:  # the epoch's statistics, read from the device at once
                    setup.monitor.check_evaluation()
                    setup.monitor.flush()
                record["seconds"] = time.perf_counter() - started
                history.epochs.append(record)
                _step_schedules(sched, annealing, per_batch, record)
                if folder is not None:
                    with interrupts_deferred():  # checkpoint, history and `saved` change together
                        _save(folder, state, history)
                        saved = (len(history.epochs), len(history.steps["step"]))
                bar.update(record)
                if _ask_to_stop(callbacks, history):
                    break
            else:
                history.status = "completed"
        except KeyboardInterrupt:
            history.status, history.stop_reason = "interrupted", "interrupted by Ctrl-C or SIGTERM"
            if folder is not None:  # the saved history ends where the checkpoint does, so they always agree
                history.truncate(*saved)
                history.save()
                log.warning("interrupted; resume with resume=True (CLI: --resume) from %s", folder)
            raise
        finally:
            if own_monitor:
                setup.monitor.close()  # type: ignore[union-attr]
            for callback in own_callbacks:
                callback.close()  # TensorBoard flushes its event file

    if keep_checkpoint and history.status != "diverged":  # a diverged run's weights are not worth continuing
        payload = checkpoint_payload(state, epoch=len(history.epochs), num_steps=len(history.steps["step"]))
        history.checkpoint = copy.deepcopy(payload)

    # --- diagnosis: the findings go into the History (and the run folder) --------------------------------
    if setup.monitor is not None:
        setup.monitor.flush()
    history.findings = [f.to_dict() for f in diagnose(history)]
    if history.findings:
        log.info("diagnosis: %s", ", ".join(f"{f['code']} ({f['severity']})" for f in history.findings))
    if folder is not None:
        history.save()
    return history


def _train_epoch(setup: _Setup, history: History, epoch: int) -> dict[str, Any] | None:
    """Train one epoch; return its record, or None when the loss became non-finite."""
    model, opt, batches = setup.model, setup.optimizer, setup.batches
    model.train()
    lr = opt.param_groups[0]["lr"]
    data_losses: list[Tensor] = []
    reg_losses: list[Tensor] = []
    corrects: list[Tensor] = []
    lrs: list[float] = []
    count, num_batches = 0, len(batches)
    first_step = len(history.steps["step"])
    diverged = False
    for X, y in batches:
        raise_if_interrupted()  # a Ctrl-C that a finalizer swallowed still stops the run
        loss, reg_loss, scores = _step(setup, X, y)
        if setup.monitor is not None:
            setup.monitor.step()
        data_losses.append(loss.detach())
        if reg_loss is not None:
            reg_losses.append(reg_loss.detach())
        corrects.append((scores.detach().argmax(dim=1) == y).sum())
        lrs.append(opt.param_groups[0]["lr"])
        count += y.shape[0]
        if setup.per_batch_schedule is not None:
            setup.per_batch_schedule.step()
        if setup.ema is not None:
            setup.ema.update_parameters(model)
        if len(data_losses) % CHECK_EVERY == 0 and not torch.isfinite(loss.detach()):
            diverged = True
            break

    # --- read the epoch's numbers from the device once ----------------------------------------------------
    step_data = torch.stack(data_losses).float()
    step_reg = torch.stack(reg_losses).float() if reg_losses else torch.zeros_like(step_data)
    step_total = (step_data + step_reg).cpu()
    finite = torch.isfinite(step_total)
    n = len(step_total) if bool(finite.all()) and not diverged else int((~finite).nonzero()[0]) + 1
    steps = history.steps
    steps["step"].extend(range(first_step + 1, first_step + n + 1))
    steps["epoch"].extend((epoch - 1) + (i + 1) / num_batches for i in range(n))
    steps["loss"].extend(step_total[:n].tolist())
    steps["lr"].extend(lrs[:n])
    if n < len(step_total) or diverged or not bool(finite.all()):
        bad = step_total[n - 1].item()
        history.status = "diverged"
        history.stop_reason = (
            f"the loss became {bad} at step {first_step + n} (epoch {epoch}) with learning rate {lrs[n - 1]:.3g}; "
            "training stopped and the last good checkpoint was kept"
        )
        log.warning("training stopped: %s", history.stop_reason)
        return None
    data_mean, reg_mean = float(step_data.mean()), float(step_reg.mean())
    return {
        "epoch": epoch,
        "train_loss": data_mean + reg_mean,
        "data_loss": data_mean,
        "reg_loss": reg_mean,
        "train_acc": int(torch.stack(corrects).sum()) / count,
        "val_loss": None,
        "val_acc": None,
        "lr": lr,
        "momentum": opt.param_groups[0].get("momentum"),
        "steps": n,
    }


def _step(setup: _Setup, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
    """One update: forward, data loss + L2 term, backward, the update rule. Returns (data loss, reg loss, scores)."""
    opt = setup.optimizer
    if isinstance(opt, torch.optim.LBFGS):  # L-BFGS re-evaluates the loss itself
        return _lbfgs_step(setup, X, y)
    if setup.autocast is None:
        scores = setup.forward(X)
        loss = setup.data_loss(scores, y)
    else:
        with setup.autocast():
            scores = setup.forward(X)
            loss = setup.data_loss(scores, y)
    if setup.reg_weights:
        reg_loss = losses.l2_penalty(setup.reg_weights, setup.reg)
        total = loss + reg_loss
    else:
        reg_loss, total = None, loss
    opt.zero_grad(set_to_none=True)
    total.backward()
    opt.step()
    return loss, reg_loss, scores


def _lbfgs_step(setup: _Setup, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
    out: dict[str, Any] = {}

    def closure() -> Tensor:
        setup.optimizer.zero_grad(set_to_none=True)
        with setup.autocast() if setup.autocast is not None else contextlib.nullcontext():
            out["scores"] = setup.forward(X)
            out["loss"] = setup.data_loss(out["scores"], y)
        out["reg"] = losses.l2_penalty(setup.reg_weights, setup.reg) if setup.reg_weights else None
        total = out["loss"] if out["reg"] is None else out["loss"] + out["reg"]
        total.backward()
        return total

    setup.optimizer.step(closure)
    return out["loss"], out["reg"], out["scores"]


def _step_schedules(sched: Any, annealing: Any, per_batch: bool, record: dict[str, Any]) -> None:
    """Advance the per-epoch schedule and momentum annealing; plateau watches validation accuracy
    (or minus the train loss without validation data), which exists only once per epoch."""
    if _is_plateau(sched):  # once per epoch, even when per_batch
        sched.step(record["val_acc"] if record["val_acc"] is not None else -record["train_loss"])
    elif sched is not None and not per_batch:
        sched.step()
    if annealing is not None:
        annealing.step()


def _ask_to_stop(callbacks: Sequence[Callable[[History], bool | None]], history: History) -> bool:
    """Run the epoch-end callbacks; the first that returns True stops the run (status ``stopped``)."""
    for callback in callbacks:
        if callback(history):
            name = getattr(callback, "__name__", type(callback).__name__)
            history.status = "stopped"
            history.stop_reason = f"stopped by {name} after epoch {history.epochs[-1]['epoch']}"
            return True
    return False


def _attach_monitor(
    monitor: bool | dict[str, Any] | Monitor, model: nn.Module, opt: torch.optim.Optimizer, history: History,
    *, compiled: bool,
) -> tuple[Monitor | None, bool]:
    """The Monitor recording into ``history`` (or None), and whether fit built it (and so removes it)."""
    if monitor is False or monitor is None:
        return None, False
    if monitor is True or isinstance(monitor, dict):
        settings = {} if monitor is True else dict(monitor)
        settings.setdefault("activations", not compiled)  # layer hooks and torch.compile do not mix
        settings.setdefault("watch_eval", False)  # fit evaluates in evaluation mode itself
        try:
            return Monitor(model, opt, history=history, **settings), True
        except TypeError as exc:
            raise ConfigError(f"monitor settings {sorted(settings)} are not all Monitor settings: {exc}") from None
    if isinstance(monitor, Monitor):
        if monitor.model is not model:
            raise ConfigError("the Monitor passed to fit watches another model; build it on the model fit trains.")
        if monitor.optimizer is None:
            monitor.watch_optimizer(opt)
        elif monitor.optimizer is not opt:
            raise ConfigError("the Monitor passed to fit watches another optimizer; pass that optimizer to fit "
                              "(optimizer=monitor.optimizer) or build the Monitor without one.")
        monitor.bind(history)
        return monitor, False
    raise ConfigError(f"monitor must be True, False, a dict of Monitor settings or a babysit.Monitor, got {monitor!r}.")


def _tensorboard_logger(tensorboard: bool | str | Path, folder: Path | None) -> list[Any]:
    """A TensorBoard epoch callback when asked for: into ``<run_dir>/tensorboard`` or the folder given."""
    if tensorboard is False or tensorboard is None:
        return []
    if tensorboard is True:
        if folder is None:
            raise ConfigError("tensorboard=True needs run_dir (the event files go to <run_dir>/tensorboard); "
                              "or pass tensorboard='some/folder'.")
        tensorboard = folder / "tensorboard"
    from babysit.reporting import TensorBoardLogger

    return [TensorBoardLogger(Path(tensorboard))]


def _ema_model(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of the weights (and buffers), updated after every step."""
    if not 0.0 < decay < 1.0:
        raise ConfigError(f"ema_decay must be in (0, 1), got ema_decay={decay!r}; typical values: 0.99 .. 0.9999.")
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _is_plateau(sched: Any) -> bool:
    return isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)


def _continue_in_memory(earlier: History, state: TrainingState, fresh: History) -> History:
    """Restore ``earlier.checkpoint`` into ``state``; the new History holds the earlier epochs and this run's meta."""
    if earlier.checkpoint is None:
        raise ConfigError(
            "resume=history needs a History from fit(..., keep_checkpoint=True) that did not diverge: "
            "this one holds no checkpoint."
        )
    payload = copy.deepcopy(earlier.checkpoint)  # the optimizer would train on in the kept tensors themselves
    restore_checkpoint(payload, state)
    history = History.from_dict(copy.deepcopy(earlier.to_dict()), run_dir=fresh.run_dir)
    history.truncate(payload["epoch"], payload["num_steps"])
    history.meta = fresh.meta
    history.status, history.stop_reason, history.findings = "running", None, []
    return history


def _save(folder: Path, state: TrainingState, history: History) -> None:
    """Checkpoint the finished epoch (and copy it to best.pt when validation accuracy improved), then the history."""
    record = history.epochs[-1]
    last = checkpoint_path(folder, "last")
    save_checkpoint(last, state, epoch=record["epoch"], num_steps=len(history.steps["step"]))
    best = history.best_epoch
    if best is not None and best["epoch"] == record["epoch"]:
        shutil.copyfile(last, checkpoint_path(folder, "best"))
    history.save()


def _check_labels(model: nn.Module, batches: TensorBatches | LoaderBatches, val: Any) -> None:
    """Labels must index the model's scores: 0 <= y < C, where C is the width of the model's output."""
    if not isinstance(batches, TensorBatches):
        return
    was_training = model.training
    model.eval()
    with torch.no_grad():
        num_classes = model(batches.X[:2]).shape[-1]
    model.train(was_training)
    splits = [("train", batches.y)] + ([("validation", val[1])] if isinstance(val, tuple) else [])
    for split, y in splits:
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise DataError(
                f"{split} label {bad} is out of range: the model outputs {num_classes} scores, so labels must be "
                f"integers in 0..{num_classes - 1}. Check the labels or the model's number of classes."
            )


def _split_bundle(train_data: Any, val_data: Any) -> tuple[Any, Any]:
    """Accept a DataBundle in place of the train data: use its train and val splits."""
    if hasattr(train_data, "X_train") and hasattr(train_data, "y_train"):
        bundle = train_data
        return (bundle.X_train, bundle.y_train), val_data if val_data is not None else (bundle.X_val, bundle.y_val)
    return train_data, val_data


def _schedule_spec(schedule: Any) -> tuple[Any, bool]:
    if isinstance(schedule, dict) and "per_batch" in schedule:
        spec = {k: v for k, v in schedule.items() if k != "per_batch"}
        return spec, bool(schedule["per_batch"])
    return schedule, False


def _autocast_factory(precision: str, device: torch.device) -> Any:
    """A factory of autocast contexts for bf16, or None for fp32 (no context at all on the hot path)."""
    if precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return None


def _check_settings(*, epochs: int, batch_size: int, reg: float, precision: str, lr: float | None) -> None:
    if not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs must be an integer >= 1, got epochs={epochs!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got batch_size={batch_size!r}.")
    if not (isinstance(reg, (int, float)) and math.isfinite(reg) and reg >= 0):
        raise ConfigError(f"reg (the L2 strength) must be a finite number >= 0, got reg={reg!r}.")
    if lr is not None and not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"lr must be a finite number > 0, got lr={lr!r}. Typical values: 1e-3 .. 1e-1.")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got precision={precision!r}.")
