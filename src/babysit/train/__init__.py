"""Training with babysitting: the loop, its checkpoints and run folders."""

from __future__ import annotations

from babysit.train.checkpoint import load_weights
from babysit.train.loop import fit

__all__ = ["fit", "load_weights"]
