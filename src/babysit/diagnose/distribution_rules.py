"""Activation and gradient distributions through depth (lecture B5): vanishing or exploding activations,
saturated tanh/sigmoid units, dead ReLUs, vanishing or exploding gradients; each names the layer and, when
the recorded weights show it, the initialisation behind it."""

from __future__ import annotations

import math
from typing import Any

from babysit.diagnose import _facts, _rate
from babysit.diagnose import _view as v
from babysit.diagnose import thresholds as T
from babysit.diagnose._registry import rule
from babysit.findings import Finding
from babysit.history import History
from babysit.quantities import ActivationMoments, DeadFraction, InputMoments, Saturation, UpdateRatio


def _init_cause(history: History, *, small: bool) -> tuple[str, str] | None:
    """The weight tensor whose initial std is furthest off (too small or too large), with its numbers."""
    scales = {n: s for n in v.weight_names(history) if (s := _facts.init_scale(history, n)) is not None}
    if not scales:
        return None
    name, scale = min(scales.items(), key=lambda kv: kv[1]) if small else max(scales.items(), key=lambda kv: kv[1])
    record = next(p for p in v.parameters(history) if p["name"] == name)
    xavier = 1 / math.sqrt(record["fan_in"])
    if small and scale < T.INIT_SMALL:
        return name, (f"because the initial weights are too small: {name} std {v.fmt(scale * xavier)} vs "
                      f"1/sqrt(fan_in) = {v.fmt(xavier)}")
    if not small and scale > T.INIT_LARGE * math.sqrt(2):
        return name, (f"because the initial weights are too large: {name} std {v.fmt(scale * xavier)} vs "
                      f"sqrt(2/fan_in) = {v.fmt(xavier * math.sqrt(2))}")
    return None


def _trunk_finding(history: History, *, vanishing: bool) -> list[Finding]:
    trunk = _facts.trunk_ratio(history)
    if trunk is None:
        return []
    steps, ratios, first, last = trunk
    holds = (lambda r: r < T.ACT_VANISH) if vanishing else (lambda r: r > T.ACT_EXPLODE)
    m = _facts.summarise(steps, ratios, holds)
    if m is None or m.share < T.MAJORITY:
        return []
    code = "vanishing_activations" if vanishing else "exploding_activations"
    names = [x["name"] for x in v.weighted_layers(history)]
    base = dict(zip(*v.series(history, ActivationMoments, "std", first))).get(m.step)
    ratio_then = dict(zip(steps, ratios))[m.step]  # type: ignore[index]
    per_layer = ratio_then ** (1 / max(names.index(last) - names.index(first), 1))
    message = (f"the activation std {'shrinks' if vanishing else 'grows'} from {v.fmt(base)} at {first} to "
               f"{v.fmt(base * ratio_then if base is not None else None)} at {last}, {per_layer:.2g}x per layer "
               f"(step {m.step}, epoch {v.epoch_of(history, m.step)}; median ratio {v.fmt(m.value)})")
    evidence = {"first_layer": first, "last_layer": last, "ratio": m.value, "per_layer": per_layer,
                "step": m.step, "share": m.share}
    cause = _init_cause(history, small=vanishing)
    dead = _facts.layer_measure(history, DeadFraction, T.DEAD) if vanishing else {}
    if cause:
        message += f", {cause[1]}"
        evidence["cause_parameter"] = cause[0]
    elif dead:
        message += f", because the ReLUs of {', '.join(dead)} are dead and pass nothing on (see dead_units)"
        evidence["dead_layers"] = list(dead)
    suggestion = ("initialise with Xavier (tanh/sigmoid) or He (ReLU) scaling, std ~ 1/sqrt(fan_in), or add "
                  "batch normalisation")
    return [Finding(code, "warning", message, evidence, suggestion)]


@rule("vanishing_activations", "B5", needs=("activation_moments",), uses=("update_ratio", "dead_fraction"))
def vanishing_activations(history: History) -> list[Finding]:
    """Activation std shrinks layer after layer (weights too small)."""
    return _trunk_finding(history, vanishing=True)


@rule("exploding_activations", "B5", needs=("activation_moments",), uses=("update_ratio",))
def exploding_activations(history: History) -> list[Finding]:
    """Activation std grows layer after layer (weights too large)."""
    return _trunk_finding(history, vanishing=False)


