"""babysit: the CS231n learning process as software.

The public surface is exactly ``__all__`` (tests/test_public_api.py keeps it so). Stages live in
sub-packages named after the lecture's sections: ``data``, ``models``, ``optim``, ``schedules``,
``train`` (``fit``); see ARCHITECTURE.md.
"""

from __future__ import annotations

__version__ = "0.1.0"

from babysit import data as data
from babysit import diagnose as diagnose
from babysit import gradcheck as gradcheck
from babysit import losses as losses
from babysit import models as models
from babysit import optim as optim
from babysit import sanity as sanity
from babysit import schedules as schedules
from babysit import space as space
from babysit import train as train
from babysit.errors import BabysitError as BabysitError
from babysit.findings import Finding as Finding
from babysit.history import History as History
from babysit.hpsearch import search as search
from babysit.monitors import Monitor as Monitor
from babysit.reporting import report as report
from babysit.train import fit as fit

__all__ = [
    "BabysitError",
    "Finding",
    "History",
    "Monitor",
    "__version__",
    "data",
    "diagnose",
    "fit",
    "gradcheck",
    "losses",
    "models",
    "optim",
    "report",
    "sanity",
    "schedules",
    "search",
    "space",
    "train",
]
