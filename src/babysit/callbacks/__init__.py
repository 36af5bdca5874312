"""Callbacks: behaviour attached to ``fit``'s loop at named moments (start, step, validation, epoch, end).

``Callback`` is the base class and ``StopTraining`` ends a run cleanly; the callbacks here are the general
ones (early stopping, EMA, the progress bar, the end-of-run diagnosis). Others live with what they serve:
the monitor's in :mod:`babysit.monitors`, the run folder in :mod:`babysit.train`, the live report and
TensorBoard in :mod:`babysit.reporting`, momentum annealing in :mod:`babysit.optim`.
"""

from __future__ import annotations

from babysit.callbacks._base import HOOKS, Callback, StopTraining
from babysit.callbacks.diagnosis import Diagnose
from babysit.callbacks.early_stopping import EarlyStopping
from babysit.callbacks.ema import EMA
from babysit.callbacks.progress import ProgressBar

__all__ = ["EMA", "HOOKS", "Callback", "Diagnose", "EarlyStopping", "ProgressBar", "StopTraining"]
