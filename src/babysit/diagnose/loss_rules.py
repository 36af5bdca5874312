"""The loss curve's shapes (lecture B2): diverged, too high a learning rate, too low, too noisy.

The loss of the first step is the reference: a freshly initialised classifier starts near ``ln C``, and
every shape is judged relative to where it started.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np

from babysit.diagnose import _causes, _facts, _rate
from babysit.diagnose import _view as v
from babysit.diagnose import thresholds as T
from babysit.diagnose._registry import rule
from babysit.findings import Finding
from babysit.history import History


def diverged(history: History) -> bool:
    return _facts.diverged(history)


def _lr_at(history: History, step: int) -> float | None:
    at = v.lr_at(history, step)
    return at if at is not None else v.run_lr(history)


@rule("loss_diverged", "B2", uses=_causes.CAUSE_USES)
def loss_diverged(history: History) -> list[Finding]:
    """The loss became NaN/inf or exploded; name the first non-finite layer and the likely cause with its numbers."""
    bad = _facts.first_bad_step(history)
    epoch_bad = _facts.bad_epoch(history) if bad is None else None
    if bad is None and epoch_bad is None and history.status != "diverged":
        return []
    if epoch_bad is not None:
        return [_diverged_epoch(history, *epoch_bad)]
    step, value = bad if bad is not None else (len(history.steps.get("loss", [])), float("nan"))
    lr = _lr_at(history, step)
    evidence = {"step": step, "epoch": v.epoch_of(history, step), "loss": value, "lr": lr,
                "initial_loss": _facts.initial_loss(history)}
    what = f"the loss became {value:g}" if v.is_bad(value) else f"the loss exploded to {v.fmt(value)}"
    message = f"{what} at step {step} (epoch {evidence['epoch']}) with lr {v.fmt(lr)}"
    nonfinite = history.sections.get("monitor", {}).get("nonfinite") or {}
    if nonfinite.get("layer"):
        message += f"; the first layer whose output became non-finite is {nonfinite['layer']}"
        evidence["first_nonfinite_layer"] = nonfinite["layer"]
        evidence["nonfinite_parameters"] = nonfinite.get("parameters", [])
    cause = _causes.why_diverged(history, step)
    message += f"; likely cause: {cause.reason}"
    evidence.update(cause=cause.reason, cause_code=cause.code, **cause.evidence)
    return [Finding("loss_diverged", "error", message, evidence, cause.suggestion)]


def _diverged_epoch(history: History, epoch: int, value: float) -> Finding:
    """loss_diverged from the epochs' mean losses alone (no per-step losses were recorded)."""
    lr = v.run_lr(history)
    classes = v.num_classes(history)
    what = f"the loss became {value:g}" if v.is_bad(value) else f"the loss reached {v.fmt(value)}"
    against = f" (an untrained model's is ln {classes} = {v.fmt(math.log(classes))})" if classes else ""
    message = (f"{what} in epoch {epoch}{against} with lr {v.fmt(lr)}; only epoch means were recorded, no "
               "per-step losses")
    evidence: dict[str, Any] = {"epoch": epoch, "loss": value, "lr": lr, "per_step_losses": False,
                                "expected_loss": math.log(classes) if classes else None}
    cause = _causes.why_diverged(history, _facts.last_step_of(history, epoch))
    message += f"; likely cause: {cause.reason}"
    evidence.update(cause=cause.reason, cause_code=cause.code, **cause.evidence)
    return Finding("loss_diverged", "error", message, evidence, cause.suggestion)


def _initial_data_loss(history: History) -> float | None:
    """Where the data loss started: the first step's loss without L2, else the first epoch's data loss."""
    first = history.epochs[0] if history.epochs else {}
    if not first.get("reg_loss"):
        start = _facts.initial_loss(history)
        if start is not None:
            return start
    data = v.finite(_facts.data_losses(history)[:1])
    return data[0] if data else None


