"""Gradient checks and sanity checks on the families' models: attention and layer norm pass, a planted bug in
the attention is found and named, the ResNet overfits a tiny subset, the language model starts at ln V."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

import babysit
from babysit import data, losses, models, sanity
from babysit.data import tiny_subset


class _DropsLastQuery(torch.autograd.Function):
    """Identity forward; backward loses the gradient of the last query row (a hand-written attention bug)."""

    @staticmethod
    def forward(ctx, att: Tensor) -> Tensor:
        return att.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone()
        grad[..., -1, :] = 0
        return grad


class _Planted(nn.Module):
    def forward(self, att: Tensor) -> Tensor:
        return _DropsLastQuery.apply(att)


def _lm_batch(n: int = 4, n_layer: int = 2) -> tuple[nn.Module, Tensor, Tensor]:
    b = data.load("pysource", max_chars=20_000, block_size=16)
    lm = models.build("transformer", input_shape=b.input_shape, num_classes=b.num_classes, n_layer=n_layer,
                      d_model=32, n_head=4, seed=0)
    return lm, b.X_train[:n], b.y_train[:n]


def test_gradcheck_passes_on_attention_and_layer_norm() -> None:
    lm, X, y = _lm_batch()
    l2 = lambda model: losses.l2_penalty(losses.regularized_weights(model), 1e-3)  # noqa: E731
    report = babysit.gradcheck.check_module(lm, losses.softmax_loss, X, y, regularization=l2)
    rows = {r.name for r in report.rows if r.checked}
    # every kind of parameter was checked, attention and layer norms included, and nothing is wrong
    assert {"blocks.0.attn.qkv.weight", "blocks.1.attn.proj.weight", "blocks.0.ln1.weight", "blocks.1.ln2.bias",
            "tok.weight", "pos.weight", "head.weight"} <= rows
    assert report.ok and report.verdict in ("ideal", "ok"), str(report)


def test_gradcheck_fails_on_a_planted_attention_bug_and_names_it() -> None:
    lm, X, y = _lm_batch(n=2, n_layer=1)
    lm.blocks[0].attn.attn_drop = _Planted()  # on the softmax's output, where dropout sits
    report = babysit.gradcheck.check_module(lm, losses.softmax_loss, X, y)
    assert not report.ok and report.verdict == "wrong"
    wrong = [r.name for r in report.rows if r.verdict == "wrong"]
    # the gradients upstream of the bug are wrong (the attention's qkv projection) ...
    assert "blocks.0.attn.qkv.weight" in wrong
    # ... while those the bug cannot reach are right
    assert "head.weight" not in wrong and "blocks.0.mlp.fc2.weight" not in wrong
    assert any(f.code == "gradient_mismatch" for f in report.findings)


def test_gradcheck_passes_on_the_resnet_with_batch_norm() -> None:
    b = data.load("shapes32", per_class=5)
    net = models.build("resnet", input_shape=b.input_shape, num_classes=6, width=4, seed=0)
    report = babysit.gradcheck.check_module(net, losses.softmax_loss, b.X_train[:4], b.y_train[:4])
    assert report.ok and "blocks.1.shortcut.1.weight" in {r.name for r in report.rows if r.checked}


def test_resnet_passes_the_sanity_checks_and_overfits_a_tiny_subset() -> None:
    b = data.load("shapes32", per_class=10)
    net = models.build("resnet", input_shape=b.input_shape, num_classes=6, width=4, seed=0)
    report = sanity.run(net, "softmax", b, regularization=1e-4)
    assert report.ok, str(report)
    overfit = report["overfit_tiny"]
    assert overfit.observed["accuracy"] == 1.0 and overfit.observed["loss"] < 0.02 * overfit.details["initial_loss"]


def test_language_model_starts_at_ln_vocab_and_overfits_unambiguous_sequences() -> None:
    b = data.load("pysource", max_chars=20_000, block_size=16)
    lm = models.build("transformer", input_shape=b.input_shape, num_classes=b.num_classes, n_layer=1, d_model=32,
                      n_head=4, seed=0)
    X, y = b.train
    first = sanity.check_initial_loss(lm, losses.softmax_loss, X, y, num_classes=b.num_classes, kind="softmax")
    # the per-token loss of the untrained model is ln V
    assert first.passed and abs(first.observed - math.log(97)) < 0.05 * math.log(97)
    # the tiny subset's windows start with different tokens: no two share a prefix, so all can be fitted
    Xs, _ = tiny_subset((X, y), n=8)
    assert len(set(Xs[:, 0].tolist())) == len(Xs) == 8
    fitted = sanity.check_overfit_tiny(lm, losses.softmax_loss, X, y, examples=8)
    assert fitted.passed, fitted.message
