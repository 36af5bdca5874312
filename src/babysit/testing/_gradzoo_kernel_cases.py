"""The transformer kernels of the zoo as function cases: small float64 inputs for each, bugs and correct ones.

Inputs are chosen so each bug shows the way it does in a model: sequences with repeated tokens (the
embedding overwrite only touches those), a layer norm of rows with variance ~16 (its eps slip then
errs by about 1e-6, ten times the tolerance of 1e-7), gates with ties for top-1 routing (a kink).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from babysit.testing._gradzoo_kernels import KERNEL_BUGS, kernel

__all__ = ["KERNEL_CASES"]

Inputs = Callable[[], tuple[torch.Tensor, ...]]


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _router_ties() -> tuple[torch.Tensor, ...]:
    gates = _randn(4, 3, seed=21)
    gates[0, 2] = gates[0, 0] = gates[0].max() + 0.5  # row 0: two experts tie for the top
    gates[3, 1] = gates[3, 2] = gates[3].max() + 0.25
    return gates, _randn(4, 3, 5, seed=22)


_INPUTS: dict[str, Inputs] = {
    "linear": lambda: (_randn(2, 5, 4, seed=11), _randn(3, 4, seed=12), _randn(3, seed=13)),
    "layernorm": lambda: (4.0 * _randn(2, 3, 6, seed=14), 1.0 + 0.1 * _randn(6, seed=15), 0.1 * _randn(6, seed=16)),
    "attention": lambda: tuple(_randn(1, 2, 5, 4, seed=s) for s in (17, 18, 19)),
    "embedding": lambda: (torch.tensor([[0, 3, 1, 3, 4, 0], [2, 2, 1, 4, 0, 3]]), _randn(5, 3, seed=20)),
    "gelu": lambda: (_randn(3, 4, seed=23),),
    "conv": lambda: (_randn(2, 6, 3, seed=24), _randn(3, 3, seed=25)),
    "router": _router_ties,
}

_CORRECT_NAMES = {
    "linear": ("linear", "transformer: linear layer"),
    "layernorm": ("layer_norm", "transformer: layer norm"),
    "attention": ("causal_attention", "transformer: causal attention"),
    "embedding": ("embedding_repeats", "transformer: embedding, repeated tokens"),
    "gelu": ("gelu", "transformer: GELU"),
    "conv": ("causal_conv", "transformer: causal depthwise convolution"),
    "router": ("top1_router_ties", "kink: top-1 routing ties"),
}

_BUG_CATEGORIES = {
    "one_entry": "linear: one entry of dW",
    "bias_mean": "linear: only > 1 row",
    "skip_last_token": "linear: one position per sequence",
    "missing_mean": "normalisation: missing term",
    "ignores_eps": "normalisation: error near the tolerance",
    "dq_unscaled": "attention: missing scale",
    "last_query": "attention: one position of dq",
    "softmax_no_rowsum": "attention: missing term",
    "overwrite": "indexing: repeated tokens only",
    "tanh_backward": "activation: approximation",
    "edge": "convolution: first time step",
    "flipped": "convolution: taps reversed",
}

# name -> (Function, inputs, buggy, category); named after the correct case ("layer_norm_missing_mean": the
# classic zoo has its own layernorm_missing_mean)
KERNEL_CASES: dict[str, tuple[type[torch.autograd.Function], Inputs, bool, str]] = {}
for _kind, _make in _INPUTS.items():
    _name, _category = _CORRECT_NAMES[_kind]
    KERNEL_CASES[_name] = (kernel(_kind), _make, False, _category)
    for _bug in KERNEL_BUGS[_kind]:
        _prefix = _name if _kind == "layernorm" else _kind
        KERNEL_CASES[f"{_prefix}_{_bug}"] = (kernel(_kind, _bug), _make, True, _BUG_CATEGORIES[_bug])
