"""``fit``: the lecture's training loop, readable top to bottom.

Epochs are the unit (lecture B1). Each step: forward, data loss, L2 term kept apart, backward, the update
rule, and nothing that waits for the device: per-step losses and correct counts stay on the device as
tensors and are read once per epoch. A non-finite loss is looked for every ``CHECK_EVERY`` steps and at
each epoch's end; it stops the run cleanly with the last good checkpoint kept.

Everything else (the monitor, the run folder and its checkpoints, the diagnosis, the progress bar, and
whatever the caller brings: early stopping, EMA, the live report, TensorBoard, a search's pruning) is a
:class:`babysit.Callback` called at named moments; ``fit`` itself is the loop and its one close path.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from babysit import losses, optim, schedules
from babysit._checks import check_module
from babysit._runlog import RunLog
from babysit.callbacks import Callback, Diagnose, ProgressBar, StopTraining
from babysit.errors import CheckpointError, ConfigError
from babysit.history import History
from babysit.monitors import Monitor
from babysit.monitors._callback import MonitorCallback
from babysit.train._batches import LoaderBatches, TensorBatches, make_batches
from babysit.train._device import resolve_device
from babysit.train._distributed import process_group, reduce_tally, wrap
from babysit.train._evaluate import evaluate, to_device_pair
from babysit.train._inputs import (
    callback_list,
    check_labels,
    check_settings,
    label_out_of_range,
    schedule_spec,
    split_bundle,
)
from babysit.train._interrupt import (
    held_interrupt,
    interrupt_behind,
    interrupt_requested,
    interrupts_between_steps,
    raise_if_interrupted,
    sigterm_as_interrupt,
)
from babysit.train._meta import run_meta
from babysit.train._step import Step
from babysit.train._tally import DRAIN_EVERY, EpochTally
from babysit.train.checkpoint import TrainingState, checkpoint_path, read_checkpoint, restore_checkpoint
from babysit.train.options import FitOptions
from babysit.train.run import Run, load_callback_states, ordered
from babysit.train.run_folder import RunFolder, saved_point

log = logging.getLogger("babysit")
CHECK_EVERY = 50  # steps between non-finite checks inside an epoch (one device sync each)


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
    epochs: int = 10,
    batch_size: int = 64,
    monitor: bool | dict[str, Any] | Monitor = True,
    run_dir: str | Path | None = None,
    resume: bool | History = False,
    device: str | torch.device = "auto",
    seed: int = 0,
    callbacks: Callback | Callable[[History], bool | None] | Sequence[Callback | Callable[[History], bool | None]] = (),
    options: FitOptions | Mapping[str, Any] | None = None,
) -> History:
    """Train ``model`` with the lecture's update rules and schedules, recording everything into a History.

    Args:
        model: any ``nn.Module`` mapping a batch to class scores ``(N, C)``.
        train_data: an ``(X, y)`` pair of tensors or arrays, a ``Dataset`` of ``(x, y)``, a ``DataLoader``,
            or a ``babysit.data.DataBundle`` (its train and val splits are used).
        val_data: the same forms, or None (then no validation numbers and no best checkpoint; fit logs a warning
            saying so).
        loss_fn: ``"softmax"``, ``"svm"`` or a callable ``(scores, targets) -> scalar`` data loss.
        optimizer: an update-rule name (``sgd``, ``momentum``, ``nesterov``, ``adagrad``, ``rmsprop``,
            ``adam``, ``adamw``, ``lbfgs``), a dict ``{"name": ..., **settings}``, or a built optimizer.
        lr: the initial learning rate (default: the rule's default, 1e-2 for SGD).
        reg: L2 strength; ``0.5 * reg * sum(W**2)`` is added as its own term and recorded apart.
        schedule: a schedule name or ``{"name": ..., **settings}`` (stepped once per epoch; add
            ``"per_batch": True`` to step it every batch with t counted in fractional epochs).
        epochs: the number of epochs to train in total (also when resuming).
        batch_size: examples per mini-batch.
        monitor: babysit every layer (lecture B4, B5): True builds a :class:`babysit.Monitor` sampling every
            ``monitors.DEFAULT_EVERY``-th step, a dict gives its settings (``{"every": 5}``), a Monitor
            instance is used as it is, False records nothing per layer. The run is diagnosed at its end in
            every case (``history.findings``); without the Monitor only the curves are judged.
        run_dir: a folder for history and checkpoints (last and best); None keeps the run in memory.
        resume: True continues the run saved in ``run_dir`` from its last checkpoint; a History that holds a
            ``checkpoint`` (see :class:`babysit.train.KeepFinalState`) continues that run from memory (same
            model, data and settings; ``epochs`` is the new total). Either way the result equals one
            uninterrupted run, callbacks' states included.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ...
        seed: seeds the global RNG (init, dropout) and the batch shuffling.
        callbacks: :class:`babysit.Callback` instances (e.g. ``EarlyStopping``, ``EMA``, ``AnnealMomentum``,
            ``LiveReport``, ``TensorBoardLogger``, your own); a plain function ``f(history) -> bool`` is called
            after every epoch and stops the run when it returns True. One callback alone needs no list.
        options: :class:`babysit.train.FitOptions` (or a dict of them): precision, compile, progress bar, meta.

    Returns:
        The History; ``history.status`` is ``completed``, ``stopped`` (a callback raised ``StopTraining``) or
        ``diverged``. On Ctrl-C or SIGTERM the step in progress finishes, the run folder saves there (a resume
        continues at the next step; a second Ctrl-C stops at once and keeps the last save), the callbacks close
        and the KeyboardInterrupt is raised again, also when a clean-up it cut short failed on its way out (that
        error is the interrupt's); any other error likewise.
    """
    opts = FitOptions.of(options)
    check_module(model, "fit")
    callbacks = callback_list(callbacks)
    check_settings(epochs=epochs, batch_size=batch_size, reg=reg, lr=lr)
    if resume is True and run_dir is None:
        raise ConfigError("resume=True needs run_dir: the folder of the run to continue.")
    # --- data, model, update rule, schedule ---------------------------------------------------------------
    train_data, val_data = split_bundle(train_data, val_data)
    dev = resolve_device(device)
    rank, world = process_group()  # (0, 1) unless started by torchrun with a process group
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model.to(dev)
    batches = make_batches(train_data, batch_size, generator, dev, rank=rank, world=world)
    val = None if val_data is None else to_device_pair(val_data, dev)
    check_labels(model, batches, val)
    data_loss = losses.resolve(loss_fn)
    opt = optim.build_from_spec(optimizer, model.parameters(), lr=lr)
    sched_spec, per_batch = schedule_spec(schedule)
    sched = schedules.build_from_spec(sched_spec, opt, steps_per_epoch=len(batches) if per_batch else 1)
    step = Step(wrap(model, dev) if world > 1 else model, opt, data_loss, reg, opts, dev)

    # --- the run: its history (or the one it resumes) and its callbacks ------------------------------------
    folder = None if run_dir is None else Path(run_dir)
    run = Run(model, opt, sched, History(run_dir=folder), dev, epochs, folder, len(batches), compiled=opts.compile,
              batches=batches, world=world,
              state=TrainingState(model, opt, sched, generator, step.scaler),
              evaluator=None if val is None else functools.partial(_evaluate, val, data_loss, dev))
    run.history.meta = run_meta(
        model, dev, loss=loss_fn if isinstance(loss_fn, str) else getattr(loss_fn, "__name__", "custom"),
        optimizer=optimizer, lr=opt.param_groups[0]["lr"], reg=reg, schedule=schedule, epochs=epochs,
        batch_size=batch_size, seed=seed, precision=opts.precision, compile=opts.compile,
        clip_grad_norm=opts.clip_grad_norm, accumulate=opts.accumulate,
        steps_per_epoch=len(batches), num_train=batches.num_examples, num_val=_num_scored(val),
        **dict(opts.meta or {}),
    )
    saved_states, resumed = _restore(resume, run, batches, rank=rank)
    run.callbacks = _callbacks(callbacks, monitor, folder if rank == 0 else None, opts, resume=resume is True,
                               rank=rank, world=world)

    # --- the loop, and its one close path ------------------------------------------------------------------
    with sigterm_as_interrupt():
        failure: BaseException | None = None
        try:
            run.call("on_fit_start")
            load_callback_states(run.callbacks, saved_states)
            status = _train(run, step, batches, per_batch_schedule=sched if per_batch and not _is_plateau(sched)
                            else None, per_batch=per_batch, resumed=resumed)
        except StopTraining as stop:
            status, run.history.stop_reason = "stopped", stop.reason
        except BaseException as exc:  # every callback closes, then it is raised again
            interrupt = interrupt_behind(exc) or held_interrupt(exc)  # an error Ctrl-C or SIGTERM caused is it
            status, failure = ("failed", exc) if interrupt is None else ("interrupted", interrupt)
        _close(run, status, failure)
    return run.history


def _train(run: Run, step: Step, batches: TensorBatches | LoaderBatches, *, per_batch_schedule: Any,
           per_batch: bool, resumed: EpochTally | None) -> str:
    """The epochs, from the first one not yet done (a checkpoint from inside an epoch continues that epoch at
    its step); returns ``completed`` or ``diverged``."""
    step_hooks = run.hooked("on_step_end")
    # the first Ctrl-C or SIGTERM is held until the step in progress, or the epoch's close, is done (several
    # processes must stop at the same step: there it raises at once)
    with interrupts_between_steps(enabled=run.world == 1):
        for epoch in range(len(run.history.epochs) + 1, run.epochs + 1):
            run.epoch = epoch
            if resumed is not None and resumed.epoch == epoch:
                run.tally = resumed
            else:
                lr = run.optimizer.param_groups[0]["lr"]
                run.tally = EpochTally(epoch, run.history.num_steps, run.steps_per_epoch, lr)
                run.call("on_epoch_start")
            started = time.perf_counter()
            record, stop = _train_epoch(run, step, batches, step_hooks, per_batch_schedule)
            if record is None:  # diverged: stop, keep the last good checkpoint
                return "diverged"
            if run.has_validation:
                record["val_loss"], record["val_acc"] = run.evaluate()  # type: ignore[misc]
                try:
                    run.call("on_validation_end", record)
                except StopTraining as exc:
                    stop = stop or exc
            record["seconds"] = time.perf_counter() - started
            run.history.epochs.append(record)
            run.tally = None
            _step_schedules(run.scheduler, per_batch, record)
            run.call("on_epoch_end", record)
            if interrupt_requested:  # held through the epoch's last step or its close: stop between epochs
                raise_if_interrupted(between_steps=True)
            if stop is not None:
                raise stop
    return "completed"


def _train_epoch(run: Run, step: Step, batches: TensorBatches | LoaderBatches, hooks: list[Callback],
                 per_batch_schedule: Any) -> tuple[dict[str, Any] | None, StopTraining | None]:
    """Train one epoch; return its record (None when the loss became non-finite) and a stop a step asked for.

    The body runs once per step for every model, small ones included, so it does only what each step needs:
    the update, and the step's values kept on the device with the learning rate it used; ``run.step`` is
    brought up to date where a callback can read it; the rest happens every ``CHECK_EVERY`` steps."""
    opt, tally, update = run.optimizer, run.tally, step.update
    assert tally is not None  # _train opened the epoch
    if not run.model.training:  # evaluation puts it back already; train() walks every module (~15 us)
        run.model.train()
    pending, keep = tally.pending, tally.pending.append
    stop = None
    try:
        for X, y in batches:
            if interrupt_requested:  # held for the step in progress, or swallowed in a finalizer: stop here
                raise_if_interrupted(between_steps=True)
            loss, reg_loss, scores = update(X, y)
            keep((loss, reg_loss, (scores.argmax(-1) == y).sum(), opt.param_groups[0]["lr"], y.numel()))
            if per_batch_schedule is not None:
                per_batch_schedule.step()
            if hooks:
                run.step += 1
                try:
                    for callback in hooks:
                        callback.on_step_end(run, loss)
                except StopTraining as exc:
                    stop = exc
                    break
                if tally.diverged:  # a mid-epoch checkpoint read a non-finite loss
                    return None, stop
            if len(pending) % CHECK_EVERY == 0:
                if not torch.isfinite(loss):
                    break  # the drain below finds the step and stops the run
                if len(pending) >= DRAIN_EVERY and not tally.drain(run.history):
                    return None, stop
    except IndexError as exc:
        error = label_out_of_range(exc, "training", f"epoch {tally.epoch}, batch {tally.steps + 1}")
        if error is None:
            raise
        raise error from exc
    finally:
        run.step = tally.first_step + tally.steps
    if not tally.drain(run.history):
        return None, stop
    if run.world > 1:
        reduce_tally(tally, run.device, run.world)
    return tally.record(opt.param_groups[0].get("momentum")), stop


def _close(run: Run, status: str, failure: BaseException | None) -> None:
    """The one way a run ends: the status, ``on_exception`` after a failure, ``on_fit_end`` exactly once for
    every callback (each closes even when another fails), then the failure raised again."""
    history = run.history
    history.status = status
    if status == "interrupted":
        history.stop_reason = "interrupted by Ctrl-C or SIGTERM"
    elif status == "failed":
        history.stop_reason = f"{type(failure).__name__}: {failure}"
    error = None if failure is None else run.call_all("on_exception", failure)
    error = run.call_all("on_fit_end", status) or error
    if failure is not None:
        raise failure
    if error is not None:
        raise error


def _callbacks(user: Sequence[Any], monitor: Any, folder: Path | None, opts: FitOptions, *,
               resume: bool, rank: int = 0, world: int = 1) -> list[Callback]:
    """fit's own callbacks (diagnosis, monitor, run folder, progress bar) and the caller's, in call order; under
    DDP the monitor runs on every process (its readout is collective), the rest on rank 0 only."""
    own: list[Callback] = [Diagnose()] if rank == 0 else []
    if monitor is not False and monitor is not None:
        own.append(MonitorCallback(monitor))
    if folder is not None:
        own.append(RunFolder(folder, resume=resume, every_steps=opts.checkpoint_every_steps,
                             every_minutes=opts.checkpoint_every_minutes, every_epochs=opts.checkpoint_every_epochs))
    if rank == 0 and ProgressBar.wanted(opts.progress):
        own.append(ProgressBar())
    if folder is not None and rank == 0:
        # under DDP only when asked: rank 0 drawing alone for a second holds the others at their next collective
        # (babysit.report draws it after destroy_process_group)
        own += _report(opts.report if opts.report is not None or world == 1 else False, user)
    return ordered([*own, *(c if isinstance(c, Callback) or not callable(c) else _EpochFunction(c) for c in user)])


def _report(wanted: bool | None, user: Sequence[Any]) -> list[Callback]:
    """The report page of a run folder (``FitOptions.report``), unless the caller brings a LiveReport of its own."""
    from babysit.reporting.live import LiveReport  # matplotlib and jinja2 load only when it draws

    if wanted is False or any(isinstance(c, LiveReport) for c in user):
        return []
    if wanted is None and not all(importlib.util.find_spec(name) for name in ("matplotlib", "jinja2")):
        return []  # a core install: no page (babysit.report draws it once the extra is there)
    from babysit._extras import needs

    with needs("report", "fit(..., run_dir=...)'s report.html (or FitOptions(report=False))"):
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
    return [LiveReport()]


class _EpochFunction(Callback):
    """A plain function ``f(history) -> bool`` called after every epoch; True stops the run."""

    def __init__(self, fn: Callable[[History], bool | None]) -> None:
        self.fn, self.name = fn, getattr(fn, "__name__", type(fn).__name__)

    @property
    def state_key(self) -> str:
        return f"function {self.name}"

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        if self.fn(run.history):
            raise StopTraining(f"stopped by {self.name} after epoch {record['epoch']}")


def _restore(resume: bool | History, run: Run, batches: TensorBatches | LoaderBatches, *, rank: int = 0,
             ) -> tuple[dict[str, Any] | None, EpochTally | None]:
    """Restore the run ``resume`` names into ``run`` (training state and history): the callbacks' saved states,
    and the epoch in progress when the checkpoint was taken inside one (the batches continue at its step)."""
    if resume is False:
        return None, None
    if isinstance(resume, History):
        if resume.checkpoint is None:
            raise ConfigError("resume=history needs a History that holds a checkpoint (fit with the KeepFinalState "
                              "callback) and did not diverge: this one holds none.")
        payload = copy.deepcopy(resume.checkpoint)  # the optimizer would train on in the kept tensors themselves
        history = History.from_dict(copy.deepcopy(resume.to_dict()), run_dir=run.run_dir)
        history.meta = run.history.meta
    else:
        assert run.run_dir is not None  # fit refuses resume=True without run_dir
        point, saved = saved_point(run.run_dir)
        if point == "untrained":
            log.warning("%s holds no checkpoint: its run stopped before the first save; it starts from its "
                        "beginning", run.run_dir)
            return None, None
        if point == "uncheckpointed":
            assert saved is not None
            raise CheckpointError(
                f"{str(run.run_dir)!r} holds a run ({saved.status}, {len(saved.epochs)} epochs) with no checkpoint to "
                "continue from: start it again with another run_dir, or remove that run first (CLI: --overwrite)."
            )
        payload = read_checkpoint(checkpoint_path(run.run_dir, "last"))  # "none": it says there is nothing
        offset = payload.get("log_offset")
        if offset is not None and rank == 0:  # the log may run ahead of the checkpoint (a crash): cut it back
            dropped = RunLog(run.run_dir).cut_back(offset, epochs=payload["epoch"], num_steps=payload["num_steps"])
            if dropped:
                log.info("run log cut back by %d bytes written after the last checkpoint", dropped)
        history = History.load(run.run_dir, upto=offset)
        log.info("resuming %s after epoch %d, step %d", run.run_dir, payload["epoch"], payload["num_steps"])
        if history.meta.get("epochs") != run.epochs:  # resume=True, epochs=N continues the run to N epochs
            log.info("the run now trains to %d epochs (it was started for %s)", run.epochs, history.meta.get("epochs"))
            history.meta["epochs"] = run.epochs
    restore_checkpoint(payload, run.state)  # type: ignore[arg-type]
    history.truncate(payload["epoch"], payload["num_steps"])
    history.status, history.stop_reason, history.findings = "running", None, []
    run.history, run.step = history, history.num_steps
    tally = None
    if payload.get("tally"):  # taken inside an epoch: continue it at the step after the checkpoint
        tally = EpochTally.from_state(payload["tally"], run.steps_per_epoch)
        batches.resume_at(tally.steps, payload.get("epoch_order"))
    return payload.get("callbacks"), tally


def _num_scored(val: Any) -> int | None:
    """How many targets the validation accuracy is counted over (tokens for a sequence model): the diagnosis
    judges a train/validation gap against what that many can resolve."""
    if isinstance(val, tuple):
        return int(val[1].numel())
    dataset = getattr(val, "dataset", val)
    return len(dataset) if hasattr(dataset, "__len__") else None


def _evaluate(val: Any, data_loss: losses.LossFn, device: torch.device, module: nn.Module) -> tuple[float, float]:
    return evaluate(module, val, data_loss, device)


def _step_schedules(sched: Any, per_batch: bool, record: dict[str, Any]) -> None:
    """Advance the per-epoch schedule; plateau watches validation accuracy (or minus the train loss without
    validation data), which exists only once per epoch."""
    if _is_plateau(sched):  # once per epoch, even when per_batch
        sched.step(record["val_acc"] if record["val_acc"] is not None else -record["train_loss"])
    elif sched is not None and not per_batch:
        sched.step()


def _is_plateau(sched: Any) -> bool:
    return isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)


