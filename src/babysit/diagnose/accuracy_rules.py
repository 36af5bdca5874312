"""Train against validation accuracy (lecture B3): overfitting, underfitting, no learning, training and validation
measured on different things, and evaluation passes that disagree (lecture G9: dropout or batch norm left in
training mode)."""

from __future__ import annotations

import math

from babysit.diagnose import _causes, _facts
from babysit.diagnose import _view as v
from babysit.diagnose import thresholds as T
from babysit.diagnose._registry import rule
from babysit.findings import Finding
from babysit.history import History
from babysit.quantities import EvalDisagreement


def _pairs(history: History) -> list[tuple[int, float, float]]:
    """``(epoch, train_acc, val_acc)`` of the epochs that have both."""
    out = []
    for e in history.epochs:
        tr, va = e.get("train_acc"), e.get("val_acc")
        if isinstance(tr, v.NUMBER) and isinstance(va, v.NUMBER):
            out.append((int(e.get("epoch", len(out) + 1)), float(tr), float(va)))
    return out


def _room(history: History) -> tuple[float, float]:
    """``(chance, learnable range 1 - chance)``: accuracy thresholds are shares of the range above chance."""
    chance = v.chance(history) or 0.0
    return chance, 1.0 - chance


def at_chance(history: History) -> bool:
    """Validation (else training) accuracy never rose more than ``CHANCE_MARGIN`` of the range above chance."""
    chance = v.chance(history)
    accs = v.finite(v.per_epoch(history, "val_acc")) or v.finite(v.per_epoch(history, "train_acc"))
    return chance is not None and len(accs) >= 2 and max(accs) <= chance + T.CHANCE_MARGIN * (1 - chance)


# causes read from the rates and the loss alone, which a run stopped after a few epochs also shows (a ResNet's first
# epochs under momentum have update ratios of ~0.05 and validation near chance while its loss falls ~10 % an epoch);
# the others rest on evidence of their own (gradients piled up, memorised labels, batches sorted by class, a dead layer)
_EARLY_LOOKING = ("signal_not_in_data", "data_or_loss", "learning_rate_too_high")


@rule("no_learning", "B2", uses=_causes.CAUSE_USES)
def no_learning(history: History) -> list[Finding]:
    """Validation accuracy stays at chance for the whole run; the likelier cause is named from the evidence."""
    if len(history.epochs) < 2 or not at_chance(history):
        return []
    chance = v.chance(history) or 0.0
    val = v.finite(v.per_epoch(history, "val_acc"))
    which = "validation" if val else "training"
    accs = val or v.finite(v.per_epoch(history, "train_acc"))
    cause = _causes.why_no_learning(history)
    if cause.code in _EARLY_LOOKING and _facts.new_low(v.finite(_facts.data_losses(history))):
        return []  # near chance while the loss still falls to new lows: a run stopped early, not one that is broken
    message = (f"{which} accuracy stayed at chance ({max(accs):.2f} at best, chance {chance:.2f}) for "
               f"{len(history.epochs)} epochs: {cause.reason}")
    evidence = {"best_acc": max(accs), "chance": chance, "epochs": len(history.epochs), "split": which,
                "cause": cause.reason, "cause_code": cause.code, **cause.evidence}
    return [Finding("no_learning", "error", message, evidence, cause.suggestion)]


def _val_loss_rise(history: History) -> tuple[float, int] | None:
    """How far the last validation loss stands above the lowest one before it (relative), and that epoch."""
    losses = v.per_epoch(history, "val_loss")
    good = [(i + 1, x) for i, x in enumerate(losses) if x is not None and v.finite([x])]
    if len(good) < 3:
        return None
    epoch, low = min(good[:-1], key=lambda p: p[1])
    return ((good[-1][1] - low) / low if low > 0 else 0.0), epoch


