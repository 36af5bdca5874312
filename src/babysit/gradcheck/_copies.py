"""Copies the check works on: the caller's model and tensors stay bit-identical."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ._errors import GradcheckError

__all__ = ["as_float64", "batch_size", "copy_as_float64", "take_examples"]


def as_float64(x: Any) -> Any:
    """Detached copies of the tensors in ``x``; floating ones in float64 (L-G5: evaluate in double)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().clone()
        return x.to(torch.float64).contiguous() if x.is_floating_point() else x
    if isinstance(x, (tuple, list)):
        return type(x)(as_float64(i) for i in x)
    return x


def take_examples(x: Any, n: int | None) -> Any:
    """The first ``n`` examples of every tensor in ``x`` (L-G10: a check needs only 2-3 examples)."""
    if n is None:
        return x
    if isinstance(x, torch.Tensor):
        return x[:n].contiguous() if x.dim() > 0 else x
    if isinstance(x, (tuple, list)):
        return type(x)(take_examples(i, n) for i in x)
    return x


def copy_as_float64(obj: Any, what: str) -> Any:
    """A deep copy of ``obj``; a module is moved to float64 with its ``.grad``s cleared."""
    try:
        dup = copy.deepcopy(obj)
    except Exception as e:
        raise GradcheckError(
            f"cannot copy the {what} to check it in float64 ({e}); the check never "
            "modifies the original, so it needs a deep copy."
        ) from e
    if isinstance(dup, nn.Module):
        dup.to(torch.float64)
        for p in dup.parameters():
            p.grad = None
            if not p.is_contiguous():
                p.data = p.data.contiguous()
    return dup


def batch_size(x: Any) -> int:
    """The leading size of the first batched tensor in ``x`` (1 when there is none)."""
    for t in x if isinstance(x, (tuple, list)) else [x]:
        if isinstance(t, torch.Tensor) and t.dim() > 0:
            return int(t.shape[0])
    return 1
