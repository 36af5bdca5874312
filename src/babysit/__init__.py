"""babysit: the CS231n learning process as software.

The public surface is exactly ``__all__`` (tests/test_public_api.py keeps it so). Stages live in
sub-packages named after the lecture's sections: ``data``, ``models``, ``optim``, ``schedules``,
``train`` (``fit``), ``callbacks`` (``Callback``: how anything attaches to ``fit``); see ARCHITECTURE.md.

Importing the package is light: Optuna (with SQLAlchemy) loads on the first use of ``search``, matplotlib
when ``report`` draws. ``search`` is therefore looked up by the module's ``__getattr__`` on first use and is
then the function ``babysit.hpsearch.search`` itself (its signature and docstring are what ``help`` shows).
"""

from __future__ import annotations

import typing as _typing

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it from here

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
from babysit.callbacks import Callback as Callback
from babysit.callbacks import StopTraining as StopTraining
from babysit.errors import BabysitError as BabysitError
from babysit.findings import Finding as Finding
from babysit.history import History as History
from babysit.monitors import Monitor as Monitor
from babysit.reporting import report as report
from babysit.train import fit as fit
from babysit.train.lr_find import lr_find as lr_find

if _typing.TYPE_CHECKING:  # what type checkers and IDEs see; at run time `search` loads on first use (__getattr__)
    from babysit.hpsearch import search as search
    from babysit.repair import doctor as doctor

__all__ = [
    "BabysitError",
    "Callback",
    "Finding",
    "History",
    "Monitor",
    "StopTraining",
    "__version__",
    "data",
    "diagnose",
    "doctor",
    "fit",
    "gradcheck",
    "losses",
    "lr_find",
    "models",
    "optim",
    "report",
    "sanity",
    "schedules",
    "search",
    "space",
    "train",
]


def __getattr__(name: str) -> object:
    if name == "search":  # babysit.hpsearch._search imports Optuna: load it when a search is wanted
        from babysit._extras import needs

        with needs("search", "babysit.search"):
            from babysit.hpsearch import search

        globals()["search"] = search  # later look-ups skip this function
        return search
    if name == "doctor":  # the doctor's package is babysit.repair (babysit.doctor is this function)
        from babysit._extras import needs

        with needs("config", "babysit.doctor"):  # TOML configs: pydantic, tomli_w
            from babysit.repair import doctor

        globals()["doctor"] = doctor
        return doctor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
