"""Group testing: one random direction over many tensors at once, split only a group that disagrees.

A direction over every parameter of a model tests the whole chain the model's backward computes,
the code *between* modules included (a ``detach``, a custom Function or a hook in a parent's
forward), in two evaluations.  A bug anywhere moves ``grad . d`` by ``bug . d``, at the same absolute
size as in a direction over the buggy tensor alone; the round-off of ``f`` is the same too.  What
grows with the group is the truncation error of the centered difference (the step ``h d`` is longer),
which a smaller first step keeps down.

Inside one module the same holds, and a group that agrees as closely as each member would have to on
its own (``group_agrees``) spares the directions of each member: one pair of evaluations instead of
one per tensor.  A group that does not is split, and each tensor checked on its own.
"""

from __future__ import annotations

import torch

from ._check import Check
from ._numeric import Evaluator, GroupSlot
from ._plan import _direction
from ._probe import probe
from ._relative_error import IDEAL, relative_error, verdict

__all__ = ["check_group", "group_agrees"]


def group_agrees(ev: Evaluator, slot: GroupSlot, d: torch.Tensor, h: float, where: str) -> tuple[bool, Check]:
    """Whether a direction over the group agrees as closely as a direction over each member would have to.

    A member alone passes when ``|a - n|`` is within the resolution or below ``1e-7`` of its own
    ``|grad . d|``; the group's ``grad . d`` is larger, so its relative error would hide what a member's
    shows.  The group therefore agrees only when ``|a - n|`` is within the resolution or below ``1e-7``
    of the *smallest* member's ``|grad . d|``, at a step that crosses no kink.  Anything else splits
    the group (a false split costs time, never a verdict).
    """
    offs = slot.offsets()
    a = float(slot.analytic @ d)
    parts = [abs(float(slot.analytic[s:e] @ d[s:e])) for s, e in zip(offs[:-1], offs[1:], strict=True)]
    allowance = IDEAL * min((p for p in parts if p > 0.0), default=0.0)
    last = None
    for step in (h, h / 10):
        at = ev.attempt(slot, 0, slot.analytic.numel(), d, step)
        last = at
        if not at.crossed and abs(a - at.numerical) <= max(at.resolution, allowance):
            break
    assert last is not None
    rel = relative_error(a, last.numerical)
    ok = not last.crossed and abs(a - last.numerical) <= max(last.resolution, allowance)
    note = "" if last.h == h else f"fallback h={last.h:.0e}"
    check = Check(
        slot.name, where, a, last.numerical, rel, last.h, verdict(rel, within_noise=ok), last.resolution,
        last.crossed, False, note,
    )  # fmt: skip
    return ok, check


def check_group(
    ev: Evaluator, slot: GroupSlot, *, directions: int, h: float, gen: torch.Generator, label: str
) -> list[Check]:
    """Directional checks of the whole group, judged in the lecture's bands like any direction."""
    return [
        probe(ev, slot, 0, slot.analytic.numel(), d, float(slot.analytic @ d), h=h, where=f" along {label} {j + 1}")
        for j, d in ((j, _direction(slot.analytic, gen)) for j in range(directions))
    ]