@rule("saturated_activations", "B5", needs=("saturation",), uses=("update_ratio", "input_moments"))
def saturated_activations(history: History) -> list[Finding]:
    """tanh/sigmoid layers with most pre-activations beyond +-5, where their gradient is ~0."""
    found = _facts.layer_measure(history, Saturation, T.SATURATED)
    if not found:
        return []
    name, m = max(found.items(), key=lambda kv: kv[1].value)
    message = (f"{m.value:.0%} of the pre-activations of {name} lie beyond +-5, where tanh/sigmoid are flat "
               f"(from step {m.step}, epoch {v.epoch_of(history, m.step)})")
    if len(found) > 1:
        message += f"; also {', '.join(f'{n} {x.value:.0%}' for n, x in found.items() if n != name)}"
    cause = _init_cause(history, small=False)
    if cause:
        message += f", {cause[1]}"
    inputs = v.median(v.series(history, InputMoments, "std")[1])
    if inputs is not None and inputs > T.INPUT_STD[1]:
        message += f"; the inputs are not normalised (std {v.fmt(inputs)})"
    return [Finding("saturated_activations", "warning", message,
                    {"layers": {n: x.value for n, x in found.items()}, "step": m.step},
                    "use Xavier init (std 1/sqrt(fan_in)) and standardised inputs, or ReLU units")]


@rule("dead_units", "B5", needs=("dead_fraction",),
      uses=("update_ratio", "gradient_norm", "activation_moments", "gradient_carry"))
def dead_units(history: History) -> list[Finding]:
    """ReLU layers where most units never fire on the sampled examples."""
    found = _facts.layer_measure(history, DeadFraction, T.DEAD)
    if not found:
        return []
    name, m = max(found.items(), key=lambda kv: kv[1].value)
    message = (f"{m.value:.0%} of the ReLU units of {name} never fire (from step {m.step}, epoch "
               f"{v.epoch_of(history, m.step)})")
    if len(found) > 1:
        message += f"; also {', '.join(f'{n} {x.value:.0%}' for n, x in found.items() if n != name)}"
    evidence: dict[str, Any] = {"layers": {n: x.value for n, x in found.items()}, "step": m.step}
    suggestion = "lower the learning rate, initialise biases at 0 (or a small positive value), or use leaky ReLU"
    ratio = v.median(_facts.ratio_medians(history, early=False).values())
    peak = _peak_before(history, m.step)
    carry = _facts.carried(history)
    if ratio is not None and ratio > T.RATIO_PLATEAU / 2 and carry is not None:
        # the updates are large because each one adds up all earlier gradients, not because of the rate
        message += (f"; the updates are large (median update/weight ratio {v.fmt(ratio)}) because {carry.value:.0%} "
                    "of each gradient is left over from earlier steps (see gradient_accumulation)")
        evidence.update(median_ratio=ratio, cause_code="zero_grad_missing")
        suggestion = ("call optimizer.zero_grad() once per step, before loss.backward() (see gradient_accumulation); "
                      "then initialise biases at 0 (or a small positive value), or use leaky ReLU")
    elif (ratio is not None and ratio > T.RATIO_PLATEAU / 2) or peak is not None:
        if ratio is not None and ratio > T.RATIO_PLATEAU / 2:
            message += f"; the updates are large (median update/weight ratio {v.fmt(ratio)})"
            evidence["median_ratio"] = ratio
        elif peak is not None:
            param, top, at = peak
            message += (f"; the updates were large before they died (update/weight ratio {v.fmt(top)} in {param} "
                        f"at step {at})")
            evidence["peak_ratio"] = {"param": param, "ratio": top, "step": at}
        message += ": a too-high lr kills ReLUs"
        rate = _rate.recommend(history, 0.1)
        evidence.update(cause_code="learning_rate", **rate.evidence())
        suggestion = (f"lower the learning rate (try {rate.text()}), initialise biases at 0 (or a small positive "
                      "value), or use leaky ReLU")
    before = _preceding_weighted(history, name)
    if before is not None:
        means = v.series(history, ActivationMoments, "mean", before)[1]
        stds = v.series(history, ActivationMoments, "std", before)[1]
        mean, std = v.median(means), v.median(stds)
        if mean is not None and std is not None and mean < -2 * std:
            message += (f"; the pre-activations from {before} are mostly negative (mean {v.fmt(mean)}, std "
                        f"{v.fmt(std)}): a large negative bias or a too-large update pushed them below zero")
            evidence["pre_activation"] = {"layer": before, "mean": mean, "std": std}
    return [Finding("dead_units", "warning", message, evidence, suggestion)]


