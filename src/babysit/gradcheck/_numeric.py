"""Centered differences in float64 on copied tensors (L-G1, L-G5, L-G9).

The numerical derivative of ``f`` at ``x`` along a direction ``d`` (a one-hot for a coordinate)::

    n = (f(x + h d) - f(x - h d)) / 2h            error O(h^2), two evaluations

``f`` is ``w . v(x)``: a vector ``v`` of outputs projected on fixed weights ``w`` (``[1.0]`` for a
loss).  Differences are taken on ``v`` *before* projecting so that large constant parts cancel
exactly.  Every evaluation re-seeds the RNG first, so dropout draws the same mask at ``x+h``, ``x-h``
and in the analytic pass (checked, not switched off), and runs under a kink recorder.

Resolution: each value of ``f`` carries a round-off of about ``eps * depth * |f|`` (``eps`` of the
dtype ``f`` was really computed in, ``depth`` the number of layers), plus whatever two evaluations at
the same point disagree by (non-deterministic ops).  ``10x`` that, divided by ``h``, is the smallest
discrepancy a centered difference can resolve.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from ._errors import GradcheckError
from ._kinks import BranchRecorder, Signature, same_branches

__all__ = ["Attempt", "Evaluator", "GroupSlot", "Slot"]


@dataclass
class Slot:
    """One checked tensor: a float64 copy perturbed in place, and its analytic gradient (flat)."""

    name: str
    tensor: torch.Tensor
    analytic: torch.Tensor
    index: int = 0  # position in the evaluator's grad_fn() list

    def segments(self, lo: int, hi: int) -> list[tuple[torch.Tensor, int]]:
        """The flat views that ``[lo, hi)`` covers, each with its offset into a direction over ``[lo, hi)``."""
        return [(self.tensor.detach().view(-1)[lo:hi], 0)]


@dataclass
class GroupSlot(Slot):
    """Several tensors checked as one concatenated vector (group testing: one direction over all of them).

    ``tensor`` is an empty placeholder; perturbations go to ``members``, ``analytic`` is their
    gradients concatenated.
    """

    members: list[tuple[str, torch.Tensor]] = field(default_factory=list)

    def offsets(self) -> list[int]:
        """Where each member starts in the concatenated vector (and the total size last)."""
        out = [0]
        for _, t in self.members:
            out.append(out[-1] + t.numel())
        return out

    def segments(self, lo: int, hi: int) -> list[tuple[torch.Tensor, int]]:
        out = []
        offs = self.offsets()
        for (_, t), start, end in zip(self.members, offs[:-1], offs[1:], strict=True):
            a, b = max(lo, start), min(hi, end)
            if a < b:
                out.append((t.detach().view(-1)[a - start : b - start], a - lo))
        return out


@dataclass(frozen=True)
class Attempt:
    """One centered difference at step ``h``: the estimate, its resolution and whether a kink was crossed."""

    h: float
    numerical: float
    resolution: float
    crossed: bool
    f_plus: float
    f_minus: float
    sig_plus: Signature | None
    sig_minus: Signature | None


class Evaluator:
    """Evaluate ``w . v`` with one slice of one slot perturbed; seeded, recorded, restored exactly."""

    def __init__(
        self,
        value_fn: Callable[[], torch.Tensor],
        weights: torch.Tensor,
        *,
        reseed: Callable[[], None],
        record: bool = True,
        depth: int = 1,
        grad_fn: Callable[[], list[torch.Tensor]] | None = None,
    ) -> None:
        self._value_fn, self._reseed, self._record = value_fn, reseed, record
        self.weights = weights.to(torch.float64).reshape(-1)
        self.depth, self.grad_fn, self.evaluations = max(1, depth), grad_fn, 0
        v1, self.eps, self.base_sig = self.evaluate()
        v2, _, _ = self.evaluate()
        if not torch.isfinite(v1).all():
            raise GradcheckError(
                "the function is not finite at the check point (nan or inf); check it at a point where it is defined"
            )
        self.base_v = v1
        self.f0 = float(self.weights @ v1)
        # Two evaluations at the same point, same seed: any difference is non-determinism (atomic adds).
        self.jitter = float((self.weights.abs() * (v1 - v2).abs()).sum())

    def evaluate(self) -> tuple[torch.Tensor, float, Signature | None]:
        """Run ``v`` once at the current point: (values as float64, eps of their dtype, branches)."""
        self._reseed()
        self.evaluations += 1
        with torch.no_grad():
            if self._record:
                with BranchRecorder() as rec:
                    v = self._value_fn()
                sig: Signature | None = rec.signature()
            else:
                v, sig = self._value_fn(), None
        v = v.detach().reshape(-1)
        if v.numel() != self.weights.numel():
            raise GradcheckError(
                f"the function returned {v.numel()} values here but {self.weights.numel()} "
                "at the check point; its output shape must not depend on the input values"
            )
        eps = torch.finfo(v.dtype).eps if v.is_floating_point() else torch.finfo(torch.float64).eps
        return v.to(torch.float64), eps, sig

    def roundoff(self, v: torch.Tensor) -> float:
        """Absolute round-off of one projected value ``w . v`` (eps x depth x |terms|, plus jitter)."""
        return self.eps * self.depth * float((self.weights.abs() * v.abs()).sum()) + self.jitter

    @contextmanager
    def perturbed(self, slot: Slot, lo: int, hi: int, dvec: torch.Tensor, step: float) -> Iterator[None]:
        """Add ``step * dvec`` to ``slot.tensor.flat[lo:hi]``; restore the saved values bit-exactly."""
        parts = slot.segments(lo, hi)
        saved = [view.clone() for view, _ in parts]
        with torch.no_grad():
            for view, off in parts:
                view.add_(dvec[off : off + view.numel()], alpha=step)
        try:
            yield
        finally:
            with torch.no_grad():
                for (view, _), old in zip(parts, saved, strict=True):
                    view.copy_(old)

    def at(
        self, slot: Slot, lo: int, hi: int, dvec: torch.Tensor, step: float
    ) -> tuple[torch.Tensor, Signature | None]:
        """Values and branches at ``x + step * d``."""
        with self.perturbed(slot, lo, hi, dvec, step):
            v, _, sig = self.evaluate()
        return v, sig

    def attempt(self, slot: Slot, lo: int, hi: int, dvec: torch.Tensor, h: float) -> Attempt:
        """One centered difference ``(f(x+hd) - f(x-hd)) / 2h`` with its resolution and kink flag."""
        vp, sp = self.at(slot, lo, hi, dvec, h)
        vm, sm = self.at(slot, lo, hi, dvec, -h)
        numerical = float(self.weights @ (vp - vm)) / (2.0 * h)
        resolution = 10.0 * (self.roundoff(vp) + self.roundoff(vm)) / (2.0 * h)
        crossed = not (same_branches(sp, self.base_sig) and same_branches(sm, self.base_sig))
        return Attempt(h, numerical, resolution, crossed, float(self.weights @ vp), float(self.weights @ vm), sp, sm)

    @contextmanager
    def shifted(self, slot: Slot, lo: int, hi: int, dvec: torch.Tensor, step: float) -> Iterator[None]:
        """Move the check point to ``x + step * d`` (the "shifted point" re-check of a kink)."""
        saved = (self.base_v, self.f0, self.base_sig)
        with self.perturbed(slot, lo, hi, dvec, step):
            self.base_v, _, self.base_sig = self.evaluate()
            self.f0 = float(self.weights @ self.base_v)
            try:
                yield
            finally:
                self.base_v, self.f0, self.base_sig = saved
