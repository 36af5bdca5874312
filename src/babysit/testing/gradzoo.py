"""A zoo of custom autograd.Functions for testing gradient checkers: planted bugs and correct traps.

``cases()`` returns every :class:`ZooCase`; ``case.fn(*case.inputs())`` runs it on fresh float64
inputs (the floating ones require grad).  19 functions carry a realistic bug (factor, sign,
transposed matmul, missing term, wrong only for negative inputs, one column/channel, only for
batch > 1, wrong reduction, 1% error, errors on ~1e-7 gradients, wrong max-pool routing, a reused
input whose gradients are not summed); 15 are correct, 13 of them on kinks (relu at exact zeros,
max-pool ties, hinge at margin 0, abs, clamp) or with dropout.  Transformer kernels follow
(``_gradzoo_kernels``): linear, layer norm, causal attention, embedding, GELU, causal convolution
and top-1 routing, each correct and with 1-3 bugs, among them bugs on a small fraction of the
coordinates (one entry, one position, repeated tokens only) and errors near the tolerance (an eps
left out: ~1e-6, ten times the 1e-7 a smooth function must meet).  A checker should flag exactly the
buggy ones.  ``gradzoo_transformer`` plants the same kernels into a whole model.

Example:
    >>> from babysit.testing import gradzoo
    >>> sum(c.buggy for c in gradzoo.cases()) >= 15
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from babysit.testing._gradzoo_bugs import BUGS
from babysit.testing._gradzoo_correct import CORRECT
from babysit.testing._gradzoo_kernel_cases import KERNEL_CASES

__all__ = ["ZooCase", "cases"]


@dataclass(frozen=True)
class ZooCase:
    """One zoo entry: the function, how to make its inputs, and whether it is buggy."""

    name: str
    fn: Callable[..., torch.Tensor]
    inputs: Callable[[], tuple[torch.Tensor, ...]]
    buggy: bool
    category: str
    doc: str


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _with(x: torch.Tensor, values: dict[tuple[int, ...], float]) -> torch.Tensor:
    for idx, v in values.items():
        x[idx] = v
    return x


def _away_from_zero(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * (x.abs() + 0.1)


def _tied_windows(seed: int) -> torch.Tensor:
    x = _randn(2, 8, seed=seed)
    x[:, 1:4:2] = x[:, 0:4:2]  # the first two windows of each row tie
    return x


def _svm_scores() -> torch.Tensor:
    s = torch.round(_randn(4, 3, seed=5) * 4) / 4  # quarters: margins compute exactly
    y = torch.arange(4) % 3
    s[0, 1] = s[0, y[0]] - 1.0  # margin exactly 0
    s[2, 0] = s[2, y[2]] - 1.0
    return s


def _maxout_inputs() -> tuple[torch.Tensor, ...]:
    w1 = _randn(4, 5, seed=7)
    w2 = _randn(4, 5, seed=8)
    w2[:, 0] = w1[:, 0]  # unit 0's two pieces tie for every input
    return _randn(3, 4, seed=6), w1, w2


_INPUTS: dict[str, Callable[[], tuple[torch.Tensor, ...]]] = {
    "matmul_transposed": lambda: (_randn(4, 4, seed=1), _randn(4, 4, seed=2)),
    "softmax_missing_term": lambda: (_randn(3, 5),),
    "layernorm_missing_mean": lambda: (_randn(3, 6),),
    "relu_leaks": lambda: (_away_from_zero(_randn(3, 4)),),
    "linear_one_column": lambda: (_randn(3, 4, seed=1), _randn(4, 5, seed=2)),
    "channel_scale_one_channel": lambda: (_randn(2, 3, 4, 4, seed=1), _randn(3, seed=2)),
    "linear_first_example": lambda: (_randn(3, 4, seed=1), _randn(4, 5, seed=2)),
    "bias_mean": lambda: (_randn(3, 4, seed=1), _randn(4, seed=2)),
    "mean_reduction": lambda: (_randn(4, 3),),
    "l2_double_counted": lambda: (_randn(4, 5) * 0.5,),
    "maxpool_routing": lambda: (_randn(2, 8, seed=3),),
    "relu_exact_zeros": lambda: (_with(_randn(3, 4), {(0, 0): 0.0, (1, 2): 0.0, (2, 3): 0.0}),),
    "relu_ge_convention": lambda: (_with(_randn(3, 4), {(0, 1): 0.0, (2, 2): 0.0}),),
    "relu_near_kink": lambda: (_with(_randn(3, 4), {(0, 0): -1e-6, (1, 1): 3e-6, (2, 2): -4e-6, (2, 0): 2e-6}),),
    "leaky_relu_near_kink": lambda: (_with(_randn(3, 4), {(0, 0): 1e-7, (1, 1): -1e-7, (2, 3): -5e-7}),),
    "abs_at_zero": lambda: (_with(_randn(3, 4), {(0, 3): 0.0, (1, 0): 0.0, (2, 1): 0.0}),),
    "clamp_at_bounds": lambda: (_with(_randn(3, 4) * 2, {(0, 0): 1.0, (1, 1): -1.0, (2, 2): 1.0}),),
    "maxpool_ties": lambda: (_tied_windows(4),),
    "max_rows_ties": lambda: (_with(_randn(3, 5), {(0, 1): 3.0, (0, 3): 3.0, (2, 0): 2.5, (2, 4): 2.5}),),
    "svm_margin_zero": lambda: (_svm_scores(),),
    "maxout_ties": _maxout_inputs,
    "dropout_linear_relu": lambda: (_randn(3, 4, seed=1), _randn(4, 5, seed=2)),
    "nondeterministic_sum": lambda: (_randn(3, 6),),
    "softmax": lambda: (_randn(3, 5),),
}


def _fresh(make: Callable[[], tuple[torch.Tensor, ...]]) -> Callable[[], tuple[torch.Tensor, ...]]:
    return lambda: tuple(t.detach().clone().requires_grad_(t.is_floating_point()) for t in make())


def cases() -> list[ZooCase]:
    """Every zoo case: the classic bugs, the classic correct traps, then the transformer kernels."""
    out = []
    for table, buggy in ((BUGS, True), (CORRECT, False)):
        for name, (fn, category) in table.items():
            make = _INPUTS.get(name, lambda: (_randn(3, 4),))
            out.append(ZooCase(name, fn.apply, _fresh(make), buggy, category, (fn.__doc__ or "").strip()))
    for name, (fn, make, buggy, category) in KERNEL_CASES.items():
        out.append(ZooCase(name, fn.apply, _fresh(make), buggy, category, (fn.__doc__ or "").strip()))
    return out
