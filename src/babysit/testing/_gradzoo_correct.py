"""The correct half of the gradient zoo: right backward passes that sit on kinks or use dropout.

Each one is a trap for a naive checker: ReLU at exact zeros, max-pool ties, a hinge at margin 0,
abs at 0, clamp at its bounds, dropout drawing a fresh mask per call, summation in a random order.
"""

from __future__ import annotations

import random

import torch

from babysit.testing._gradzoo_bugs import function

__all__ = ["CORRECT", "Dropout", "NondeterministicSum"]

T = torch.Tensor


def _pool_argmax(g: T, y: T, x: T) -> T:
    """Max-pool (window 2) backward: the first maximal element of each window gets the gradient."""
    first = x[..., 0::2] >= x[..., 1::2]  # a tie goes to the first element, like torch
    dx = torch.zeros_like(x)
    dx[..., 0::2] = g * first
    dx[..., 1::2] = g * ~first
    return dx


def _max_rows(g: T, y: T, x: T) -> T:
    idx = x.argmax(dim=1, keepdim=True)  # ties: the first maximal index
    return torch.zeros_like(x).scatter(1, idx, g.unsqueeze(1))


def _svm(s: T) -> T:
    """Multiclass SVM loss with margin 1; the correct class of row i is i % C."""
    y = torch.arange(s.shape[0]) % s.shape[1]
    margins = (s - s.gather(1, y[:, None]) + 1.0).clamp(min=0)
    return margins.sum() - s.shape[0]  # the correct class's own margin is exactly 1


def _svm_bwd(g: T, out: T, s: T) -> T:
    y = torch.arange(s.shape[0]) % s.shape[1]
    active = ((s - s.gather(1, y[:, None]) + 1.0) > 0).to(s.dtype)
    active[torch.arange(s.shape[0]), y] = 0.0
    ds = active.clone()
    ds[torch.arange(s.shape[0]), y] = -active.sum(1)
    return g * ds


def _maxout(x: T, w1: T, w2: T) -> T:
    return torch.maximum(x @ w1, x @ w2)


def _maxout_bwd(g: T, y: T, x: T, w1: T, w2: T) -> tuple[T, T, T]:
    first = ((x @ w1) >= (x @ w2)).to(x.dtype)  # ties go to the first piece
    g1, g2 = g * first, g * (1 - first)
    return g1 @ w1.t() + g2 @ w2.t(), x.t() @ g1, x.t() @ g2


class Dropout(torch.autograd.Function):
    """tanh then dropout (p = 0.5), a fresh mask from torch's RNG on every call."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: T) -> T:
        mask = (torch.rand_like(x) > 0.5).to(x.dtype) / 0.5
        y = torch.tanh(x)
        ctx.save_for_backward(y, mask)
        return y * mask

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, g: T) -> T:
        y, mask = ctx.saved_tensors
        return g * mask * (1 - y * y)


class DropoutLinearRelu(torch.autograd.Function):
    """relu(x W) then dropout (p = 0.3): kinks and randomness in one fused layer."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: T, w: T) -> T:
        z = x @ w
        mask = (torch.rand_like(z) > 0.3).to(z.dtype) / 0.7
        ctx.save_for_backward(x, w, z, mask)
        return z.clamp(min=0) * mask

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, g: T) -> tuple[T, T]:
        x, w, z, mask = ctx.saved_tensors
        gz = g * mask * (z > 0).to(z.dtype)
        return gz @ w.t(), x.t() @ gz


class NondeterministicSum(torch.autograd.Function):
    """Row sums accumulated in a random order (Python's RNG, not torch's), like an atomic add."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: T) -> T:
        cols = list(range(x.shape[1]))
        random.shuffle(cols)
        out = torch.zeros(x.shape[0], dtype=x.dtype)
        for c in cols:
            out = out + x[:, c] * 1e3  # large terms: the order changes the last bits
        ctx.save_for_backward(x)
        return out

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, g: T) -> T:
        (x,) = ctx.saved_tensors
        return g[:, None].expand_as(x) * 1e3


CORRECT: dict[str, tuple[type[torch.autograd.Function], str]] = {
    "relu_exact_zeros": (
        function("Relu", torch.relu, lambda g, y, x: g * (x > 0), "relu, x has exact zeros"),
        "kink: relu at 0",
    ),
    "relu_ge_convention": (
        function(
            "ReluGe",
            torch.relu,
            lambda g, y, x: g * (x >= 0),
            "relu with relu'(0) = 1, the other valid subgradient",
        ),
        "kink: relu at 0",
    ),
    "relu_near_kink": (
        function(
            "ReluNear",
            torch.relu,
            lambda g, y, x: g * (x > 0),
            "relu at x = -1e-6 (the lecture's example: h = 1e-5 crosses)",
        ),
        "kink: near 0",
    ),
    "leaky_relu_near_kink": (
        function(
            "LeakyRelu",
            lambda x: torch.nn.functional.leaky_relu(x, 0.01),
            lambda g, y, x: g * torch.where(x > 0, 1.0, 0.01),
            "leaky relu at +-1e-7",
        ),
        "kink: near 0",
    ),
    "abs_at_zero": (
        function("Abs", torch.abs, lambda g, y, x: g * torch.sign(x), "|x| with exact zeros"),
        "kink: abs at 0",
    ),
    "clamp_at_bounds": (
        function(
            "Clamp",
            lambda x: x.clamp(-1.0, 1.0),
            lambda g, y, x: g * ((x > -1.0) & (x < 1.0)),
            "clamp at exactly -1 and 1",
        ),
        "kink: clamp bounds",
    ),
    "maxpool_ties": (
        function(
            "MaxPool",
            lambda x: torch.maximum(x[..., 0::2], x[..., 1::2]),
            _pool_argmax,
            "max-pool (window 2) with tied windows",
        ),
        "kink: max-pool ties",
    ),
    "max_rows_ties": (
        function("MaxRows", lambda x: x.max(dim=1).values, _max_rows, "row max with ties"),
        "kink: max ties",
    ),
    "svm_margin_zero": (
        function("SvmLoss", _svm, _svm_bwd, "multiclass SVM with margins exactly 0"),
        "kink: hinge at margin 0",
    ),
    "maxout_ties": (
        function("Maxout", _maxout, _maxout_bwd, "maxout whose two pieces tie on one unit"),
        "kink: maxout ties",
    ),
    "dropout_tanh": (Dropout, "dropout: fresh mask per call"),
    "dropout_linear_relu": (DropoutLinearRelu, "dropout + relu kinks"),
    "nondeterministic_sum": (NondeterministicSum, "non-deterministic summation order"),
    "softmax": (
        function(
            "Softmax",
            lambda x: torch.softmax(x, dim=1),
            lambda g, y, x: y * (g - (g * y).sum(1, keepdim=True)),
            "smooth: softmax",
        ),
        "smooth",
    ),
    "gram": (
        function("Gram", lambda x: x @ x.t(), lambda g, y, x: (g + g.t()) @ x, "smooth: x x^T"),
        "smooth",
    ),
}
