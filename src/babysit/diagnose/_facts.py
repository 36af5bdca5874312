"""Measurements several rules share, each a pure function of the History.

A rule reports one symptom; when another measurement explains it (the lecture's chains: tiny weights ->
vanishing activations -> no learning), the rule names that cause, and these functions are how it asks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from babysit.diagnose import _view as v
from babysit.diagnose import _weights
from babysit.diagnose import thresholds as T
from babysit.history import History
from babysit.quantities import (
    ActivationMoments,
    DeadFraction,
    GradientCarry,
    GradientNorm,
    LayerQuantity,
    Saturation,
    UpdateRatio,
)

# the quantities blocked_signal reads (a rule that calls it declares them in its ``uses``)
BLOCKED_SIGNAL_USES = ("dead_fraction", "saturation", "activation_moments", "gradient_norm")


@dataclass(frozen=True)
class Measure:
    """A per-sample condition summarised over the run: the typical value and where it first held."""

    value: float  # the median over the sampled steps considered
    step: int | None  # the first sampled step where the condition held
    share: float  # the share of sampled steps where it held


def summarise(steps: list[int], values: list[float], holds) -> Measure | None:
    pairs = [(s, x) for s, x in zip(steps, values) if isinstance(x, (int, float)) and math.isfinite(x)]
    if not pairs:
        return None
    flags = [bool(holds(x)) for _, x in pairs]
    first = next((s for (s, _), f in zip(pairs, flags) if f), None)
    return Measure(v.median(x for _, x in pairs) or 0.0, first, v.fraction_true(flags))


def initial_loss(history: History) -> float | None:
    """The loss at the first step (else the first epoch's train loss)."""
    first = v.finite(history.steps.get("loss", [])[:1]) or v.finite(v.per_epoch(history, "train_loss")[:1])
    return first[0] if first else None


def first_bad_step(history: History) -> tuple[int, float] | None:
    """The first step whose loss is NaN/inf, or that exploded past ``LOSS_EXPLODE`` x the first loss."""
    losses = history.steps.get("loss", [])
    start = initial_loss(history)
    limit = T.LOSS_EXPLODE * start if start is not None and start > 0 else math.inf
    if _all_below(losses, limit):  # the common case, said without a step-by-step walk
        return None
    for i, x in enumerate(losses):
        if isinstance(x, (int, float)) and not x <= limit:  # NaN, inf, or past the limit
            return i + 1, float(x)
    return None


def _all_below(values: list[Any], limit: float) -> bool:
    """Whether every value is a finite number <= ``limit`` (a finite sum has no NaN or inf in it)."""
    try:
        return math.isfinite(sum(values)) and max(values, default=-math.inf) <= limit
    except TypeError:  # a missing value: the caller walks the values one by one
        return False


def diverged(history: History) -> bool:
    return history.status == "diverged" or first_bad_step(history) is not None


def data_losses(history: History) -> list[float | None]:
    """Per-epoch data loss (the train loss when the data loss was not recorded apart)."""
    data = v.per_epoch(history, "data_loss")
    return data if any(x is not None for x in data) else v.per_epoch(history, "train_loss")


def ratio_medians(history: History, *, early: bool = True) -> dict[str, float]:
    """Median update/weight ratio of each trainable weight tensor that changed, over the first half of
    the samples (``early``): late in a run annealing and convergence shrink updates by design."""
    out = {}
    for name in v.weight_names(history):
        good = v.finite(v.series(history, UpdateRatio, "ratio", name)[1])
        if early and len(good) > 1:
            good = good[: max(1, math.ceil(len(good) / 2))]
        if good and any(x > 0 for x in good):
            out[name] = v.median(good)  # type: ignore[assignment]
    return out


def trunk_ratio(history: History) -> tuple[list[int], list[float], str, str] | None:
    """Per sampled step: output std of the last hidden weighted layer / that of the first (lecture B5).

    The output layer is left out: once the signal has vanished its learned biases alone set its spread. A model
    with normalisation layers has none: each one resets the scale, so the weighted layers' outputs before it
    say nothing about depth (raw inputs make the first one huge, and the trend would read as vanishing).
    """
    if any(layer.get("kind") == "norm" for layer in history.layers):
        return None
    layers = v.weighted_layers(history)[:-1]
    if len(layers) + 1 < T.ACT_MIN_WEIGHTED:
        return None
    first, last = layers[0]["name"], layers[-1]["name"]
    s1, a = v.series(history, ActivationMoments, "std", first)
    s2, b = v.series(history, ActivationMoments, "std", last)
    by_step = dict(zip(s2, b))
    steps, ratios = [], []
    for step, x in zip(s1, a):
        y = by_step.get(step)
        if isinstance(x, float) and isinstance(y, float) and math.isfinite(x) and math.isfinite(y) and x > 0:
            steps.append(step)
            ratios.append(y / x)
    return steps, ratios, first, last


def gradient_depth_ratio(history: History) -> tuple[list[int], list[float], str, str] | None:
    """Per sampled step: gradient norm of the first weight tensor / that of the last (AutoTrainer)."""
    names = v.weight_names(history)
    if len(names) < 2:
        return None
    first, last = names[0], names[-1]
    s1, a = v.series(history, GradientNorm, "norm", first)
    s2, b = v.series(history, GradientNorm, "norm", last)
    by_step = dict(zip(s2, b))
    steps, ratios = [], []
    for step, x in zip(s1, a):
        y = by_step.get(step)
        if isinstance(x, float) and isinstance(y, float) and math.isfinite(x) and math.isfinite(y) and y > 0:
            steps.append(step)
            ratios.append(x / y)
    return steps, ratios, first, last


def layer_measure(history: History, quantity: type[LayerQuantity], threshold: float) -> dict[str, Measure]:
    """A per-layer share (``DeadFraction``, ``Saturation``) per layer, where its median reaches ``threshold``
    on at least ``MAJORITY`` of the sampled steps."""
    found = {}
    for layer in history.targets(quantity):
        steps, values = v.series(history, quantity, target=layer)
        m = summarise(steps, values, lambda x: x >= threshold)
        if m is not None and m.share >= T.MAJORITY and m.value >= threshold:
            found[layer] = m
    return found


def init_scale(history: History, param: str) -> float | None:
    """First recorded weight std of ``param`` divided by Xavier's ``1/sqrt(fan_in)``."""
    record = next((p for p in v.parameters(history) if p["name"] == param), None)
    norms = v.series(history, UpdateRatio, "weight_norm", param)[1]
    if record is None or not record.get("fan_in") or not v.finite(norms[:1]):
        return None
    std = norms[0] / math.sqrt(max(record["numel"], 1))
    return std * math.sqrt(record["fan_in"])


def carry(history: History) -> Measure | None:
    steps, values = v.series(history, GradientCarry)
    return summarise(steps, values, lambda x: x > T.CARRY)


def regularization_share(history: History) -> tuple[float, int, float, float] | None:
    """``(max reg/data, epoch of it, first data loss, last data loss)`` when the L2 term was recorded."""
    best = None
    for e in history.epochs:
        reg, data = e.get("reg_loss"), e.get("data_loss")
        numbers = isinstance(reg, (int, float)) and isinstance(data, (int, float)) and data > 0 and reg > 0
        if numbers and (best is None or reg / data > best[0]):
            best = (reg / data, e.get("epoch"))
    data = v.finite(data_losses(history))
    if best is None or not data:
        return None
    return best[0], best[1], data[0], data[-1]


def regularization_dominates(history: History) -> bool:
    """The recorded L2 term swamps the data loss, or (L2 inside the loss, weight decay) the weights are pulled
    straight to zero while the data loss stalls (see :func:`hidden_regularization`)."""
    share = regularization_share(history)
    if share is not None and share[0] > T.REG_DOMINATES and share[3] > T.REG_STUCK * share[2]:
        return True
    return hidden_regularization(history) is not None


def hidden_regularization(history: History) -> dict[str, _weights.Shrinkage] | None:
    """Weight tensors pulled to zero (most of them) while the data loss stays above ``REG_STUCK`` of its start
    and has stopped falling: a regularization that dominates but is not recorded as ``reg_loss``."""
    names = v.weight_names(history)
    pulled = _weights.pulled_to_zero(history)
    losses = v.finite(data_losses(history))
    start = untrained_loss(history)
    if not names or len(pulled) * 2 < len(names) or len(losses) < T.PLATEAU_MIN_EPOCHS or not start:
        return None
    third = max(1, len(losses) // 3)
    before, last = sum(losses[-2 * third : -third]) / third, sum(losses[-third:]) / third
    stalled = before <= 0 or (before - last) / before < T.PLATEAU_FLAT
    return pulled if stalled and losses[-1] > T.REG_STUCK * start else None


def loss_moved(history: History) -> float | None:
    """How far the per-epoch data loss fell below its first epoch, relative to it (None before two epochs).

    Epoch means, not the first step: one step's loss is too noisy to tell "fell 3%" from "did not move"."""
    losses = v.finite(data_losses(history))
    if len(losses) < 2 or losses[0] <= 0:
        return None
    return (losses[0] - min(losses[1:])) / losses[0]


def untrained_loss(history: History) -> float | None:
    """Where the data loss of an untrained model stands: ``ln C`` when the classes are known (a hidden L2 term
    inflates the first recorded loss), else the first loss."""
    classes = v.num_classes(history)
    first = initial_loss(history)
    if classes:
        return min(math.log(classes), first) if first else math.log(classes)
    return first


def blocked_signal(history: History) -> str | None:
    """Why gradients cannot flow, whatever the learning rate: dead, saturated or vanishing layers."""
    dead = layer_measure(history, DeadFraction, T.DEAD)
    if dead:
        return f"the ReLUs of {', '.join(dead)} are dead (see dead_units)"
    saturated = layer_measure(history, Saturation, T.SATURATED)
    if saturated:
        return f"the units of {', '.join(saturated)} are saturated (see saturated_activations)"
    trunk = trunk_ratio(history)
    if trunk and trunk[1] and (v.median(trunk[1]) or 1.0) < T.ACT_VANISH:
        return "the activations vanish through depth (see vanishing_activations)"
    depth = gradient_depth_ratio(history)
    if depth and depth[1] and (v.median(depth[1]) or 1.0) < T.GRAD_VANISH:
        return "the gradients vanish before they reach the first layers (see vanishing_gradients)"
    return None


