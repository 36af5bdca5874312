"""``babysit.data.load``: one entry point that reads a source string the way a config writes it."""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from babysit._names import unknown_name
from babysit.data._bundle import DataBundle
from babysit.data.builtin import load_digits, load_spiral
from babysit.data.factory import load_factory
from babysit.data.files import load_csv, load_npz
from babysit.errors import DataError

__all__ = ["BUILTIN_SOURCES", "load"]

BUILTIN_SOURCES: dict[str, Callable[..., DataBundle]] = {"digits": load_digits, "spiral": load_spiral}
_FILE_LOADERS: dict[str, Callable[..., DataBundle]] = {".npz": load_npz, ".csv": load_csv}
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_FORMS = "a path ending in .npz or .csv, or a factory 'package.module:function'"


def _pick(source: str | os.PathLike[str]) -> tuple[Callable[..., DataBundle], tuple[Any, ...]]:
    """Return the loader for ``source`` and the positional arguments it takes."""
    text = os.fspath(source)
    if not isinstance(source, os.PathLike) and text in BUILTIN_SOURCES:
        return BUILTIN_SOURCES[text], ()
    suffix = Path(text).suffix.lower()
    if suffix in _FILE_LOADERS:
        return _FILE_LOADERS[suffix], (text,)
    if not isinstance(source, os.PathLike) and _FACTORY.match(text):
        return load_factory, (text,)
    raise DataError(f"{unknown_name('data source', text, BUILTIN_SOURCES)} Or pass {_FORMS}.")


def load(source: str | os.PathLike[str], **options: Any) -> DataBundle:
    """Load a data set by name, file or factory, split, check and normalize it.

    Args:
        source: ``"digits"`` (scikit-learn's real 8x8 digits), ``"spiral"`` (the lecture's case
            study), a path ending in ``.npz`` or ``.csv``, or ``"package.module:function"``.
        **options: common to all sources: ``normalize`` (``"standardize"`` default, ``"center"``,
            ``"none"``; fitted on the training split only), ``seed`` (0), ``val_fraction`` (0.2) and
            ``test_fraction`` (0.2), used where a split must be made. Per source: spiral takes
            ``points_per_class, classes, noise``; csv takes ``label, delimiter``; npz, csv and
            factories take ``num_classes``.

    Returns:
        A validated :class:`DataBundle` on the CPU.

    Raises:
        DataError: unknown source (listing the built-ins and path forms), unknown option (listing the
            source's options), missing file, or invalid data.

    Example:
        >>> load("spiral", normalize="none").summary()["num_classes"]
        3
    """
    loader, args = _pick(source)
    allowed = [
        p.name
        for p in inspect.signature(loader).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for key in options:
        if key not in allowed:
            raise DataError(unknown_name(f"option for data source {os.fspath(source)!r}:", key, allowed))
    return loader(*args, **options)
