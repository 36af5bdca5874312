"""From a validated config to a trained run folder: data, model, ``fit``, and the config saved beside it."""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomli_w
from torch import nn

from babysit import data, losses, models
from babysit._io import write_text_atomic
from babysit._runlog import LOG_FILE
from babysit.callbacks._base import Callback
from babysit.config import RunConfig, tomllib
from babysit.errors import CheckpointError, ConfigError
from babysit.history import HISTORY_FILE, History, holds_history
from babysit.optim import AnnealMomentum
from babysit.train._device import resolve_device
from babysit.train._lock import is_locked
from babysit.train.checkpoint import checkpoint_path
from babysit.train.loop import fit
from babysit.train.options import FitOptions
from babysit.train.run import Run
from babysit.train.run_folder import saved_point

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
    if resume:
        return resumable_run_dir(cfg)
    return _claim_run_dir(cfg, overwrite=overwrite).folder


def resumable_run_dir(cfg: RunConfig) -> Path:
    """The config's run folder when ``fit(resume=True)`` can continue it: it holds a checkpoint, or a run log
    that stopped before its first save (which fit starts again from its beginning); else a ConfigError that
    says why not and what to do."""
    return _check_resumable(cfg.run_dir)


def _check_resumable(folder: Path) -> Path:
    point, saved = saved_point(folder)
    if point in ("checkpoint", "untrained"):  # untrained: fit starts it again from its beginning
        return folder
    if point == "none":
        raise ConfigError(f"--resume: no run to resume in {str(folder)!r} (nothing was saved there); start it "
                          "without --resume.")
    assert saved is not None
    why = f"it {saved.status} before its first checkpoint" if saved.status in ("diverged", "failed") \
        else "it stopped before its first checkpoint"
    raise ConfigError(f"--resume: {str(folder)!r} holds a run but no checkpoint ({why}), so there is nothing to "
                      "continue; start it again with --overwrite (after fixing what stopped it: babysit diagnose "
                      f"{folder}).")


@dataclass
class _Claim:
    """A run folder this start took, and what was in it before (so a failed start removes only its own files)."""

    folder: Path
    created: bool  # the folder itself did not exist before
    before: frozenset[str]  # the names in it before the claim

    def release(self) -> None:
        """Remove what this start wrote into the folder (the folder too when this start created it and nothing
        else is in it); a file that was there before, or that is not a run's, is kept."""
        for name in (*RUN_FILES, *RUN_FOLDERS):
            path = self.folder / name
            if name in self.before or not (path.exists() or path.is_symlink()):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if self.created:
            with contextlib.suppress(OSError):  # something else is in it now: not this start's to remove
                self.folder.rmdir()


def _claim_run_dir(cfg: RunConfig, *, overwrite: bool) -> _Claim:
    folder = cfg.run_dir
    if overwrite and folder.exists():
        if is_locked(folder):
            raise CheckpointError(f"--overwrite: {str(folder)!r} is being written by a run that is still going; "
                                  "stop it first, or give this run another name.")
        remove_run(folder)
    candidate, n = folder, 1
    while (claim := _claim(candidate)) is None:
        n += 1
        candidate = folder.with_name(f"{folder.name}-{n}")
    if candidate != folder:
        log.info("%s already holds a run; writing to %s (use --overwrite to replace it)", folder, candidate)
    return claim


def _claim(folder: Path) -> _Claim | None:
    """Take ``folder`` for a new run: the claim when it held no run (no history, no checkpoints; other files do
    not count) and this process created its ``config.toml``, else None."""
    if holds_history(folder) or (folder / "checkpoints").exists():
        return None
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    before = frozenset(p.name for p in folder.iterdir())
    try:
        with open(folder / CONFIG_FILE, "x", encoding="utf-8"):
            pass
    except FileExistsError:
        return None
    return _Claim(folder, created, before)


RUN_FILES = (LOG_FILE, HISTORY_FILE, CONFIG_FILE, "report.html", ".lock")  # what a run writes into its folder
RUN_FOLDERS = ("checkpoints", "tensorboard", "wandb")


