"""``babysit.data.load``: one entry point that reads a source string the way a config writes it."""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from babysit._names import did_you_mean, unknown_name
from babysit.data._bundle import DataBundle
from babysit.data.builtin import load_digits, load_spiral
from babysit.data.factory import load_factory
from babysit.data.files import load_csv, load_npz
from babysit.data.pysource import load_pysource
from babysit.data.shapes import load_shapes32
from babysit.data.tabular import load_breast_cancer, load_wine
from babysit.errors import DataError

__all__ = ["BUILTIN_SOURCES", "load"]

BUILTIN_SOURCES: dict[str, Callable[..., DataBundle]] = {
    "digits": load_digits, "spiral": load_spiral,  # the lecture's
    "wine": load_wine, "breast_cancer": load_breast_cancer,  # real tables, read as CSV
    "shapes32": load_shapes32,  # generated 32x32 colour images of six shapes
    "pysource": load_pysource,  # the standard library's source, next character at every position
}
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
    # the built-ins in registry order (the lecture's first), not sorted: the list reads as a menu
    raise DataError(f"unknown data source {text!r}; choose one of: {', '.join(BUILTIN_SOURCES)}."
                    f"{did_you_mean(text, BUILTIN_SOURCES)} Or pass {_FORMS}.")


def load(source: str | os.PathLike[str], **options: Any) -> DataBundle:
    """Load a data set by name, file or factory, split, check and normalize it.

    Args:
        source: ``"digits"`` (scikit-learn's real 8x8 digits), ``"spiral"`` (the lecture's case
            study), ``"wine"`` / ``"breast_cancer"`` (scikit-learn's tables, through the CSV reader),
            ``"shapes32"`` (generated 32x32 images), ``"pysource"`` (next-character windows of the standard
            library's source; a sequence bundle), a path ending in ``.npz`` or ``.csv``, or
            ``"package.module:function"``.
        **options: common to all sources: ``normalize`` (``"standardize"`` default, ``"center"``,
            ``"none"``; fitted on the training split only), ``seed`` (0), ``val_fraction`` (0.2) and
            ``test_fraction`` (0.2), used where a split must be made. Per source: spiral takes
            ``points_per_class, classes, noise``; shapes32 ``per_class, noise``; pysource ``block_size,
            max_chars``; csv takes ``label, delimiter``; npz, csv and
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
