"""Kink detection (L-G4): record which branch every non-differentiable op took.

A centered difference ``(f(x+h) - f(x-h)) / 2h`` is only a derivative when ``x-h`` and ``x+h`` lie on
the same smooth piece.  The lecture's example: ``relu(x)`` at ``x = -1e-6`` with ``h = 1e-5`` gives a
numerical gradient near 0.55 although the analytic one, 0, is right.  So every evaluation runs under a
:class:`BranchRecorder`, a ``TorchFunctionMode`` that writes down the branch choices of the ops with
kinks (the sign pattern under relu/abs/leaky_relu, the clamp bounds, argmax of max/maxpool, the masks
made by comparisons such as ``x > 0``, integer indices computed from floats).  If the record at
``x+h`` or ``x-h`` differs from the one at ``x`` a kink was crossed.  Ties sit on a kink too: at an
exact tie ``sign(a - b)`` is 0 and becomes +-1 on both sides.

Black-box functions (NumPy layers) are not recorded; :func:`kink_at_point` detects a kink there from
one-sided differences that disagree and do not shrink with ``h``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["BranchRecorder", "Signature", "kink_at_point", "same_branches"]

Signature = tuple[torch.Tensor, ...]

_ZERO_KINK = {
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "prelu",
    "rrelu",
    "abs",
    "absolute",
    "sign",
    "sgn",
    "heaviside",
    "l1_loss",
}  # kink where the (first - second) argument crosses 0
_BOUNDS = {
    "clamp": (None, None),
    "clip": (None, None),
    "clamp_min": (None, None),
    "clamp_max": (None, None),
    "hardtanh": (-1.0, 1.0),
    "relu6": (0.0, 6.0),
    "hardsigmoid": (-3.0, 3.0),
    "hardswish": (-3.0, 3.0),
}
_ARG_REDUCE = {"max": torch.argmax, "min": torch.argmin, "amax": torch.argmax, "amin": torch.argmin}
_PAIRWISE = {"maximum", "minimum", "fmax", "fmin"}
_POOLS = {
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
}
_STEPS = {"floor", "ceil", "round", "trunc", "fix"}


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__name__", "").strip("_")


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors(o)]
    return []


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, *names: str) -> Any:
    if len(args) > i:
        return args[i]
    for n in names:
        if n in kwargs:
            return kwargs[n]
    return None


class BranchRecorder(TorchFunctionMode):
    """Record the branch choices of one evaluation; ``signature()`` returns them as a tuple."""

    def __init__(self) -> None:
        super().__init__()
        self._record: list[torch.Tensor] = []

    def signature(self) -> Signature:
        """The branch choices recorded so far."""
        return tuple(self._record)

    def _keep(self, t: torch.Tensor) -> None:
        self._record.append(t.detach().clone())

    def _before(self, name: str, func: Callable[..., Any], args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        # Recorded from the inputs, before an in-place op (relu_, clamp_) overwrites them.
        x = _arg(args, kw, 0, "input", "self")
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            return
        if name in _ZERO_KINK:
            other = _arg(args, kw, 1, "target") if name == "l1_loss" else None
            self._keep(torch.sign(x - other) if isinstance(other, torch.Tensor) else torch.sign(x))
        elif name == "threshold":
            self._keep(torch.sign(x - float(_arg(args, kw, 1, "threshold"))))
        elif name in _BOUNDS:
            lo, hi = _BOUNDS[name]
            if name in ("clamp", "clip", "clamp_min"):
                lo = _arg(args, kw, 1, "min", "min_val")
            if name in ("clamp", "clip", "clamp_max"):
                hi = _arg(args, kw, 2 if name != "clamp_max" else 1, "max", "max_val")
            if name == "hardtanh":
                given_lo, given_hi = _arg(args, kw, 1, "min_val"), _arg(args, kw, 2, "max_val")
                lo = lo if given_lo is None else given_lo
                hi = hi if given_hi is None else given_hi
            for bound in (lo, hi):
                if bound is not None:
                    self._keep(torch.sign(x - bound))
        elif name in _PAIRWISE or (name in ("max", "min") and isinstance(_arg(args, kw, 1, "other"), torch.Tensor)):
            self._keep(torch.sign(x - _arg(args, kw, 1, "other")))
        elif name in _ARG_REDUCE:
            dim = _arg(args, kw, 1, "dim")
            if isinstance(dim, int):
                self._keep(_ARG_REDUCE[name](x, dim=dim))
            elif dim is None:
                self._keep(_ARG_REDUCE[name](x))
        elif name in _POOLS and not kw.get("return_indices", False):
            # the indices of the winners are the branch choice of a max-pool
            with contextlib.suppress(TypeError, RuntimeError):
                self._keep(func(*args, **{**kw, "return_indices": True})[1])

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kw = kwargs or {}
        name = _name(func)
        if name:
            self._before(name, func, args, kw)
        out = func(*args, **kw)
        if name in _STEPS:
            self._keep(torch.as_tensor(out))
        has_float_input = any(t.is_floating_point() for t in _tensors(args) + _tensors(list(kw.values())))
        for t in _tensors(out):
            # Masks (x > 0) and indices computed from floats (argmax, sort, .long()) are branch choices.
            if t.dtype == torch.bool or (has_float_input and not t.is_floating_point() and not t.is_complex()):
                self._keep(t)
        return out


def same_branches(a: Signature | None, b: Signature | None) -> bool:
    """Whether two evaluations took the same branches (None: not recorded, assumed the same)."""
    if a is None or b is None:
        return True
    if len(a) != len(b):
        return False
    return all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b, strict=True))


def kink_at_point(f0: float, plus: list[float], minus: list[float], hs: list[float], floor: float) -> bool:
    """Detect a kink *at* x from one-sided differences, for functions that are not recorded.

    On a smooth function ``D+ - D- = (f(x+h) - 2 f(x) + f(x-h)) / h`` shrinks like ``h f''``; across a
    kink at x it stays at the jump of the slope.  A kink is reported when the gap is resolved (above
    ``10 * floor / h``, with ``floor`` the round-off of one value of f) at the two largest steps and
    shrinks by less than ~3x when ``h`` drops 10x.
    """
    gaps = [abs((p - 2.0 * f0 + m) / h) for p, m, h in zip(plus, minus, hs, strict=True)]
    if len(gaps) < 2:
        return False
    (g1, h1), (g2, h2) = sorted(zip(gaps, hs, strict=True), key=lambda gh: -gh[1])[:2]
    return g1 > 10.0 * floor / h1 and g2 > 10.0 * floor / h2 and g2 > g1 * (h2 / h1) * 3.0
