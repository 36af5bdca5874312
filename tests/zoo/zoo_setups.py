"""The fault zoo: sick and healthy training set-ups on the real digits data, each a few seconds at most.

Each sick set-up plants one mistake practitioners make (lecture B2-B5, G8, plus the classic set-up bugs)
and names the finding code the diagnosis must give; each healthy set-up must get no warning and no
error. ``run(name)`` trains the set-up and returns its History (the findings in ``history.findings``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import babysit
from babysit import data, models
from babysit.history import History

_BUNDLES: dict[str, data.DataBundle] = {}


def digits(normalize: str = "standardize") -> data.DataBundle:
    if normalize not in _BUNDLES:
        _BUNDLES[normalize] = data.load("digits", seed=0, normalize=normalize)
    return _BUNDLES[normalize]


def mlp(hidden=(128, 64), **kw) -> nn.Module:
    b = digits()
    return models.build("mlp", input_shape=b.input_shape, num_classes=10, hidden=list(hidden), seed=0, **kw)


def fit(model: nn.Module, bundle: data.DataBundle | None = None, **kw) -> History:
    kw.setdefault("epochs", 8)
    kw.setdefault("optimizer", "nesterov")
    kw.setdefault("lr", 0.05)
    return babysit.fit(model, bundle if bundle is not None else digits(), device="cpu", **kw)


def own_loop(model: nn.Module, *, epochs: int = 6, lr: float = 0.05, zero_grad: bool = True,
             eval_mode: bool = True, optimizer: torch.optim.Optimizer | None = None) -> History:
    """A plain PyTorch loop babysat by ``babysit.Monitor`` (the README's few added lines)."""
    b = digits()
    torch.manual_seed(0)
    opt = optimizer or torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    monitor = babysit.Monitor(model, opt, every=5)
    gen = torch.Generator().manual_seed(0)
    X, y = b.X_train, b.y_train
    for _ in range(epochs):
        model.train()
        correct = 0
        for idx in torch.randperm(len(X), generator=gen).split(64):
            scores = model(X[idx])
            loss = F.cross_entropy(scores, y[idx])
            if zero_grad:
                opt.zero_grad()
            loss.backward()
            opt.step()
            monitor.step(loss)
            correct += int((scores.argmax(1) == y[idx]).sum())
        if eval_mode:
            model.eval()
        with torch.no_grad():
            val_acc = float((model(b.X_val).argmax(1) == b.y_val).float().mean())
        monitor.end_epoch(train_acc=correct / len(X), val_acc=val_acc)
    history = monitor.history
    history.findings = [f.to_dict() for f in monitor.diagnose()]
    monitor.close()
    return history


# --- sick set-ups -------------------------------------------------------------------------------------------
def lr_far_too_high() -> History:
    return fit(mlp(), optimizer="sgd", lr=20.0)


def lr_too_high_plateau() -> History:
    return fit(mlp(), optimizer="adam", lr=0.1, epochs=10)


def lr_far_too_low() -> History:
    return fit(mlp(), optimizer="sgd", lr=1e-5, epochs=8)


def tiny_init_deep_tanh() -> History:
    return fit(mlp(hidden=[64] * 6, activation="tanh", init="normal", init_std=0.01), optimizer="sgd", lr=0.05)


def huge_init_saturation() -> History:
    return fit(mlp(activation="tanh", init="normal", init_std=2.0), optimizer="sgd", lr=0.01)


def huge_init_explosion() -> History:
    return fit(mlp(hidden=[64] * 5, init="normal", init_std=1.0), optimizer="sgd", lr=1e-4, epochs=4)


def dying_relu() -> History:
    return fit(mlp(bias_init=-5.0), optimizer="sgd", lr=0.05)


def deep_sigmoid() -> History:
    return fit(mlp(hidden=[64] * 8, activation="sigmoid", init="xavier"), optimizer="sgd", lr=0.05)


def zero_grad_missing() -> History:
    return own_loop(mlp(), lr=0.01, zero_grad=False)


def shuffled_labels() -> History:
    b = digits()
    perm = torch.randperm(len(b.y_train), generator=torch.Generator().manual_seed(1))
    shuffled = data.DataBundle(X_train=b.X_train, y_train=b.y_train[perm], X_val=b.X_val, y_val=b.y_val,
                               num_classes=10, name="digits-shuffled")
    return fit(mlp(), shuffled, epochs=10)


def severe_overfitting() -> History:
    b = digits()
    X, y = data.tiny_subset(b, n=30, seed=0)
    small = data.DataBundle(X_train=X, y_train=y, X_val=b.X_val, y_val=b.y_val, num_classes=10, name="digits-30")
    return fit(mlp(hidden=[256, 256]), small, epochs=60, batch_size=20, lr=0.05)


def regularization_dominating() -> History:
    return fit(mlp(), reg=1.0, epochs=8)


def raw_inputs() -> History:
    return fit(mlp(), digits("none"), optimizer="sgd", lr=1e-3)


def softmax_before_loss() -> History:
    return fit(nn.Sequential(mlp(), nn.Softmax(dim=1)), epochs=6)


def dropout_at_eval() -> History:
    return own_loop(mlp(dropout=0.5), eval_mode=False)


class _AlwaysDropout(nn.Module):
    """A custom layer that forgets ``self.training``: dropout on even in evaluation mode."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, p=0.3, training=True)


def dropout_hardcoded() -> History:
    model = mlp()
    net = nn.Sequential(model.flatten, model.fc1, model.act1, _AlwaysDropout(), model.fc2, model.act2, model.fc3)
    return fit(net, epochs=4)


def frozen_layer() -> History:
    model = mlp()
    model.fc1.requires_grad_(False)
    return fit(model, epochs=6)


def missing_from_optimizer() -> History:
    model = mlp()
    params = [p for name, p in model.named_parameters() if not name.startswith("fc2.")]
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True)
    return fit(model, optimizer=opt, epochs=6)


# --- healthy set-ups ----------------------------------------------------------------------------------------
def healthy_demo() -> History:
    return fit(mlp(), reg=1e-2, epochs=12, schedule={"name": "step", "every": 5, "factor": 0.5})


def healthy_small_batch_noisy() -> History:
    return fit(mlp(), optimizer="sgd", lr=0.01, batch_size=4, epochs=2)


def healthy_slow_but_fine() -> History:
    return fit(mlp(), optimizer="sgd", lr=0.01, epochs=15)


def healthy_adam_cnn() -> History:
    b = digits()
    model = models.build("cnn", input_shape=b.input_shape, num_classes=10, seed=0)
    return fit(model, optimizer="adam", lr=1e-3, epochs=6)


def healthy_tanh_xavier() -> History:
    return fit(mlp(activation="tanh", init="xavier"), optimizer="momentum", lr=0.02, epochs=8)


def healthy_dropout_batchnorm_own_loop() -> History:
    model = mlp(dropout=0.2, batch_norm=True)
    return own_loop(model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3))


@dataclass(frozen=True)
class Setup:
    name: str
    build: Callable[[], History]
    expected: str | None  # the finding code a sick set-up must yield; None for healthy ones


SICK = [
    Setup("lr_far_too_high", lr_far_too_high, "loss_diverged"),
    Setup("lr_too_high_plateau", lr_too_high_plateau, "lr_too_high"),
    Setup("lr_far_too_low", lr_far_too_low, "lr_too_low"),
    Setup("tiny_init_deep_tanh", tiny_init_deep_tanh, "vanishing_activations"),
    Setup("huge_init_saturation", huge_init_saturation, "saturated_activations"),
    Setup("huge_init_explosion", huge_init_explosion, "exploding_activations"),
    Setup("dying_relu", dying_relu, "dead_units"),
    Setup("deep_sigmoid", deep_sigmoid, "vanishing_gradients"),
    Setup("zero_grad_missing", zero_grad_missing, "gradient_accumulation"),
    Setup("shuffled_labels", shuffled_labels, "no_learning"),
    Setup("severe_overfitting", severe_overfitting, "overfitting"),
    Setup("regularization_dominating", regularization_dominating, "regularization_dominates"),
    Setup("raw_inputs", raw_inputs, "inputs_not_normalized"),
    Setup("softmax_before_loss", softmax_before_loss, "softmax_before_loss"),
    Setup("dropout_at_eval", dropout_at_eval, "eval_nondeterministic"),
    Setup("dropout_hardcoded", dropout_hardcoded, "eval_nondeterministic"),
    Setup("frozen_layer", frozen_layer, "frozen_parameters"),
    Setup("missing_from_optimizer", missing_from_optimizer, "frozen_parameters"),
]
HEALTHY = [
    Setup("healthy_demo", healthy_demo, None),
    Setup("healthy_small_batch_noisy", healthy_small_batch_noisy, None),
    Setup("healthy_slow_but_fine", healthy_slow_but_fine, None),
    Setup("healthy_adam_cnn", healthy_adam_cnn, None),
    Setup("healthy_tanh_xavier", healthy_tanh_xavier, None),
    Setup("healthy_dropout_batchnorm_own_loop", healthy_dropout_batchnorm_own_loop, None),
]