@rule("lr_too_high", "B2", uses=("update_ratio", "gradient_norm", "gradient_carry"))
def lr_too_high(history: History) -> list[Finding]:
    """A quick drop, then the loss stalls high while rising or oscillating (or while updates are large)."""
    losses = v.finite(_facts.data_losses(history))
    start = _initial_data_loss(history)
    if len(losses) < T.PLATEAU_MIN_EPOCHS or diverged(history) or not start or start <= 0:
        return []
    if _facts.carried(history):  # gradients that pile up (zero_grad missing) give this shape at any rate
        return []
    half = len(losses) // 2
    late = losses[half:]
    level = statistics.median(late)
    dropped = min(losses[: max(1, half)]) < 0.8 * start
    if not dropped:
        return []
    window = losses[max(0, half - 1) :]
    ups = sum(b > a * 1.1 for a, b in zip(window, window[1:]))
    # a training loss that climbs back well above its lowest point without diverging is the signature on its
    # own (overfitting raises the validation loss, never the training loss); a high plateau needs a second
    # sign: oscillation or large updates
    rises = losses[-1] > T.LOSS_RISE * min(losses) and losses[-1] - min(losses) > 0.1 * start
    oscillates = ups >= max(1, (len(window) - 1) / 3)
    # updates large over the whole run, or in its first half (Adam at a high rate without warmup: the first
    # steps throw the weights around, then the plateau's small gradients shrink the ratio)
    ratio = max(v.finite([v.median(_facts.ratio_medians(history, early=e).values()) for e in (False, True)]),
                default=None)
    big_updates = ratio is not None and ratio > T.RATIO_PLATEAU
    # a plateau needs the loss to have stopped falling: a last epoch well below every earlier one is still
    # descending, however high it is (a tiny BERT at 1e-3 goes 1.0, 0.71, 0.49, 0.39: "stalls" was false)
    high_plateau = level > T.PLATEAU_HIGH * start and (oscillates or big_updates) and not _facts.new_low(losses)
    if not (rises or high_plateau):
        return []
    lr = v.run_lr(history)
    shape = "rises again" if rises else ("oscillates" if oscillates else "stalls")
    best = min(range(len(losses)), key=losses.__getitem__) + 1
    message = (f"lr {v.fmt(lr)}: the loss dropped from {v.fmt(start)} to {v.fmt(min(losses))} by epoch {best}, "
               f"then {shape} around {v.fmt(level)} ({level / start:.0%} of where it started)")
    evidence = {"lr": lr, "initial_loss": start, "lowest_loss": min(losses), "lowest_epoch": best,
                "plateau_loss": level, "rises": rises, "oscillates": oscillates, "ups": ups}
    if ratio is not None:
        message += f"; median update/weight ratio {v.fmt(ratio)}"
        evidence["median_ratio"] = ratio
    rate = _rate.recommend(history, 1 / 3)
    evidence.update(rate.evidence())
    suggestion = f"lower the learning rate (try {rate.text()}) or decay it sooner"
    return [Finding("lr_too_high", "warning", message, evidence, suggestion)]


def _linear_r2(values: list[float]) -> float:
    n = len(values)
    xs = range(n)
    mx, my = (n - 1) / 2, sum(values) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, values))
    syy = sum((y - my) ** 2 for y in values)
    return 1.0 if syy == 0 else (sxy * sxy) / (sxx * syy)


