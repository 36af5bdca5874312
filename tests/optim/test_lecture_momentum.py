"""LectureSGD: the lecture's velocity survives learning-rate changes, checkpoints and param groups."""

from __future__ import annotations

import io
import logging
from typing import Any

import numpy as np
import pytest
import torch

from babysit import optim, schedules
from babysit.errors import OptimError
from babysit.optim import reference as ref

_rng = np.random.default_rng(1)
_Q = _rng.normal(size=(5, 5))
A = torch.from_numpy(_Q @ _Q.T / 5 + 0.5 * np.eye(5))
B = torch.from_numpy(_rng.normal(size=5))
W0 = torch.from_numpy(_rng.normal(size=5))
SPEC: dict[str, Any] = {"name": "step", "every": 3, "factor": 0.5}


def fresh(rule: str) -> tuple[torch.Tensor, torch.optim.Optimizer, Any]:
    w = W0.clone().requires_grad_(True)
    opt = optim.build_from_spec({"name": rule, "lr": 0.05, "momentum": 0.9}, [w])
    return w, opt, schedules.build_from_spec(SPEC, opt, steps_per_epoch=2)


def advance(w: torch.Tensor, opt: torch.optim.Optimizer, sched: Any, steps: int) -> None:
    for _ in range(steps):
        w.grad = A @ w.detach() - B
        opt.step()
        sched.step()


def roundtrip(obj: dict[str, Any]) -> dict[str, Any]:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def resumed(rule: str, at: int, total: int, drop_prev_lr: bool = False) -> torch.Tensor:
    w, opt, sched = fresh(rule)
    advance(w, opt, sched, at)
    saved = roundtrip({"w": w.detach(), "opt": opt.state_dict(), "sched": sched.state_dict()})
    if drop_prev_lr:
        for group in saved["opt"]["param_groups"]:
            del group["lecture_prev_lr"]
    w2, opt2, sched2 = fresh(rule)
    with torch.no_grad():
        w2.copy_(saved["w"])
    opt2.load_state_dict(saved["opt"])
    sched2.load_state_dict(saved["sched"])
    advance(w2, opt2, sched2, total - at)
    return w2.detach()


@pytest.mark.parametrize("rule", ["momentum", "nesterov"])
def test_lecture_sgd_resume_is_bit_identical(rule: str) -> None:
    w, opt, sched = fresh(rule)
    advance(w, opt, sched, 20)
    # saved right after the rate halved (step 6 = epoch 3, 2 steps per epoch), resumed through 2 more halvings
    assert torch.equal(resumed(rule, at=6, total=20), w.detach())
    # without the stored previous lr the resumed velocity would be off: the key is what makes it exact
    assert not torch.allclose(resumed(rule, at=6, total=20, drop_prev_lr=True), w.detach(), rtol=1e-6)


def test_lecture_sgd_keeps_velocity_scale_when_lr_drops() -> None:
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = optim.build("momentum", [w], lr=0.1, momentum=0.9)
    w.grad = torch.ones_like(w)
    opt.step()
    opt.param_groups[0]["lr"] = 0.01
    w.grad = torch.ones_like(w)
    opt.step()
    # lecture: v1 = -0.1; v2 = 0.9 * v1 - 0.01 = -0.1; W = -0.2 (torch's SGD would give -0.119)
    assert w.item() == pytest.approx(-0.2, rel=1e-12)
    assert opt.state_dict()["param_groups"][0]["lecture_prev_lr"] == 0.01


def test_lecture_sgd_param_groups_each_follow_the_lecture() -> None:
    a, b = (
        torch.ones(2, dtype=torch.float64, requires_grad=True),
        torch.ones(3, dtype=torch.float64, requires_grad=True),
    )
    opt = optim.build("nesterov", [{"params": [a], "lr": 0.1}, {"params": [b], "momentum": 0.5}], lr=0.2)
    sched = schedules.build("exponential", opt, k=0.7)
    wa, wb, va, vb = np.ones(2), np.ones(3), np.zeros(2), np.zeros(3)
    for t in range(12):
        a.grad, b.grad = 2 * a.detach(), b.detach() - 3.0
        wa, va = ref.nesterov_step(wa, 2 * wa, va, schedules.lr_at("exponential", 0.1, t, k=0.7), 0.9)
        wb, vb = ref.nesterov_step(wb, wb - 3.0, vb, schedules.lr_at("exponential", 0.2, t, k=0.7), 0.5)
        opt.step()
        sched.step()
    # each group keeps its own lr, momentum and lr history
    np.testing.assert_allclose(a.detach().numpy(), wa, rtol=1e-10)
    np.testing.assert_allclose(b.detach().numpy(), wb, rtol=1e-10)


def test_lecture_sgd_zero_lr_freezes_weights_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = optim.build("momentum", [w], lr=0.1, momentum=0.5)
    w.grad = torch.ones_like(w)
    opt.step()
    opt.param_groups[0]["lr"] = 0.0
    with caplog.at_level(logging.WARNING, logger="babysit"):
        opt.step()
    # torch's behaviour at lr = 0 (nothing moves), said out loud
    assert w.item() == pytest.approx(-0.1)
    assert "lr = 0" in caplog.text


def test_lecture_sgd_refuses_dampening() -> None:
    opt = optim.build("momentum", [torch.zeros(1, requires_grad=True)])
    opt.param_groups[0]["dampening"] = 0.1
    # the lecture's velocity has no dampening
    with pytest.raises(OptimError, match="dampening=0"):
        opt.step()


def test_torch_momentum_gives_plain_torch_sgd() -> None:
    w = torch.zeros(1, requires_grad=True)
    assert type(optim.build("nesterov", [w], torch_momentum=True)) is torch.optim.SGD
    assert type(optim.build("nesterov", [w])) is optim.LectureSGD
