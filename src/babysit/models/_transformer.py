"""A character-level transformer language model (GPT-style): every position predicts the next token.

Tokens and positions are embedded and summed, pass ``n_layer`` blocks of causal self-attention and an MLP,
each wrapped in a residual connection with layer norm, and a linear head scores every token of the
vocabulary at every position: scores ``(N, T, V)`` for token ids ``(N, T)``. The attention is written out
(not a fused kernel) so that a gradient check sees each step, and so each can be broken on purpose: no
``1/sqrt(d_head)`` scale, no causal mask, post-norm instead of pre-norm.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from babysit.errors import ModelError


class CausalSelfAttention(nn.Module):
    """``softmax(q k^T / sqrt(d_head) + mask) v`` over ``n_head`` heads, then an output projection."""

    def __init__(self, d_model: int, n_head: int, block_size: int, *, dropout: float, scale: bool,
                 causal: bool) -> None:
        super().__init__()
        self.n_head, self.scale, self.causal = n_head, scale, causal
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.attn_drop = nn.Dropout(dropout)
        self.resid_drop = nn.Dropout(dropout)
        self.mask: Tensor  # (1, 1, block, block): True where a query may look (itself and the past)
        mask = torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))
        self.register_buffer("mask", mask.view(1, 1, block_size, block_size), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(n, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))  # (N, H, T, hs)
        att = q @ k.transpose(-2, -1)  # (N, H, T, T)
        if self.scale:
            att = att * (1.0 / math.sqrt(k.shape[-1]))
        if self.causal:
            att = att.masked_fill(~self.mask[:, :, :t, :t], float("-inf"))
        att = self.attn_drop(torch.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).reshape(n, t, d)  # heads side by side again: (N, T, D)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    """``Linear(d, 4d) -> GELU -> Linear(4d, d) -> Dropout``: the position-wise part of a block."""

    def __init__(self, d_model: int, ratio: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, ratio * d_model)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(ratio * d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.act(self.fc1(x))))


class Block(nn.Module):
    """Pre-norm ``x + attn(ln1(x)); x + mlp(ln2(x))``, or post-norm ``ln1(x + attn(x)); ln2(x + mlp(x))``."""

    def __init__(self, d_model: int, n_head: int, block_size: int, *, dropout: float, scale: bool, causal: bool,
                 prenorm: bool, mlp_ratio: int) -> None:
        super().__init__()
        self.prenorm = prenorm
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_head, block_size, dropout=dropout, scale=scale, causal=causal)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, mlp_ratio, dropout)

    def forward(self, x: Tensor) -> Tensor:
        if self.prenorm:
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.mlp(x))


class TransformerLM(nn.Module):
    """Token ids ``(N, T)`` (integers, or floats holding integers) to next-token scores ``(N, T, V)``.

    Args:
        block_size: the longest sequence (positions embedded).
        vocab_size: V, the number of tokens.
        n_layer, d_model, n_head: blocks, width, attention heads (``d_model % n_head == 0``).
        dropout: after the embeddings, on the attention weights and on each residual branch.
        scale_attention: divide ``q k^T`` by ``sqrt(d_head)`` (False is the classic bug: softmax saturates).
        prenorm: layer norm before each sublayer, plus a final one (False: post-norm, as the 2017 paper).
        causal: mask future positions (False lets every position see the token it must predict).
        mlp_ratio: the MLP's hidden width over ``d_model``.
    """

    def __init__(self, block_size: int, vocab_size: int, *, n_layer: int = 2, d_model: int = 64, n_head: int = 4,
                 dropout: float = 0.0, scale_attention: bool = True, prenorm: bool = True, causal: bool = True,
                 mlp_ratio: int = 4) -> None:
        super().__init__()
        for key, value in (("n_layer", n_layer), ("d_model", d_model), ("n_head", n_head), ("mlp_ratio", mlp_ratio)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(f"transformer setting {key} must be an integer >= 1, got {key}={value!r}.")
        if d_model % n_head:
            raise ModelError(f"transformer d_model={d_model} is not divisible by n_head={n_head}; every head gets "
                             f"d_model / n_head channels. Use e.g. n_head={math.gcd(d_model, n_head) or 1}.")
        self.block_size = block_size
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(block_size, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*(
            Block(d_model, n_head, block_size, dropout=dropout, scale=scale_attention, causal=causal,
                  prenorm=prenorm, mlp_ratio=mlp_ratio)
            for _ in range(n_layer)
        ))
        self.ln_f = nn.LayerNorm(d_model) if prenorm else nn.Identity()
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        for emb in (self.tok, self.pos):
            nn.init.normal_(emb.weight, std=0.02)  # GPT-2's embedding init; layer norm rescales what follows

    def forward(self, idx: Tensor) -> Tensor:
        idx = idx.long()  # a DataBundle or DataLoader may hand token ids over as floats
        t = idx.shape[1]
        if t > self.block_size:
            raise ModelError(f"sequence of {t} tokens is longer than block_size={self.block_size}; cut it, or "
                             "build the model with a larger input_shape.")
        x = self.drop(self.tok(idx) + self.pos(torch.arange(t, device=idx.device)))  # (N, T, D)
        return self.head(self.ln_f(self.blocks(x)))  # (N, T, V)
