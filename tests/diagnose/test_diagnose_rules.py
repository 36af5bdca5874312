"""Every diagnosis rule on scripted histories: the symptom fires its code, the healthy twin does not."""

from __future__ import annotations

import math

import pytest

from babysit.diagnose import RULES, diagnose
from babysit.testing.histories import make_history, mlp_layers

INF = math.inf
HEALTHY_LOSS = [2.3, 1.0, 0.6, 0.4, 0.3, 0.25]
RATIOS_OK = {f"ratio/fc{i}.weight": [1e-3] * 4 for i in (1, 2, 3)}


def _ratios(value: float) -> dict[str, list[float]]:
    return {f"ratio/fc{i}.weight": [value] * 4 for i in (1, 2, 3)}


def _deep(**series):
    layers, params = mlp_layers(hidden=3, activation="tanh")
    return dict(layers=layers, parameters=params, series=series)


# (case id, make_history kwargs, rule code, fires?)
CASES = [
    # loss_diverged (B2)
    ("loss becomes inf", dict(train_loss=[2.3, 2.1, 5.0, 80.0, INF]), "loss_diverged", True),
    ("loss explodes 10x", dict(train_loss=[2.3, 30.0, 45.0]), "loss_diverged", True),
    ("loss falls", dict(train_loss=HEALTHY_LOSS), "loss_diverged", False),
    # lr_too_high (B2)
    ("drop then rise", dict(train_loss=[2.3, 0.8, 0.6, 0.9, 1.3, 1.6]), "lr_too_high", True),
    # Adam lr 0.1 on digits (the zoo): the loss climbs back to 2x its lowest, still below 25% of its start
    ("drop then climb back, below the plateau level", dict(train_loss=[3.1, 0.93, 0.71, 0.65, 0.57, 0.55, 0.73, 0.75,
                                                                      1.02, 1.02]), "lr_too_high", True),
    ("drop then oscillate high", dict(train_loss=[2.3, 0.9, 0.8, 1.1, 0.8, 1.2, 0.85, 1.15]), "lr_too_high", True),
    ("drop then stall with big updates", dict(train_loss=[2.3, 1.0, 0.95, 0.94, 0.94, 0.94], series=_ratios(0.05)),
     "lr_too_high", True),
    ("steady decrease", dict(train_loss=HEALTHY_LOSS, series=RATIOS_OK), "lr_too_high", False),
    ("low-level bounce after convergence", dict(train_loss=[2.3, 0.2, 0.05, 0.02, 0.04, 0.02]), "lr_too_high", False),
    ("flat at chance is not a drop", dict(train_loss=[2.3, 2.3, 2.3, 2.31, 2.3, 2.32]), "lr_too_high", False),
    # lr_too_low (B2, B4)
    ("tiny updates everywhere", dict(train_loss=[2.3, 2.29, 2.28, 2.27], series=_ratios(2e-6)), "lr_too_low", True),
    ("slow linear decrease", dict(train_loss=[2.30, 2.28, 2.26, 2.24, 2.22, 2.20]), "lr_too_low", True),
    ("fast convex decrease", dict(train_loss=HEALTHY_LOSS, series=RATIOS_OK), "lr_too_low", False),
    ("tiny updates from dead units", dict(train_loss=[2.3] * 4, series={**_ratios(2e-6), "act/act1/dead": [0.95] * 4}),
     "lr_too_low", False),
    # loss_noisy (B2)
    ("jittery steps", dict(train_loss=[1.2, 1.2, 1.2], step_loss=[2.0, 0.4] * 15), "loss_noisy", True),
    ("smooth steps", dict(train_loss=[2.3, 1.5, 1.0], step_loss=[2.3 - 0.04 * i for i in range(30)]),
     "loss_noisy", False),
    # overfitting (B3)
    ("big train/val gap", dict(train_acc=[0.8, 0.95, 1.0], val_acc=[0.7, 0.75, 0.72]), "overfitting", True),
    ("small gap", dict(train_acc=[0.9, 0.95, 0.97], val_acc=[0.88, 0.93, 0.94]), "overfitting", False),
    # train_val_mismatch (B3): a gap already in epoch 1, where training accuracy is measured on unseen examples
    ("gap from the first epoch", dict(train_acc=[0.7, 0.75, 0.78], val_acc=[0.27, 0.28, 0.28]), "train_val_mismatch",
     True),
    ("validation ahead in the first epoch", dict(train_acc=[0.4, 0.9, 1.0], val_acc=[0.56, 0.8, 0.82]),
     "train_val_mismatch", False),
    # underfitting (B3)
    ("both low, close, flat", dict(train_loss=[2.3, 1.5, 1.45, 1.44], train_acc=[0.4, 0.5, 0.52, 0.53],
                                   val_acc=[0.39, 0.49, 0.5, 0.51]), "underfitting", True),
    ("low but still falling", dict(train_loss=[2.3, 1.9, 1.5, 1.1], train_acc=[0.3, 0.4, 0.5, 0.6],
                                   val_acc=[0.3, 0.4, 0.5, 0.6]), "underfitting", False),
    ("high accuracy", dict(train_loss=[2.3, 0.5, 0.3, 0.29], train_acc=[0.8, 0.95, 0.97, 0.97],
                           val_acc=[0.8, 0.94, 0.95, 0.95]), "underfitting", False),
    # no_learning (B2/B3)
    ("validation at chance", dict(train_acc=[0.1, 0.11, 0.1, 0.09], val_acc=[0.1, 0.11, 0.09, 0.1]),
     "no_learning", True),
    ("memorising shuffled labels", dict(train_acc=[0.1, 0.3, 0.5, 0.6], val_acc=[0.1, 0.09, 0.11, 0.1]),
     "no_learning", True),
    ("learning", dict(train_acc=[0.4, 0.7, 0.9], val_acc=[0.3, 0.6, 0.8]), "no_learning", False),
    # update ratios (B4)
    ("huge updates", dict(series=_ratios(0.3)), "update_ratio_too_high", True),
    ("healthy updates (high)", dict(series=RATIOS_OK), "update_ratio_too_high", False),
    ("tiny updates", dict(series=_ratios(1e-7)), "update_ratio_too_low", True),
    ("healthy updates (low)", dict(series=RATIOS_OK), "update_ratio_too_low", False),
    # activations through depth (B5)
    ("std shrinks through depth", _deep(**{"act/fc1/std": [1.0] * 3, "act/fc3/std": [1e-4] * 3}),
     "vanishing_activations", True),
    ("std steady through depth", _deep(**{"act/fc1/std": [1.0] * 3, "act/fc3/std": [0.8] * 3}),
     "vanishing_activations", False),
    ("std grows through depth", _deep(**{"act/fc1/std": [1.0] * 3, "act/fc3/std": [1e3] * 3}),
     "exploding_activations", True),
    ("std steady (exploding)", _deep(**{"act/fc1/std": [1.0] * 3, "act/fc3/std": [2.0] * 3}),
     "exploding_activations", False),
    ("tanh saturated", dict(series={"act/act1/saturated": [0.8, 0.9, 0.85]}), "saturated_activations", True),
    ("tanh spread", dict(series={"act/act1/saturated": [0.01, 0.0, 0.02]}), "saturated_activations", False),
    ("dead ReLUs", dict(series={"act/act1/dead": [0.9, 0.95, 0.97]}), "dead_units", True),
    ("a few dead ReLUs", dict(series={"act/act1/dead": [0.1, 0.2, 0.3]}), "dead_units", False),
    ("dead only once", dict(series={"act/act1/dead": [0.9, 0.1, 0.1, 0.1]}), "dead_units", False),
    # gradients through depth (B5)
    ("first-layer gradient tiny", dict(series={"grad/fc1.weight/norm": [1e-6] * 3, "grad/fc3.weight/norm": [1.0] * 3}),
     "vanishing_gradients", True),
    ("gradients comparable", dict(series={"grad/fc1.weight/norm": [0.5] * 3, "grad/fc3.weight/norm": [1.0] * 3}),
     "vanishing_gradients", False),
    ("first-layer gradient huge", dict(series={"grad/fc1.weight/norm": [100.0] * 3, "grad/fc3.weight/norm": [1.0] * 3}),
     "exploding_gradients", True),
    ("gradients comparable (exploding)", dict(series={"grad/fc1.weight/norm": [5.0] * 3,
                                                       "grad/fc3.weight/norm": [1.0] * 3}),
     "exploding_gradients", False),
    ("optimizer never changes a tensor",
     dict(series={"ratio/fc2.weight": [0.0] * 3, "grad/fc2.weight/norm": [0.5] * 3}), "frozen_parameters", True),
    ("every tensor changes", dict(series=RATIOS_OK), "frozen_parameters", False),
    # zero_grad missing
    ("gradient carried over", dict(series={"grad/carry": [0.0, 0.9, 0.95, 0.97]}), "gradient_accumulation", True),
    ("fresh gradients", dict(series={"grad/carry": [0.0, 1e-4, 0.0, 2e-4]}), "gradient_accumulation", False),
    # regularization (G8)
    ("L2 swamps the data loss", dict(train_loss=[22.3, 7.3, 2.4], reg_loss=[20.0, 5.0, 0.1], reg=1.0),
     "regularization_dominates", True),
    ("L2 larger but data loss falls", dict(train_loss=[2.5, 1.0, 0.6], reg_loss=[0.5, 0.5, 0.5], reg=0.01),
     "regularization_dominates", False),
    # set-up
    ("raw pixel inputs", dict(series={"input/mean": [4.9] * 3, "input/std": [6.0] * 3}), "inputs_not_normalized", True),
    ("standardised inputs", dict(series={"input/mean": [0.01] * 3, "input/std": [1.0] * 3}),
     "inputs_not_normalized", False),
    ("outputs are probabilities", dict(series={"output/min": [1e-6] * 3, "output/rowsum_err": [1e-7] * 3}),
     "softmax_before_loss", True),
    ("outputs are scores", dict(series={"output/min": [-4.0] * 3, "output/rowsum_err": [5.0] * 3}),
     "softmax_before_loss", False),
    ("dropout left on at evaluation", dict(series={"eval/disagreement_train_mode": [0.8]}), "eval_nondeterministic",
     True),
    ("dropout ignores eval()", dict(series={"eval/disagreement": [0.0, 0.4]}), "eval_nondeterministic", True),
    ("deterministic evaluation", dict(series={"eval/disagreement": [0.0, 0.0]}), "eval_nondeterministic", False),
]


