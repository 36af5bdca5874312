"""Which layers count as weighted: any leaf with a >= 2-D weight that is not a norm or an embedding (library
projections such as Hugging Face's GPT-2 Conv1D, whose weight is stored (in, out)); embeddings are their own
kind. The quantities that depend on it (the depth comparison, the zero_grad check) then work on such models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from babysit import Monitor


class Conv1D(nn.Module):
    """Hugging Face's GPT-2 projection, as transformers.pytorch_utils defines it: y = x @ W + b, W of (in, out)."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.02)
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.reshape(-1, x.size(-1)), self.weight).reshape(*x.shape[:-1], self.nf)


class TinyLM(nn.Module):
    def __init__(self, conv1d: type[nn.Module] = Conv1D) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.wte = nn.Embedding(50, 16)
        self.ln = nn.LayerNorm(16)
        self.c_fc = conv1d(32, 16)
        self.act = nn.GELU()
        self.c_proj = conv1d(50, 32)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.act(self.c_fc(self.ln(self.wte(tokens)))))


def _train(model: nn.Module, steps: int, *, zero_grad: bool = True) -> Monitor:
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = Monitor(model, opt, every=1)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        tokens = torch.randint(0, 50, (8, 12), generator=g)
        loss = F.cross_entropy(model(tokens).reshape(-1, 50), tokens.roll(-1, dims=1).reshape(-1))
        if zero_grad:
            opt.zero_grad()
        loss.backward()
        opt.step()
        monitor.step(loss)
    return monitor


def test_library_projections_are_weighted_and_embeddings_are_their_own_kind() -> None:
    monitor = _train(TinyLM(), 2)
    h = monitor.history
    kinds = {layer["name"]: layer["kind"] for layer in h.layers}
    assert kinds == {"wte": "embedding", "ln": "norm", "c_fc": "weighted", "act": "activation",
                     "c_proj": "weighted"}
    # Conv1D stores its weight (in, out): the fan-in is shape[0]
    fan_in = {p["name"]: p["fan_in"] for p in h.sections["monitor"]["parameters"]}
    assert fan_in["c_fc.weight"] == 16 and fan_in["c_proj.weight"] == 32
    # the zero_grad check follows the last weighted layer's bias, features last: fresh gradients carry nothing
    assert max(h.series_of("gradient_carry").values) < 1e-4
    monitor.close()
    left_over = _train(TinyLM(), 3, zero_grad=False).history.series_of("gradient_carry").values
    assert min(left_over[1:]) > 0.3


def test_transformers_conv1d_is_weighted() -> None:
    pytorch_utils = pytest.importorskip("transformers.pytorch_utils")
    monitor = _train(TinyLM(pytorch_utils.Conv1D), 1)
    h = monitor.history
    assert [layer["kind"] for layer in h.layers if layer["type"] == "Conv1D"] == ["weighted", "weighted"]
    assert {p["name"]: p["fan_in"] for p in h.sections["monitor"]["parameters"]}["c_proj.weight"] == 32
    monitor.close()