def _first_epoch_gap(history: History) -> tuple[float, float, float] | None:
    """``(gap, train_acc, val_acc)`` of the first epoch when training accuracy beat validation accuracy there by
    more than ``OVERFIT_GAP`` of the learnable range and ``OVERFIT_Z`` standard errors.

    The first epoch's running training accuracy is measured on examples the model has not been trained on yet
    (each batch is scored before its own update, and no batch has come round twice), so it estimates the same
    thing as the validation accuracy taken after the epoch, which is usually the higher of the two. A training
    accuracy far above it already then, and still at the end, is not overfitting: the two are measured on
    different things.
    """
    pairs = _pairs(history)
    if len(pairs) < 2 or pairs[0][0] != 1:
        return None
    if v.is_lbfgs(history) and _causes.lbfgs_minibatch(history) is None:
        # full-batch L-BFGS scores the training set after its own solve on it: a gap is plain overfitting
        return None
    _, room = _room(history)
    n = v.num_val(history)

    def wide(train: float, val: float) -> bool:
        se = math.sqrt(max(val * (1 - val), 1e-12) / n) if n else 0.0
        return train - val >= T.OVERFIT_GAP * room and train - val >= T.OVERFIT_Z * se

    _, train, val = pairs[0]
    # and still at the end: batch norm's running statistics can lag the first epoch's validation behind
    return (train - val, train, val) if wide(train, val) and wide(*pairs[-1][1:]) else None


@rule("train_val_mismatch", "B3")
def train_val_mismatch(history: History) -> list[Finding]:
    """Training accuracy far above validation accuracy already in the first epoch: not overfitting, but a training
    metric that counts what validation does not (padding, leaked labels)."""
    first = _first_epoch_gap(history)
    if first is None:
        return []
    gap, train, val = first
    losses = history.epochs[0]
    message = (f"already in epoch 1, on examples it had not yet trained on, training accuracy was {train:.2f} against "
               f"validation accuracy {val:.2f} (gap {gap:.2f})")
    if isinstance(losses.get("train_loss"), float) and isinstance(losses.get("val_loss"), float):
        message += f", training loss {v.fmt(losses['train_loss'])} against {v.fmt(losses['val_loss'])}"
    lbfgs = _causes.lbfgs_minibatch(history)
    if lbfgs is not None:
        # L-BFGS scores each batch after up to max_iter iterations on it: its training accuracy is measured on
        # examples it has just fitted, not on unseen ones
        message += (": L-BFGS scores each mini-batch after fitting it with up to max_iter iterations, so the "
                    f"training accuracy counts examples it has just fitted; {lbfgs.reason}")
        return [Finding("train_val_mismatch", "warning", message,
                        {"gap": gap, "train_acc": train, "val_acc": val, "cause_code": lbfgs.code, **lbfgs.evidence},
                        lbfgs.suggestion)]
    message += ": the training loss and accuracy count targets the validation does not"
    return [Finding("train_val_mismatch", "warning", message, {"gap": gap, "train_acc": train, "val_acc": val},
                    "make the training loss skip what validation skips: padding (ignore_index / a mask), "
                    "targets visible in the inputs, a different label mapping")]


@rule("overfitting", "B3")
def overfitting(history: History) -> list[Finding]:
    """Training accuracy above validation accuracy by more than the validation set's noise, and either by a large
    share of the learnable range or while the validation loss climbs back from its lowest point."""
    pairs = _pairs(history)
    if not pairs or _first_epoch_gap(history):  # a gap from the first epoch on is train_val_mismatch
        return []
    epoch, train, val = pairs[-1]
    _, room = _room(history)
    gap = train - val
    if gap < T.OVERFIT_MIN_GAP * room:
        return []
    n = v.num_val(history)
    se = math.sqrt(max(val * (1 - val), 1e-12) / n) if n else None
    errors = gap / se if se else None
    rise = _val_loss_rise(history)
    rising = rise is not None and rise[0] >= T.VAL_LOSS_RISE
    # a gap while both still climb (the validation loss reaching new lows, the training set not yet fitted) may
    # close with more epochs; once the training set is fitted it will not
    improving = rise is not None and rise[0] < -T.VAL_LOSS_NEW_LOW
    fitted = train >= 1 - T.OVERFIT_GAP * room
    large = gap >= T.OVERFIT_GAP * room and (fitted or not improving)
    if (errors is not None and errors < T.OVERFIT_Z) or not (large or rising):
        return []
    best_epoch, _, best_val = max(pairs, key=lambda p: p[2])
    message = (f"at epoch {epoch} training accuracy is {train:.2f} but validation accuracy {val:.2f} "
               f"(gap {gap:.2f}")
    message += f", {errors:.1f} standard errors of a {n}-example validation accuracy)" if errors else ")"
    if rising:
        message += f"; the validation loss rose {rise[0]:.0%} above its lowest (epoch {rise[1]})"
    message += f"; best validation {best_val:.2f} at epoch {best_epoch}"
    reg = history.meta.get("reg")
    more_reg = f"raise reg from {v.fmt(reg)} to {v.fmt(reg * 10)}" if isinstance(reg, (int, float)) and reg > 0 \
        else "add L2 regularization (e.g. reg 1e-3 .. 1e-2)"
    return [Finding("overfitting", "warning", message,
                    {"epoch": epoch, "train_acc": train, "val_acc": val, "gap": gap, "num_val": n,
                     "standard_errors": errors, "val_loss_rise": rise[0] if rise else None,
                     "best_val_acc": best_val, "best_epoch": best_epoch},
                    f"{more_reg}, add dropout, get more data, or keep the epoch-{best_epoch} checkpoint")]


