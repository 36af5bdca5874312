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
    held: float | None = None  # the median over the steps where it held (None: it never held)


def summarise(steps: list[int], values: list[float], holds) -> Measure | None:
    """The median of the finite ``values``, and where (first step, share) and how (``held``) ``holds`` was true.

    A rule that fires on the share and quotes a number next to its threshold quotes ``held``: with half the
    steps past the threshold, the median of all of them can average a value past it with one that is not
    (and so sit on the wrong side of the threshold the message names)."""
    pairs = [(s, x) for s, x in zip(steps, values) if isinstance(x, (int, float)) and math.isfinite(x)]
    if not pairs:
        return None
    flags = [bool(holds(x)) for _, x in pairs]
    first = next((s for (s, _), f in zip(pairs, flags) if f), None)
    held = v.median(x for (_, x), f in zip(pairs, flags) if f)
    return Measure(v.median(x for _, x in pairs) or 0.0, first, v.fraction_true(flags), held)


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


def bad_epoch(history: History) -> tuple[int, float] | None:
    """Without per-step losses (a framework callback whose model returned no loss: label smoothing or a
    ``compute_loss_func`` in the Hugging Face Trainer, which then logs only epoch means): the first epoch whose
    training loss is NaN/inf or above ``LOSS_EXPLODE`` x where an untrained model starts (``ln C`` when the
    classes are known, else the first epoch's loss, which then cannot itself count)."""
    if any(isinstance(x, (int, float)) for x in history.steps.get("loss", [])):
        return None  # first_bad_step judges the steps
    losses = v.per_epoch(history, "train_loss")
    classes = v.num_classes(history)
    first = v.finite(losses[:1])
    start = math.log(classes) if classes else (first[0] if first else None)
    limit = T.LOSS_EXPLODE * start if start is not None and start > 0 else math.inf
    for i, x in enumerate(losses):
        if isinstance(x, (int, float)) and not x <= limit and (classes or i > 0):
            return i + 1, float(x)
    return None


def last_step_of(history: History, epoch: int) -> int:
    """The last optimizer step of ``epoch``: from the steps per epoch, else the epochs' step counts, else the
    sampled steps spread evenly over the epochs (the update ratios carry steps even when the losses don't)."""
    spe = v.steps_per_epoch(history)
    counts = v.per_epoch(history, "steps")
    if all(isinstance(x, (int, float)) and x > 0 for x in counts[:epoch]) and len(counts) >= epoch:
        return int(sum(counts[:epoch]))  # type: ignore[arg-type]
    if spe:
        return epoch * spe
    sampled = [s for name in v.weight_names(history) for s in v.series(history, UpdateRatio, "ratio", name)[0]]
    if sampled and history.epochs:
        return max(1, math.ceil(max(sampled) * epoch / len(history.epochs)))
    return 1 << 62


def diverged(history: History) -> bool:
    return history.status == "diverged" or first_bad_step(history) is not None or bad_epoch(history) is not None


def data_losses(history: History) -> list[float | None]:
    """Per-epoch data loss (the train loss when the data loss was not recorded apart)."""
    data = v.per_epoch(history, "data_loss")
    return data if any(x is not None for x in data) else v.per_epoch(history, "train_loss")


def ratio_samples(history: History, name: str, *, early: bool = True) -> list[tuple[int, float]]:
    """``(step, update/weight ratio)`` of ``name`` that say how fast it learns, over the first half of them
    (``early``: late in a run annealing and convergence shrink updates by design).

    Left out: steps whose gradient was exactly 0 (momentum coasting on after the units died: no gradient, so
    nothing the rate scaled), the run's first update while later samples exist (momentum has not built up yet:
    in a run of 10 steps it would be half of the samples), and every sample of a tensor that started at zero (a
    zero-initialised positional table: its ratio measures how far it has come from zero, ~1/steps, not the size of
    its steps).

    A first step that is the only sample, under Adam, RMSprop or Adagrad, moved every weight by the rate times its
    gradient's sign: ``lr / |w|``, the largest step such a rule takes (later ones shrink as it averages the
    gradients' noise). It is kept where it is conclusive, below ``RATIO_HIGH`` or as large as the weights
    themselves, and left out in between, where an embedding at std 0.02 under lr 3e-3 (0.15) trains well."""
    if _zero_initialised(history, name):
        return []
    steps, values = v.series(history, UpdateRatio, "ratio", name)
    pairs = [(s, float(x)) for s, x in zip(steps, values) if isinstance(x, (int, float)) and math.isfinite(x)]
    no_gradient = {s for s, g in zip(*v.series(history, GradientNorm, "norm", name)) if g == 0}
    if any(s not in no_gradient for s, _ in pairs):
        pairs = [(s, x) for s, x in pairs if s not in no_gradient]
    if len(pairs) > 1 and pairs[0][0] == 1:
        pairs = pairs[1:]
    elif pairs and pairs[0][0] == 1 and v.first_step_ignores_gradient(history) \
            and T.RATIO_HIGH < pairs[0][1] < T.SIGN_STEP_OVERWRITES:
        pairs = []
    if early and len(pairs) > 1:
        pairs = pairs[: max(1, math.ceil(len(pairs) / 2))]
    return pairs


def _zero_initialised(history: History, name: str) -> bool:
    norms = v.series(history, UpdateRatio, "weight_norm", name)
    first = next(((s, x) for s, x in zip(*norms) if isinstance(x, (int, float)) and math.isfinite(x)), None)
    return first is not None and first[0] == 1 and first[1] == 0


