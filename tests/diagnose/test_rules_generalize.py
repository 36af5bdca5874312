"""Rules that hold beyond the digits they were tuned on: thresholds that scale with the task, one learning-rate
recommendation per run, updates below float precision told apart from frozen tensors, causes named from the
evidence (no learning, divergence), and L2 found even when it hides inside the user's loss."""

from __future__ import annotations

import math
import re

import pytest

from babysit.diagnose import diagnose
from babysit.testing.histories import make_history, mlp_layers

INF = math.inf
WEIGHTS = ("fc1.weight", "fc2.weight", "fc3.weight")


def _series(ratio: dict[str, float] | float, *, norm: float | list[float] = 5.0, samples: int = 6) -> dict:
    ratios = ratio if isinstance(ratio, dict) else dict.fromkeys(WEIGHTS, ratio)
    norms = norm if isinstance(norm, list) else [norm] * samples
    out = {}
    for name, r in ratios.items():
        out[f"ratio/{name}"] = [r] * len(norms)
        out[f"weight/{name}/norm"] = norms
    return out


def _numbers(text: str) -> set[float]:
    return {float(m) for m in re.findall(r"lr (\d[\d.e+-]*)", text)}


# --- updates below float precision are not a frozen parameter -----------------------------------------------------
def test_updates_below_float_precision_are_not_called_frozen() -> None:
    # a deep sigmoid net with a tiny init: the first layer's gradient is 1e-20, lr * grad is far below float32's
    # resolution of its weights, so the weights never change although the optimizer does update them
    series = {"ratio/fc1.weight": [0.0] * 4, "grad/fc1.weight/norm": [1e-20] * 4, "weight/fc1.weight/norm": [0.5] * 4,
              "ratio/fc3.weight": [1e-3] * 4, "grad/fc3.weight/norm": [0.5] * 4, "weight/fc3.weight/norm": [2.0] * 4}
    h = make_history(train_loss=[2.3, 2.3, 2.3], series=series, lr=0.05)
    # not frozen: the optimizer is not at fault
    assert diagnose(h, rules=["frozen_parameters"]) == []
    (low,) = diagnose(h, rules=["update_ratio_too_low"])
    # the too-small update is named as such, with the update it would have made
    assert "float32" in low.message and "fc1.weight" in low.message
    assert low.evidence["below_precision"]["fc1.weight"] == pytest.approx(0.05 * 1e-20 / 0.5)


def test_an_ignored_gradient_of_normal_size_is_still_frozen() -> None:
    series = {"ratio/fc2.weight": [0.0] * 3, "grad/fc2.weight/norm": [0.5] * 3, "weight/fc2.weight/norm": [4.0] * 3}
    (f,) = diagnose(make_history(series=series, lr=0.05), rules=["frozen_parameters"])
    # lr * grad / weight = 6e-3 would have changed the weights: the optimizer ignores them
    assert "does not change it" in f.message
    assert diagnose(make_history(series=series, lr=0.05), rules=["update_ratio_too_low"]) == []


# --- a train/validation gap judged against what the validation set resolves --------------------------------------
def _gap(val_loss, num_val: int | None, *, train_acc=1.0, val_acc=0.876, classes: int = 10):
    h = make_history(train_loss=[2.0, 0.8, 0.3, 0.1, 0.05, 0.02], val_loss=val_loss,
                     train_acc=[0.5, 0.8, 0.9, 0.97, 0.99, train_acc],
                     val_acc=[0.45, 0.7, 0.8, 0.85, 0.87, val_acc], num_classes=classes)
    if num_val is not None:
        h.meta["num_val"] = num_val
    return diagnose(h, rules=["overfitting"])


def test_a_twelve_point_gap_with_rising_validation_loss_is_overfitting() -> None:
    (f,) = _gap([2.0, 0.9, 0.55, 0.5, 0.6, 0.75], num_val=362)
    # 12 points is 7 standard errors of a 362-example validation accuracy, and the validation loss rises
    assert f.evidence["gap"] == pytest.approx(0.124)
    assert f.evidence["standard_errors"] > 3
    assert f.evidence["val_loss_rise"] > 0.3
    assert "standard error" in f.message and "validation loss" in f.message


def test_a_gap_the_validation_set_cannot_resolve_is_not_overfitting() -> None:
    # 20 validation examples: a 12-point gap is within noise, and the validation loss still falls
    assert _gap([2.0, 0.9, 0.6, 0.5, 0.45, 0.44], num_val=20) == []


