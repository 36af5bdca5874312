"""Hand-written transformer kernels for the gradient zoo: each a custom autograd.Function, with bugs.

The kinds of code people write backward passes for: a linear layer, layer norm, causal attention,
an embedding lookup, GELU, a causal depthwise convolution, top-1 routing.  ``kernel(name, bug)``
returns the Function; ``bug=None`` is the correct one, the others are realistic slips:

============================  =================================================================
linear / one_entry            dW correct except one entry, doubled (1 coordinate of the tensor)
linear / bias_mean            db averaged over the rows instead of summed (only with > 1 row)
linear / skip_last_token      dW leaves out the last position of each sequence (an off-by-one)
layernorm / missing_mean      dx without its -mean(g w) term
layernorm / ignores_eps       the backward normalises by sqrt(var), the forward by sqrt(var + eps):
                              relative errors of about eps / var, close to the tolerance
attention / dq_unscaled       dq forgets the 1/sqrt(d) of the scores (dk keeps it)
attention / last_query        dq of the last position is left at 0 (one row in T)
attention / softmax_no_rowsum dS = P dP, without the -P rowsum(P dP) term
embedding / overwrite         dW[idx] = g instead of +=: wrong only for tokens that occur twice
gelu / tanh_backward          exact GELU forward, the tanh approximation's derivative backward
conv / edge                   causal depthwise conv: dW misses the first time step's products
conv / flipped                dW with the taps in reverse order
============================  =================================================================

Every Function runs in the dtype of its inputs (float64 in a check, float32/bf16 in a model).
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import FunctionCtx

__all__ = ["KERNEL_BUGS", "kernel"]

T = torch.Tensor


def _rows(t: T) -> T:
    return t.reshape(-1, t.shape[-1])


def _linear(bug: str | None) -> type[torch.autograd.Function]:
    class Linear(torch.autograd.Function):
        """y = x W^T + b over the last dimension of x."""

        @staticmethod
        def forward(ctx: FunctionCtx, x: T, w: T, b: T) -> T:
            ctx.save_for_backward(x, w)
            return x @ w.t() + b

        @staticmethod
        def backward(ctx: FunctionCtx, g: T) -> tuple[T, T, T]:
            x, w = ctx.saved_tensors  # type: ignore[attr-defined]
            gx = g @ w
            if bug == "skip_last_token" and x.dim() == 3:
                gw = _rows(g[:, :-1]).t() @ _rows(x[:, :-1])
            else:
                gw = _rows(g).t() @ _rows(x)
            if bug == "one_entry":
                gw = gw.clone()
                gw[1, 2] *= 2.0
            gb = _rows(g).mean(0) if bug == "bias_mean" else _rows(g).sum(0)
            return gx, gw, gb

    return Linear


def _layernorm(bug: str | None) -> type[torch.autograd.Function]:
    class LayerNorm(torch.autograd.Function):
        """Layer norm over the last dimension with gain w and bias b (eps = 1e-5)."""

        @staticmethod
        def forward(ctx: FunctionCtx, x: T, w: T, b: T) -> T:
            mu = x.mean(-1, keepdim=True)
            var = x.var(-1, unbiased=False, keepdim=True)
            xhat = (x - mu) / torch.sqrt(var + 1e-5)
            ctx.save_for_backward(x, w)
            return xhat * w + b

        @staticmethod
        def backward(ctx: FunctionCtx, g: T) -> tuple[T, T, T]:
            x, w = ctx.saved_tensors  # type: ignore[attr-defined]
            mu = x.mean(-1, keepdim=True)
            var = x.var(-1, unbiased=False, keepdim=True)
            rstd = 1.0 / torch.sqrt(var if bug == "ignores_eps" else var + 1e-5)
            xhat = (x - mu) * rstd
            gxhat = g * w
            gx = gxhat - (gxhat * xhat).mean(-1, keepdim=True) * xhat
            if bug != "missing_mean":
                gx = gx - gxhat.mean(-1, keepdim=True)
            return gx * rstd, _rows(g * xhat).sum(0), _rows(g).sum(0)

    return LayerNorm


def _attention(bug: str | None) -> type[torch.autograd.Function]:
    class CausalAttention(torch.autograd.Function):
        """softmax(q k^T / sqrt(d) + causal mask) v for q, k, v of shape (batch, heads, time, d)."""

        @staticmethod
        def forward(ctx: FunctionCtx, q: T, k: T, v: T) -> T:
            n, d = q.shape[-2], q.shape[-1]
            mask = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
            s = (q @ k.transpose(-1, -2)) / math.sqrt(d)
            p = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1)
            ctx.save_for_backward(q, k, v, p)
            return p @ v

        @staticmethod
        def backward(ctx: FunctionCtx, g: T) -> tuple[T, T, T]:
            q, k, v, p = ctx.saved_tensors  # type: ignore[attr-defined]
            scale = 1.0 / math.sqrt(q.shape[-1])
            gv = p.transpose(-1, -2) @ g
            gp = g @ v.transpose(-1, -2)
            gs = p * gp
            if bug != "softmax_no_rowsum":
                gs = gs - p * gs.sum(-1, keepdim=True)
            gq = (gs @ k) * (1.0 if bug == "dq_unscaled" else scale)
            if bug == "last_query":
                gq = gq.clone()
                gq[..., -1, :] = 0.0
            gk = (gs.transpose(-1, -2) @ q) * scale
            return gq, gk, gv

    return CausalAttention


def _embedding(bug: str | None) -> type[torch.autograd.Function]:
    class Embedding(torch.autograd.Function):
        """w[idx]: a lookup table; its gradient scatters back, summing over repeated indices."""

        @staticmethod
        def forward(ctx: FunctionCtx, idx: T, w: T) -> T:
            ctx.save_for_backward(idx)
            ctx.rows = w.shape[0]  # type: ignore[attr-defined]
            return w[idx]

        @staticmethod
        def backward(ctx: FunctionCtx, g: T) -> tuple[None, T]:
            (idx,) = ctx.saved_tensors  # type: ignore[attr-defined]
            flat, rows = idx.reshape(-1), _rows(g)
            gw = torch.zeros(ctx.rows, g.shape[-1], dtype=g.dtype, device=g.device)  # type: ignore[attr-defined]
            if bug == "overwrite":
                gw[flat] = rows  # the last occurrence wins; repeated tokens lose the others
            else:
                gw.index_add_(0, flat, rows)
            return None, gw

    return Embedding


def _gelu(bug: str | None) -> type[torch.autograd.Function]:
    class Gelu(torch.autograd.Function):
        """x Phi(x), the exact GELU."""

        @staticmethod
        def forward(ctx: FunctionCtx, x: T) -> T:
            ctx.save_for_backward(x)
            return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))

        @staticmethod
        def backward(ctx: FunctionCtx, g: T) -> T:
            (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
            if bug == "tanh_backward":
                c = math.sqrt(2.0 / math.pi)
                u = c * (x + 0.044715 * x**3)
                t = torch.tanh(u)
                return g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * x * x))
            cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
            pdf = torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
            return g * (cdf + x * pdf)

    return Gelu


def _conv(bug: str | None) -> type[torch.autograd.Function]:
    class CausalConv(torch.autograd.Function):
        """Depthwise causal convolution over time: y[:, t, c] = sum_j w[c, j] x[:, t - j, c]."""

        @staticmethod
        def forward(ctx: FunctionCtx, x: T, w: T) -> T:
            ctx.save_for_backward(x, w)
            y = torch.zeros_like(x)
            for j in range(w.shape[1]):
                y[:, j:] += x[:, : x.shape[1] - j] * w[:, j]
            return y

        @staticmethod
        def backward(ctx: FunctionCtx, g: T) -> tuple[T, T]:
            x, w = ctx.saved_tensors  # type: ignore[attr-defined]
            n, taps = x.shape[1], w.shape[1]
            gx = torch.zeros_like(x)
            gw = torch.zeros_like(w)
            for j in range(taps):
                gx[:, : n - j] += g[:, j:] * w[:, j]
                start = j + 1 if bug == "edge" else j  # "edge": the first output step is left out
                gw[:, j] = (g[:, start:] * x[:, start - j : n - j]).sum((0, 1))
            if bug == "flipped":
                gw = gw.flip(1)
            return gx, gw

    return CausalConv


def _router(bug: str | None) -> type[torch.autograd.Function]:
    class Top1Router(torch.autograd.Function):
        """Top-1 routing: each row keeps the expert output of its largest gate, scaled by that gate's softmax.

        ``forward(x, gates, experts)``: x (rows, d), gates (rows, E), experts (rows, E, d) already computed;
        y = softmax(gates)[e*] experts[e*] with e* = argmax(gates).  The argmax is a kink: ties switch it.
        """

        @staticmethod
        def forward(ctx: FunctionCtx, gates: T, experts: T) -> T:
            p = torch.softmax(gates, dim=-1)
            top = gates.argmax(-1)
            rows = torch.arange(gates.shape[0], device=gates.device)
            ctx.save_for_backward(p, top, experts)
            return p[rows, top, None] * experts[rows, top]

        @staticmethod
        def backward(ctx: FunctionCtx, g: T) -> tuple[T, T]:
            p, top, experts = ctx.saved_tensors  # type: ignore[attr-defined]
            rows = torch.arange(p.shape[0], device=p.device)
            chosen = experts[rows, top]
            gp_top = (g * chosen).sum(-1)  # d y / d p[top]
            onehot = torch.zeros_like(p)
            onehot[rows, top] = 1.0
            gp = onehot * gp_top[:, None]
            ggates = p * (gp - (gp * p).sum(-1, keepdim=True))
            gexperts = torch.zeros_like(experts)
            gexperts[rows, top] = g * p[rows, top, None]
            return ggates, gexperts

    return Top1Router


_FACTORIES = {
    "linear": _linear,
    "layernorm": _layernorm,
    "attention": _attention,
    "embedding": _embedding,
    "gelu": _gelu,
    "conv": _conv,
    "router": _router,
}

KERNEL_BUGS: dict[str, tuple[str, ...]] = {
    "linear": ("one_entry", "bias_mean", "skip_last_token"),
    "layernorm": ("missing_mean", "ignores_eps"),
    "attention": ("dq_unscaled", "last_query", "softmax_no_rowsum"),
    "embedding": ("overwrite",),
    "gelu": ("tanh_backward",),
    "conv": ("edge", "flipped"),
    "router": (),
}

_CACHE: dict[tuple[str, str | None], type[torch.autograd.Function]] = {}


def kernel(name: str, bug: str | None = None) -> type[torch.autograd.Function]:
    """The ``name`` kernel's autograd.Function, correct (``bug=None``) or with one of ``KERNEL_BUGS[name]``."""
    if name not in _FACTORIES:
        raise KeyError(f"no kernel {name!r}; kernels: {sorted(_FACTORIES)}")
    if bug is not None and bug not in KERNEL_BUGS[name]:
        raise KeyError(f"kernel {name!r} has no bug {bug!r}; its bugs: {list(KERNEL_BUGS[name])}")
    key = (name, bug)
    if key not in _CACHE:
        fn = _FACTORIES[name](bug)
        fn.__name__ = fn.__qualname__ = "".join(p.title() for p in name.split("_")) + ("" if bug is None else "_" + bug)
        _CACHE[key] = fn
    return _CACHE[key]
