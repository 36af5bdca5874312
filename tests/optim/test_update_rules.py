"""Every update rule follows the lecture's formula (optim/reference.py) step by step, in float64.

The problem is a fixed quadratic ``f(W) = W^T A W / 2 - b^T W`` with the gradient ``A W - b`` computed
at each trajectory's own weights; the learning rate follows a babysit schedule stepped once per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from babysit import optim, schedules
from babysit.optim import reference as ref

STEPS = 30
_rng = np.random.default_rng(0)
_Q = _rng.normal(size=(6, 6))
A = _Q @ _Q.T / 6 + 0.5 * np.eye(6)
B = _rng.normal(size=6)
W0 = _rng.normal(size=6)

# (schedule name, settings, steps_per_epoch): constant lr, step decay per epoch, exponential per batch
SCHEDULES = {
    "constant": ("constant", {}, 1),
    "step_decay": ("step", {"every": 5, "factor": 0.5}, 1),
    "exponential_per_batch": ("exponential", {"k": 0.3}, 4),
}


def grad(w: np.ndarray) -> np.ndarray:
    return A @ w - B


def run_torch(name: str, lr: float, schedule: tuple[str, dict[str, Any], int], **settings: Any) -> np.ndarray:
    w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    opt = optim.build(name, [w], lr=lr, **settings)
    sched = schedules.build(schedule[0], opt, steps_per_epoch=schedule[2], **schedule[1])
    for _ in range(STEPS):
        w.grad = torch.from_numpy(grad(w.detach().numpy()))
        opt.step()
        sched.step()
    return w.detach().numpy().copy()


def lrs(lr: float, schedule: tuple[str, dict[str, Any], int]) -> list[float]:
    name, settings, spe = schedule
    return [schedules.lr_at(name, lr, s / spe, **settings) for s in range(STEPS)]


def ref_sgd(lr_list: list[float], wd: float = 0.0) -> np.ndarray:
    w = W0.copy()
    for lr in lr_list:
        w = ref.sgd_step(w, grad(w) + wd * w, lr)
    return w


def _ref_velocity(step: Callable[..., tuple[np.ndarray, np.ndarray]]) -> Callable[..., np.ndarray]:
    def run(lr_list: list[float], wd: float = 0.0, momentum: float = 0.9) -> np.ndarray:
        w, v = W0.copy(), np.zeros_like(W0)
        for lr in lr_list:
            w, v = step(w, grad(w) + wd * w, v, lr, momentum)
        return w

    return run


def ref_adagrad(lr_list: list[float], wd: float = 0.0, eps: float = 1e-8) -> np.ndarray:
    w, cache = W0.copy(), np.zeros_like(W0)
    for lr in lr_list:
        w, cache = ref.adagrad_step(w, grad(w) + wd * w, cache, lr, eps)
    return w


def ref_rmsprop(
    lr_list: list[float], wd: float = 0.0, decay_rate: float = 0.99, eps: float = 1e-8
) -> np.ndarray:
    w, cache = W0.copy(), np.zeros_like(W0)
    for lr in lr_list:
        w, cache = ref.rmsprop_step(w, grad(w) + wd * w, cache, lr, decay_rate, eps)
    return w


def ref_adam(lr_list: list[float], wd: float = 0.0, betas: tuple[float, float] = (0.9, 0.999)) -> np.ndarray:
    w, m, v = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    for t, lr in enumerate(lr_list, start=1):
        w, m, v = ref.adam_step(w, grad(w) + wd * w, m, v, t, lr, *betas)
    return w


# rule -> (lr, babysit settings, reference run)
CASES: dict[str, tuple[float, dict[str, Any], Callable[..., np.ndarray]]] = {
    "sgd": (0.1, {}, ref_sgd),
    "momentum": (0.05, {"momentum": 0.9}, _ref_velocity(ref.momentum_step)),
    "nesterov": (0.05, {"momentum": 0.8}, _ref_velocity(ref.nesterov_step)),
    "adagrad": (0.5, {"eps": 1e-6}, ref_adagrad),
    "rmsprop": (0.01, {"decay_rate": 0.9}, ref_rmsprop),
    "adam": (0.05, {"betas": (0.8, 0.99)}, ref_adam),
}


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    # the trajectory went somewhere, and torch's weights are the lecture's to 1e-10 relative
    assert np.abs(want - W0).max() > 1e-2
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("rule", CASES)
def test_rule_matches_lecture_formula(rule: str, schedule: str) -> None:
    lr, settings, reference = CASES[rule]
    got = run_torch(rule, lr, SCHEDULES[schedule], **settings)
    assert_same(got, reference(lrs(lr, SCHEDULES[schedule]), **settings))


@pytest.mark.parametrize("rule", CASES)
def test_rule_weight_decay_is_l2_in_the_gradient(rule: str) -> None:
    lr, settings, reference = CASES[rule]
    got = run_torch(rule, lr, SCHEDULES["step_decay"], weight_decay=0.05, **settings)
    assert_same(got, reference(lrs(lr, SCHEDULES["step_decay"]), wd=0.05, **settings))


@pytest.mark.parametrize("rule", ["momentum", "nesterov"])
def test_torch_momentum_matches_only_at_constant_lr(rule: str) -> None:
    lr, settings, reference = CASES[rule]
    at_constant = run_torch(rule, lr, SCHEDULES["constant"], torch_momentum=True, **settings)
    assert_same(at_constant, reference(lrs(lr, SCHEDULES["constant"]), **settings))
    decayed = run_torch(rule, lr, SCHEDULES["step_decay"], torch_momentum=True, **settings)
    lecture = reference(lrs(lr, SCHEDULES["step_decay"]), **settings)
    # torch rescales the whole velocity when the rate halves: a visibly different trajectory
    assert np.abs(decayed - lecture).max() > 1e-3


def test_adamw_decays_weights_apart_from_the_gradient() -> None:
    lr, wd, schedule = 0.05, 0.1, SCHEDULES["step_decay"]
    w, m, v = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    for t, lr_t in enumerate(lrs(lr, schedule), start=1):
        dw = grad(w)
        w, m, v = ref.adam_step(w * (1 - lr_t * wd), dw, m, v, t, lr_t)
    assert_same(run_torch("adamw", lr, schedule, weight_decay=wd), w)


@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
def test_lbfgs_reaches_the_quadratics_minimum(weight_decay: float) -> None:
    w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    a, b = torch.from_numpy(A), torch.from_numpy(B)
    opt = optim.build("lbfgs", [w], max_iter=100, line_search_fn="strong_wolfe", weight_decay=weight_decay)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = w @ a @ w / 2 - b @ w
        loss.backward()
        return loss

    opt.step(closure)
    # L-BFGS approximates Newton: it stops (torch's tolerances) near the minimiser of f + wd/2 ||W||^2,
    # which solves (A + wd I) W = b; the two weight decays' minimisers are ~0.1 apart
    want = np.linalg.solve(A + weight_decay * np.eye(6), B)
    np.testing.assert_allclose(w.detach().numpy(), want, atol=1e-4)


def test_build_uses_lecture_default_learning_rates() -> None:
    w = torch.zeros(2, requires_grad=True)
    got = {name: optim.build(name, [w]).param_groups[0]["lr"] for name in optim.NAMES}
    # adam/adamw 1e-3 and lbfgs 1 as in the notes; the others 1e-2
    assert got == {**dict.fromkeys(optim.NAMES, 1e-2), "adam": 1e-3, "adamw": 1e-3, "lbfgs": 1.0}