def _peak_before(history: History, step: int | None) -> tuple[str, float, int] | None:
    """The largest update/weight ratio of a weight tensor sampled before ``step`` (when the units were first seen
    dead), ``(tensor, ratio, its step)``, when it is above ``RATIO_PLATEAU``. Units dead from the first sample died
    of their initialisation, not of a step; L-BFGS's steps are whole solves, not judged by this ratio."""
    if step is None or v.is_lbfgs(history):
        return None
    best: tuple[str, float, int] | None = None
    for name in v.weight_names(history):
        for s, x in zip(*v.series(history, UpdateRatio, "ratio", name)):
            if s < step and isinstance(x, float) and math.isfinite(x) and (best is None or x > best[1]):
                best = (name, x, s)
    return best if best is not None and best[1] > T.RATIO_PLATEAU else None


def _preceding_weighted(history: History, layer: str) -> str | None:
    names = [x["name"] for x in history.layers]
    if layer not in names:
        return None
    for x in reversed(history.layers[: names.index(layer)]):
        if x.get("kind") == "weighted":
            return x["name"]
    return None


def _gradient_finding(history: History, *, vanishing: bool) -> list[Finding]:
    depth = _facts.gradient_depth_ratio(history)
    if depth is None:
        return []
    steps, ratios, first, last = depth
    holds = (lambda r: r < T.GRAD_VANISH) if vanishing else (lambda r: r > T.GRAD_EXPLODE)
    m = _facts.summarise(steps, ratios, holds)
    if m is None or m.share < T.MAJORITY or m.held is None:
        return []
    code = "vanishing_gradients" if vanishing else "exploding_gradients"
    effect = "barely learn" if vanishing else "take huge steps"
    # the typical ratio on the steps past the threshold: the median of all steps can sit on the other side of it
    # when only about half are past it
    ratio = m.held
    where = f"step {m.step}, epoch {v.epoch_of(history, m.step)}"
    if m.share < 1:
        where += f"; on {m.share:.0%} of the sampled steps"
    if ratio == 0:
        message = f"no gradient reaches {first}: its gradient norm is 0 while {last}'s is not ({where})"
    else:
        message = (f"the gradient norm of {first} is {v.fmt(ratio)}x that of {last} "
                   f"({'below 1e-3' if vanishing else 'above 70'}: the first layers {effect}; {where})")
    evidence = {"first": first, "last": last, "ratio": ratio, "step": m.step, "share": m.share}
    squashing = [x["activation"] for x in history.layers if x.get("kind") == "activation"
                 and x.get("activation") in ("sigmoid", "tanh")]
    post_norm = _post_norm_blocks(history)
    dead = _facts.layer_measure(history, DeadFraction, T.DEAD) if vanishing else {}
    if dead:
        # a dead ReLU passes no gradient back at all: no init or normalisation advice fits until it is fixed
        message += f", because the ReLUs of {', '.join(dead)} are dead and pass no gradient back (see dead_units)"
        evidence.update(cause_code="dead_units", dead_layers=list(dead))
        suggestion = "fix that first: see dead_units"
    elif vanishing and squashing:
        message += f", through {len(squashing)} {squashing[0]} layers"
        suggestion = "use ReLU units (a sigmoid passes at most 0.25 of the gradient per layer) or batch normalisation"
    elif vanishing and post_norm:
        message += (f", through {post_norm} post-norm blocks (each layer norm after its residual sum divides the "
                    "gradient by the growing scale of the stream)")
        evidence["cause_code"] = "post_norm"
        suggestion = ("put the layer norm before each sublayer (pre-norm), or warm the learning rate up from ~0 over "
                      "the first few hundred steps")
    elif vanishing:
        suggestion = "check the initialisation (He/Xavier) and add batch normalisation or residual connections"
    else:
        suggestion = "lower the learning rate, clip gradients (torch.nn.utils.clip_grad_norm_) or fix the init"
    return [Finding(code, "warning", message, evidence, suggestion)]


def _post_norm_blocks(history: History) -> int:
    """Norm layers of a sequence model (it has embeddings) that each follow a weighted layer: post-norm blocks."""
    kinds = [layer.get("kind") for layer in history.layers]
    if "embedding" not in kinds or "norm" not in kinds or kinds.index("norm") < kinds.index("weighted"):
        return 0
    return sum(1 for a, b in zip(kinds, kinds[1:]) if a == "weighted" and b == "norm")


@rule("vanishing_gradients", "B5", needs=("gradient_norm",), uses=("dead_fraction",))
def vanishing_gradients(history: History) -> list[Finding]:
    """The first layer's gradient is below 1e-3 of the last's (AutoTrainer)."""
    return _gradient_finding(history, vanishing=True)


@rule("exploding_gradients", "B5", needs=("gradient_norm",))
def exploding_gradients(history: History) -> list[Finding]:
    """The first layer's gradient is above 70x the last's (AutoTrainer)."""
    return _gradient_finding(history, vanishing=False)