def test_a_small_gap_with_falling_validation_loss_is_not_overfitting() -> None:
    # the healthy digits runs: 4 points, validation loss still falling
    assert _gap([2.0, 0.9, 0.5, 0.3, 0.2, 0.15], num_val=362, val_acc=0.96) == []


def test_the_gap_threshold_scales_with_the_chance_level() -> None:
    # two classes: a gap of 14 points with a flat validation loss is large against the 50 learnable points
    flat = [0.7, 0.5, 0.45, 0.45, 0.45, 0.45]
    assert _gap(flat, num_val=2000, val_acc=0.86, classes=2)
    # ten classes: a 12-point gap with a flat validation loss is below the bar of 15% of 90 learnable points
    assert _gap(flat, num_val=2000, val_acc=0.88, classes=10) == []


def test_the_validation_size_is_read_from_the_accuracies_when_not_recorded() -> None:
    # accuracies k/362 carry their denominator: the same verdict without num_val in meta
    accs = [k / 362 for k in (160, 250, 290, 308, 315, 317)]
    h = make_history(train_loss=[2.0, 0.8, 0.3, 0.1, 0.05, 0.02], val_loss=[2.0, 0.9, 0.55, 0.5, 0.6, 0.75],
                     train_acc=[0.5, 0.8, 0.9, 0.97, 0.99, 1.0], val_acc=accs)
    (f,) = diagnose(h, rules=["overfitting"])
    assert f.evidence["num_val"] == 362


# --- one learning-rate recommendation per run -------------------------------------------------------------------
def test_every_rule_about_the_rate_recommends_the_same_number() -> None:
    ratios = {"fc1.weight": 1.1e-7, "fc2.weight": 2.5e-7, "fc3.weight": 5.6e-7}
    h = make_history(train_loss=[3.34, 3.30, 3.26, 3.22, 3.18], train_acc=[0.05] * 5, val_acc=[0.05] * 5,
                     series=_series(ratios), lr=1e-6)
    findings = diagnose(h, rules=["lr_too_low", "update_ratio_too_low", "no_learning"])
    assert {f.code for f in findings} == {"lr_too_low", "update_ratio_too_low", "no_learning"}
    recommended = {f.evidence["recommended_lr"] for f in findings}
    # one number, with the ratio it comes from, in every suggestion that names a rate
    assert len(recommended) == 1
    (lr,) = recommended
    assert all(_numbers(f.suggestion) == {float(f"{lr:g}")} for f in findings)
    assert all(f.evidence["recommended_from"]["ratio"] == pytest.approx(5.6e-7) for f in findings)


def test_diverged_and_high_ratio_rules_agree_on_the_rate() -> None:
    h = make_history(train_loss=[2.3, 2.0, INF], series=_series({"fc1.weight": 0.3, "fc2.weight": 0.8}), lr=0.5)
    findings = diagnose(h, rules=["loss_diverged", "update_ratio_too_high"])
    assert len({f.evidence["recommended_lr"] for f in findings}) == 1


@pytest.mark.parametrize("ratio", [0.0, INF])  # nothing moved (frozen), or the run blew up before the readout
def test_a_diverged_run_whose_ratios_are_zero_or_infinite_still_gets_its_finding(ratio: float) -> None:
    h = make_history(train_loss=[2.3, 2.0, INF], series=_series(ratio), lr=0.5)
    (finding,) = diagnose(h, rules=["loss_diverged"])  # it raised ZeroDivisionError for 0 and recommended 0 for inf
    assert finding.evidence["recommended_lr"] == pytest.approx(0.05)  # the fixed factor: a tenth of the rate


# --- no_learning names the likelier cause ------------------------------------------------------------------------
def test_no_learning_with_small_updates_blames_the_rate_not_the_labels() -> None:
    # Adam at lr 1e-6: ratios of 3e-5 (not below 1e-5) and a loss that barely moves
    h = make_history(train_loss=[2.31, 2.30, 2.30, 2.29], train_acc=[0.1] * 4, val_acc=[0.1, 0.11, 0.1, 0.1],
                     series=_series(3e-5), lr=1e-6)
    (f,) = diagnose(h, rules=["no_learning"])
    assert f.evidence["cause_code"] == "learning_rate_too_low"
    assert "update/weight ratio" in f.message and "labels" not in f.suggestion
    assert f.evidence["recommended_lr"] == pytest.approx(3e-5, rel=0.01)


