"""A character-level pre-norm transformer whose layers can run hand-written kernels, for planting bugs.

``transformer(size)`` builds the model (``SIZES``: about 0.4M, 3M, 25M and 124M parameters, the last
GPT-2 small's shape with its 50,257-token vocabulary and tied embedding).  Every layer computes with
torch's own ops unless given a kernel from ``_gradzoo_kernels``: ``kernels=True`` swaps in the
hand-written correct ones everywhere, and ``plant(model, path, kernel, bug)`` puts one buggy kernel in
one layer, which is what a gradient checker must then find and name.

Example:
    >>> model = transformer("0.4M")
    >>> x, y = batch(model)
    >>> plant(model, "blocks.1.mlp.fc1", "linear", "one_entry") is model
    True
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from babysit.testing._gradzoo_kernels import KERNEL_BUGS, kernel

__all__ = ["PLANTS", "SIZES", "Transformer", "batch", "loss", "plant", "transformer"]

SIZES: dict[str, dict[str, Any]] = {
    "0.4M": {"d": 128, "layers": 2, "heads": 4},
    "3M": {"d": 256, "layers": 4, "heads": 4},
    "25M": {"d": 512, "layers": 8, "heads": 8},
    "124M": {"d": 768, "layers": 12, "heads": 12, "vocab": 50257, "tied": True},
}

# One planted bug per (layer kind, bug), as (path with {k} for the block, kernel, bug): the layer a
# checker must name.
PLANTS: tuple[tuple[str, str, str], ...] = (
    ("blocks.{k}.mlp.fc1", "linear", "one_entry"),
    ("blocks.{k}.attn.proj", "linear", "bias_mean"),
    ("blocks.{k}.mlp.fc2", "linear", "skip_last_token"),
    ("blocks.{k}.ln1", "layernorm", "missing_mean"),
    ("blocks.{k}.ln2", "layernorm", "ignores_eps"),
    ("blocks.{k}.attn.core", "attention", "dq_unscaled"),
    ("blocks.{k}.attn.core", "attention", "last_query"),
    ("blocks.{k}.attn.core", "attention", "softmax_no_rowsum"),
    ("tok", "embedding", "overwrite"),
    ("blocks.{k}.mlp.act", "gelu", "tanh_backward"),
    ("blocks.{k}.conv", "conv", "edge"),
    ("blocks.{k}.conv", "conv", "flipped"),
)


class _Kernel:
    """A layer that computes with ``self.kernel.apply`` when it has one, else with torch's own op."""

    kernel: type[torch.autograd.Function] | None = None


class Linear(nn.Linear, _Kernel):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel is None or self.bias is None:  # the kernel takes a bias; the head has none
            return F.linear(x, self.weight, self.bias)
        return self.kernel.apply(x, self.weight, self.bias)


class LayerNorm(nn.LayerNorm, _Kernel):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel is None:
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, 1e-5)
        return self.kernel.apply(x, self.weight, self.bias)


class Embedding(nn.Embedding, _Kernel):
    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, self.weight) if self.kernel is None else self.kernel.apply(idx, self.weight)


class Gelu(nn.Module, _Kernel):
    """GELU (exact) or, with ``relu=True``, ReLU: a kink at 0 for the checker to recognise."""

    def __init__(self, relu: bool = False) -> None:
        super().__init__()
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.relu:
            return torch.relu(x)
        return F.gelu(x) if self.kernel is None else self.kernel.apply(x)


class AttentionCore(nn.Module, _Kernel):
    """Causal softmax attention of (batch, heads, time, d) queries, keys and values; no parameters."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.kernel is None:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.kernel.apply(q, k, v)


class TokenConv(nn.Module, _Kernel):
    """A depthwise causal convolution over time (3 taps), mixing each channel with its recent past."""

    def __init__(self, d: int, taps: int = 3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d, taps) * 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel is not None:
            return self.kernel.apply(x, self.weight)
        taps = self.weight.shape[1]
        padded = F.pad(x.transpose(1, 2), (taps - 1, 0))
        return F.conv1d(padded, self.weight.flip(1).unsqueeze(1), groups=x.shape[-1]).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = Linear(d, 3 * d)
        self.core = AttentionCore()
        self.proj = Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in self.qkv(x).split(c, dim=2))
        return self.proj(self.core(q, k, v).transpose(1, 2).reshape(b, t, c))


class Mlp(nn.Module):
    def __init__(self, d: int, relu: bool) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = Linear(d, 4 * d), Gelu(relu), Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm: x + attn(ln1(conv(x))), then x + mlp(ln2(x))."""

    def __init__(self, d: int, heads: int, relu: bool) -> None:
        super().__init__()
        self.conv = TokenConv(d)
        self.ln1, self.attn = LayerNorm(d), Attention(d, heads)
        self.ln2, self.mlp = LayerNorm(d), Mlp(d, relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x + self.conv(x)))
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """Token and position embeddings, pre-norm blocks, a final layer norm, a linear head."""

    def __init__(
        self, vocab: int, d: int, layers: int, heads: int, context: int, *, relu: bool = False, tied: bool = False
    ) -> None:
        super().__init__()
        self.tok, self.pos = Embedding(vocab, d), Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads, relu) for _ in range(layers))
        self.lnf = LayerNorm(d)
        self.head = Linear(d, vocab, bias=False)
        if tied:
            self.head.weight = self.tok.weight  # GPT-2's tied input and output embedding

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.tok(idx) + self.pos(pos)
        for block in self.blocks:
            x = block(x)
        return self.head(self.lnf(x))


def transformer(
    size: str = "0.4M",
    *,
    context: int = 64,
    kernels: bool = False,
    relu: bool = False,
    seed: int = 0,
    **shape: Any,
) -> Transformer:
    """A transformer of one of ``SIZES`` (``shape`` overrides d, layers, heads, vocab, tied).

    ``kernels=True`` runs every layer on its correct hand-written kernel; ``relu=True`` uses ReLU in
    the MLPs (kinks) instead of GELU.
    """
    if size not in SIZES:
        raise KeyError(f"size must be one of {list(SIZES)}, got {size!r}")
    spec = {"vocab": 65, "tied": False, **SIZES[size], **shape}
    torch.manual_seed(seed)
    model = Transformer(spec["vocab"], spec["d"], spec["layers"], spec["heads"], context, relu=relu, tied=spec["tied"])
    if kernels:
        for mod in model.modules():
            name = _KIND.get(type(mod))
            if name is not None:
                mod.kernel = kernel(name)
    return model


_KIND: dict[type, str] = {
    Linear: "linear",
    LayerNorm: "layernorm",
    Embedding: "embedding",
    Gelu: "gelu",
    AttentionCore: "attention",
    TokenConv: "conv",
}


def plant(model: nn.Module, path: str, kernel_name: str, bug: str) -> nn.Module:
    """Make the layer at ``path`` compute with the ``bug`` variant of ``kernel_name``; returns the model."""
    layer = model.get_submodule(path)
    if _KIND.get(type(layer)) != kernel_name or bug not in KERNEL_BUGS[kernel_name]:
        raise ValueError(f"cannot plant {kernel_name}/{bug} in {path} ({type(layer).__name__})")
    layer.kernel = kernel(kernel_name, bug)  # type: ignore[union-attr]
    return model


def batch(model: Transformer, examples: int = 3, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``examples`` random token sequences of the model's context length and their next-token targets."""
    g = torch.Generator().manual_seed(seed)
    vocab, context = model.tok.num_embeddings, model.pos.num_embeddings
    tokens = torch.randint(0, min(vocab, 65), (examples, context + 1), generator=g)
    return tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()


def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over every position."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
