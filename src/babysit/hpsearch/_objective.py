"""What one trial runs: the trial protocol objectives see, and the adapter that trains a config with ``fit``.

A callable objective is ``objective(params, trial) -> validation accuracy``. It trains ``trial.epochs``
epochs, calls ``trial.report(epoch, val_acc)`` after each, and returns early once ``trial.should_stop()``
says so (the pruner stopped it, or it diverged). A config objective does exactly that through ``fit``'s
epoch callbacks. Optionally an objective continues promising settings instead of training them again:
``trial.keep_state(state)`` hands over its final state, and a later, longer trial of the same setting gets
it back as ``trial.parent_state``, trains epochs ``trial.start_epoch + 1 .. trial.epochs`` and is charged
only those. An objective that ignores ``parent_state`` and reports from epoch 1 is charged every epoch.
The search only ever sees the validation split (lecture H1); the test split stays untouched.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babysit._io import from_json_text, json_text
from babysit.callbacks._base import Callback, StopTraining
from babysit.config import RunConfig, config_from_dict
from babysit.errors import ConfigError
from babysit.history import History

if TYPE_CHECKING:
    from babysit.train.run import Run


class SearchTrial:
    """One trial as an objective sees it.

    Attributes:
        number: the trial's number in the study.
        stage: the stage it belongs to (1 = the coarsest).
        epochs: how many epochs to train (few in coarse stages, more in fine ones).
        params: the sampled hyperparameters, by name.
        run_dir: a folder for its checkpoint and statistics, or None for an in-memory search.
        curve: ``(epoch, val_acc)`` pairs reported so far.
        continues: the number of the shorter trial of the same setting this one continues, or None.
        parent_state: what that trial kept with :meth:`keep_state` (None: train from scratch).
        start_epoch: the epochs that trial trained already (0 when training from scratch).
    """

    def __init__(
        self, optuna_trial: Any, *, params: Mapping[str, Any], stage: int, epochs: int, run_dir: Path | None,
        pruning: bool, continues: int | None = None, parent_state: Any = None, start_epoch: int = 0,
        keeper: Callable[[Any], None] | None = None,
    ) -> None:
        self._trial = optuna_trial
        self._pruning = pruning
        self.number: int = optuna_trial.number
        self.stage = stage
        self.epochs = epochs
        self.params = dict(params)
        self.run_dir = run_dir
        self.curve: list[tuple[int, float]] = []
        self.pruned = False
        self.diverged = False
        self.history: History | None = None
        self.continues = continues if parent_state is not None else None
        self.parent_state = parent_state
        self.start_epoch = start_epoch if parent_state is not None else 0
        self._keeper = keeper

    @property
    def keeps_state(self) -> bool:
        """Whether a longer trial may continue this one (a stage with a next stage): then call keep_state."""
        return self._keeper is not None

    def keep_state(self, state: Any) -> None:
        """Hand over the final training state (tensors and plain containers, e.g. state dicts) so that a
        longer trial of this setting can continue it; does nothing when no later stage will."""
        if self._keeper is not None:
            self._keeper(state)

    def report(self, epoch: int, val_acc: float) -> None:
        """Record the validation accuracy after ``epoch`` (1-based); a NaN or inf marks the trial diverged."""
        try:
            value = float(val_acc)
        except (TypeError, ValueError):
            raise ConfigError(f"trial.report(epoch, val_acc) needs a number, got val_acc={val_acc!r}.") from None
        if self.start_epoch and int(epoch) <= self.start_epoch:  # trained from scratch after all: charge it all
            self.start_epoch, self.continues = 0, None
        self.curve.append((int(epoch), value))
        if not math.isfinite(value):
            self.diverged = True
            return
        self._trial.report(value, step=int(epoch))
        if self._pruning and not self.pruned and self._trial.should_prune():
            self.pruned = True

    def should_stop(self) -> bool:
        """True once the trial was pruned or diverged: the objective should return now."""
        return self.pruned or self.diverged

    def mark_diverged(self) -> None:
        """Say the training diverged (loss NaN/inf) although no NaN accuracy was reported."""
        self.diverged = True

    @property
    def best_reported(self) -> float | None:
        finite = [v for _, v in self.curve if math.isfinite(v)]
        return max(finite) if finite else None

    @property
    def epochs_run(self) -> int:
        """The last epoch reported (a continued trial counts the epochs it inherited too)."""
        return max((e for e, _ in self.curve), default=self.start_epoch)

    @property
    def epochs_trained(self) -> int:
        """The epochs this trial trained itself: what the search's budget is charged."""
        return self.epochs_run - self.start_epoch

    def __repr__(self) -> str:
        return f"SearchTrial(number={self.number}, stage={self.stage}, epochs={self.epochs}, params={self.params})"


# --- config objectives ---------------------------------------------------------------------------------
def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """``set_dotted(cfg, "optimizer.lr", 0.01)``: write a value at a dotted config key."""
    node = raw
    *parents, leaf = key.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"search space key {key!r}: {part!r} is a value in the config, not a section.")
        node = child
    node[leaf] = value