def test_no_learning_without_monitor_reads_the_loss() -> None:
    # no per-layer statistics: a loss that did not move points at the rate, one that fell at the labels
    flat = make_history(train_loss=[2.303, 2.302, 2.302, 2.301], train_acc=[0.1] * 4, val_acc=[0.1] * 4)
    (f,) = diagnose(flat, rules=["no_learning"])
    assert "learning rate" in f.message and f.evidence["cause_code"] == "learning_rate_too_low"
    fell = make_history(train_loss=[2.3, 1.6, 1.1, 0.8], train_acc=[0.1, 0.3, 0.5, 0.7], val_acc=[0.1] * 4)
    (g,) = diagnose(fell, rules=["no_learning"])
    assert g.evidence["cause_code"] == "labels_do_not_follow_inputs"


def test_no_learning_with_healthy_updates_and_flat_loss_points_at_the_data() -> None:
    # the weights move at ~1e-3 per step but nothing is learned: data or loss, not the rate
    h = make_history(train_loss=[2.303, 2.302, 2.302, 2.303], train_acc=[0.1] * 4, val_acc=[0.1] * 4,
                     series=_series(1e-3), lr=0.05)
    (f,) = diagnose(h, rules=["no_learning"])
    assert f.evidence["cause_code"] == "signal_not_in_data"
    assert "1.0e-03" in f.message or "0.001" in f.message


@pytest.mark.parametrize(("ratio", "cause"), [(1.6e-2, "signal_not_in_data"), (4.8e-2, "learning_rate_too_high")])
def test_a_short_run_near_chance_whose_loss_still_falls_is_not_called_broken(ratio, cause) -> None:
    # a ResNet's first epochs on six shapes (the CLI's, update ratios 0.016; Lightning's, 0.048): validation near
    # chance 0.17 and a loss falling 9 % an epoch: it is early, nothing points at the data or the rate; the same
    # run with its loss flat is judged
    falling = make_history(train_loss=[1.87, 1.77, 1.62], train_acc=[0.19, 0.22, 0.26], val_acc=[0.17, 0.18, 0.19],
                           num_classes=6, series=_series(ratio), lr=0.1)
    assert diagnose(falling, rules=["no_learning"]) == []
    flat = make_history(train_loss=[1.80, 1.79, 1.79], train_acc=[0.19, 0.20, 0.20], val_acc=[0.17, 0.18, 0.18],
                        num_classes=6, series=_series(ratio), lr=0.1)
    (f,) = diagnose(flat, rules=["no_learning"])
    assert f.evidence["cause_code"] == cause


@pytest.mark.parametrize(("optimizer", "ratio", "judged"), [("adam", 0.15, False), ("rmsprop", 0.15, False),
                                                         ("adam", 1.7, True), ("sgd", 0.15, True)])
def test_a_lone_first_step_ratio_under_adam_is_an_upper_bound(optimizer, ratio, judged) -> None:
    # a run shorter than the sampling interval has one ratio sample, the first step's: under Adam that step moves
    # each weight by lr * sign(g), the largest step Adam takes, so 0.15 (an embedding at std 0.02 under lr 3e-3,
    # which trains well) is no evidence, while a step as large as the weights (1.7) is; under plain SGD the first
    # step is lr * |g| / |w|, a measurement of the rate like any other
    h = make_history(train_loss=[3.0], val_acc=[0.35], series=_series(ratio, samples=1), lr=3e-3)
    h.meta["optimizer"] = {"name": optimizer, "lr": 3e-3}
    codes = [f.code for f in diagnose(h, rules=["update_ratio_too_high"])]
    assert codes == (["update_ratio_too_high"] if judged else [])


# --- a diverged run names its likely cause -------------------------------------------------------------------------
def _diverging(**kw):
    losses = [2.3] * 10 + [40.0] + [INF] * 4
    return make_history(step_loss=losses, train_loss=[2.3, INF], steps_per_epoch=8, **kw)


def test_divergence_at_step_11_names_the_rate_from_rising_ratios() -> None:
    # the sampled ratios before the blow-up were 3e-2 and 8e-2: each below RATIO_HIGH, but 30-80x the healthy 1e-3
    series = {f"ratio/{n}": {"step": [1, 6], "value": [0.03, 0.08]} for n in WEIGHTS}
    (f,) = diagnose(_diverging(series=series, lr=0.3), rules=["loss_diverged"])
    assert f.evidence["cause_code"] == "learning_rate"
    assert "learning rate" in f.message and "0.08" in f.message
    assert f.evidence["recommended_lr"] < 0.3


