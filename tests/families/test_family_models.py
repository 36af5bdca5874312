"""The ResNet and the transformer language model: shapes, the settings a fault zoo varies, clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from babysit import losses, models
from babysit.errors import DataError, ModelError


def test_resnet_settings_change_the_network() -> None:
    base = models.build("resnet", input_shape=(3, 32, 32), num_classes=6, seed=0)
    assert base(torch.randn(4, 3, 32, 32)).shape == (4, 6)
    kinds = {type(m).__name__ for m in base.modules()}
    assert {"BatchNorm2d", "BasicBlock", "AdaptiveAvgPool2d"} <= kinds
    plain = models.build("resnet", input_shape=(3, 32, 32), num_classes=6, seed=0, norm=False, skip=False,
                         depth=2, width=4)
    # norm=False: no batch norm anywhere, biases on the convs instead; skip=False: no shortcut convs
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert all(m.bias is not None for m in plain.modules() if isinstance(m, torch.nn.Conv2d))
    assert not any("shortcut.0" in name for name, _ in plain.named_modules())
    assert len(plain.blocks) == 6 and plain.fc.in_features == 16


def test_resnet_skip_connections_carry_the_input() -> None:
    block = models._resnet.BasicBlock(4, 4, 1, norm=False, skip=True, act="relu")
    with torch.no_grad():
        block.conv2.weight.zero_()
        block.conv2.bias.zero_()
    x = torch.rand(2, 4, 8, 8)  # >= 0, so the last relu keeps it
    # with its residual branch silenced a block is the identity: the shortcut alone carries the signal
    assert torch.allclose(block(x), x)


@torch.no_grad()
def test_transformer_is_causal_and_starts_at_ln_vocab() -> None:
    lm = models.build("transformer", input_shape=(16,), num_classes=40, n_layer=2, d_model=32, n_head=4, seed=0)
    x = torch.randint(0, 40, (3, 16))
    scores = lm(x)
    assert scores.shape == (3, 16, 40)
    changed = x.clone()
    changed[:, 10] = (changed[:, 10] + 1) % 40
    after = lm(changed)
    # a token changes the scores at its own position and after it, never before it
    assert torch.allclose(scores[:, :10], after[:, :10], atol=1e-6)
    assert not torch.allclose(scores[:, 10:], after[:, 10:])
    # the loss per token at initialisation is ln V (diffuse scores from the small output layer)
    assert abs(float(losses.softmax_loss(scores, x)) - math.log(40)) < 0.05 * math.log(40)


@torch.no_grad()
def test_transformer_fault_settings_are_real_faults() -> None:
    x = torch.randint(0, 40, (2, 16))
    kw = dict(input_shape=(16,), num_classes=40, n_layer=1, d_model=32, n_head=4, seed=0)
    leaky = models.build("transformer", causal=False, **kw)
    changed = x.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 40
    # causal=False: the first position sees the last token
    assert not torch.allclose(leaky(x)[:, 0], leaky(changed)[:, 0])
    scaled, unscaled = models.build("transformer", **kw), models.build("transformer", scale_attention=False, **kw)
    assert torch.equal(scaled.tok.weight, unscaled.tok.weight)  # same init, only the scale differs
    assert not torch.allclose(scaled(x), unscaled(x))
    post = models.build("transformer", prenorm=False, **kw)
    assert isinstance(post.ln_f, torch.nn.Identity) and not post.blocks[0].prenorm


@pytest.mark.parametrize(("kind", "kwargs", "match"), [
    ("transformer", {"d_model": 30, "n_head": 4}, "not divisible by n_head"),
    ("transformer", {"hidden": [64]}, "does not use hidden"),
    ("transformer", {"n_layers": 2}, r"unknown model settings \['n_layers'\].*n_layer"),
    ("resnet", {"batch_norm": True}, "does not use batch_norm"),
    ("resnet", {"stages": 7}, "below 1 pixel"),
])
def test_model_settings_errors_name_the_fix(kind, kwargs, match) -> None:
    shape = (16,) if kind == "transformer" else (3, 32, 32)
    with pytest.raises(ModelError, match=match):
        models.build(kind, input_shape=shape, num_classes=10, **kwargs)


def test_sequence_loss_needs_matching_targets() -> None:
    scores = torch.randn(2, 5, 7)
    assert torch.isclose(losses.softmax_loss(scores, torch.zeros(2, 5, dtype=torch.long)),
                         torch.nn.functional.cross_entropy(scores.reshape(10, 7), torch.zeros(10, dtype=torch.long)))
    assert float(losses.svm_loss(torch.zeros(2, 5, 7), torch.zeros(2, 5, dtype=torch.long))) == pytest.approx(6.0)
    with pytest.raises(DataError, match=r"targets shaped \(2, 5\)"):
        losses.softmax_loss(scores, torch.zeros(2, 4, dtype=torch.long))
