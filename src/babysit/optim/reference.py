"""The lecture's update rules as plain NumPy, line by line: the oracles the torch-based rules are tested on.

Each function takes the weights ``W``, the gradient ``dW`` and the rule's state, and returns the new
weights and state (the inputs are not modified). Nothing here is used for training.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray


def sgd_step(W: Array, dW: Array, lr: float) -> Array:
    """Vanilla SGD (L-U1): ``W += -lr * dW``."""
    return W + -lr * dW


def momentum_step(W: Array, dW: Array, v: Array, lr: float, mu: float) -> tuple[Array, Array]:
    """Momentum (L-U2): ``v = mu * v - lr * dW; W += v`` (v starts at 0)."""
    v = mu * v - lr * dW
    return W + v, v


def nesterov_step(W: Array, dW: Array, v: Array, lr: float, mu: float) -> tuple[Array, Array]:
    """Nesterov, stored-ahead form (L-U3).

    ``v_prev = v; v = mu * v - lr * dW; W += -mu * v_prev + (1 + mu) * v``;
    ``dW`` is the gradient at the stored ``W``, which is already the look-ahead point.
    """
    v_prev = v
    v = mu * v - lr * dW
    return W + (-mu * v_prev + (1 + mu) * v), v


def adagrad_step(W: Array, dW: Array, cache: Array, lr: float, eps: float = 1e-8) -> tuple[Array, Array]:
    """Adagrad (L-P1): ``cache += dW**2; W += -lr * dW / (sqrt(cache) + eps)``."""
    cache = cache + dW**2
    return W + -lr * dW / (np.sqrt(cache) + eps), cache


def rmsprop_step(
    W: Array, dW: Array, cache: Array, lr: float, decay_rate: float = 0.99, eps: float = 1e-8
) -> tuple[Array, Array]:
    """RMSprop (L-P2): ``cache = beta * cache + (1 - beta) * dW**2; W += -lr * dW / (sqrt(cache) + eps)``."""
    cache = decay_rate * cache + (1 - decay_rate) * dW**2
    return W + -lr * dW / (np.sqrt(cache) + eps), cache


def adam_step(
    W: Array,
    dW: Array,
    m: Array,
    v: Array,
    t: int,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[Array, Array, Array]:
    """Adam (L-P3), ``t`` counted from 1.

    ``m = b1*m + (1-b1)*dW; mt = m / (1-b1**t); v = b2*v + (1-b2)*(dW**2); vt = v / (1-b2**t);``
    ``W += -lr * mt / (sqrt(vt) + eps)``
    """
    m = beta1 * m + (1 - beta1) * dW
    mt = m / (1 - beta1**t)
    v = beta2 * v + (1 - beta2) * (dW**2)
    vt = v / (1 - beta2**t)
    return W + -lr * mt / (np.sqrt(vt) + eps), m, v