def remove_run(folder: Path) -> None:
    """Remove what a run wrote into ``folder`` (history, checkpoints, report, event files, config, lock); files
    a user put there are kept."""
    for name in RUN_FILES:
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


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped :func:`train_from_config`: where the run is and what it kept.

    Attributes:
        run_dir: the run's folder (None: interrupted before one was chosen).
        saved: whether the folder holds a checkpoint to continue from.
        resumable: whether ``resume=True`` (``--resume``) continues it (from its checkpoint, or from its beginning
            when it stopped before its first save).
        removed: whether this start's folder was removed again (nothing was saved in it).
    """

    def __init__(self, run_dir: Path | None, *, saved: bool, resumable: bool, removed: bool) -> None:
        super().__init__("interrupted")
        self.run_dir, self.saved, self.resumable, self.removed = run_dir, saved, resumable, removed


def train_from_config(
    cfg: RunConfig, *, resume: bool = False, overwrite: bool = False, progress: bool | None = None,
    run_dir: Path | None = None,
) -> History:
    """Train the run a config describes into its run folder (with its report) and return the History.

    The data, the model and the device are checked before a run folder is claimed (or an earlier run removed by
    ``overwrite``), and a start that fails or is interrupted before training saved anything removes what it
    wrote, so it leaves no run behind and the next start uses the same folder. With ``resume`` the config may
    differ from the run's own only in what a continued run can take (:data:`RESUMABLE`, the epoch total above
    all); the folder's config.toml and the History's meta then record the settings the run continued with.
    Ctrl-C or SIGTERM raises :class:`RunInterrupted` (a KeyboardInterrupt) saying what was kept.
    """
    claim: _Claim | None = None
    folder = run_dir
    try:
        if resume:
            folder = folder if folder is not None else resumable_run_dir(cfg)
            check_resumed_config(cfg, folder)
        prepared = prepare(cfg)
        resolve_device(cfg.device)  # a device that is not there fails here, before a folder is claimed
        if folder is None:
            claim = _claim_run_dir(cfg, overwrite=overwrite)
            folder = claim.folder
        folder.mkdir(parents=True, exist_ok=True)
        if not resume:
            (folder / CONFIG_FILE).write_text(tomli_w.dumps(cfg.saved_dict()), encoding="utf-8")
        arguments = fit_arguments(cfg)
        arguments["callbacks"] += _report_callbacks(cfg) + ([_ResumedConfig(cfg)] if resume else [])
        arguments["options"] = replace(arguments["options"], progress=progress,
                                       meta={**arguments["options"].meta, "data": prepared.bundle.summary()})
        return fit(prepared.model, prepared.bundle, run_dir=folder, resume=resume, **arguments)
    except BaseException as exc:
        removed = claim is not None and _nothing_saved(claim.folder)
        if removed:
            claim.release()  # type: ignore[union-attr]
        if not isinstance(exc, KeyboardInterrupt):
            raise
        saved = folder is not None and not removed and checkpoint_path(folder, "last").exists()
        resumable = folder is not None and not removed and _resumable(folder)
        raise RunInterrupted(folder, saved=saved, resumable=resumable, removed=removed) from exc


def _nothing_saved(folder: Path) -> bool:
    """Whether ``folder`` holds no checkpoint and no trained epoch or step (a start that stopped before training
    saved anything: it is no run)."""
    try:
        return saved_point(folder)[0] in ("none", "untrained")
    except Exception:  # a damaged log: not this start's to judge, keep it
        return False


def _resumable(folder: Path) -> bool:
    try:
        _check_resumable(folder)
    except Exception:
        return False
    return True


# What a resumed run may change: the epoch total, how often it saves, and where its results also go. Everything
# else is the run's own (the optimizer's state, the schedule's, the batches' order and the weights continue):
# a resume that changed it would train with settings other than those its folder records.
RESUMABLE = ("train.epochs", "train.checkpoint_every_steps", "train.checkpoint_every_minutes",
             "train.checkpoint_every_epochs", "train.report", "train.tensorboard", "trackers")
_NOT_COMPARED = ("name", "runs_dir", "redacted", "search")  # the folder itself; where secrets live; search-only


def check_resumed_config(cfg: RunConfig, folder: Path) -> None:
    """Raise a ConfigError naming the settings in which ``cfg`` differs from the run saved in ``folder``, beyond
    what a resumed run can change (:data:`RESUMABLE`)."""
    saved = _saved_config(folder)
    if saved is None:
        return  # nothing recorded to compare with (a run fit() made without a config)
    old, new = _flat(saved), _flat(cfg.saved_dict())
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k, _MISSING) != new.get(k, _MISSING)
                     and not _under(k, RESUMABLE + _NOT_COMPARED))
    if not changed:
        return
    shown = ", ".join(f"{k} ({_show(old.get(k, _MISSING))} -> {_show(new.get(k, _MISSING))})" for k in changed)
    raise ConfigError(
        f"--resume continues the run in {str(folder)!r} with the settings it started with, and {shown} "
        f"{'differs' if len(changed) == 1 else 'differ'} from them; a resumed run cannot take "
        f"{'that' if len(changed) == 1 else 'those'}. On --resume only train.epochs (the total to reach), "
        "train.checkpoint_every_steps/_minutes/_epochs, train.report, train.tensorboard and [trackers] may "
        "change. To train with other settings start a new run: leave out --resume (it goes to a new "
        "<name>-N folder) or add --overwrite to replace this one."
    )


_MISSING = object()


def _show(value: Any) -> str:
    return "unset" if value is _MISSING else repr(value)


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _saved_config(folder: Path) -> dict[str, Any] | None:
    """The config a run folder records: its config.toml, else its History's meta (None when neither has one)."""
    path = folder / CONFIG_FILE
    if path.is_file():
        try:
            saved = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            saved = {}
        if saved:
            return saved
    if holds_history(folder):
        config = History.load(folder).meta.get("config")
        if isinstance(config, dict) and config:
            return config
    return None


