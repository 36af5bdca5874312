"""Set-up mistakes visible in the records: regularization swamping the data loss (lecture G8), inputs far
from zero mean and unit scale (the notes' preprocessing), and a model that already outputs probabilities."""

from __future__ import annotations

import math

from babysit.diagnose import _facts, _weights
from babysit.diagnose import _view as v
from babysit.diagnose import thresholds as T
from babysit.diagnose._registry import rule
from babysit.findings import Finding
from babysit.history import History
from babysit.quantities import InputMoments, OutputRange


@rule("regularization_dominates", "G8", uses=("update_ratio",))
def regularization_dominates(history: History) -> list[Finding]:
    """The L2 term is larger than the data loss while the data loss stays high; or, when no L2 term was recorded
    (L2 inside the user's loss, weight decay in the optimizer), the weights are pulled to zero while it stalls."""
    share = _facts.regularization_share(history)
    reg = history.meta.get("reg")
    if share is not None and share[0] > T.REG_DOMINATES and share[3] > T.REG_STUCK * share[2]:
        ratio, epoch, first, last = share
        message = (f"reg {v.fmt(reg)}: the L2 term reached {ratio:.3g}x the data loss (epoch {epoch}) and the data "
                   f"loss is still {v.fmt(last)} (it started at {v.fmt(first)})")
        suggestion = f"lower reg 10-100x (try reg {v.fmt(reg / 30)})" if isinstance(reg, (int, float)) and reg > 0 \
            else "lower the regularization strength 10-100x"
        return [Finding("regularization_dominates", "warning", message,
                        {"reg": reg, "reg_over_data": ratio, "epoch": epoch, "first_data_loss": first,
                         "last_data_loss": last, "hidden": False}, suggestion)]
    pulled = _facts.hidden_regularization(history)
    return [] if pulled is None else [_hidden(history, pulled)]


def _hidden(history: History, pulled: dict[str, _weights.Shrinkage]) -> Finding:
    losses = v.finite(_facts.data_losses(history))
    start = _facts.untrained_loss(history)
    alignment = v.median(s.alignment for s in pulled.values()) or 0.0
    shrink = v.median(s.shrink for s in pulled.values()) or 0.0
    message = (f"no L2 term was recorded, but {len(pulled)} of {len(v.weight_names(history))} weight tensors were "
               f"pulled towards zero: their norms fell to {v.fmt(shrink)}x their first value, each step shrinking "
               f"them by {-alignment:.0%} of its size, while the loss stalled at {v.fmt(losses[-1])} (an untrained "
               f"model's: {v.fmt(start)}): a regularization term swamps the data loss")
    evidence = {"hidden": True, "alignment": alignment, "shrink": shrink, "parameters": list(pulled),
                "untrained_loss": start, "last_loss": losses[-1]}
    suggestion = ("lower the L2 term inside your loss function (or the optimizer's weight_decay) 10-100x, and keep "
                  "norm weights and biases out of it")
    return Finding("regularization_dominates", "warning", message, evidence, suggestion)


@rule("inputs_not_normalized", needs=("input_moments",))
def inputs_not_normalized(history: History) -> list[Finding]:
    """The model's inputs are far from zero mean and unit scale."""
    mean = v.median(v.series(history, InputMoments, "mean")[1])
    std = v.median(v.series(history, InputMoments, "std")[1])
    if mean is None or std is None:
        return []
    low, high = T.INPUT_STD
    if abs(mean) <= T.INPUT_MEAN and low <= std <= high:
        return []
    message = f"the inputs have mean {v.fmt(mean)} and std {v.fmt(std)} (expected about 0 and 1)"
    return [Finding("inputs_not_normalized", "warning", message, {"mean": mean, "std": std},
                    "standardise with the training split's mean and std (data.load(..., normalize='standardize'))")]


@rule("softmax_before_loss", needs=("output_range",))
def softmax_before_loss(history: History) -> list[Finding]:
    """The model's outputs are already probabilities (>= 0, rows summing to 1) but the loss wants scores."""
    lows = v.series(history, OutputRange, "min")[1]
    _, errs = v.series(history, OutputRange, "rowsum_err")
    last = history.layers[-1] if history.layers else {}
    flags = [isinstance(lo, float) and isinstance(e, float) and lo >= 0 and e < T.PROBABILITY_TOL
             for lo, e in zip(lows, errs)]
    by_layer = last.get("kind") == "softmax"
    if not by_layer and (not flags or v.fraction_true(flags) < T.MAJORITY):
        return []
    loss = history.meta.get("loss")
    known = loss in ("softmax", "svm")
    where = f"its last layer {last['name']} is a {last['type']}" if by_layer else "its outputs are >= 0 and sum to 1"
    classes = v.num_classes(history) or 10
    floor = math.log(1 + (classes - 1) / math.e)  # cross-entropy of a one-hot probability row taken as scores
    message = (f"the model already outputs probabilities ({where}), but the {loss or 'cross-entropy'} loss applies "
               f"its own softmax to scores: the loss cannot fall below ~{floor:.2f} for {classes} classes and "
               "gradients shrink")
    return [Finding("softmax_before_loss", "error" if known else "warning", message,
                    {"loss": loss, "last_layer": last.get("name"), "share": v.fraction_true(flags)},
                    "remove the final softmax: return raw scores (logits); the loss applies log-softmax itself")]
