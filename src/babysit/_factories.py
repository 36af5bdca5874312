"""Importing the module of a ``"package.module:function"`` reference (a model or data factory).

A console script does not put the current folder on ``sys.path`` the way ``python -m`` does, so
``babysit train my.toml`` with ``kind = "mymodels:build"`` failed unless run as ``PYTHONPATH=. babysit ...``.
The folders a user means are searched as well: the current folder and the folder of the config that names the
factory. They are appended to ``sys.path`` (never put first: an installed package is never shadowed), and stay
there, so the factory's own lazy imports and a search's spawned worker processes find the same modules.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["extend_import_path", "import_factory_module"]


def extend_import_path(*folders: str | Path) -> list[str]:
    """Append the current folder and ``folders`` to ``sys.path`` where missing; return what was added."""
    added = []
    for folder in (Path.cwd(), *folders):
        entry = str(Path(folder).resolve())
        if entry not in sys.path and not (entry == str(Path.cwd().resolve()) and "" in sys.path):
            sys.path.append(entry)
            added.append(entry)
    return added


def import_factory_module(module_name: str) -> ModuleType:
    """Import ``module_name``, searching the current folder too when it is not found on ``sys.path``.

    Raises:
        ImportError: as ``importlib.import_module`` does (the caller names the factory and the fix).
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        own = exc.name is not None and f"{module_name}.".startswith(f"{exc.name}.")
        if not own or not extend_import_path():
            raise  # a module it imports is missing (its own error), or nothing new to search
    importlib.invalidate_caches()
    return importlib.import_module(module_name)
