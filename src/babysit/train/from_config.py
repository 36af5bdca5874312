"""From a validated config to a trained run folder: data, model, ``fit``, and the config saved beside it."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomli_w
from torch import nn

from babysit import data, losses, models
from babysit._runlog import LOG_FILE
from babysit.config import RunConfig
from babysit.errors import CheckpointError, ConfigError
from babysit.history import HISTORY_FILE, History, holds_history
from babysit.optim import AnnealMomentum
from babysit.train._lock import is_locked
from babysit.train.loop import fit
from babysit.train.options import FitOptions

log = logging.getLogger("babysit")
CONFIG_FILE = "config.toml"


@dataclass
class Prepared:
    """The data and the freshly initialised model a config describes."""

    bundle: data.DataBundle
    model: nn.Module


def prepare(cfg: RunConfig) -> Prepared:
    """Load the data and build the model of ``cfg`` (seeded, so the same config gives the same init)."""
    bundle = data.load(cfg.data.source, **cfg.data_options())
    model = models.build(
        cfg.model.kind, input_shape=bundle.input_shape, num_classes=bundle.num_classes, seed=cfg.seed,
        **cfg.model_options(),
    )
    return Prepared(bundle, model)


def gradcheck_target(cfg: RunConfig, examples: int = 8) -> tuple[Any, ...]:
    """What ``babysit gradcheck CONFIG`` checks: the config's model, data loss, a few training examples,
    and its L2 term (checked apart from the data loss, lecture G8) when ``train.reg > 0``."""
    prepared = prepare(cfg)
    X, y = prepared.bundle.X_train[:examples], prepared.bundle.y_train[:examples]
    loss_fn = losses.resolve(cfg.train.loss)
    if cfg.train.reg <= 0:
        return prepared.model, loss_fn, X, y
    reg = cfg.train.reg

    def l2(model: nn.Module) -> Any:
        return losses.l2_penalty(losses.regularized_weights(model), reg)

    return prepared.model, loss_fn, X, y, l2


def choose_run_dir(cfg: RunConfig, *, resume: bool, overwrite: bool) -> Path:
    """The folder to write into, claimed for this run: never over an earlier run (a free ``<name>-N`` is taken
    instead), never shared with a run started at the same moment (the claim is creating ``config.toml``
    exclusively), and with ``overwrite`` the earlier run's files removed first (unless it is still running)."""
    folder = cfg.run_dir
    if resume:
        if not holds_history(folder):
            raise ConfigError(f"--resume: no run to resume in {str(folder)!r}; start it without --resume first.")
        return folder
    if overwrite and folder.exists():
        if is_locked(folder):
            raise CheckpointError(f"--overwrite: {str(folder)!r} is being written by a run that is still going; "
                                  "stop it first, or give this run another name.")
        remove_run(folder)
    candidate, n = folder, 1
    while not _claim(candidate):
        n += 1
        candidate = folder.with_name(f"{folder.name}-{n}")
    if candidate != folder:
        log.info("%s already holds a run; writing to %s (use --overwrite to replace it)", folder, candidate)
    return candidate


def _claim(folder: Path) -> bool:
    """Take ``folder`` for a new run: True when it held no run (no history, no checkpoints; other files do not
    count) and this process created its ``config.toml``."""
    if holds_history(folder) or (folder / "checkpoints").exists():
        return False
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with open(folder / CONFIG_FILE, "x", encoding="utf-8"):
            pass
    except FileExistsError:
        return False
    return True


def remove_run(folder: Path) -> None:
    """Remove what a run wrote into ``folder`` (history, checkpoints, report, event files, config, lock); files
    a user put there are kept."""
    for name in (LOG_FILE, HISTORY_FILE, CONFIG_FILE, "report.html", ".lock"):
        (folder / name).unlink(missing_ok=True)
    for name in ("checkpoints", "tensorboard"):
        if (folder / name).is_dir():
            shutil.rmtree(folder / name)


def fit_arguments(cfg: RunConfig) -> dict[str, Any]:
    """The ``fit`` arguments a config gives (everything but the model, the data and the run folder), momentum
    annealing included as its callback; the search's trials and ``train_from_config`` both train this way."""
    annealing = [] if cfg.momentum_annealing is None else [AnnealMomentum(**cfg.momentum_annealing.model_dump())]
    return dict(
        loss_fn=cfg.train.loss, optimizer=cfg.optimizer_spec(), lr=cfg.optimizer.lr, reg=cfg.train.reg,
        schedule=cfg.schedule_spec(), epochs=cfg.train.epochs, batch_size=cfg.train.batch_size,
        monitor=cfg.train.monitor, device=cfg.device, seed=cfg.seed, callbacks=annealing,
        options=FitOptions(precision=cfg.train.precision, compile=cfg.train.compile, report=False,
                           clip_grad_norm=cfg.train.clip_grad_norm, accumulate=cfg.train.accumulate,
                           checkpoint_every_steps=cfg.train.checkpoint_every_steps,
                           checkpoint_every_minutes=cfg.train.checkpoint_every_minutes,
                           checkpoint_every_epochs=cfg.train.checkpoint_every_epochs,
                           meta={"config": cfg.saved_dict()}),  # secrets (a storage URL's password) redacted
    )  # report=False: a config's page follows its train.report (train_from_config adds it), a trial draws none


def train_from_config(
    cfg: RunConfig, *, resume: bool = False, overwrite: bool = False, progress: bool | None = None,
    run_dir: Path | None = None,
) -> History:
    """Train the run a config describes into its run folder (with its report) and return the History."""
    folder = run_dir if run_dir is not None else choose_run_dir(cfg, resume=resume, overwrite=overwrite)
    prepared = prepare(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    if not resume:
        (folder / CONFIG_FILE).write_text(tomli_w.dumps(cfg.saved_dict()), encoding="utf-8")
    arguments = fit_arguments(cfg)
    arguments["callbacks"] += _report_callbacks(cfg)
    arguments["options"] = replace(arguments["options"], progress=progress,
                                   meta={**arguments["options"].meta, "data": prepared.bundle.summary()})
    return fit(prepared.model, prepared.bundle, run_dir=folder, resume=resume, **arguments)


def _report_callbacks(cfg: RunConfig) -> list[Any]:
    """The callbacks a config asks for: the report page (live, then final), TensorBoard event files and the
    experiment trackers of ``[trackers]`` (each imports its package only when asked for)."""
    from babysit.reporting import LiveReport, TensorBoardLogger

    callbacks: list[Any] = [LiveReport()] if cfg.train.report else []
    if cfg.train.tensorboard:
        callbacks.append(TensorBoardLogger())
    if cfg.trackers is not None and cfg.trackers.mlflow is not None:
        from babysit.integrations.mlflow import MLflowLogger

        callbacks.append(MLflowLogger(**cfg.trackers.mlflow.model_dump()))
    if cfg.trackers is not None and cfg.trackers.wandb is not None:
        from babysit.integrations.wandb import WandbLogger

        callbacks.append(WandbLogger(**cfg.trackers.wandb.model_dump()))
    return callbacks
