"""The learning-rate range test: sweep the rate exponentially over a few hundred steps and read the loss curve.

The lecture reads a loss curve for the learning rate (B2): too low, the loss barely moves; good, it falls
fast; high, it stalls at a worse level; far too high, it explodes. A range test shows all four on one
curve in seconds: train a *copy* of the model with the rate rising from ``min_lr`` to ``max_lr`` (an
exponential ``torch.optim.lr_scheduler`` stepped every batch, as fastai's ``lr_find`` and Lightning's tuner
do) and plot the loss against the rate on a log axis. The suggestion lies halfway (log scale) between where
the smoothed loss falls fastest and 10x below the rate of the lowest loss, always 10x below the explosion.

Example:
    >>> import babysit
    >>> digits = babysit.data.load("digits")  # doctest: +SKIP
    >>> model = babysit.models.build("mlp", input_shape=digits.input_shape, num_classes=10)  # doctest: +SKIP
    >>> s = babysit.lr_find(model, digits, optimizer="nesterov")  # doctest: +SKIP
    >>> s.suggestion, s.explodes_at  # doctest: +SKIP
    (0.05, 2.1)
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from babysit import losses, optim
from babysit._io import write_text_atomic
from babysit.errors import ConfigError
from babysit.train._batches import make_batches
from babysit.train._device import resolve_device
from babysit.train._inputs import split_bundle

__all__ = ["LR_FIND_FILE", "LRFindResult", "lr_find", "lr_find_from_config"]

LR_FIND_FILE = "lr_find.json"  # in a run folder: the report draws its curve
EXPLODE_FACTOR = 4.0  # the smoothed loss past 4x its lowest value has exploded (Lightning's early-stop threshold)
BELOW_MINIMUM = 10.0  # the suggestion stays at least this factor below the rate of the lowest loss


@dataclass(frozen=True)
class LRFindResult:
    """What a range test measured and how it reads.

    Attributes:
        lrs: the rate of every step (rising exponentially).
        losses: the raw training loss of every step (data loss plus the L2 term).
        smoothed: the losses smoothed by a centred window (no lag, so nothing is shifted to higher rates).
        suggestion: the rate to train with, or None when the curve never fell.
        explodes_at: the first rate at which the smoothed loss exploded (or became NaN/inf); None if it never did.
        minimum_at: the rate with the lowest smoothed loss.
        steepest_at: the rate where the smoothed loss fell fastest per decade.
        reason: the suggestion in words.
        optimizer: the update rule's name.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float | None
    explodes_at: float | None
    minimum_at: float | None
    steepest_at: float | None
    reason: str
    optimizer: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (NaN/inf losses as None)."""
        data = asdict(self)
        for key in ("losses", "smoothed"):
            data[key] = [x if math.isfinite(x) else None for x in data[key]]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRFindResult:
        """Read back :meth:`to_dict`'s record."""
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for key in ("losses", "smoothed"):
            values[key] = [math.nan if x is None else float(x) for x in values.get(key, [])]
        return cls(**values)

    def save(self, folder: str | Path) -> Path:
        """Write ``lr_find.json`` into ``folder`` (a run folder's report then shows the curve)."""
        path = Path(folder) / LR_FIND_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> LRFindResult:
        """Read ``lr_find.json`` from a folder (or the file itself)."""
        path = Path(folder)
        path = path / LR_FIND_FILE if path.is_dir() else path
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def plot(self) -> Any:
        """The curve as a matplotlib Figure (loss against rate, log axis; suggestion and explosion marked)."""
        from babysit.reporting.lr_find_figure import lr_find_figure

        return lr_find_figure(self)


