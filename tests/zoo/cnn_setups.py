"""The CNN fault zoo: a small ResNet (``models.build("resnet")``) on 32x32 colour images, sick and healthy.

The images are ``stripes32``, generated here: a sinusoidal grating in one of four orientations (0, 45, 90 or
135 degrees, +-12) with random frequency, phase, colours and pixel noise. The zoo needs a task a two-stage
ResNet of width 8 learns in a few epochs on one core (``shapes32``, the built-in image data, takes tens of
epochs to leave chance, more than a zoo of 30 runs can afford); orientation is what the first conv layers of
any image net learn, so the training dynamics are a CNN's. Each set-up takes a seed (data, init, batch order).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from zoo_loop import Data, Knobs, Setup, train

from babysit import models
from babysit.history import History

ANGLES = (0, 45, 90, 135)


def stripes32(per_class: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` gratings of each orientation, shuffled: (N, 3, 32, 32) float32 in about 0..1, (N,) int64."""
    rs = np.random.RandomState(seed)
    grid = np.arange(32) + 0.5
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    images, labels = [], []
    for label, degrees in enumerate(ANGLES):
        theta = np.deg2rad(degrees + rs.uniform(-12, 12, size=(per_class, 1, 1)))
        freq = rs.uniform(1 / 10, 1 / 5, size=(per_class, 1, 1))
        phase = rs.uniform(0, 2 * np.pi, size=(per_class, 1, 1))
        wave = np.sin(2 * np.pi * freq * (np.cos(theta) * gx + np.sin(theta) * gy) + phase)  # (n, 32, 32)
        colour, background = rs.uniform(0.2, 1, size=(2, per_class, 3, 1, 1))
        images.append(background + 0.5 * colour * wave[:, None] + noise * rs.randn(per_class, 3, 32, 32))
        labels.append(np.full(per_class, label))
    order = rs.permutation(len(ANGLES) * per_class)
    X = torch.tensor(np.concatenate(images)[order], dtype=torch.float32)
    return X, torch.tensor(np.concatenate(labels)[order])


def images(seed: int, *, per_class: int = 100, train_size: int | None = None, normalize: bool = True,
           sort: bool = False) -> Data:
    """Three quarters for training (or its first ``train_size``), the rest for validation; standardised with the
    training split's channel statistics unless ``normalize`` is False (raw 0..255 pixels)."""
    X, y = stripes32(per_class, 0.5, seed)
    n = len(y) * 3 // 4
    X_train, y_train, X_val, y_val = X[:n], y[:n], X[n:], y[n:]
    if train_size is not None:
        X_train, y_train = X_train[:train_size], y_train[:train_size]
    if normalize:
        mean, std = X_train.mean((0, 2, 3), keepdim=True), X_train.std((0, 2, 3), keepdim=True)
        X_train, X_val = (X_train - mean) / std, (X_val - mean) / std
    else:
        X_train, X_val = (X_train * 255).clamp(0, 255), (X_val * 255).clamp(0, 255)
    if sort:
        order = torch.argsort(y_train, stable=True)
        X_train, y_train = X_train[order], y_train[order]
    return Data(X_train, y_train, X_val, y_val)


def resnet(seed: int, **kw) -> nn.Module:
    kw.setdefault("width", 8)
    kw.setdefault("stages", 2)
    return models.build("resnet", input_shape=(3, 32, 32), num_classes=len(ANGLES), seed=seed, **kw)


def sgd(model: nn.Module, lr: float, **kw) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, **kw)


def adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=lr)


# --- sick set-ups -------------------------------------------------------------------------------------------
def lr_far_too_high(seed: int) -> History:
    model = resnet(seed)
    return train(model, images(seed), sgd(model, 20.0), Knobs(epochs=3), seed=seed)


def lr_too_small(seed: int) -> History:
    model = resnet(seed)
    return train(model, images(seed), sgd(model, 1e-5), Knobs(epochs=4), seed=seed)


def weight_decay_swamps(seed: int) -> History:
    """A weight decay of 0.5 on every tensor (norm gains and biases too) pulls the weights to zero."""
    model = resnet(seed)
    return train(model, images(seed), sgd(model, 0.1, weight_decay=0.5), Knobs(epochs=5), seed=seed)


def sorted_by_label(seed: int) -> History:
    """The training set sorted by class and never shuffled: every batch holds one class."""
    model = resnet(seed)
    return train(model, images(seed, sort=True), sgd(model, 0.1), Knobs(epochs=4, shuffle=False), seed=seed)


def overfit_small_train(seed: int) -> History:
    model = resnet(seed)
    return train(model, images(seed, train_size=24), adam(model, 3e-3), Knobs(epochs=30, batch_size=8), seed=seed)


def raw_pixels(seed: int) -> History:
    model = resnet(seed)
    return train(model, images(seed, normalize=False), sgd(model, 0.01), Knobs(epochs=3), seed=seed)


# --- healthy set-ups ----------------------------------------------------------------------------------------
def healthy_adam(seed: int) -> History:
    model = resnet(seed)
    return train(model, images(seed), adam(model, 1e-2), Knobs(epochs=5), seed=seed)


def healthy_noisy_small_batches(seed: int) -> History:
    model = resnet(seed)
    return train(model, images(seed), sgd(model, 0.01), Knobs(epochs=3, batch_size=4), seed=seed, every=16)


def healthy_slow_but_steady(seed: int) -> History:
    model = resnet(seed)
    return train(model, images(seed), adam(model, 1e-3), Knobs(epochs=6), seed=seed)


SICK = [
    Setup("lr_far_too_high", lr_far_too_high, "loss_diverged", "learning_rate"),
    Setup("lr_too_small", lr_too_small, "lr_too_low"),
    Setup("weight_decay_swamps", weight_decay_swamps, "regularization_dominates"),
    Setup("sorted_by_label", sorted_by_label, "no_learning", "data_not_shuffled"),
    Setup("overfit_small_train", overfit_small_train, "overfitting"),
    Setup("raw_pixels", raw_pixels, "inputs_not_normalized"),
]
HEALTHY = [
    Setup("healthy_adam", healthy_adam, None),
    Setup("healthy_noisy_small_batches", healthy_noisy_small_batches, None),
    Setup("healthy_slow_but_steady", healthy_slow_but_steady, None),
]
