"""The buggy half of the gradient zoo: custom autograd.Functions with realistic planted bugs.

Each line pair reads like micrograd: the forward, then the backward with its bug named in the
docstring.  ``function(name, forward, backward)`` saves the inputs and the output for the backward.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["BUGS", "function"]

T = torch.Tensor


def function(
    name: str, forward: Callable[..., T], backward: Callable[..., T | tuple[T, ...]], doc: str
) -> type[torch.autograd.Function]:
    """Build an autograd.Function: ``forward(*xs) -> y``, ``backward(g, y, *xs) -> grad(s) of xs``."""

    def fwd(ctx: torch.autograd.function.FunctionCtx, *xs: T) -> T:
        y = forward(*xs)
        ctx.save_for_backward(y, *xs)
        return y

    def bwd(ctx: torch.autograd.function.FunctionCtx, g: T) -> T | tuple[T, ...]:
        return backward(g, *ctx.saved_tensors)

    return type(
        name,
        (torch.autograd.Function,),
        {"forward": staticmethod(fwd), "backward": staticmethod(bwd), "__doc__": doc},
    )


def _pool_first(g: T, y: T, x: T) -> T:
    """Routes every window's gradient to its first element instead of its argmax."""
    dx = torch.zeros_like(x)
    dx[..., 0::2] = g
    return dx


def _softmax_no_sum(g: T, y: T, x: T) -> T:
    return y * g  # the -y * sum(g * y) term is missing


def _layernorm_no_mean(g: T, y: T, x: T) -> T:
    std = x.std(dim=1, keepdim=True, unbiased=False)
    return (g - (g * y).mean(dim=1, keepdim=True) * y) / std  # the -mean(g) term is missing


def _deep_sigmoid(x: T) -> T:
    for _ in range(10):
        x = torch.sigmoid(x)
    return x


def _deep_sigmoid_bwd(g: T, y: T, x: T) -> T:
    zs, z = [], x
    for _ in range(10):
        zs.append(z)
        z = torch.sigmoid(z)
    for i, z in enumerate(reversed(zs)):
        s = torch.sigmoid(z)
        g = g * (s if i == 9 else s * (1 - s))  # the first layer's derivative is s, not s(1-s)
    return g


BUGS: dict[str, tuple[type[torch.autograd.Function], str]] = {
    "square_factor": (
        function("SquareFactor", lambda x: x * x, lambda g, y, x: g * x, "d(x^2)/dx = 2x: the factor 2 is missing"),
        "factor error",
    ),
    "sin_sign": (
        function("SinSign", torch.sin, lambda g, y, x: -g * torch.cos(x), "d sin = +cos: wrong sign"),
        "wrong sign",
    ),
    "matmul_transposed": (
        function(
            "MatmulTransposed",
            lambda a, b: a @ b,
            lambda g, y, a, b: (g @ b, a.t() @ g),
            "dA = g B^T, written g B (square shapes hide it)",
        ),
        "transposed matmul",
    ),
    "xexp_missing_term": (
        function(
            "XExpMissingTerm",
            lambda x: x * torch.exp(x),
            lambda g, y, x: g * torch.exp(x),
            "d(x e^x) = (1 + x) e^x: the product rule's x e^x is missing",
        ),
        "missing term",
    ),
    "softmax_missing_term": (
        function(
            "SoftmaxMissingTerm",
            lambda x: torch.softmax(x, dim=1),
            _softmax_no_sum,
            "softmax backward without its -y sum(g y) term",
        ),
        "missing term",
    ),
    "layernorm_missing_mean": (
        function(
            "LayerNormMissingMean",
            lambda x: (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True, unbiased=False),
            _layernorm_no_mean,
            "normalisation backward without -mean(g)",
        ),
        "missing term",
    ),
    "elu_negative": (
        function(
            "EluNegative",
            torch.nn.functional.elu,
            lambda g, y, x: g * torch.where(x > 0, 1.0, y),
            "elu' = y + 1 for x < 0, written y: wrong only for negative inputs",
        ),
        "wrong for negative inputs",
    ),
    "relu_leaks": (
        function(
            "ReluLeaks",
            torch.relu,
            lambda g, y, x: g * torch.where(x > 0, 1.0, 0.01),
            "relu backward lets 1% through for x < 0",
        ),
        "wrong for negative inputs",
    ),
    "linear_one_column": (
        function(
            "LinearOneColumn",
            lambda x, w: x @ w,
            lambda g, y, x, w: (g @ w.t(), (x.t() @ g) * torch.tensor([1.0, 1, 2, 1, 1])),
            "dW correct except column 2, doubled",
        ),
        "one column",
    ),
    "channel_scale_one_channel": (
        function(
            "ChannelScaleOneChannel",
            lambda x, s: x * s.view(1, -1, 1, 1),
            lambda g, y, x, s: (
                g * s.view(1, -1, 1, 1),
                torch.cat([(g * x)[:, :2].sum((0, 2, 3)), g[:, 2:].sum((0, 2, 3))]),
            ),
            "ds[c] = sum g x, but channel 2 forgets the x",
        ),
        "one channel",
    ),
    "linear_first_example": (
        function(
            "LinearFirstExample",
            lambda x, w: x @ w,
            lambda g, y, x, w: (g @ w.t(), x[:1].t() @ g[:1]),
            "dW from the first example only: right for batch 1",
        ),
        "only batch > 1",
    ),
    "bias_mean": (
        function(
            "BiasMean",
            lambda x, b: x + b,
            lambda g, y, x, b: (g, g.mean(0)),
            "db = sum over the batch, written mean",
        ),
        "only batch > 1",
    ),
    "mean_reduction": (
        function(
            "MeanReduction",
            lambda x: x.mean(0),
            lambda g, y, x: g.expand_as(x).clone(),
            "d mean = 1/N: the 1/N is missing (sum's gradient)",
        ),
        "wrong reduction",
    ),
    "tanh_one_percent": (
        function("TanhOnePercent", torch.tanh, lambda g, y, x: g * (1 - y * y) * 1.01, "tanh backward 1% too large"),
        "1% error",
    ),
    "tiny_factor": (
        function(
            "TinyFactor",
            lambda x: 1e-7 * torch.sin(x),
            lambda g, y, x: 2e-7 * g * torch.cos(x),
            "gradients ~1e-7 off by 2x: below an atol of 1e-5",
        ),
        "error on ~1e-7 gradients",
    ),
    "l2_double_counted": (
        function(
            "L2DoubleCounted",
            lambda w: 2.5e-6 * (w * w).sum(),
            lambda g, y, w: g * 1e-5 * w,
            "0.5 lambda |W|^2 with lambda = 5e-6, gradient counted twice",
        ),
        "error on ~1e-6 gradients",
    ),
    "deep_sigmoid_first_layer": (
        function(
            "DeepSigmoidFirstLayer",
            _deep_sigmoid,
            _deep_sigmoid_bwd,
            "10 sigmoids; the first layer's derivative is wrong",
        ),
        "error on ~1e-7 gradients",
    ),
    "maxpool_routing": (
        function(
            "MaxPoolRouting",
            lambda x: torch.maximum(x[..., 0::2], x[..., 1::2]),
            _pool_first,
            "max-pool (window 2) routes the gradient to the first element",
        ),
        "wrong index routing",
    ),
    "gram_not_summed": (
        function(
            "GramNotSummed",
            lambda x: x @ x.t(),
            lambda g, y, x: g @ x,
            "x x^T uses x twice: (g + g^T) x, written g x",
        ),
        "reused input not summed",
    ),
}
