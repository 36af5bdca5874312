"""babysit.sanity.run on the digits data: a healthy set-up passes S1-S3; each planted bug fails its check."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch
from torch import nn

import babysit
from babysit import models, sanity
from babysit.errors import ConfigError


def _mlp(bundle, **kw):
    return models.build("mlp", input_shape=bundle.input_shape, num_classes=10, seed=0, **kw)


def test_healthy_mlp_passes_every_check_quickly(digits) -> None:
    started = time.perf_counter()
    report = sanity.run(_mlp(digits, hidden=[128, 64]), "softmax", digits)
    # S1-S3 all pass, in lecture order, within a few seconds
    assert report.ok
    assert [c.name for c in report.checks] == ["initial_loss", "regularization_increases_loss", "overfit_tiny"]
    assert time.perf_counter() - started < 20
    assert report["initial_loss"].expected == pytest.approx(math.log(10))
    assert report["overfit_tiny"].observed["accuracy"] == 1.0


def test_svm_expects_c_minus_one(digits) -> None:
    report = sanity.run(_mlp(digits), "svm", digits)
    # the multiclass SVM's loss at initialisation is C - 1 with margin 1
    assert report["initial_loss"].expected == 9.0
    assert report.ok


def test_run_leaves_the_model_untouched(digits) -> None:
    model = _mlp(digits, batch_norm=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sanity.run(model, "softmax", digits)
    # the checks train and evaluate copies: weights and batch-norm statistics are as they were
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_initial_loss_fails_for_huge_last_layer(digits) -> None:
    model = _mlp(digits)
    with torch.no_grad():
        model.fc2.weight.mul_(20)
    check = sanity.run(model, "softmax", digits)["initial_loss"]
    # scores far from diffuse: the loss starts far above ln 10
    assert check.passed is False
    assert check.finding.code == "initial_loss_unexpected"
    assert check.observed > 1.5 * math.log(10)


def test_initial_loss_fails_for_a_summed_loss(digits) -> None:
    def summed(scores, y):  # a classic bug: summed over the batch instead of averaged
        return nn.functional.cross_entropy(scores, y, reduction="sum")

    report = sanity.run(_mlp(digits), nn.CrossEntropyLoss(reduction="sum"), digits)
    # a CrossEntropyLoss module is recognised as softmax; its sum is hundreds of times ln C
    assert report["initial_loss"].passed is False
    # a custom callable has no expected value: the check is skipped, not failed
    assert sanity.run(_mlp(digits), summed, digits)["initial_loss"].passed is None


@pytest.mark.parametrize("regularization", [
    lambda model: torch.zeros(()),  # never depends on the weights
    lambda model, strength: -strength * sum(p.pow(2).sum() for p in model.parameters()),  # wrong sign
    lambda model, strength: 0.5 * sum(p.pow(2).sum() for p in model.parameters()),  # ignores its strength
], ids=["zero", "negative", "ignores_strength"])
def test_broken_regularization_fails_s2(digits, regularization) -> None:
    check = sanity.run(_mlp(digits), "softmax", digits, regularization=regularization)["regularization_increases_loss"]
    # more regularization must mean more loss
    assert check.passed is False
    assert check.finding.code == "regularization_not_increasing_loss"
    assert check.finding.severity == "error"


def test_model_without_weights_fails_s2(digits) -> None:
    class BiasOnly(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.b = nn.Parameter(torch.zeros(10))

        def forward(self, x):
            return self.b.expand(len(x), 10) + 0 * x.flatten(1)[:, :1]

    # babysit's L2 covers weight matrices only: nothing to regularize, so the loss cannot rise
    assert sanity.run(BiasOnly(), "softmax", digits)["regularization_increases_loss"].passed is False


@pytest.mark.parametrize("model_fn", [
    lambda b: _mlp(b, bias_init=-5.0),  # dead ReLUs
    lambda b: nn.Sequential(_mlp(b), nn.Softmax(dim=1)),  # softmax before the loss
], ids=["dead_relu", "softmax_before_loss"])
def test_unfittable_models_fail_s3(digits, model_fn) -> None:
    check = sanity.run(model_fn(digits), "softmax", digits)["overfit_tiny"]
    # a model that cannot drive 20 examples to ~zero loss has a bug
    assert check.passed is False
    assert check.finding.code == "cannot_overfit_small_subset"


def test_accepts_pairs_datasets_and_reports_json(digits) -> None:
    pair = (digits.X_train.numpy(), digits.y_train.numpy())
    dataset = torch.utils.data.TensorDataset(digits.X_train[:300], digits.y_train[:300])
    for data in (pair, dataset):
        report = sanity.run(_mlp(digits), "softmax", data)
        # every input form works, and the report is JSON-ready for History.sections["sanity"]
        assert report.ok
        assert json.loads(json.dumps(report.to_dict()))["ok"] is True
    assert "overfit_tiny" in str(report)


def test_bad_inputs_raise_clear_errors(digits) -> None:
    with pytest.raises(ConfigError, match=r"nn\.Module"):
        sanity.run("model", "softmax", digits)
    with pytest.raises(babysit.BabysitError, match="loss"):
        sanity.run(_mlp(digits), "hinge", digits)
    with pytest.raises(babysit.BabysitError, match="DataBundle"):
        sanity.run(_mlp(digits), "softmax", 42)
