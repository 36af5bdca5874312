"""Training with babysitting: the loop, what callbacks see of it, its run folders and checkpoints."""

from __future__ import annotations

from babysit.train.checkpoint import load_weights
from babysit.train.loop import fit
from babysit.train.options import FitOptions
from babysit.train.run import Run
from babysit.train.run_folder import KeepFinalState, RunFolder

__all__ = ["FitOptions", "KeepFinalState", "Run", "RunFolder", "fit", "load_weights"]
