"""Machine-readable remedies: from a finding's code, its evidence and the config to the config changes that cure it.

The diagnosis rules say what is wrong in words (``suggestion``); this module turns that into ``Finding.fix``:
dotted config keys and their new values (``{"optimizer.lr": 0.02}``), tried best first by ``babysit doctor``.
Where only a change to the code helps (a softmax before the loss, a layer left out of the optimizer, dropout
on at evaluation) the remedy is an instruction and ``fix`` stays None: no config change may hide such a
fault. The rules are not touched; everything here is derived from what they record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from babysit.config import RunConfig, config_from_dict
from babysit.findings import Finding

__all__ = ["CODE_LEVEL", "PRIORITY", "Remedy", "apply_fix", "describe_fix", "remedy_for", "with_fixes"]

Fix = dict[str, Any]

# Faults no config change cures, with what to change in the code.
CODE_LEVEL: dict[str, str] = {
    "softmax_before_loss": "remove the final softmax: return raw scores (logits); the loss applies log-softmax "
                           "itself",
    "frozen_parameters": "give every parameter to the optimizer (optimizer = SGD(model.parameters(), ...)) and "
                         "leave requires_grad on for the layers you mean to train",
    "eval_nondeterministic": "call model.eval() before evaluating, and use nn.Dropout (which follows "
                             "model.eval()) instead of F.dropout(x, training=True)",
    "gradient_accumulation": "call optimizer.zero_grad() once per step, before backward()",
    "gradient_mismatch": "the backward pass disagrees with the numerical gradient: fix the layer the gradient "
                         "check names",
    "regularization_not_increasing_loss": "the L2 term does not reach the loss: add it to the loss you "
                                          "call backward() on",
}
# gradient_tiny is left out on purpose: a tiny initialisation gives tiny gradients too, which a config cures
_LABELS = "check that the labels match their inputs (shuffled or misaligned labels?)"

# Which fix goes first when a run has several findings: the cause before its symptoms, in the lecture's order
# (inputs, initialisation, learning rate, regularization, capacity).
PRIORITY: tuple[str, ...] = (
    "inputs_not_normalized", "exploding_activations", "vanishing_activations", "saturated_activations",
    "vanishing_gradients", "exploding_gradients", "dead_units", "loss_diverged", "regularization_dominates",
    "no_learning", "lr_too_high", "update_ratio_too_high", "lr_too_low", "update_ratio_too_low",
    "overfitting", "underfitting", "loss_noisy",
)


@dataclass(frozen=True)
class Remedy:
    """What cures one finding: config fixes to try (best first) with the reason, or a code-level instruction.

    Attributes:
        code: the finding's code.
        fixes: config changes to try in order; empty for a code-level fault.
        reason: why these changes (shown by the doctor).
        instruction: for a code-level fault, what to change in the code; empty otherwise.
    """

    code: str
    fixes: list[Fix] = field(default_factory=list)
    reason: str = ""
    instruction: str = ""

    @property
    def code_level(self) -> bool:
        return bool(self.instruction) and not self.fixes


def remedy_for(finding: Finding | Mapping[str, Any], cfg: RunConfig, *, lr_hint: float | None = None
               ) -> Remedy | None:
    """The remedy of one finding for this config, or None (an info note, or a code nothing is known for).

    Args:
        finding: a Finding or its dict.
        cfg: the config the run was trained with.
        lr_hint: a learning rate measured for this config (a range test's suggestion), tried first where the
            learning rate is at fault.
    """
    f = finding if isinstance(finding, Finding) else Finding.from_dict(finding)
    if f.code in CODE_LEVEL:
        return Remedy(f.code, reason=f.message, instruction=CODE_LEVEL[f.code])
    if f.severity == "info":
        return None
    make = _REMEDIES.get(f.code)
    if make is None:
        return None
    remedy = make(f, cfg, lr_hint)
    if remedy.fixes and ":" in cfg.model.kind and all(k.startswith("model.") for fix in remedy.fixes for k in fix):
        # a factory's model ignores [model] settings: the change belongs in the factory's code
        return Remedy(f.code, reason=remedy.reason, instruction=f"in the model factory {cfg.model.kind}: "
                      + "; ".join(describe_fix(fix) for fix in remedy.fixes[:1]))
    return remedy


def with_fixes(findings: Iterable[Finding | Mapping[str, Any]], cfg: RunConfig, *, lr_hint: float | None = None
               ) -> list[Finding]:
    """The findings with ``fix`` filled in (the first config change of each remedy; None for code-level faults)."""
    out = []
    for raw in findings:
        f = raw if isinstance(raw, Finding) else Finding.from_dict(raw)
        remedy = remedy_for(f, cfg, lr_hint=lr_hint)
        out.append(replace(f, fix=remedy.fixes[0] if remedy is not None and remedy.fixes else None))
    return out


def apply_fix(cfg: RunConfig, fix: Mapping[str, Any]) -> RunConfig:
    """``cfg`` with the dotted keys of ``fix`` set (validated like a config file)."""
    raw = cfg.model_dump(exclude_none=True)
    for key, value in fix.items():
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config_from_dict(raw, source="the doctor's fix")


def describe_fix(fix: Mapping[str, Any]) -> str:
    """``optimizer.lr = 0.02, model.init = he`` (numbers to 3 significant digits)."""
    return ", ".join(f"{k} = {_fmt(v)}" for k, v in fix.items())


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _round(x: float) -> float:
    """A rate or strength to 2 significant digits, as a person would write it."""
    return float(f"{x:.2g}")


# --- one remedy per code -----------------------------------------------------------------------------------
def _lr(cfg: RunConfig, f: Finding) -> float:
    lr = cfg.optimizer.lr or f.evidence.get("lr")
    return float(lr) if isinstance(lr, (int, float)) and lr > 0 else 1e-2


def _recommended(f: Finding, lr: float, *, lower: bool) -> float | None:
    """The diagnosis' one rate for the run (``evidence["recommended_lr"]``, the rate every finding about the
    learning rate names), when it moves the rate the way this remedy does; None otherwise."""
    rate = f.evidence.get("recommended_lr")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not math.isfinite(rate) or rate <= 0:
        return None
    return float(rate) if (rate < lr / 1.5 if lower else rate > lr * 1.5) else None


def _lower_lr(f: Finding, cfg: RunConfig, hint: float | None) -> Remedy:
    if f.evidence.get("carry"):
        return Remedy(f.code, reason=f.message, instruction=CODE_LEVEL["gradient_accumulation"])
    lr = _lr(cfg, f)
    steps = [10.0, 100.0] if f.code == "loss_diverged" else [3.0, 10.0]
    if hint is not None and hint > lr * 1.5:  # the range test measured a higher rate: lowering it is no cure
        return Remedy(f.code, reason=f"lr {lr:.3g} is below the range test's suggestion {hint:.3g}; the cause "
                                     "lies elsewhere")
    recommended = _recommended(f, lr, lower=True)
    rates = ([hint] if hint is not None and hint < lr / 1.5 else []) + ([recommended] if recommended else []) \
        + [lr / s for s in steps]
    return Remedy(f.code, [{"optimizer.lr": _round(r)} for r in _distinct(rates)],
                  f"lr {lr:.3g} is too high (lecture B2): lower it" + _first(rates[0], hint, recommended))


def _diverged(f: Finding, cfg: RunConfig, hint: float | None) -> Remedy:
    """A diverged loss: first the cure of the cause the diagnosis names when that is not the rate (raw inputs, a
    too large init, no normalisation: the finding's suggestion then keeps the rate), then a lower rate."""
    cause = f.evidence.get("cause_code")
    rates = _lower_lr(f, cfg, hint)
    first = None
    if cause == "inputs_not_normalized" and cfg.data.normalize != "standardize":
        first = _normalize(f, cfg, hint)
    elif cause in ("initialisation", "missing_normalization"):
        first = _init(f, cfg, hint)
    if first is None or not first.fixes or rates.instruction:
        return rates
    return Remedy(f.code, first.fixes + rates.fixes, f"{first.reason}; else {rates.reason}" if rates.reason
                  else first.reason)


def _raise_lr(f: Finding, cfg: RunConfig, hint: float | None) -> Remedy:
    lr = _lr(cfg, f)
    if hint is not None and hint < lr / 1.5:  # the range test measured a lower rate: raising it is no cure
        return Remedy(f.code, reason=f"lr {lr:.3g} is above the range test's suggestion {hint:.3g}; the cause "
                                     "lies elsewhere")
    recommended = _recommended(f, lr, lower=False)
    rates = ([hint] if hint is not None and hint > lr * 1.5 else []) + ([recommended] if recommended else []) \
        + [lr * 10, lr * 100]
    return Remedy(f.code, [{"optimizer.lr": _round(r)} for r in _distinct(rates)],
                  f"lr {lr:.3g} is too low (lecture B2): raise it" + _first(rates[0], hint, recommended))


def _first(rate: float, hint: float | None, recommended: float | None) -> str:
    if rate == hint:
        return f", first to the range test's suggestion {hint:.3g}"
    if rate == recommended:
        return f", first to the diagnosis' recommended rate {recommended:.3g}"
    return ""


def _smaller_lr(f: Finding, cfg: RunConfig) -> float:
    """A smaller rate for a remedy that also lowers it: the diagnosis' recommended rate, else a tenth."""
    lr = _lr(cfg, f)
    return _recommended(f, lr, lower=True) or lr / 10


def _init(f: Finding, cfg: RunConfig, hint: float | None) -> Remedy:
    """Bad scale through depth: the fan-in init that suits the activation, then batch norm."""
    m = cfg.model
    fitting = "xavier" if m.activation in ("tanh", "sigmoid") else "he"
    fixes: list[Fix] = []
    if m.init != fitting:
        fixes.append({"model.init": fitting})
    if m.activation == "sigmoid" and f.code in ("vanishing_gradients", "vanishing_activations",
                                                "saturated_activations"):
        fixes.append({"model.activation": "relu", "model.init": "he"})
    if not m.batch_norm:
        fixes.append({"model.batch_norm": True} | ({"model.init": fitting} if m.init != fitting else {}))
    if f.code == "exploding_gradients":
        fixes.append({"optimizer.lr": _round(_smaller_lr(f, cfg))})
    return Remedy(f.code, fixes, f"init {m.init}" + (f" (std {m.init_std:g})" if m.init == "normal" else "")
                  + f" with {m.activation} units: the scale of activations or gradients changes layer after layer "
                  f"(lecture B5); {fitting} init keeps it")


def _dead(f: Finding, cfg: RunConfig, hint: float | None) -> Remedy:
    m, fixes = cfg.model, []
    if m.bias_init < 0:
        fixes.append({"model.bias_init": 0.0})
    if m.init not in ("he", "xavier"):
        fixes.append({"model.init": "he"})
    fixes += [{"optimizer.lr": _round(_smaller_lr(f, cfg))}, {"model.activation": "leaky_relu"}]
    return Remedy(f.code, fixes, "ReLU units that never fire get no gradient (lecture B5): start them alive "
                  "(biases at 0, He init) or take smaller steps")


def _reg_down(f: Finding, cfg: RunConfig, hint: float | None) -> Remedy:
    reg = cfg.train.reg
    if reg <= 0:
        return Remedy(f.code, reason=f.message, instruction="the L2 term dominates although train.reg is 0: check "
                      "the regularization your own loss adds")
    fixes = [{"train.reg": _round(reg / 100)}, {"train.reg": _round(reg / 10)}, {"train.reg": 0.0}]
    return Remedy(f.code, fixes, f"reg {reg:g} swamps the data loss (lecture G8): lower it 10-100x")


def _normalize(f: Finding, cfg: RunConfig, hint: float | None) -> Remedy:
    if cfg.data.normalize != "standardize":
        return Remedy(f.code, [{"data.normalize": "standardize"}],
                      f"data.normalize = {cfg.data.normalize}: inputs far from zero mean and unit scale; standardize "
                      "with the training split's statistics")
    return Remedy(f.code, reason=f.message, instruction="the inputs reach the model unnormalized although "
                  "data.normalize = standardize: standardize them in your data factory or model")


def _overfit(f: Finding, cfg: RunConfig, hint: float | None) -> Remedy:
    reg = cfg.train.reg
    fixes: list[Fix] = [{"train.reg": _round(reg * 10) if reg > 0 else 1e-3}]
    if cfg.model.dropout == 0:
        fixes.append({"model.dropout": 0.3})
    return Remedy(f.code, fixes, "training accuracy far above validation (lecture B3): more regularization")


def _underfit(f: Finding, cfg: RunConfig, hint: float | None) -> Remedy:
    fixes: list[Fix] = [{"train.reg": _round(cfg.train.reg / 10)}] if cfg.train.reg > 0 else []
    hidden = cfg.model.hidden
    sizes = [100] if hidden is None else [hidden] if isinstance(hidden, int) else list(hidden)
    fixes.append({"model.hidden": [2 * s for s in sizes]})
    return Remedy(f.code, fixes, "training accuracy stays low (lecture B3): less regularization or more capacity")


def _no_learning(f: Finding, cfg: RunConfig, hint: float | None) -> Remedy:
    cause = str(f.evidence.get("cause") or "")
    if "memorises" in cause or "labels" in cause:
        return Remedy(f.code, reason=f.message, instruction=_LABELS)
    if "L2" in cause and cfg.train.reg > 0:
        return _reg_down(f, cfg, hint)
    if "tiny" in cause:
        return _raise_lr(f, cfg, hint)
    if f.evidence.get("cause_code") == "diverged":  # loss_diverged's own remedy is the cure: not a second one here
        return Remedy(f.code, reason="nothing is learned because the loss diverged: see loss_diverged")
    if cause:
        return _init(f, cfg, hint)
    lr = _lr(cfg, f)
    recommended = f.evidence.get("recommended_lr")
    recommended = recommended if isinstance(recommended, (int, float)) and not isinstance(recommended, bool) else None
    rates = ([hint] if hint is not None else []) + ([recommended] if recommended else []) + [lr / 10, lr * 10]
    return Remedy(f.code, [{"optimizer.lr": _round(r)} for r in _distinct(rates)],
                  "nothing is learned: try another learning rate (then check the labels)")


def _noisy(f: Finding, cfg: RunConfig, hint: float | None) -> Remedy:
    bs = cfg.train.batch_size
    lr = _lr(cfg, f)
    smaller = _recommended(f, lr, lower=True) or lr / 3
    return Remedy(f.code, [{"train.batch_size": bs * 4}, {"optimizer.lr": _round(smaller)}],
                  f"batch size {bs}: the loss jitters from step to step (lecture B2): a larger batch")


def _distinct(values: Iterable[float]) -> list[float]:
    out: list[float] = []
    for v in values:
        if math.isfinite(v) and v > 0 and all(abs(math.log(v / o)) > 0.05 for o in out):
            out.append(v)
    return out


_REMEDIES: dict[str, Callable[[Finding, RunConfig, float | None], Remedy]] = {
    "loss_diverged": _diverged, "lr_too_high": _lower_lr, "update_ratio_too_high": _lower_lr,
    "lr_too_low": _raise_lr, "update_ratio_too_low": _raise_lr,
    "vanishing_activations": _init, "exploding_activations": _init, "saturated_activations": _init,
    "vanishing_gradients": _init, "exploding_gradients": _init, "dead_units": _dead,
    "regularization_dominates": _reg_down, "inputs_not_normalized": _normalize,
    "overfitting": _overfit, "underfitting": _underfit, "no_learning": _no_learning, "loss_noisy": _noisy,
}
