"""The likelier cause behind two symptoms that have many: a run that learns nothing, and a loss that diverged.

A symptom alone sends a user through a checklist ("check labels, data, the loss"); the run's own records
usually rule most of it out. Each function here weighs the evidence in a fixed order, most specific first,
and returns one :class:`Cause` with the numbers it rests on, so the finding says *which* item of the list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from babysit.diagnose import _facts, _rate
from babysit.diagnose import _view as v
from babysit.diagnose import thresholds as T
from babysit.history import History
from babysit.quantities import InputMoments, UpdateRatio

# the quantities these functions read (a rule that calls them declares them in its ``uses``)
CAUSE_USES = ("update_ratio", "input_moments", "gradient_carry", *_facts.BLOCKED_SIGNAL_USES)


@dataclass(frozen=True)
class Cause:
    """A cause: a stable ``code`` (in the finding's evidence), a clause with numbers, what to do, and numbers."""

    code: str
    reason: str
    suggestion: str
    evidence: dict[str, Any] = field(default_factory=dict)


# --- no learning ----------------------------------------------------------------------------------------------------
def why_no_learning(history: History) -> Cause:
    """Why validation accuracy stays at chance: memorised labels, a missing zero_grad, L2, a blocked signal, the
    rate, or the data. A missing zero_grad comes before the rest: the gradients it piles up make the updates large
    (read as too high a rate) and can kill ReLUs (read as a blocked signal)."""
    chance = v.chance(history) or 0.0
    train = v.finite(v.per_epoch(history, "train_acc"))
    if _facts.diverged(history):
        return Cause("diverged", "the loss diverged", "fix the divergence first (see loss_diverged)")
    if len(train) >= 2 and chance and min(train) < T.BELOW_CHANCE * chance:
        return Cause("data_not_shuffled",
                     f"training accuracy fell to {min(train):.2f}, far below chance ({chance:.2f}): the model predicts "
                     "the class of the batches before, so consecutive batches share their class (data sorted by "
                     "label and not shuffled)",
                     "shuffle the training data every epoch (DataLoader(..., shuffle=True))", {"train_acc": min(train)})
    if train and max(train) > chance + T.MEMORISING * (1 - chance):
        return Cause("labels_do_not_follow_inputs",
                     f"training accuracy still rose to {max(train):.2f}: the network memorises labels that do not "
                     "follow from the inputs",
                     "check that labels match their inputs (shuffled or misaligned labels?)", {"train_acc": max(train)})
    carried = _zero_grad_missing(history) or lbfgs_minibatch(history)
    if carried is not None:
        return carried
    if _facts.regularization_dominates(history):
        return Cause("regularization", "the L2 term swamps the data loss", "see regularization_dominates")
    blocked = _facts.blocked_signal(history)
    if blocked:
        return Cause("blocked_signal", blocked, "fix that first: " + _facts.blocked_fix(blocked))
    return _rate_or_data(history)


def _rate_or_data(history: History) -> Cause:
    losses = v.finite(_facts.data_losses(history))
    start = _facts.initial_loss(history) or (losses[0] if losses else None)
    moved = _facts.loss_moved(history)
    curve = f"the loss went from {v.fmt(start)} to {v.fmt(losses[-1])}" if losses and start else "the loss"
    ratios = _facts.ratio_medians(history)
    top = max(ratios.values()) if ratios else None
    if top is None and _facts.ratios_recorded(history) and not v.is_lbfgs(history):
        # ratios were recorded and every one is 0: no weight changed, which no learning rate explains
        return Cause("no_updates", f"{curve}, and no weight tensor changed at all (every update/weight ratio is 0)",
                     "check that the optimizer holds the model's parameters and that its learning rate is not 0 "
                     "(see frozen_parameters)", {"moved": moved})
    if (top is not None and top < T.RATIO_SMALL) or (top is None and moved is not None and moved < T.LOSS_STILL
                                                     and not v.is_lbfgs(history)):
        rate = _rate.recommend(history, 10.0)
        why = (f"the updates are tiny (largest update/weight ratio {v.fmt(top)}, healthy ~1e-3)" if top is not None
               else f"{curve}, barely moving: the steps are too tiny to learn (no update ratios were recorded "
               "to confirm)")
        return Cause("learning_rate_too_low", f"{why}: the learning rate is too low",
                     f"raise the learning rate: try {rate.text()}", {"ratio": top, "moved": moved, **rate.evidence()})
    if top is not None and top > T.RATIO_PLATEAU:
        rate = _rate.recommend(history, 1 / 3)
        return Cause("learning_rate_too_high",
                     f"the updates are large (update/weight ratio {v.fmt(top)}, healthy ~1e-3): the weights jump "
                     "around instead of settling", f"lower the learning rate: try {rate.text()}",
                     {"ratio": top, **rate.evidence()})
    if top is not None:
        return Cause("signal_not_in_data",
                     f"the weights move at a healthy pace (update/weight ratio {v.fmt(top)}) but {curve}: nothing in "
                     "the inputs predicts the labels as the model sees them",
                     "check the inputs reach the model intact (not constant, not all zeros) and match their labels; "
                     "run babysit sanity (can it overfit 20 examples?)", {"ratio": top, "moved": moved})
    return Cause("data_or_loss", f"{curve}, yet accuracy did not rise",
                 "check labels, data and the loss on a tiny subset first (babysit sanity)", {"moved": moved})


# --- divergence -------------------------------------------------------------------------------------------------
def why_diverged(history: History, step: int) -> Cause:
    """Why the loss blew up at ``step``: a missing zero_grad, raw inputs, a huge init, the rate, no normalisation."""
    carried = _zero_grad_missing(history) or lbfgs_minibatch(history)
    if carried is not None:
        return carried
    for cause in (_raw_inputs(history), _huge_init(history), _fast_updates(history, step),
                  _growing_activations(history, step)):
        if cause is not None:
            return cause
    rate = _rate.recommend(history, 0.1)
    return Cause("learning_rate",
                 "nothing recorded points elsewhere (initial loss, inputs and activations look normal), so the "
                 "likeliest cause is the learning rate", f"lower the learning rate 10x: try {rate.text()}",
                 rate.evidence())


def _zero_grad_missing(history: History) -> Cause | None:
    carry = _facts.carried(history)
    if carry is None:
        return None
    return Cause("zero_grad_missing",
                 f"{carry.value:.0%} of each gradient was left over from earlier steps: optimizer.zero_grad() is "
                 "missing, so every update adds up all the gradients before it",
                 "fix that first: see gradient_accumulation (call optimizer.zero_grad() once per step, before "
                 "loss.backward())", {"carry": carry.value})


def lbfgs_minibatch(history: History) -> Cause | None:
    """L-BFGS stepped on mini-batches: each step runs up to ``max_iter`` iterations on one batch with curvature
    pairs gathered on other batches, which do not fit it, so it overshoots (or fits each batch in turn)."""
    spe = v.steps_per_epoch(history)
    if not v.is_lbfgs(history) or spe is None or spe <= 1:
        return None
    batch, total = history.meta.get("batch_size"), history.meta.get("num_train")
    size = f", batch size {batch}" if isinstance(batch, int) else ""
    full = f"batch_size >= the {total} training examples" if isinstance(total, int) else "the whole training set as "\
        "one batch"
    return Cause("lbfgs_minibatch",
                 f"L-BFGS ran on mini-batches ({spe} steps per epoch{size}): each step solves one batch with up to "
                 "max_iter iterations, using curvature measured on other batches that does not fit it; L-BFGS is a "
                 "full-batch method",
                 f"train L-BFGS on full batches ({full}, one step per epoch), or use a first-order optimizer "
                 "(adam, or sgd with momentum) for mini-batches", {"steps_per_epoch": spe, "batch_size": batch})


def _raw_inputs(history: History) -> Cause | None:
    mean = v.median(v.series(history, InputMoments, "mean")[1])
    std = v.median(v.series(history, InputMoments, "std")[1])
    if mean is None or std is None or (abs(mean) <= T.INPUT_MEAN and std <= T.INPUT_STD[1]):
        return None
    return Cause("inputs_not_normalized", f"the inputs are not normalised (mean {v.fmt(mean)}, std {v.fmt(std)})",
                 "standardise the inputs with the training split's mean and std, then retry the same rate",
                 {"input_mean": mean, "input_std": std})


def _huge_init(history: History) -> Cause | None:
    scales = {n: s for n in v.weight_names(history) if (s := _facts.init_scale(history, n)) is not None}
    name, scale = max(scales.items(), key=lambda kv: kv[1]) if scales else (None, 0.0)
    # the first step's loss: an epoch's mean (all a run without per-step losses has) includes the blow-up itself
    first = v.finite(history.steps.get("loss", [])[:1])
    start, classes = (first[0] if first else None), v.num_classes(history)
    expected = math.log(classes) if classes else None
    loud = start is not None and expected is not None and start > T.INIT_LOSS * expected
    if scale <= T.INIT_LARGE * math.sqrt(2) and not loud:
        return None
    parts = []
    if name is not None and scale > T.INIT_LARGE * math.sqrt(2):
        parts.append(f"{name} starts with weights {scale:.0f}x 1/sqrt(fan_in)")
    if loud:
        parts.append(f"the first loss was {v.fmt(start)} against ln {classes} = {v.fmt(expected)}")
    return Cause("initialisation", "the initialisation is too large: " + " and ".join(parts),
                 "initialise with He (ReLU) or Xavier (tanh) scaling, std ~ sqrt(2/fan_in)",
                 {"parameter": name, "init_scale": scale, "initial_loss": start, "expected_loss": expected})


def _fast_updates(history: History, step: int) -> Cause | None:
    if v.is_lbfgs(history):  # one L-BFGS step is a whole solve: its ratio says nothing about the rate
        return None
    peaks = {}
    for name in v.weight_names(history):
        steps, values = v.series(history, UpdateRatio, "ratio", name)
        before = v.finite(x for s, x in zip(steps, values) if s <= step)
        if before:
            peaks[name] = max(before)
    if not peaks or max(peaks.values()) <= T.RATIO_PLATEAU:
        return None
    name, peak = max(peaks.items(), key=lambda kv: kv[1])
    rate = _rate.recommend(history, 0.1)
    return Cause("learning_rate",
                 f"the update/weight ratio reached {v.fmt(peak)} in {name} before the blow-up (healthy ~1e-3): the "
                 "learning rate is too high", f"lower the learning rate: try {rate.text()}",
                 {"ratio": {name: peak}, **rate.evidence()})


def _growing_activations(history: History, step: int) -> Cause | None:
    if any(layer.get("kind") == "norm" for layer in history.layers):
        return None
    trunk = _facts.trunk_ratio(history)
    grown = [r for s, r in zip(trunk[0], trunk[1]) if s <= step] if trunk else []
    if not grown or max(grown) <= T.ACT_EXPLODE:
        return None
    _, _, first, last = trunk  # type: ignore[misc]
    return Cause("missing_normalization",
                 f"the activations grow {max(grown):.0f}x from {first} to {last} and no layer normalises them",
                 "add normalisation (batch norm after each conv/linear layer, layer norm in a transformer) or "
                 "residual scaling, and check the initialisation", {"activation_growth": max(grown)})
