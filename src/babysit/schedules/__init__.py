"""Annealing the learning rate (L-A1..A3): the lecture's schedules by name, on ``torch.optim.lr_scheduler``.

``build`` makes a torch scheduler, ``lr_at`` gives the same schedule's closed-form rate at ``t`` epochs.
"""

from __future__ import annotations

from babysit.schedules._build import build, build_from_spec
from babysit.schedules._formulas import lr_at
from babysit.schedules._settings import NAMES

__all__ = ["NAMES", "build", "build_from_spec", "lr_at"]
