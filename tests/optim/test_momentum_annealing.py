"""Momentum annealing (L-U2 orig): mu rises linearly from start to end over epochs, then stays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from babysit import optim, schedules
from babysit.errors import OptimError
from babysit.optim import reference as ref


def test_momentum_annealing_follows_linear_curve_then_stays() -> None:
    opt = optim.build("momentum", [torch.zeros(1, requires_grad=True)])
    anneal = optim.MomentumAnnealing(opt, start=0.5, end=0.99, epochs=4)
    seen = [anneal.get_last_momentum()[0]]
    for _ in range(6):
        anneal.step()
        seen.append(opt.param_groups[0]["momentum"])
    # 0.5 at epoch 0, +0.1225 per epoch, 0.99 from epoch 4 on
    np.testing.assert_allclose(seen, [0.5, 0.6225, 0.745, 0.8675, 0.99, 0.99, 0.99], rtol=1e-12)
    assert seen == [optim.momentum_at(e, start=0.5, end=0.99, epochs=4) for e in range(7)]


def test_momentum_annealing_state_dict_resumes_the_curve() -> None:
    opt = optim.build("nesterov", [torch.zeros(1, requires_grad=True)])
    anneal = optim.MomentumAnnealing(opt, start=0.5, end=0.9, epochs=8)
    for _ in range(3):
        anneal.step()
    opt2 = optim.build("nesterov", [torch.zeros(1, requires_grad=True)])
    anneal2 = optim.MomentumAnnealing(opt2, epochs=1)
    anneal2.load_state_dict(anneal.state_dict())
    anneal.step()
    anneal2.step()
    # the restored annealer continues from epoch 3 with the saved start/end/epochs
    assert anneal2.get_last_momentum() == anneal.get_last_momentum() == [pytest.approx(0.7)]


def test_momentum_annealing_trajectory_matches_lecture_with_step_decay() -> None:
    rng = np.random.default_rng(2)
    q = rng.normal(size=(4, 4))
    a, b, w0 = q @ q.T / 4 + 0.5 * np.eye(4), rng.normal(size=4), rng.normal(size=4)
    w = torch.tensor(w0, requires_grad=True)
    opt = optim.build("momentum", [w], lr=0.05)
    sched = schedules.build("step", opt, steps_per_epoch=3, every=2, factor=0.5)
    anneal = optim.MomentumAnnealing(opt, start=0.5, end=0.95, epochs=5)
    W, v = w0.copy(), np.zeros(4)
    for epoch in range(8):
        mu = optim.momentum_at(epoch, start=0.5, end=0.95, epochs=5)
        for batch in range(3):
            lr = schedules.lr_at("step", 0.05, epoch + batch / 3, every=2, factor=0.5)
            W, v = ref.momentum_step(W, a @ W - b, v, lr, mu)
            w.grad = torch.from_numpy(a @ w.detach().numpy() - b)
            opt.step()
            sched.step()
        anneal.step()
    # the velocity is the lecture's v = mu_e * v - lr_t * dW under both annealings
    np.testing.assert_allclose(w.detach().numpy(), W, rtol=1e-10)


def test_momentum_annealing_refuses_optimizer_without_momentum() -> None:
    opt = optim.build("adam", [torch.zeros(1, requires_grad=True)])
    # Adam has betas, not momentum: the message says which rules to use
    with pytest.raises(OptimError, match=r"momentum > 0.*Adam.*'momentum' or 'nesterov'"):
        optim.MomentumAnnealing(opt, epochs=5)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"start": 0.9, "end": 0.5, "epochs": 5}, "end must be >= start"),
        ({"start": 0.5, "end": 1.0, "epochs": 5}, r"end must be in \[0, 1\), got end=1.0"),
        ({"epochs": 0}, "epochs must be an integer >= 1, got epochs=0"),
    ],
)
def test_momentum_annealing_refuses_bad_settings(settings: dict[str, float], message: str) -> None:
    opt = optim.build("momentum", [torch.zeros(1, requires_grad=True)])
    with pytest.raises(OptimError, match=message):
        optim.MomentumAnnealing(opt, **settings)
