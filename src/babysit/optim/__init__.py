"""Update rules of the lecture (L-U1..U4, L-P1..P3) by name, on ``torch.optim``.

    sgd(lr=1e-2)                                  W += -lr * dW
    momentum(lr=1e-2, momentum=0.9, torch_momentum=False)
                                                  v = mu * v - lr * dW; W += v
    nesterov(lr=1e-2, momentum=0.9, torch_momentum=False)
                                                  v_prev = v; v = mu * v - lr * dW;
                                                  W += -mu * v_prev + (1 + mu) * v
    adagrad(lr=1e-2, eps=1e-8)                    cache += dW**2; W += -lr * dW / (sqrt(cache) + eps)
    rmsprop(lr=1e-2, decay_rate=0.99, eps=1e-8)   cache = beta * cache + (1 - beta) * dW**2; ... as adagrad
    adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8)   bias-corrected m and v, t from 1
    adamw(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)   Adam with decoupled weight decay
    lbfgs(lr=1, history_size=100, max_iter=20, line_search_fn=None)   needs step(closure), full batches

Every rule also takes ``weight_decay`` (default 0; L2 added to the gradient, decoupled for adamw, added
to the objective for lbfgs). ``momentum`` and ``nesterov`` return :class:`LectureSGD` unless
``torch_momentum=True``: its velocity keeps the lecture's scale when a schedule changes the rate.

Example:
    >>> import torch
    >>> opt = build("momentum", [torch.zeros(3, requires_grad=True)], lr=1e-2, momentum=0.9)
    >>> type(opt).__name__
    'LectureSGD'
"""

from __future__ import annotations

from babysit.optim import reference
from babysit.optim._lecture_momentum import LectureSGD
from babysit.optim._rules import NAMES, build, build_from_spec
from babysit.optim.momentum_annealing import AnnealMomentum, MomentumAnnealing, momentum_at

__all__ = [
    "NAMES",
    "AnnealMomentum",
    "LectureSGD",
    "MomentumAnnealing",
    "build",
    "build_from_spec",
    "momentum_at",
    "reference",
]
