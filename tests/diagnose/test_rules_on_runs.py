"""The cases a new user hit, on real training runs on the digits: each rule change holds outside scripted
histories too."""

from __future__ import annotations

import re

import torch.nn.functional as F

import babysit
from babysit import models


def _mlp(digits, **kw):
    return models.build("mlp", input_shape=digits.input_shape, num_classes=10, seed=0, **kw)


def _fit(model, digits, **kw):
    kw.setdefault("epochs", 8)
    return babysit.fit(model, digits, device="cpu", **kw)


def _by_code(history) -> dict[str, dict]:
    return {f["code"]: f for f in history.findings}


def test_deep_sigmoid_with_a_tiny_init_is_not_called_frozen(digits) -> None:
    model = _mlp(digits, hidden=[64] * 8, activation="sigmoid", init="normal", init_std=0.001)
    found = _by_code(_fit(model, digits, optimizer="sgd", lr=0.05))
    # the first layers' updates are rounded away by float32: said so, and nobody blames the optimizer
    assert "frozen_parameters" not in found
    assert "fc1.weight" in found["update_ratio_too_low"]["evidence"]["below_precision"]
    assert "float32" in found["update_ratio_too_low"]["message"]
    assert "vanishing_gradients" in found


def test_a_tiny_learning_rate_gets_one_recommendation(digits) -> None:
    found = _by_code(_fit(_mlp(digits, hidden=[128, 64]), digits, optimizer="sgd", lr=1e-6))
    speaking = [f for f in found.values() if f["evidence"].get("recommended_lr")]
    # lr_too_low, update_ratio_too_low and no_learning all speak about the rate, and name the same number
    assert {"lr_too_low", "update_ratio_too_low", "no_learning"} <= {f["code"] for f in speaking}
    assert len({f["evidence"]["recommended_lr"] for f in speaking}) == 1
    assert len({m for f in speaking for m in re.findall(r"lr (\d[\d.e+-]*)", f["suggestion"])}) == 1
    # and no_learning blames the rate, not the labels
    assert found["no_learning"]["evidence"]["cause_code"] == "learning_rate_too_low"
    assert "labels" not in found["no_learning"]["suggestion"]


def test_l2_inside_the_users_loss_is_found(digits) -> None:
    model = _mlp(digits, hidden=[128, 64])

    def loss_with_l2(scores, targets):
        weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
        return F.cross_entropy(scores, targets) + 0.5 * sum((w * w).sum() for w in weights)

    found = _by_code(_fit(model, digits, optimizer="nesterov", lr=0.05, loss_fn=loss_with_l2))
    # no reg_loss was recorded, yet the weights pulled to zero while the loss stalls give the L2 term away
    assert found["regularization_dominates"]["evidence"]["hidden"] is True
    assert found["no_learning"]["evidence"]["cause_code"] == "regularization"
    assert "underfitting" not in found


def test_a_diverged_run_names_the_rate_with_its_evidence(digits) -> None:
    found = _by_code(_fit(_mlp(digits, hidden=[64] * 5), digits, optimizer="adam", lr=0.3, epochs=3))
    diverged = found["loss_diverged"]
    # the update/weight ratio before the blow-up is the evidence, and the suggested rate is the run's one rate
    assert diverged["evidence"]["cause_code"] == "learning_rate"
    assert "update/weight ratio" in diverged["message"]
    assert diverged["evidence"]["recommended_lr"] == found["update_ratio_too_high"]["evidence"]["recommended_lr"]
