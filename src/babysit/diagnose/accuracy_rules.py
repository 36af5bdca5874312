"""Train against validation accuracy (lecture B3): overfitting, underfitting, no learning, and evaluation
passes that disagree (lecture G9: dropout or batch norm left in training mode)."""

from __future__ import annotations

from babysit.diagnose import _facts
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
        if isinstance(tr, (int, float)) and isinstance(va, (int, float)):
            out.append((int(e.get("epoch", len(out) + 1)), float(tr), float(va)))
    return out


def _chance(history: History) -> float | None:
    classes = v.num_classes(history)
    return None if classes is None else 1.0 / classes


def at_chance(history: History) -> bool:
    """Validation (else training) accuracy never rose more than ``CHANCE_MARGIN`` above chance."""
    chance = _chance(history)
    accs = v.finite(v.per_epoch(history, "val_acc")) or v.finite(v.per_epoch(history, "train_acc"))
    return chance is not None and len(accs) >= 2 and max(accs) <= chance + T.CHANCE_MARGIN


def _likely_cause(history: History) -> tuple[str, str] | None:
    """Why nothing is learned, from the other measurements: (reason, suggestion)."""
    train = v.finite(v.per_epoch(history, "train_acc"))
    chance = _chance(history) or 0.0
    ratios = _facts.ratio_medians(history)
    if train and max(train) > chance + 0.2:
        return (f"training accuracy still rose to {max(train):.2f}: the network memorises labels that do not follow "
                "from the inputs", "check that labels match their inputs (shuffled or misaligned labels?)")
    if _facts.regularization_dominates(history):
        return "the L2 term swamps the data loss", "see regularization_dominates"
    blocked = _facts.blocked_signal(history)
    if blocked:
        return blocked, "fix that first: " + blocked[blocked.index("(see") + 1 : -1]
    if ratios and max(ratios.values()) < T.RATIO_LOW:
        return "the updates are tiny (update/weight ratio below 1e-5)", "see lr_too_low"
    return None


@rule("no_learning", "B2", uses=("update_ratio", *_facts.BLOCKED_SIGNAL_USES))
def no_learning(history: History) -> list[Finding]:
    """Validation accuracy stays at chance for the whole run."""
    if len(history.epochs) < 2 or not at_chance(history):
        return []
    chance = _chance(history) or 0.0
    val = v.finite(v.per_epoch(history, "val_acc"))
    which = "validation" if val else "training"
    accs = val or v.finite(v.per_epoch(history, "train_acc"))
    message = (f"{which} accuracy stayed at chance ({max(accs):.2f} at best, chance {chance:.2f}) for "
               f"{len(history.epochs)} epochs")
    cause = _likely_cause(history)
    evidence = {"best_acc": max(accs), "chance": chance, "epochs": len(history.epochs), "split": which}
    if cause is not None:
        message += f": {cause[0]}"
        evidence["cause"] = cause[0]
    suggestion = cause[1] if cause else "check labels, data and the loss on a tiny subset first (babysit sanity)"
    return [Finding("no_learning", "error", message, evidence, suggestion)]


@rule("overfitting", "B3")
def overfitting(history: History) -> list[Finding]:
    """Training accuracy far above validation accuracy at the end."""
    pairs = _pairs(history)
    if not pairs:
        return []
    epoch, train, val = pairs[-1]
    if train - val < T.OVERFIT_GAP:
        return []
    best_epoch, _, best_val = max(pairs, key=lambda p: p[2])
    reg = history.meta.get("reg")
    message = (f"at epoch {epoch} training accuracy is {train:.2f} but validation accuracy {val:.2f} "
               f"(gap {train - val:.2f}; best validation {best_val:.2f} at epoch {best_epoch})")
    more_reg = f"raise reg from {v.fmt(reg)} to {v.fmt(reg * 10)}" if isinstance(reg, (int, float)) and reg > 0 \
        else "add L2 regularization (e.g. reg 1e-3 .. 1e-2)"
    return [Finding("overfitting", "warning", message,
                    {"epoch": epoch, "train_acc": train, "val_acc": val, "gap": train - val,
                     "best_val_acc": best_val, "best_epoch": best_epoch},
                    f"{more_reg}, add dropout, get more data, or keep the epoch-{best_epoch} checkpoint")]


@rule("underfitting", "B3")
def underfitting(history: History) -> list[Finding]:
    """Training and validation accuracy both low and close, after the loss has flattened."""
    pairs = _pairs(history)
    losses = v.finite(_facts.data_losses(history))
    if len(pairs) < T.PLATEAU_MIN_EPOCHS or len(losses) < T.PLATEAU_MIN_EPOCHS or at_chance(history):
        return []
    epoch, train, val = pairs[-1]
    third = max(1, len(losses) // 3)
    before, last = sum(losses[-2 * third : -third]) / third, sum(losses[-third:]) / third
    flat = before <= 0 or (before - last) / before < T.PLATEAU_FLAT
    if train >= T.UNDERFIT_ACC or abs(train - val) >= T.UNDERFIT_GAP or not flat:
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
