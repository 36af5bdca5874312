"""The run the resume and interrupt tests train, stop and continue: settings whose every part a resume must carry
over (momentum, L2, a step schedule, the shuffling seed), and a model whose dropout and batch norm make the
global RNG and the running statistics matter."""

from __future__ import annotations

from babysit import models

SETTINGS = dict(
    optimizer={"name": "nesterov", "momentum": 0.9},
    lr=0.05,
    reg=1e-3,
    schedule={"name": "step", "every": 2, "factor": 0.5},
    batch_size=64,
    seed=3,
)


def resumable_model(bundle):
    return models.build("mlp", input_shape=bundle.input_shape, num_classes=10, hidden=[32, 32], dropout=0.2,
                        batch_norm=True, seed=1)


def strip_seconds(epochs):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in epochs]