def lr_find(
    model: nn.Module,
    data: Any,
    *,
    optimizer: str | dict[str, Any] | torch.optim.Optimizer = "sgd",
    loss_fn: str | losses.LossFn = "softmax",
    reg: float = 0.0,
    min_lr: float = 1e-6,
    max_lr: float = 10.0,
    steps: int = 200,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> LRFindResult:
    """Run the range test on a copy of ``model`` (the model and any optimizer given are left untouched).

    Args:
        model: the freshly initialised model you mean to train.
        data: a DataBundle (its train split), an ``(X, y)`` pair, a Dataset or a DataLoader.
        optimizer: an update-rule name or ``{"name": ..., **settings}`` (its ``lr`` is ignored), or a built
            ``torch.optim.Optimizer`` whose class and settings are rebuilt on the copy.
        loss_fn: ``"softmax"``, ``"svm"`` or a callable data loss.
        reg: the L2 strength you train with (added as in ``fit``).
        min_lr: the first rate of the sweep.
        max_lr: the last rate (the sweep stops earlier once the loss explodes).
        steps: how many steps the sweep takes from ``min_lr`` to ``max_lr``.
        batch_size: examples per step.
        device: where to train the copy.
        seed: seeds the copy's batches (and dropout).

    Returns:
        An :class:`LRFindResult` with ``suggestion``, ``explodes_at``, the curve and the reason.

    Raises:
        ConfigError: a rate range or step count that cannot make a sweep.
    """
    _check_range(min_lr, max_lr, steps)
    dev = resolve_device(device)
    torch.manual_seed(seed)
    copy_model = copy.deepcopy(model).to(dev)
    opt = _optimizer_for(copy_model, model, optimizer, min_lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=(max_lr / min_lr) ** (1.0 / (steps - 1)))
    train, _ = split_bundle(data, None)
    batches = make_batches(train, batch_size, torch.Generator().manual_seed(seed), dev)
    data_loss = losses.resolve(loss_fn)
    lrs, raw = _sweep(copy_model, opt, scheduler, batches, data_loss, reg, steps)
    name = type(opt).__name__ if isinstance(optimizer, torch.optim.Optimizer) else \
        str(optimizer["name"] if isinstance(optimizer, dict) else optimizer)
    settings = {"min_lr": min_lr, "max_lr": max_lr, "steps": steps, "batch_size": batch_size, "reg": reg}
    return read_curve(lrs, raw, optimizer=name, settings=settings, stopped_early=len(raw) < steps)


def lr_find_from_config(cfg: Any, *, steps: int = 200, min_lr: float = 1e-6, max_lr: float = 10.0) -> LRFindResult:
    """The range test of a config's model, data, update rule, loss, L2 strength and batch size."""
    from babysit.train.from_config import prepare

    prepared = prepare(cfg)
    return lr_find(prepared.model, prepared.bundle, optimizer=cfg.optimizer_spec(), loss_fn=cfg.train.loss,
                   reg=cfg.train.reg, min_lr=min_lr, max_lr=max_lr, steps=steps, batch_size=cfg.train.batch_size,
                   device=cfg.device, seed=cfg.seed)


def _check_range(min_lr: float, max_lr: float, steps: int) -> None:
    if not (isinstance(min_lr, (int, float)) and isinstance(max_lr, (int, float)) and 0 < min_lr < max_lr
            and math.isfinite(max_lr)):
        raise ConfigError(f"lr_find needs 0 < min_lr < max_lr, got min_lr={min_lr!r}, max_lr={max_lr!r}; "
                          "e.g. min_lr=1e-6, max_lr=10.")
    if not isinstance(steps, int) or steps < 20:
        raise ConfigError(f"lr_find needs steps >= 20 to read a curve, got steps={steps!r}; 100-300 is typical.")


def _optimizer_for(copy_model: nn.Module, original: nn.Module, spec: Any, lr: float) -> torch.optim.Optimizer:
    """The update rule on the copy's parameters, every group starting at ``lr``."""
    if isinstance(spec, torch.optim.Optimizer):
        index = {id(p): i for i, p in enumerate(original.parameters())}
        params = list(copy_model.parameters())
        groups = []
        for group in spec.param_groups:
            missing = [p for p in group["params"] if id(p) not in index]
            if missing:
                raise ConfigError("lr_find: the optimizer holds parameters that are not the model's; pass the "
                                  "update rule by name instead, e.g. optimizer='adam'.")
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": [params[index[id(p)]] for p in group["params"]]})
        try:
            opt = type(spec)(groups, **spec.defaults)
        except TypeError as exc:
            raise ConfigError(f"lr_find cannot rebuild {type(spec).__name__} on a copy ({exc}); pass the update "
                              "rule by name, e.g. optimizer={'name': 'adam'}.") from None
    else:
        settings = dict(spec) if isinstance(spec, dict) else {"name": spec}
        settings.pop("lr", None)
        opt = optim.build_from_spec(settings, copy_model.parameters(), lr=lr)
    if isinstance(opt, torch.optim.LBFGS):
        raise ConfigError("lr_find steps one mini-batch at a time and L-BFGS needs full batches with a closure; "
                          "train L-BFGS with its default lr 1, or run the range test with optimizer='sgd'.")
    for group in opt.param_groups:
        group["lr"] = lr
        group.pop("initial_lr", None)
    return opt


def _sweep(model: nn.Module, opt: torch.optim.Optimizer, scheduler: Any, batches: Any, data_loss: Any, reg: float,
           steps: int) -> tuple[list[float], list[float]]:
    """Train ``steps`` steps with the rate rising; stop early once the loss is NaN/inf or far past its lowest."""
    lrs: list[float] = []
    raw: list[float] = []
    ema, best = None, math.inf
    model.train()
    while len(raw) < steps:
        for X, y in batches:
            loss = data_loss(model(X), y)
            if reg:
                loss = loss + losses.l2_penalty(losses.regularized_weights(model), reg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            lrs.append(float(opt.param_groups[0]["lr"]))
            value = float(loss.detach())  # one sync per step: a short sweep, read as it goes to stop early
            raw.append(value)
            if not math.isfinite(value):
                return lrs, raw
            opt.step()
            scheduler.step()
            ema = value if ema is None else 0.9 * ema + 0.1 * value
            best = min(best, ema)
            if (len(raw) > 10 and ema > 2 * EXPLODE_FACTOR * best) or len(raw) >= steps:
                return lrs, raw
    return lrs, raw


def smooth(values: list[float], window: int) -> list[float]:
    """A centred running median then mean over ``window`` points: robust to single noisy batches, no lag."""
    half = max(1, window // 2)
    n = len(values)
    medians = []
    for i in range(n):
        chunk = sorted(x for x in values[max(0, i - half): i + half + 1] if math.isfinite(x))
        medians.append(chunk[len(chunk) // 2] if chunk else math.nan)
    out = []
    for i in range(n):
        chunk = [x for x in medians[max(0, i - half): i + half + 1] if math.isfinite(x)]
        out.append(sum(chunk) / len(chunk) if chunk and math.isfinite(values[i]) else math.nan)
    return out


def read_curve(lrs: list[float], raw: list[float], *, optimizer: str = "", settings: dict[str, Any] | None = None,
               stopped_early: bool = False) -> LRFindResult:
    """Read a range test's curve: where it explodes, where it is lowest, where it falls fastest, and the
    suggestion (between the steepest point and 10x below the lowest, always 10x below the explosion)."""
    window = max(5, len(raw) // 12)
    smoothed = smooth(raw, window)
    explode = _explosion_index(smoothed, raw)
    if explode is None and stopped_early:  # the tail's window is too short to show it smoothed: read it raw
        explode = _tail_explosion(smoothed, raw, window)
    usable = smoothed[: explode if explode is not None else len(smoothed)]
    explodes_at = None if explode is None else lrs[explode]
    finite = [i for i, x in enumerate(usable) if math.isfinite(x)]
    base = dict(lrs=lrs, losses=raw, smoothed=smoothed, explodes_at=explodes_at, optimizer=optimizer,
                settings=dict(settings or {}))
    if len(finite) < 3:
        return LRFindResult(suggestion=None, minimum_at=None, steepest_at=None, **base,  # type: ignore[arg-type]
                            reason="the loss exploded at once: lower min_lr and run the test again")
    low = min(finite, key=lambda i: usable[i])
    start = usable[finite[0]]
    if usable[low] > 0.9 * start:
        return LRFindResult(suggestion=None, minimum_at=lrs[low], steepest_at=None, **base,  # type: ignore[arg-type]
                            reason=f"the loss never fell by 10% (from {start:.3g} to at best {usable[low]:.3g}): "
                                   "check the data and the model, or raise max_lr")
    steep = _steepest(lrs, usable, low, window)
    cap = lrs[low] / BELOW_MINIMUM
    # the middle (in log scale) of the stretch from the steepest fall to 10x below the lowest loss: the steepest
    # point alone sits where learning has only just started, the lowest loss where it is about to stall
    suggestion = math.sqrt(lrs[steep] * cap) if lrs[steep] < cap else cap
    if explodes_at is not None:
        suggestion = min(suggestion, explodes_at / BELOW_MINIMUM)
    why = (f"halfway on a log scale from the steepest fall to {BELOW_MINIMUM:g}x below the lowest loss"
           if lrs[steep] < cap else f"{BELOW_MINIMUM:g}x below the lowest loss")
    reason = (f"the smoothed loss falls fastest at lr {lrs[steep]:.3g} and is lowest ({usable[low]:.3g}) at lr "
              f"{lrs[low]:.3g}; " + (f"it explodes from lr {explodes_at:.3g}" if explodes_at is not None else
                                     "it did not explode up to the last rate tried")
              + f". Suggested lr {suggestion:.3g} ({why}): fast progress with room below the stall and the explosion")
    return LRFindResult(suggestion=suggestion, minimum_at=lrs[low], steepest_at=lrs[steep], reason=reason, **base)


def _explosion_index(smoothed: list[float], raw: list[float]) -> int | None:
    """The first step whose raw loss is NaN/inf, whose smoothed loss is past 4x its lowest so far, or back above
    where it started after falling below 70% of it (a rise, not the late noise of a low loss)."""
    best = math.inf
    start = next((x for x in smoothed if math.isfinite(x)), math.nan)
    for i, (s, r) in enumerate(zip(smoothed, raw)):
        if not math.isfinite(r):
            return i
        if not math.isfinite(s):
            continue
        best = min(best, s)
        if s > EXPLODE_FACTOR * best or (best < 0.7 * start and s > start):
            return i
    return None


def _tail_explosion(smoothed: list[float], raw: list[float], window: int) -> int:
    """Where a sweep stopped for an exploding loss: the first of the last ``window`` steps whose raw loss is past
    4x the lowest smoothed loss before it (the last step when none is)."""
    first_tail = max(0, len(raw) - window)
    best = min((x for x in smoothed[:first_tail + 1] if math.isfinite(x)), default=math.inf)
    return next((i for i in range(first_tail, len(raw)) if raw[i] > EXPLODE_FACTOR * best), len(raw) - 1)


def _steepest(lrs: list[float], smoothed: list[float], low: int, window: int) -> int:
    """The step before the lowest loss where the smoothed loss falls fastest per decade of rate (a slope
    over one window, so single steps do not decide)."""
    best, where = 0.0, 0
    for i in range(0, low + 1):
        j = min(low, i + window)
        if j <= i or not (math.isfinite(smoothed[i]) and math.isfinite(smoothed[j])):
            continue
        slope = (smoothed[j] - smoothed[i]) / (math.log10(lrs[j]) - math.log10(lrs[i]))
        if slope < best:
            best, where = slope, (i + j) // 2
    return where
