"""What to check in each tensor, and how a failure is localised (L-G10, issue items 6, 8, 9).

For every checked tensor (every parameter, biases too; every floating input):

1. *Directional checks*: two evaluations test the whole tensor along a random signed Gaussian
   direction ``d``: ``grad . d`` against ``(f(x + h d) - f(x - h d)) / 2h``.  A bug anywhere in the
   tensor moves ``grad . d`` by ``bug . d``, so one bad coordinate among n shows up at a relative size
   of about ``1/sqrt(n)`` (1e-3 for a million), far above float64 round-off.  A fixed non-negative
   projection (torch's fast mode) lets errors of opposite sign cancel; signed weights do not.
2. *Localisation*: when a direction disagrees beyond the resolution, bisect: restrict ``d`` to each
   half of the tensor, keep the half whose discrepancy is larger, and stop at <= 4 coordinates, which
   are checked one by one.  About ``4 log2(n)`` evaluations find one wrong entry among a million.
3. *Sampled coordinates*: a few random coordinates of every tensor (all of them for tiny tensors),
   the lecture's check, reported with their index.
"""

from __future__ import annotations

import time

import torch

from ._check import Check, format_index
from ._numeric import Evaluator, Slot
from ._probe import probe, quick_gap
from ._relative_error import IDEAL

__all__ = ["check_slots", "default_samples"]

_LEAF = 4  # bisection stops at this many coordinates and checks each


def default_samples(numel: int) -> int:
    """Coordinates checked per tensor when ``samples`` is None: all of a tiny tensor, else 5."""
    return numel if numel <= 10 else 5


def _gaussian(n: int, gen: torch.Generator) -> torch.Tensor:
    # drawn in float32 (twice as fast for the 1e7-1e8 entries of a large model), used in float64: a
    # direction only has to be random and signed, and it is exactly representable either way
    return torch.randn(n, generator=gen, dtype=torch.float32).to(torch.float64)


def _direction(analytic: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random signed direction along which the analytic derivative is not accidentally ~0."""
    norm = float(analytic.norm())
    cpu = analytic.cpu()
    d = _gaussian(analytic.numel(), gen)
    for _ in range(5):  # |g . d| ~ |g| for a standard Gaussian d; a near-orthogonal draw is retried
        if norm == 0.0 or abs(float(cpu @ d)) >= 0.1 * norm:
            break
        d = _gaussian(analytic.numel(), gen)
    return d.to(analytic.device)


def _coordinates(n: int, k: int, gen: torch.Generator) -> list[int]:
    """``k`` distinct random coordinates of ``n``, sorted (without a permutation of all ``n``)."""
    if k >= n:
        return list(range(n))
    chosen: set[int] = set()
    while len(chosen) < k:
        chosen.update(torch.randint(0, n, (k - len(chosen),), generator=gen).tolist())
    return sorted(chosen)


def _discrepant(c: Check) -> bool:
    return c.rel_error > IDEAL and abs(c.analytic - c.numerical) > c.resolution


def _localise(ev: Evaluator, slot: Slot, d: torch.Tensor, h: float) -> list[Check]:
    """Bisect a failing direction down to a few coordinates and check those one by one."""
    a, shape = slot.analytic, tuple(slot.tensor.shape)
    lo, hi = 0, a.numel()
    while hi - lo > _LEAF:
        mid = (lo + hi) // 2
        halves = ((lo, mid), (mid, hi))
        gaps = [quick_gap(ev, slot, s, e, d[s:e], float(a[s:e] @ d[s:e]), h) for s, e in halves]
        if max(gaps) <= 0.0:
            return []  # the discrepancy vanished when split (it was spread thin): nothing to pin
        lo, hi = halves[0] if gaps[0] >= gaps[1] else halves[1]
    one = torch.ones(1, dtype=torch.float64, device=a.device)
    return [probe(ev, slot, i, i + 1, one, float(a[i]), h=h, where=format_index(i, shape)) for i in range(lo, hi)]


def check_slot(
    ev: Evaluator, slot: Slot, *, samples: int | None, directions: int, h: float, gen: torch.Generator
) -> list[Check]:
    """Run the directional, localising and coordinate checks of one tensor."""
    a, shape, n = slot.analytic, tuple(slot.tensor.shape), slot.tensor.numel()
    k = default_samples(n) if samples is None else max(0, min(int(samples), n))
    checks: list[Check] = []
    if k < n:
        for j in range(directions):
            d = _direction(a, gen)
            c = probe(ev, slot, 0, n, d, float(a @ d), h=h, where=f" along direction {j + 1}")
            checks.append(c)
            if _discrepant(c):
                seen = {x.where for x in checks}
                checks.extend(x for x in _localise(ev, slot, d, h) if x.where not in seen)
    coords = _coordinates(n, k, gen)
    one = torch.ones(1, dtype=torch.float64, device=a.device)
    seen = {x.where for x in checks}
    for i in coords:
        if format_index(i, shape) not in seen:
            checks.append(probe(ev, slot, i, i + 1, one, float(a[i]), h=h, where=format_index(i, shape)))
    return checks


def check_slots(
    ev: Evaluator,
    slots: list[Slot],
    *,
    samples: int | None,
    h: float,
    seed: int,
    directions: int = 2,
    seconds: list[float] | None = None,
) -> list[list[Check]]:
    """Check every slot; returns one list of checks per slot, in order (``seconds`` gets each slot's time)."""
    gen = torch.Generator().manual_seed(seed + 7919)  # its own stream: the model's RNG stays seeded
    out = []
    for s in slots:
        start = time.perf_counter()
        out.append(check_slot(ev, s, samples=samples, directions=directions, h=h, gen=gen))
        if seconds is not None:
            seconds.append(time.perf_counter() - start)
    return out