@pytest.mark.parametrize(("kwargs", "code", "fires"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_on_scripted_history(kwargs, code: str, fires: bool) -> None:
    findings = diagnose(make_history(**kwargs), rules=[code])
    # the rule reports its own code exactly when the symptom is there
    assert [f.code for f in findings] == ([code] if fires else [])


def test_every_rule_has_a_firing_and_a_quiet_case() -> None:
    firing = {c[2] for c in CASES if c[3]}
    quiet = {c[2] for c in CASES if not c[3]}
    # the table covers every registered rule both ways
    assert firing == set(RULES)
    assert quiet == set(RULES)


def test_diverged_names_the_first_nonfinite_layer_and_the_update_ratio() -> None:
    h = make_history(train_loss=[2.3, 2.0, INF], series=_ratios(0.5), lr=0.5,
                     sections={"monitor": {"nonfinite": {"layer": "fc2", "parameters": ["fc2.weight"]}}})
    (f,) = diagnose(h, rules=["loss_diverged"])
    # the message names the layer, the step, the lr, the ratio, and suggests a learning rate near ratio 1e-3
    assert f.severity == "error"
    assert f.evidence["first_nonfinite_layer"] == "fc2"
    assert "fc2" in f.message and "lr 0.5" in f.message and "0.5 in fc" in f.message
    assert "lr 0.001" in f.suggestion


def test_vanishing_activations_points_at_tiny_init() -> None:
    kwargs = _deep(**{"act/fc1/std": [1.0] * 3, "act/fc3/std": [1e-4] * 3,
                      "weight/fc2.weight/norm": [0.01 * 64] * 3})  # std 0.01 over 64x64 weights
    (f,) = diagnose(make_history(**kwargs), rules=["vanishing_activations"])
    # the symptom points at its cause: the initial weight std against 1/sqrt(fan_in)
    assert "too small" in f.message and "fc2.weight" in f.message
    assert f.evidence["cause_parameter"] == "fc2.weight"


def test_no_learning_names_memorisation_as_the_cause() -> None:
    h = make_history(train_acc=[0.1, 0.3, 0.5, 0.6], val_acc=[0.1, 0.09, 0.11, 0.1])
    (f,) = diagnose(h, rules=["no_learning"])
    # training accuracy rising while validation stays at chance means labels that do not follow from inputs
    assert "memorises" in f.message and "labels" in f.suggestion


def test_dead_units_points_at_negative_pre_activations() -> None:
    h = make_history(series={"act/act1/dead": [0.99] * 3, "act/fc1/mean": [-5.0] * 3, "act/fc1/std": [1.0] * 3})
    (f,) = diagnose(h, rules=["dead_units"])
    # the layer before the ReLU outputs mostly negative numbers: a large negative bias
    assert "fc1" in f.message and "negative" in f.message


@pytest.mark.parametrize(("param", "reason"), [
    ({"requires_grad": False}, "requires_grad=False"),
    ({"in_optimizer": False}, "not in the optimizer"),
])
def test_frozen_parameters_from_the_parameter_records(param: dict, reason: str) -> None:
    layers, params = mlp_layers()
    params[0].update(param)
    (f,) = diagnose(make_history(layers=layers, parameters=params), rules=["frozen_parameters"])
    # the frozen tensor is named with the reason
    assert f.evidence["parameters"] == ["fc1.weight"]
    assert reason in f.message


@pytest.mark.parametrize(("grad", "fires", "reason"), [
    ([0.5, 0.4, 0.6], True, "does not change it"),
    (None, True, "never receives a gradient"),
    ([0.0, 0.0, 0.0], False, None),  # a zero gradient: dead or vanishing upstream, not a freeze
])
def test_frozen_parameters_from_zero_updates(grad, fires: bool, reason: str | None) -> None:
    series = {"ratio/fc2.weight": [0.0, 0.0, 0.0]}
    if grad is not None:
        series["grad/fc2.weight/norm"] = grad
    findings = diagnose(make_history(series=series), rules=["frozen_parameters"])
    # a parameter whose update is always exactly zero is frozen unless its gradient is zero too
    assert bool(findings) is fires
    if fires:
        assert reason in findings[0].message


def test_softmax_before_loss_is_a_warning_for_unknown_losses() -> None:
    series = {"output/min": [0.0] * 3, "output/rowsum_err": [1e-7] * 3}
    # with babysit's own losses it is an error; a custom loss might take probabilities on purpose
    assert diagnose(make_history(series=series), rules=["softmax_before_loss"])[0].severity == "error"
    assert diagnose(make_history(series=series, loss="custom"), rules=["softmax_before_loss"])[0].severity == "warning"