class _ResumedConfig(Callback):
    """A resumed run's config.toml and History meta take the settings it continues with (a new epoch total), so
    the folder and its report say what ran."""

    order = 105  # after the run folder took its lock (100): a run still going is never written over

    def __init__(self, cfg: RunConfig) -> None:
        self.config, self.epochs = cfg.saved_dict(), cfg.train.epochs

    def on_fit_start(self, run: Run) -> None:
        run.history.meta.update(config=self.config, epochs=self.epochs)
        if run.run_dir is not None:
            write_text_atomic(run.run_dir / CONFIG_FILE, tomli_w.dumps(self.config))


def _report_callbacks(cfg: RunConfig) -> list[Any]:
    """The callbacks a config asks for: the report page (live, then final), TensorBoard event files and the
    experiment trackers of ``[trackers]`` (each imports its package only when asked for)."""
    from babysit.reporting import LiveReport, TensorBoardLogger

    callbacks: list[Any] = [_final_page_may_be_skipped(LiveReport)()] if cfg.train.report else []
    if cfg.train.tensorboard:
        callbacks.append(TensorBoardLogger())
    if cfg.trackers is not None and cfg.trackers.mlflow is not None:
        from babysit.integrations.mlflow import MLflowLogger

        callbacks.append(MLflowLogger(**cfg.trackers.mlflow.model_dump()))
    if cfg.trackers is not None and cfg.trackers.wandb is not None:
        from babysit.integrations.wandb import WandbLogger

        callbacks.append(WandbLogger(**cfg.trackers.wandb.model_dump()))
    return callbacks


def _final_page_may_be_skipped(live_report: type[Any]) -> type[Any]:
    """LiveReport whose final page a Ctrl-C (or SIGTERM) while it is being drawn skips with one line saying how to
    draw it later, rather than an error (a second Ctrl-C after the first stopped the run, while its page is drawn:
    the run's checkpoint and log are saved by then, and the first interrupt still ends the run)."""

    class _Report(live_report):  # type: ignore[misc, valid-type]
        @property
        def state_key(self) -> str:
            return "LiveReport"  # the name its state has in checkpoints

        def on_fit_end(self, run: Run, status: str) -> None:
            try:
                super().on_fit_end(run, status)
            except KeyboardInterrupt:
                folder = self.run_dir or run.history.run_dir
                log.warning("report.html not drawn (stopped while drawing it); babysit report %s draws it",
                            folder)  # the interrupt skipped only the page: the run ends as it was ending

    return _Report
