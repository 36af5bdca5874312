"""The numerical machinery: exact restoration, seeding, non-determinism, the step ladder (L-G1, G5, G9)."""

from __future__ import annotations

import random

import torch

from babysit.gradcheck import check_function
from babysit.gradcheck._numeric import Evaluator, Slot
from babysit.gradcheck._probe import probe


def _evaluator(fn, x: torch.Tensor, **kw) -> Evaluator:
    return Evaluator(lambda: fn(x).reshape(-1), torch.ones(1, dtype=torch.float64), reseed=lambda: None, **kw)


def test_numeric_perturbation_is_restored_bit_exactly() -> None:
    x = torch.randn(50, dtype=torch.float64) * 1e3
    before = x.clone()
    ev = _evaluator(lambda t: (t**2).sum(), x)
    slot = Slot("x", x, 2 * x.clone())
    for step in (1e-5, -1e-5, 3e-7):
        ev.at(slot, 0, 50, torch.randn(50, dtype=torch.float64), step)
    # x + h - h would drift; saved values are copied back
    assert torch.equal(x, before)


def test_numeric_centered_difference_is_second_order() -> None:
    x = torch.tensor([0.7], dtype=torch.float64)
    ev = _evaluator(lambda t: t.exp().sum(), x)
    slot = Slot("x", x, x.exp())
    one = torch.ones(1, dtype=torch.float64)
    errs = [abs(ev.attempt(slot, 0, 1, one, h).numerical - float(x.exp())) for h in (1e-2, 1e-3)]
    # error O(h^2): 10x smaller h, ~100x smaller error (L-G1)
    assert 50 < errs[0] / errs[1] < 200


def test_numeric_nondeterminism_is_measured_and_not_a_false_alarm() -> None:
    def shuffled_sum(t: torch.Tensor) -> torch.Tensor:
        idx = list(range(t.numel()))
        random.shuffle(idx)  # like atomic adds: a different order each call
        out = torch.zeros((), dtype=t.dtype)
        for i in idx:
            out = out + t[i] * 1e8
        return out

    random.seed(0)
    x = torch.randn(40, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    ev = _evaluator(shuffled_sum, x.detach().clone())
    # two evaluations at the same point disagree in the last bits, and that widens the resolution
    assert 0 < ev.jitter < 1e-6 * abs(ev.f0)
    assert check_function(shuffled_sum, x).ok


def test_numeric_lecture_relu_example_falls_back_to_a_smaller_step() -> None:
    x = torch.tensor([-1e-6], dtype=torch.float64)
    ev = _evaluator(lambda t: torch.relu(t).sum() + t.sum(), x)
    one = torch.ones(1, dtype=torch.float64)
    c = probe(ev, Slot("x", x, torch.ones(1, dtype=torch.float64)), 0, 1, one, 1.0, h=1e-5, where="[0]")
    # h = 1e-5 crosses the kink (numerical ~1.45); a smaller step does not, and the check is clean
    assert c.kink and c.h < 1e-5 and c.verdict == "ideal"


def test_numeric_same_seed_before_every_evaluation_checks_dropout() -> None:
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    fn = lambda t: torch.nn.functional.dropout(torch.tanh(t), 0.5)  # noqa: E731
    # with a fixed seed per evaluation dropout is an ordinary function: ideal
    assert check_function(fn, x).verdict == "ideal"
    # the seed matters for the masks, not for the verdict
    assert check_function(fn, x, seed=7).verdict == "ideal"