@rule("underfitting", "B3", uses=("update_ratio",))
def underfitting(history: History) -> list[Finding]:
    """Training and validation accuracy both low and close, after the loss has flattened."""
    pairs = _pairs(history)
    losses = v.finite(_facts.data_losses(history))
    if len(pairs) < T.PLATEAU_MIN_EPOCHS or len(losses) < T.PLATEAU_MIN_EPOCHS or at_chance(history):
        return []
    epoch, train, val = pairs[-1]
    chance, room = _room(history)
    flat = _facts.loss_flat(losses)
    low = train < chance + T.UNDERFIT_ACC * room
    if not low or abs(train - val) >= T.UNDERFIT_GAP * room or not flat:
        return []
    if _facts.regularization_dominates(history):
        suggestion = "the L2 term dominates (see regularization_dominates): lower reg"
    else:
        suggestion = "give the model more capacity (wider or deeper layers) or train longer with a tuned lr"
    message = (f"at epoch {epoch} training accuracy {train:.2f} and validation accuracy {val:.2f} are both low "
               "and close, and the loss has stopped falling")
    return [Finding("underfitting", "warning", message, {"epoch": epoch, "train_acc": train, "val_acc": val},
                    suggestion)]


@rule("eval_nondeterministic", "G9", needs=("eval_disagreement",))
def eval_nondeterministic(history: History) -> list[Finding]:
    """Two evaluation passes over the same examples gave different outputs."""
    findings = []
    steps, values = v.series(history, EvalDisagreement, "train_mode")
    bad = [(s, x) for s, x in zip(steps, values) if isinstance(x, float) and x > T.EVAL_TOLERANCE]
    if bad:
        layers = history.sections.get("monitor", {}).get("eval_dropout_layers", [])
        step, value = bad[0]
        findings.append(Finding(
            "eval_nondeterministic", "error",
            f"evaluation ran in training mode: two passes over the same examples differ by {value:.0%} "
            f"(step {step}, epoch {v.epoch_of(history, step)}); dropout is active in "
            f"{', '.join(layers) or 'the model'}",
            {"step": step, "relative_difference": value, "dropout_layers": layers, "mode": "train"},
            "call model.eval() before evaluating (and model.train() before training again)"))
    steps, values = v.series(history, EvalDisagreement, "eval_mode")
    bad = [(s, x) for s, x in zip(steps, values) if isinstance(x, float) and x > T.EVAL_TOLERANCE]
    if bad:
        step, value = bad[0]
        findings.append(Finding(
            "eval_nondeterministic", "error",
            f"even in evaluation mode two passes over the same examples differ by {value:.0%} "
            f"(step {step}): some layer stays random after model.eval()",
            {"step": step, "relative_difference": value, "mode": "eval"},
            "make dropout follow self.training (nn.Dropout, or F.dropout(x, p, training=self.training))"))
    return findings
