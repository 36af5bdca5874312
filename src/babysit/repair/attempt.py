"""One attempt of the doctor: a short babysat run of a config in its own run folder, and what it showed."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w
from torch import nn

from babysit import data as data_mod
from babysit import models
from babysit.config import RunConfig
from babysit.history import History
from babysit.repair.remedies import with_fixes

__all__ = ["Attempt", "Sources", "run_attempt"]

ModelSource = nn.Module | Callable[[RunConfig], nn.Module] | None
DataSource = data_mod.DataBundle | Callable[[RunConfig], data_mod.DataBundle] | None


@dataclass(frozen=True)
class Sources:
    """Where an attempt's model and data come from: the config (None), or the caller's code.

    ``model``: an ``nn.Module`` (copied for every attempt, so config fixes under ``model.*`` cannot reach it) or
    a function ``cfg -> nn.Module`` (it sees every fix). ``data``: a DataBundle (``data.*`` fixes cannot reach
    it) or a function ``cfg -> DataBundle``.
    """

    model: ModelSource = None
    data: DataSource = None

    def fixed(self, section: str) -> bool:
        """True when fixes of ``[section]`` cannot reach the run (the caller gave a built object)."""
        source = self.model if section == "model" else self.data if section == "data" else None
        return isinstance(source, (nn.Module, data_mod.DataBundle))  # a module is callable, yet no factory

    def bundle(self, cfg: RunConfig) -> data_mod.DataBundle:
        if self.data is None:
            return data_mod.load(cfg.data.source, **cfg.data_options())
        return self.data(cfg) if callable(self.data) else self.data

    def model_for(self, cfg: RunConfig, bundle: data_mod.DataBundle) -> nn.Module:
        if self.model is None:
            return models.build(cfg.model.kind, input_shape=bundle.input_shape, num_classes=bundle.num_classes,
                                seed=cfg.seed, **cfg.model_options())
        if isinstance(self.model, nn.Module):
            return copy.deepcopy(self.model)
        return self.model(cfg)


@dataclass
class Attempt:
    """A run of the doctor: the config it trained, the fix it tried and how it came out.

    ``fix`` is None for the first run (the config as given); ``kept`` is None until the run is judged.
    """

    index: int
    label: str
    config: dict[str, Any]
    run_dir: str
    fix: dict[str, Any] | None = None
    code: str | None = None
    reason: str = ""
    best_val_acc: float | None = None
    n_val: int = 0
    status: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    kept: bool | None = None
    verdict: str = ""
    curves: dict[str, list[Any]] = field(default_factory=dict)

    def loud_codes(self) -> list[str]:
        """The codes of the warning and error findings."""
        return [f["code"] for f in self.findings if f.get("severity") in ("warning", "error")]

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def run_attempt(cfg: RunConfig, folder: Path, *, index: int, label: str, epochs: int, sources: Sources,
                fix: dict[str, Any] | None = None, code: str | None = None, reason: str = "") -> Attempt:
    """Train ``cfg`` for ``epochs`` epochs into ``folder`` (history, checkpoints, config.toml) and diagnose it."""
    from babysit.train.from_config import CONFIG_FILE, fit_arguments
    from babysit.train.loop import fit

    started = time.perf_counter()
    short = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": epochs, "report": False})})
    bundle = sources.bundle(short)
    model = sources.model_for(short, bundle)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(tomli_w.dumps(short.saved_dict()), encoding="utf-8")
    arguments = fit_arguments(short)
    arguments["options"] = replace(arguments["options"], progress=False,
                                   meta={**arguments["options"].meta, "data": bundle.summary()})
    history = fit(model, bundle, run_dir=folder, **arguments)
    return Attempt(index=index, label=label, config=cfg.saved_dict(), run_dir=str(folder), fix=fix, code=code,
                   reason=reason, best_val_acc=history.best_val_acc, n_val=len(bundle.y_val),
                   status=history.status, findings=[f.to_dict() for f in with_fixes(history.findings, cfg)],
                   seconds=time.perf_counter() - started, curves=_curves(history))


def _curves(history: History) -> dict[str, list[Any]]:
    """Per-epoch numbers for the before/after figure (small: one value per epoch)."""
    keys = ("epoch", "train_loss", "val_loss", "train_acc", "val_acc")
    return {k: [e.get(k) for e in history.epochs] for k in keys}