def ratio_medians(history: History, *, early: bool = True) -> dict[str, float]:
    """Median update/weight ratio of each trainable weight tensor that changed, over the samples
    :func:`ratio_samples` keeps. Empty for L-BFGS: one of its steps is a whole quasi-Newton solve (up to
    ``max_iter`` iterations with a line search), so ~1e-3 per step says nothing about its rate."""
    if v.is_lbfgs(history):
        return {}
    out = {}
    for name in v.weight_names(history):
        good = [x for _, x in ratio_samples(history, name, early=early)]
        if good and any(x > 0 for x in good):
            out[name] = v.median(good)  # type: ignore[assignment]
    return out


def ratios_recorded(history: History) -> bool:
    """Whether update/weight ratios of any weight tensor were recorded (all zero counts: nothing moved)."""
    return any(v.finite(v.series(history, UpdateRatio, "ratio", n)[1]) for n in v.weight_names(history))


def no_weight_gradient(history: History) -> Measure | None:
    """The share of sampled steps on which every trainable weight tensor's gradient norm was exactly 0, when that
    is most of them (at least two samples): nothing reaches the weights. Dead ReLUs do this whether or not
    dead_units could count them (it measures ``nn.ReLU`` modules, never a functional ``F.relu``), and so does a
    loss that does not depend on the model's outputs."""
    trainable = {p["name"] for p in v.parameters(history) if p.get("requires_grad", True) and
                 p.get("in_optimizer", True)}
    names = [n for n in v.weight_names(history) if n in trainable]
    per_step: dict[int, list[float]] = {}
    for name in names:
        for s, x in zip(*v.series(history, GradientNorm, "norm", name)):
            if isinstance(x, (int, float)) and math.isfinite(x):
                per_step.setdefault(s, []).append(float(x))
    full = sorted(s for s, xs in per_step.items() if len(xs) == len(names))
    if not names or len(full) < 2:
        return None
    flags = [max(per_step[s]) == 0 for s in full]
    m = summarise(full, [float(f) for f in flags], lambda x: x > 0)
    return m if m is not None and m.share >= T.MAJORITY else None


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
    """First recorded weight std of ``param`` divided by Xavier's ``1/sqrt(fan_in)``.

    Only a weight that multiplies its input (a Linear or Conv kernel, or a parameter of no recorded layer, such
    as an attention's fused projection) has a fan-in that sets its scale. An embedding's table is looked up, not
    multiplied: each output is one row, whatever the width, so ``1/sqrt(width)`` says nothing about it, and
    PyTorch's default N(0, 1) would read as "6x too large" at width 32. Those are not judged (None).
    """
    owner = next((layer for layer in history.layers if param in layer.get("params", [])), None)
    if owner is not None and owner.get("kind") != "weighted":
        return None
    record = next((p for p in v.parameters(history) if p["name"] == param), None)
    norms = v.series(history, UpdateRatio, "weight_norm", param)[1]
    if record is None or not record.get("fan_in") or not v.finite(norms[:1]):
        return None
    std = norms[0] / math.sqrt(max(record["numel"], 1))
    return std * math.sqrt(record["fan_in"])


def carry(history: History) -> Measure | None:
    steps, values = v.series(history, GradientCarry)
    return summarise(steps, values, lambda x: x > T.CARRY)


def carried(history: History) -> Measure | None:
    """The gradient carry-over when most sampled steps show it (``zero_grad`` missing), else None.

    Every rule that could blame the learning rate asks this first: a gradient that adds up those of all earlier
    steps grows without bound, so the updates are large at any rate, and a lower rate only delays the damage.
    """
    m = carry(history)
    return m if m is not None and m.share >= T.MAJORITY and m.value > T.CARRY else None


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


def loss_flat(losses: list[float]) -> bool:
    """Whether the per-epoch loss has stopped falling: over the last third of the epochs its mean fell by less
    than ``PLATEAU_FLAT`` from the third before, and by less than ``PLATEAU_FLAT_EPOCH`` per epoch."""
    third = max(1, len(losses) // 3)
    before, last = sum(losses[-2 * third : -third]) / third, sum(losses[-third:]) / third
    if before <= 0:
        return True
    fell = (before - last) / before
    return fell < T.PLATEAU_FLAT and fell / third < T.PLATEAU_FLAT_EPOCH


def new_low(losses: list[float]) -> bool:
    """Whether the last epoch's loss is below every earlier one by more than ``PLATEAU_FLAT``: still falling."""
    return len(losses) >= 2 and losses[-1] < (1 - T.PLATEAU_FLAT) * min(losses[:-1])


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
    zero = no_weight_gradient(history)
    if zero is not None:
        return (f"the gradient of every weight tensor is exactly 0 (on {zero.share:.0%} of the sampled steps, from "
                f"step {zero.step}), so no learning rate can move them: nothing reaches the weights (check for "
                "ReLUs that never fire, such as a large negative bias before an F.relu, which dead_units cannot "
                "count, and that the loss is computed from the model's outputs)")
    return None


def blocked_fix(blocked: str) -> str:
    """What to do about a :func:`blocked_signal` cause: its closing parenthesis ("see dead_units", "check ...")."""
    return blocked[blocked.rindex("(") + 1 : -1]