def test_divergence_from_a_huge_initialisation_names_the_init() -> None:
    layers, params = mlp_layers()
    series = {"weight/fc1.weight/norm": [8.0 * 64] * 2, "ratio/fc1.weight": [1e-3] * 2}  # std 8 over 64x64
    h = _diverging(series=series, layers=layers, parameters=params, lr=1e-3)
    (f,) = diagnose(h, rules=["loss_diverged"])
    assert f.evidence["cause_code"] == "initialisation"
    assert "fc1.weight" in f.message


def test_divergence_with_unnormalised_inputs_names_them() -> None:
    series = {"input/mean": [120.0] * 2, "input/std": [70.0] * 2, "ratio/fc1.weight": [1e-3] * 2}
    (f,) = diagnose(_diverging(series=series, lr=1e-3), rules=["loss_diverged"])
    assert f.evidence["cause_code"] == "inputs_not_normalized"


def test_divergence_with_growing_activations_names_missing_normalisation() -> None:
    layers, params = mlp_layers(hidden=3)
    series = {"act/fc1/std": [1.0] * 2, "act/fc3/std": [300.0] * 2, "ratio/fc1.weight": [1e-3] * 2,
              "weight/fc1.weight/norm": [1.0] * 2}
    h = _diverging(series=series, layers=layers, parameters=params, lr=1e-3)
    (f,) = diagnose(h, rules=["loss_diverged"])
    assert f.evidence["cause_code"] == "missing_normalization"
    assert "normalisation" in f.suggestion


# --- L2 that hides inside the user's loss ----------------------------------------------------------------------------
def _hidden_l2(norms: list[float], losses: list[float], ratio: float = 2e-2):
    return make_history(train_loss=losses, series=_series(ratio, norm=norms), steps_per_epoch=10, every=10,
                        reg=0.0, loss="custom")


def test_regularization_inside_the_loss_is_found_from_shrinking_weights() -> None:
    # no L2 term was recorded, but every step points the weights at zero: their norms fall 8 -> 0.9 (as fast as
    # the updates allow), while the loss stalls near where it started
    h = _hidden_l2([8.0, 5.0, 3.0, 1.8, 1.2, 0.9], [2.3, 2.1, 2.05, 2.04, 2.04, 2.04], ratio=5e-2)
    (f,) = diagnose(h, rules=["regularization_dominates"])
    assert f.evidence["hidden"] is True
    assert f.evidence["alignment"] < -0.5
    assert "weight" in f.message and "loss function" in f.suggestion


@pytest.mark.parametrize(("norms", "losses"), [
    ([8.0, 5.0, 3.0, 1.8, 1.2, 0.9], [2.3, 1.2, 0.6, 0.3, 0.2, 0.15]),  # shrinking while learning: plain weight decay
    ([1.0, 1.3, 1.6, 1.9, 2.1, 2.2], [2.3, 2.1, 2.05, 2.04, 2.04, 2.04]),  # stalled, weights growing: not L2
    ([8.0, 7.99, 7.98, 7.97, 7.96, 7.95], [2.3, 2.1, 2.05, 2.04, 2.04, 2.04]),  # stalled, norms barely move
])
def test_shrinking_or_stalling_alone_is_not_hidden_regularization(norms, losses) -> None:
    assert diagnose(_hidden_l2(norms, losses), rules=["regularization_dominates"]) == []


def test_small_updates_on_a_loss_that_does_not_move_are_a_low_rate() -> None:
    # Adam at lr 1e-6 on a language model: ratios of 4e-5 (above 1e-5) and a loss stuck at ln V
    still = make_history(train_loss=[4.59, 4.59, 4.58], series=_series(4e-5), lr=1e-6, num_classes=97)
    (f,) = diagnose(still, rules=["lr_too_low"])
    assert f.evidence["recommended_lr"] == pytest.approx(2.5e-5, rel=0.2)
    # the same ratios while the loss falls fast are not the rate's fault
    moving = make_history(train_loss=[4.59, 3.5, 3.0], series=_series(4e-5), lr=1e-6, num_classes=97)
    assert diagnose(moving, rules=["lr_too_low"]) == []
