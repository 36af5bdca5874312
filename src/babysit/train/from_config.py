"""From a validated config to a trained run folder: data, model, ``fit``, and the config saved beside it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from torch import nn

from babysit import data, models
from babysit.config import RunConfig
from babysit.errors import ConfigError
from babysit.history import HISTORY_FILE, History
from babysit.train.loop import fit

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


def choose_run_dir(cfg: RunConfig, *, resume: bool, overwrite: bool) -> Path:
    """The folder to write into: never silently over an earlier run (a free ``<name>-N`` is taken instead)."""
    folder = cfg.run_dir
    if resume:
        if not (folder / HISTORY_FILE).is_file():
            raise ConfigError(f"--resume: no run to resume in {str(folder)!r}; start it without --resume first.")
        return folder
    if overwrite or not folder.exists() or not any(folder.iterdir()):
        return folder
    n = 2
    while (candidate := folder.with_name(f"{folder.name}-{n}")).exists():
        n += 1
    log.info("%s already holds a run; writing to %s (use --overwrite to replace it)", folder, candidate)
    return candidate


def train_from_config(
    cfg: RunConfig, *, resume: bool = False, overwrite: bool = False, progress: bool | None = None,
    run_dir: Path | None = None,
) -> History:
    """Train the run a config describes into its run folder and return the History."""
    folder = run_dir if run_dir is not None else choose_run_dir(cfg, resume=resume, overwrite=overwrite)
    prepared = prepare(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    config_dict = cfg.model_dump(exclude_none=True)
    if not resume:
        (folder / CONFIG_FILE).write_text(tomli_w.dumps(config_dict), encoding="utf-8")
    history = fit(
        prepared.model, prepared.bundle, loss_fn=cfg.train.loss, optimizer=cfg.optimizer_spec(),
        lr=cfg.optimizer.lr, reg=cfg.train.reg, schedule=cfg.schedule_spec(),
        momentum_annealing=_annealing(cfg), epochs=cfg.train.epochs, batch_size=cfg.train.batch_size,
        monitor=cfg.train.monitor, run_dir=folder, resume=resume, device=cfg.device,
        precision=cfg.train.precision, compile=cfg.train.compile, seed=cfg.seed, progress=progress,
        config=config_dict,
    )
    history.meta["data"] = prepared.bundle.summary()
    history.save()
    return history


def _annealing(cfg: RunConfig) -> dict[str, Any] | None:
    return None if cfg.momentum_annealing is None else cfg.momentum_annealing.model_dump()