class ConfigObjective:
    """Train the config with the sampled values at its dotted keys (``optimizer.lr``, ``train.reg``, ...)."""

    def __init__(self, raw: Mapping[str, Any], source: str = "config") -> None:
        self.raw = {k: copy.deepcopy(v) for k, v in raw.items() if k != "search"}
        self.source = source
        self.base = config_from_dict(copy.deepcopy(self.raw), source=source)

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def epochs(self) -> int:
        return self.base.train.epochs

    def trial_raw(self, params: Mapping[str, Any], epochs: int | None = None) -> dict[str, Any]:
        """The config dict of a trial: the base config with ``params`` written in (and its epochs)."""
        raw = copy.deepcopy(self.raw)
        for key, value in params.items():
            set_dotted(raw, key, value)
        if epochs is not None:
            set_dotted(raw, "train.epochs", int(epochs))
        return raw

    def trial_config(self, params: Mapping[str, Any], epochs: int | None = None) -> RunConfig:
        return config_from_dict(self.trial_raw(params, epochs), source=f"{self.source} with {dict(params)}")

    def warm_up(self) -> None:
        """Pay a process's one-time costs before its first trial (imports, the data split, torch's first
        kernels), so that trial's time, heartbeat and the workers' trials per minute reflect training."""
        import torch

        from babysit import models
        from babysit.train import loop  # noqa: F401  (the import is the point)

        cfg = self.trial_config({})  # builds the update rule once: torch.optim's first use imports torch._dynamo
        bundle = load_data(cfg)
        model = models.build(
            cfg.model.kind, input_shape=bundle.input_shape, num_classes=bundle.num_classes, seed=cfg.seed,
            **cfg.model_options(),
        )
        model(torch.as_tensor(bundle.X_train[:64])).float().logsumexp(dim=1).mean().backward()

    def __call__(self, params: Mapping[str, Any], trial: SearchTrial) -> float:
        from babysit import models
        from babysit.train import KeepFinalState, fit
        from babysit.train.from_config import fit_arguments

        cfg = self.trial_config(params, trial.epochs)
        bundle = load_data(cfg)
        model = models.build(
            cfg.model.kind, input_shape=bundle.input_shape, num_classes=bundle.num_classes, seed=cfg.seed,
            **cfg.model_options(),
        )
        earlier = None if trial.parent_state is None else _earlier_history(trial.parent_state)
        keep_best = BestWeights(model, None if trial.parent_state is None else trial.parent_state.get("best"))
        arguments = fit_arguments(cfg)
        arguments["callbacks"] += [keep_best, PruneTrial(trial)] + ([KeepFinalState()] if trial.keeps_state else [])
        arguments["options"] = replace(arguments["options"], progress=False)
        with _quiet("babysit"):  # a trial's own notes (diagnosis, divergence) would drown the search's progress
            history = fit(model, bundle, run_dir=None, resume=earlier if earlier is not None else False, **arguments)
        if history.status == "diverged":
            trial.mark_diverged()
        trial.history = history
        if history.checkpoint is not None:
            # the history as JSON text: a state file is read back with weights_only=True (tensors and plain data)
            trial.keep_state({"checkpoint": history.checkpoint, "history": json_text(history.to_dict()),
                              "best": keep_best.payload()})
        if trial.run_dir is not None:
            import tomli_w

            history.meta["data"] = bundle.summary()
            history.meta["search"] = {"trial": trial.number, "stage": trial.stage, "params": dict(params)}
            history.save(trial.run_dir)
            keep_best.save(trial.run_dir)
            (trial.run_dir / "config.toml").write_text(tomli_w.dumps(cfg.saved_dict()))  # secrets as ***
        best = history.best_val_acc
        return 0.0 if best is None else best


class PruneTrial(Callback):
    """Report every epoch's validation accuracy to the search; stop the run when the trial is pruned or diverged."""

    def __init__(self, trial: SearchTrial) -> None:
        self.trial = trial

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        val = record.get("val_acc")
        self.trial.report(record["epoch"], math.nan if val is None else val)
        if self.trial.should_stop():
            why = "diverged" if self.trial.diverged else "pruned by the search"
            raise StopTraining(f"trial {self.trial.number} {why} after epoch {record['epoch']}")


class BestWeights(Callback):
    """A ``fit`` callback that keeps a copy of the weights of the best validation epoch so far.

    A trial is trained without a run folder (no checkpoint and history written every epoch: a third of a
    short trial's time) and saves once at its end: ``history.jsonl`` and the best weights as
    ``checkpoints/best.pt``, which is what the report, ``load_weights`` and ensembles read. A trial is never
    resumed (a trial that was running when its worker died is run again), so nothing more is needed.
    """

    def __init__(self, model: Any, earlier: Mapping[str, Any] | None = None) -> None:
        self.model = model
        self.weights: dict[str, Any] | None = None
        self.epoch = self.num_steps = 0
        if earlier:  # a continued trial: the best epoch so far may be one it inherited
            self.weights, self.epoch, self.num_steps = earlier["weights"], earlier["epoch"], earlier["num_steps"]

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        history = run.history
        best = history.best_epoch
        if best is not None and best["epoch"] == record["epoch"]:
            self.weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.epoch, self.num_steps = best["epoch"], history.num_steps

    def payload(self) -> dict[str, Any] | None:
        """The best weights and when they were reached (kept for a trial that continues this one)."""
        if self.weights is None:
            return None
        return {"weights": self.weights, "epoch": self.epoch, "num_steps": self.num_steps}

    def save(self, run_dir: Path) -> None:
        from babysit.train.checkpoint import checkpoint_path, save_weights

        if self.weights is not None:
            save_weights(checkpoint_path(run_dir, "best"), self.weights, epoch=self.epoch, num_steps=self.num_steps)


def _earlier_history(state: Mapping[str, Any]) -> History:
    """The History a continued trial resumes: the shorter trial's epochs and its final checkpoint."""
    earlier = History.from_dict(from_json_text(state["history"]))
    earlier.checkpoint = state["checkpoint"]
    return earlier


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


_DATA_CACHE: dict[str, Any] = {}


def load_data(cfg: RunConfig) -> Any:
    """The config's DataBundle, loaded once per process (every trial of a search shares the same split)."""
    from babysit import data

    key = json.dumps([cfg.data.source, cfg.data_options()], sort_keys=True, default=str)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = data.load(cfg.data.source, **cfg.data_options())
    return _DATA_CACHE[key]
