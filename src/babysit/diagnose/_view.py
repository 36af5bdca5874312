"""Read-only helpers the rules share: series, epochs of steps, the weight tensors in forward order, numbers.

Rules read the Monitor's statistics by quantity (``series(history, UpdateRatio, "ratio", name)``), never by a
key string: the keys belong to :mod:`babysit.quantities`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from math import isfinite
from typing import Any

from babysit.history import History, Series
from babysit.quantities import QuantityLike

NUMBER = (int, float)
_PLAIN_NUMBERS = {float, int}


def finite(values: Iterable[Any]) -> list[float]:
    """The finite numbers among ``values`` (None, NaN and inf dropped)."""
    values = values if isinstance(values, list) else list(values)
    if set(map(type, values)) <= _PLAIN_NUMBERS and isfinite(sum(values)):
        return list(map(float, values))  # plain numbers whose sum is finite: every one is finite (a recorded series)
    return [float(x) for x in values if isinstance(x, NUMBER) and isfinite(x)]


def is_bad(value: Any) -> bool:
    """A number that is NaN or infinite."""
    return isinstance(value, float) and not math.isfinite(value)


def median(values: Iterable[Any]) -> float | None:
    good = finite(values)
    return statistics.median(good) if good else None


def series(history: History, quantity: QuantityLike, stat: str | None = None,
           target: str | None = None) -> Series:
    """``(steps, values)`` of one recorded series of ``quantity``, empty when absent (rules never spell keys)."""
    return history.series_of(quantity, stat, target)


def epoch_of(history: History, step: int | None) -> int | None:
    """The (1-based, whole) epoch a step belongs to, when the History knows it."""
    if step is None:
        return None
    epochs = history.steps.get("epoch", [])
    if 1 <= step <= len(epochs) and isinstance(epochs[step - 1], (int, float)):
        return max(1, math.ceil(epochs[step - 1] - 1e-9))
    spe = history.meta.get("steps_per_epoch")
    return math.ceil(step / spe) if isinstance(spe, int) and spe > 0 else None


def per_epoch(history: History, key: str) -> list[float | None]:
    return [x if isinstance(x := e.get(key), NUMBER) else None for e in history.epochs]


def run_lr(history: History) -> float | None:
    """The learning rate the run trained with: the highest rate its steps used (the peak of a warmup, the start
    of a decay), else the highest an epoch record holds, else the configured one (meta).

    Not an epoch record's rate first: that is read when the epoch closes, after the scheduler stepped, so a
    schedule that decays to 0 (the Hugging Face Trainer's default) would quote "lr 0" for a run that trained at
    3e-3, and every rate derived from it would be 0 or missing."""
    lrs = [x for x in finite(history.steps.get("lr", [])) if x > 0] or [x for x in finite(per_epoch(history, "lr"))
                                                                          if x > 0]
    if lrs:
        return max(lrs)
    lr = history.meta.get("lr")
    return float(lr) if isinstance(lr, (int, float)) else None


def lr_at(history: History, step: int) -> float | None:
    """The learning rate recorded for ``step`` (None when the steps' rates were not recorded)."""
    lrs = history.steps.get("lr", [])
    if 1 <= step <= len(lrs) and isinstance(x := lrs[step - 1], NUMBER) and isfinite(x):
        return float(x)
    return None


def optimizer_name(history: History) -> str | None:
    """The optimizer's name, lower case: ``fit``'s setting (a name, a dict with one, or a built optimizer's class),
    else the class the Monitor watched."""
    spec = history.meta.get("optimizer")
    name = spec.get("name") if isinstance(spec, dict) else spec
    if not isinstance(name, str):
        name = history.sections.get("monitor", {}).get("optimizer")
    return name.lower() if isinstance(name, str) else None


def is_lbfgs(history: History) -> bool:
    """Trained with L-BFGS (``torch.optim.LBFGS`` or babysit's ``lbfgs``): each step is a quasi-Newton solve of up
    to ``max_iter`` iterations, not one small step, so the per-step update/weight ratio (~1e-3) does not apply."""
    name = optimizer_name(history)
    return name is not None and "lbfgs" in name


# update rules whose first step moves each weight by a fixed multiple of the rate whatever its gradient
# (Adam: lr * sign(g); RMSprop: lr * g / sqrt((1 - alpha) g^2); Adagrad: lr * sign(g))
SIGN_FIRST_STEP = ("adam", "adamw", "nadam", "radam", "adamax", "rmsprop", "adagrad")


def first_step_ignores_gradient(history: History) -> bool:
    """Trained with an adaptive rule whose first update is the rate times the gradient's sign: its update/weight
    ratio is ``lr / |w|`` per element whatever the gradient, an upper bound of the rule's later steps."""
    return optimizer_name(history) in SIGN_FIRST_STEP


def steps_per_epoch(history: History) -> int | None:
    """Optimizer steps per epoch: ``fit``'s meta, else the most an epoch record counted."""
    spe = history.meta.get("steps_per_epoch")
    if isinstance(spe, int) and spe > 0:
        return spe
    counts = [x for x in per_epoch(history, "steps") if x]
    return int(max(counts)) if counts else None


def num_classes(history: History) -> int | None:
    """Classes of the task: the model's output width (Monitor), else e^(initial softmax loss) rounded."""
    width = history.sections.get("monitor", {}).get("num_outputs")
    if isinstance(width, int) and width > 1:
        return width
    losses = finite(history.steps.get("loss", [])[:5])
    if losses and history.meta.get("loss") == "softmax" and 0.5 < losses[0] < 10:
        return max(2, round(math.exp(losses[0])))
    return None


def parameters(history: History) -> list[dict[str, Any]]:
    """The Monitor's parameter records (name, shape, fan_in, requires_grad, in_optimizer)."""
    return list(history.sections.get("monitor", {}).get("parameters", []))


def weight_names(history: History) -> list[str]:
    """Trainable weight matrices and kernels (fan-in known), in forward order when the layers are known."""
    records = {p["name"]: p for p in parameters(history) if p.get("fan_in")}
    ordered = [n for layer in history.layers for n in layer.get("params", []) if n in records]
    rest = [n for n in records if n not in ordered]
    return ordered + rest


def weighted_layers(history: History) -> list[dict[str, Any]]:
    """Linear/Conv layers in forward order (repeated calls of one layer kept once)."""
    return [layer for layer in history.layers if layer.get("kind") == "weighted" and "#" not in layer["name"]]


def fraction_true(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def fmt(x: float | None) -> str:
    """A number for a sentence: 3 significant digits, scientific when tiny or huge."""
    if x is None:
        return "n/a"
    if x != 0 and (abs(x) < 1e-2 or abs(x) >= 1e4):
        return f"{x:.1e}"
    return f"{x:.3g}"


def num_val(history: History) -> int | None:
    """Validation examples: recorded in meta (``num_val``, or a config run's ``data.val``), else the denominator
    the validation accuracies share (each is ``correct / n``), when at least three distinct ones pin it down."""
    for value in (history.meta.get("num_val"), (history.meta.get("data") or {}).get("val")):
        if isinstance(value, int) and value > 0:
            return value
    accs = {a for a in finite(per_epoch(history, "val_acc")) if 0 < a < 1}
    if len(accs) < 3:
        return None
    return next((n for n in range(2, _MAX_DENOMINATOR) if all(abs(a * n - round(a * n)) < 1e-6 for a in accs)), None)


_MAX_DENOMINATOR = 20_000  # past this many examples the standard error is below a point anyway


def chance(history: History) -> float | None:
    """Chance accuracy ``1/C`` of the task, when the number of classes is known."""
    classes = num_classes(history)
    return None if classes is None else 1.0 / classes
