"""Gradient checks (lecture items L-G1..L-G10).

    check(f, x, grad=None)                       NumPy arrays or tensors, one scalar function
    check_function(fn, *inputs)                  any callable on tensors (custom autograd.Functions)
    check_function(fn, *inputs, reference=slow)  a float32/bf16/fp16 kernel against float64 autograd
    check_module(model, loss_fn, inputs, targets) every parameter of a model, data and reg loss apart
    check_module(..., only=model.blocks[3])      one layer, where it sits in the model

Each returns a :class:`GradReport`; ``report.meta["method"]`` says how it was checked.
"""

from __future__ import annotations

from ._array import check as check
from ._check import Check as Check
from ._errors import GradcheckError as GradcheckError
from ._function import check_function as check_function
from ._module import check_module as check_module
from ._relative_error import relative_error as relative_error
from ._report import GradReport as GradReport
from ._report import GradRow as GradRow

__all__ = [
    "Check",
    "GradReport",
    "GradRow",
    "GradcheckError",
    "check",
    "check_function",
    "check_module",
    "relative_error",
]