@rule("lr_too_low", "B2", uses=("update_ratio", *_facts.BLOCKED_SIGNAL_USES))
def lr_too_low(history: History) -> list[Finding]:
    """Updates far below ~1e-3 of the weights in every layer, or a slow, almost linear decrease."""
    if _facts.blocked_signal(history):  # no learning rate fixes dead, saturated or vanishing layers
        return []
    ratios = _facts.ratio_medians(history)
    lr = v.run_lr(history)
    losses = v.finite(_facts.data_losses(history))
    start = _initial_data_loss(history)
    moved = _facts.loss_moved(history)
    # tiny updates everywhere, or small ones (below a tenth of ~1e-3) on a loss that did not move at all
    still = moved is not None and moved < T.LOSS_STILL and max(ratios.values(), default=1.0) < T.RATIO_SMALL
    if ratios and (max(ratios.values()) < T.RATIO_LOW or still):
        name, ratio = max(ratios.items(), key=lambda kv: kv[1])
        message = (f"lr {v.fmt(lr)}: the update/weight ratio is at most {v.fmt(ratio)} ({name}), "
                   f"far below the healthy ~1e-3, in every layer")
        if losses and start:
            message += f"; the loss moved from {v.fmt(start)} to {v.fmt(losses[-1])}"
        rate = _rate.recommend(history, 10.0)
        evidence = {"lr": lr, "ratios": ratios, "initial_loss": start, "final_loss": losses[-1] if losses else None,
                    **rate.evidence()}
        return [Finding("lr_too_low", "warning", message, evidence, f"raise the learning rate: try {rate.text()}")]
    if len(losses) < T.PLATEAU_MIN_EPOCHS or not start or diverged(history):
        return []
    fell = (start - losses[-1]) / start
    r2 = _linear_r2(losses)
    slow = 0 < fell < T.SLOW_DECREASE and r2 >= T.LINEAR_R2 and losses[-1] < losses[0]
    if not slow or (ratios and max(ratios.values()) >= 10 * T.RATIO_LOW):
        return []
    message = (f"lr {v.fmt(lr)}: the loss falls slowly and almost linearly, by {fell:.0%} in {len(losses)} "
               f"epochs (from {v.fmt(start)} to {v.fmt(losses[-1])}, R^2 {r2:.2f} for a straight line)")
    rate = _rate.recommend(history, 10.0)
    return [Finding("lr_too_low", "warning", message,
                    {"lr": lr, "fell": fell, "r2": r2, "epochs": len(losses), **rate.evidence()},
                    f"raise the learning rate: try {rate.text()}")]


def noise_level(history: History) -> tuple[float, int] | None:
    """Median over epochs of the step-to-step jitter relative to the loss level, and the epochs measured.

    Jitter is ``std(diff(step losses)) / sqrt(2)``, which ignores the slow trend within an epoch; the level
    is the epoch's median loss, floored at a tenth of the initial loss so a converged run's tiny losses do
    not make ordinary jitter look large. Every recorded step is read, so it is counted with arrays.
    """
    epochs, losses = _numbers(history.steps.get("epoch", [])), _numbers(history.steps.get("loss", []))
    n = min(len(epochs), len(losses))
    keep = np.isfinite(epochs[:n]) & np.isfinite(losses[:n])
    if not keep.any():
        return None
    # each step's whole epoch; a stable sort keeps the steps of one epoch in their order
    keys = np.maximum(1.0, np.ceil(epochs[:n][keep] - 1e-9))
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], losses[:n][keep][order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    sizes = np.diff(starts, append=len(values))
    group = np.repeat(np.arange(len(starts)), sizes)
    ranked = values[np.lexsort((values, keys))]  # each epoch's losses in increasing order
    middle = starts + sizes // 2
    medians = np.where(sizes % 2 == 1, ranked[middle], (ranked[middle - 1] + ranked[middle]) / 2)
    levels = np.maximum(medians, 0.1 * (_facts.initial_loss(history) or 0.0))
    inside = group[1:] == group[:-1]  # differences between steps of one epoch
    diffs, within = np.diff(values)[inside], group[1:][inside]
    count = np.maximum(sizes - 1, 1)
    mean = np.bincount(within, diffs, len(starts)) / count
    spread = np.sqrt(np.maximum(np.bincount(within, diffs * diffs, len(starts)) / count - mean * mean, 0.0))
    measured = (sizes >= 8) & (levels > 0)
    if not measured.any():
        return None
    return float(np.median(spread[measured] / math.sqrt(2) / levels[measured])), int(measured.sum())


def _numbers(values: list[Any]) -> np.ndarray:
    """``values`` as floats, NaN where one is missing."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return np.asarray([x if isinstance(x, (int, float)) else math.nan for x in values], dtype=float)


@rule("loss_noisy", "B2")
def loss_noisy(history: History) -> list[Finding]:
    """The loss jitters strongly from batch to batch (information: small batches are noisy by nature)."""
    noise = noise_level(history)
    if noise is None or noise[0] <= T.NOISE or diverged(history):
        return []
    batch = history.meta.get("batch_size")
    message = f"the loss jitters by {noise[0]:.0%} of its level from step to step (median over {noise[1]} epochs)"
    if isinstance(batch, int):
        message += f" with batch size {batch}"
    suggestion = "a larger batch (or a lower learning rate) smooths it; if validation accuracy is good, it is fine"
    return [Finding("loss_noisy", "info", message, {"noise": noise[0], "epochs": noise[1], "batch_size": batch},
                    suggestion)]
