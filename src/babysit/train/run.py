"""``Run``: what callbacks see of a training run in progress, and how the loop calls them.

The loop owns the objects; a ``Run`` only names them for the callbacks (model, optimizer, schedule,
history, counters) and offers the two things several callbacks need: evaluating a module on the
validation data (EMA) and a checkpoint of the whole training state with every callback's own state (the
run folder, a search keeping a trial to continue it).
"""

from __future__ import annotations

import io
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from babysit.callbacks._base import Callback, StopTraining, overrides
from babysit.errors import CheckpointError, ConfigError
from babysit.history import History
from babysit.train._tally import EpochTally
from babysit.train.checkpoint import TrainingState, checkpoint_payload

log = logging.getLogger("babysit")

__all__ = ["Run"]


@dataclass(eq=False)
class Run:
    """The run in progress, as callbacks see it.

    Attributes:
        model: the model being trained.
        optimizer: its ``torch.optim`` optimizer.
        scheduler: the learning-rate schedule, or None.
        history: everything recorded so far (``history.epochs``, ``history.steps``, ...).
        device: where training runs.
        epochs: the planned number of epochs in total.
        run_dir: the run folder, or None for an in-memory run.
        epoch: the epoch in progress (1-based; the last finished one between epochs, 0 before the first).
        step: optimizer steps taken so far in the whole run.
        steps_per_epoch: mini-batches per epoch.
        compiled: whether the forward pass runs through ``torch.compile`` (layer hooks would break it).
        world: how many processes train together under DistributedDataParallel (1 without).
        callbacks: every callback of the run, in call order.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    history: History
    device: torch.device
    epochs: int
    run_dir: Path | None
    steps_per_epoch: int
    compiled: bool = False
    world: int = 1  # processes training together (DistributedDataParallel), 1 without
    epoch: int = 0
    step: int = 0
    callbacks: list[Callback] = field(default_factory=list)
    tally: EpochTally | None = field(default=None, repr=False)  # the epoch in progress
    batches: Any = field(default=None, repr=False)
    state: TrainingState | None = field(default=None, repr=False)
    evaluator: Callable[[nn.Module], tuple[float, float]] | None = field(default=None, repr=False)

    @property
    def has_validation(self) -> bool:
        return self.evaluator is not None

    def evaluate(self, module: nn.Module | None = None) -> tuple[float, float] | None:
        """``(loss, accuracy)`` of ``module`` (default: the model) on the validation data, or None without it."""
        return None if self.evaluator is None else self.evaluator(self.model if module is None else module)

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """The training state now, with every callback's state (shares live tensors: save it or copy it before
        training goes on). Inside an epoch it also holds the epoch's sums so far and the batch order's state,
        so a resume continues at the next step (the pending step values are read first)."""
        if self.state is None:
            raise ConfigError("this Run has no training state to checkpoint.")
        if self.tally is not None:  # inside an epoch
            self.tally.drain(self.history)
            extra = {"tally": self.tally.state(), "epoch_order": getattr(self.batches, "epoch_state", None), **extra}
        return checkpoint_payload(self.state, epoch=len(self.history.epochs), num_steps=self.history.num_steps,
                                  callbacks=callback_states(self.callbacks), **extra)

    # --- calling the callbacks --------------------------------------------------------------------------------
    def call(self, hook: str, *args: Any) -> None:
        """Call ``hook`` on every callback in order. A ``StopTraining`` lets the others run first, then is
        raised; any other exception propagates at once."""
        stop: StopTraining | None = None
        for callback in self.callbacks:
            try:
                getattr(callback, hook)(self, *args)
            except StopTraining as exc:
                stop = stop or exc
        if stop is not None:
            raise stop

    def call_all(self, hook: str, *args: Any) -> BaseException | None:
        """Call ``hook`` on every callback even when some raise (the close path); return the first error."""
        first: BaseException | None = None
        for callback in self.callbacks:
            try:
                getattr(callback, hook)(self, *args)
            except StopTraining:
                pass  # the run is ending anyway
            except BaseException as exc:  # every callback gets its close; the first error is raised after
                log.error("callback %s failed in %s: %s: %s", type(callback).__name__, hook, type(exc).__name__, exc)
                first = first or exc
        return first

    def hooked(self, hook: str) -> list[Callback]:
        """The callbacks that override ``hook`` (the per-step loop calls only these)."""
        return [c for c in self.callbacks if overrides(c, hook)]


def ordered(callbacks: Sequence[Callback]) -> list[Callback]:
    """``callbacks`` sorted by ``order`` (stable: equal orders keep the order given)."""
    for c in callbacks:
        if not isinstance(c, Callback):
            raise ConfigError(
                f"callbacks must be babysit.Callback instances (or functions history -> bool), got {c!r}. "
                "Subclass babysit.Callback and override the hooks you need."
            )
    return sorted(callbacks, key=lambda c: c.order)


def callback_states(callbacks: Sequence[Callback]) -> dict[str, Any]:
    """Every callback's ``state_dict`` under its ``state_key`` (``#2``, ``#3`` for repeats of one key).

    Raises a CheckpointError naming the callback, where and what, for a value a checkpoint cannot hold (one that
    ``torch.load(weights_only=True)`` refuses, e.g. a numpy number): saved, it would make every checkpoint of the
    run unreadable. The walk looks at the states only (tens of microseconds), never at the model."""
    states: dict[str, Any] = {}
    for key, callback in _keyed(callbacks):
        state = callback.state_dict()
        if state:
            found = _not_plain(state, "")
            if found is not None:
                where, value = found
                name = type(callback).__name__ + (key[key.index("#"):] if "#" in key else "")
                raise CheckpointError(
                    f"callback {name}'s state_dict() holds a {_type_name(value)} at {where or 'its top'}, which a "
                    "checkpoint cannot hold (checkpoints are read with torch.load(weights_only=True), so no run could "
                    "resume from it): return plain data instead, e.g. float(x) or int(x) for a numpy number and "
                    "x.tolist() or torch.as_tensor(x) for an array."
                )
            states[key] = state
    return states


# what torch.load(weights_only=True) reads back; containers are walked, tensors (and their subclasses) accepted
_LEAVES = {type(None), bool, int, float, complex, str, bytes, bytearray, torch.Size, torch.device, torch.dtype}
_MAPPINGS = (dict, OrderedDict, Counter)
_SEQUENCES = (list, tuple, set)
_loadable: set[type] = set()  # other types torch.load(weights_only=True) was found to read (add_safe_globals)


def _not_plain(value: Any, where: str) -> tuple[str, Any] | None:
    """The first value inside ``value`` a weights-only load refuses, with where it is (``['hist'][1]``), or None."""
    kind = type(value)
    if kind in _LEAVES or isinstance(value, Tensor) or kind in _loadable:
        return None
    if kind in _MAPPINGS:
        for key, item in value.items():
            if type(key) not in _LEAVES and _not_plain(key, where) is not None:
                return f"{where} (a key)", key
            found = _not_plain(item, f"{where}[{key!r}]")
            if found is not None:
                return found
        return None
    if kind in _SEQUENCES:
        if not {type(item) for item in value} - _LEAVES:  # numbers and strings only: one pass in C
            return None
        for i, item in enumerate(value):
            found = _not_plain(item, f"{where}[{i}]")
            if found is not None:
                return found
        return None
    if _loads_back(value):
        _loadable.add(kind)
        return None
    return where, value


def _loads_back(value: Any) -> bool:
    """Whether ``torch.load(weights_only=True)`` reads ``value`` back (a type registered with
    ``torch.serialization.add_safe_globals``); asked once per type, and only of types not known to be plain."""
    buffer = io.BytesIO()
    try:
        torch.save(value, buffer)
        buffer.seek(0)
        torch.load(buffer, weights_only=True)
    except Exception:
        return False
    return True


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def load_callback_states(callbacks: Sequence[Callback], states: dict[str, Any] | None) -> None:
    """Give each callback back the state saved under its key (callbacks without one keep theirs)."""
    if not states:
        return
    for key, callback in _keyed(callbacks):
        if key in states:
            callback.load_state_dict(states[key])


def _keyed(callbacks: Sequence[Callback]) -> list[tuple[str, Callback]]:
    seen: dict[str, int] = {}
    out = []
    for callback in callbacks:
        key = callback.state_key
        seen[key] = seen.get(key, 0) + 1
        out.append((key if seen[key] == 1 else f"{key}#{seen[key]}", callback))
    return out
