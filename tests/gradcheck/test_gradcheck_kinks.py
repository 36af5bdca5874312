"""The kink recorder and the one-sided kink test (L-G4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from babysit.gradcheck._kinks import BranchRecorder, kink_at_point, same_branches


class _Hinge(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.where(x > 0.75, x - 0.75, torch.zeros_like(x))

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return g * (x > 0.75)


def _record(fn, x: torch.Tensor):
    with BranchRecorder() as rec:
        fn(x)
    return rec.signature()


def test_recorder_sees_a_relu_crossing() -> None:
    # relu at -1e-6 with h = 1e-5: x + h and x - h take different branches
    x = torch.tensor([-1e-6, 2.0], dtype=torch.float64)
    plus, minus = _record(torch.relu, x + 1e-5), _record(torch.relu, x - 1e-5)
    assert not same_branches(plus, minus)
    # a smaller step stays on one side
    assert same_branches(_record(torch.relu, x + 1e-7), _record(torch.relu, x - 1e-7))


def test_recorder_treats_ties_as_kinks() -> None:
    # equal inputs to a max: both perturbations change the recorded branch
    a = torch.tensor([1.0, 3.0], dtype=torch.float64)
    b = torch.tensor([1.0, 2.0], dtype=torch.float64)
    at = _record(lambda t: torch.maximum(t, b), a)
    up = _record(lambda t: torch.maximum(t, b), a + 1e-6)
    down = _record(lambda t: torch.maximum(t, b), a - 1e-6)
    assert not same_branches(at, up) and not same_branches(at, down)


def test_recorder_covers_clamp_maxpool_comparisons_and_custom_functions() -> None:
    # clamp bounds, max-pool winners, masks made by comparisons inside an autograd.Function
    x = torch.tensor([[[0.0, 1.0, 1.0, 0.5]]], dtype=torch.float64)
    ops = [
        lambda t: t.clamp(min=0.2, max=0.9),
        lambda t: F.max_pool1d(t, 2),
        lambda t: (t > 0.75).sum(),
        lambda t: t.max(dim=-1).values,
        _Hinge.apply,
    ]
    shift = torch.tensor([[[0.0, 0.0, 0.0, 0.6]]], dtype=torch.float64)
    for op in ops:
        assert not same_branches(_record(op, x), _record(op, x + shift)), op


def test_recorder_does_not_flag_smooth_ops() -> None:
    # tanh and matmul make no branch choices
    x = torch.randn(3, 3, dtype=torch.float64)
    fn = lambda t: torch.tanh(t @ t).sum()  # noqa: E731
    assert same_branches(_record(fn, x), _record(fn, x + 1e-3))
    assert _record(fn, x) == ()


def test_kink_at_point_from_one_sided_differences() -> None:
    # |x| at 0: the gap between one-sided slopes stays 2; x^2: it shrinks like h
    hs = [1e-4, 1e-5]
    assert kink_at_point(0.0, [abs(h) for h in hs], [abs(-h) for h in hs], hs, 1e-16)
    assert not kink_at_point(1.0, [(1 + h) ** 2 for h in hs], [(1 - h) ** 2 for h in hs], hs, 1e-16)
