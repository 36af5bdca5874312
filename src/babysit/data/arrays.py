"""Build a :class:`DataBundle` from arrays: the one path every data source goes through."""

from __future__ import annotations

import logging
from typing import Any

import torch

from babysit.data._bundle import DataBundle
from babysit.data._validate import (
    as_features,
    as_labels,
    check_label_range,
    check_pair,
    check_same_shape,
)
from babysit.data.preprocess import apply_normalization, fit_normalization
from babysit.data.split import check_fractions, stratified_split
from babysit.errors import DataError

__all__ = ["check_classes", "from_arrays", "from_pool"]

log = logging.getLogger("babysit")


def _ranges(labels: list[int]) -> str:
    """``[3, 4, 5, 6, 9]`` -> ``"3-6, 9"``."""
    parts: list[str] = []
    start = prev = None
    for label in [*labels, None]:
        if start is not None and (label is None or label != prev + 1):
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if label is not None and start is None:
            start = label
        prev = label
    return ", ".join(parts)


def check_classes(
    labels: dict[str, torch.Tensor], num_classes: int, *, inferred: bool, where: str = "the data"
) -> None:
    """The classes a classifier will be given must be there: at least two in the training split; with
    ``num_classes`` inferred (max label + 1), no class missing from every split (one stray label 7 in a 3-class
    table would silently make an 8-class model); a class without training examples is a warning.

    Raises:
        DataError: one class only, or inferred classes that never occur (naming them and the fix).
    """
    train = labels["train"]
    present_train = sorted(int(c) for c in torch.unique(train))
    if num_classes < 2 or len(present_train) < 2:
        only = present_train[0] if present_train else None
        raise DataError(
            f"{where} has a single class (every training label is {only}); a classifier needs at least two. "
            "Check the label column (or the split), or use data with two or more classes."
        )
    counts = sum(torch.bincount(y, minlength=num_classes) for y in labels.values())
    absent = [c for c in range(num_classes) if int(counts[c]) == 0]
    if inferred and absent:
        top, many, n = num_classes - 1, len(absent) > 1, int(counts[num_classes - 1])
        raise DataError(
            f"{where}: label{'s' if many else ''} {_ranges(absent)} never occur{'' if many else 's'}, but label "
            f"{top} does ({n} example{'s' if n != 1 else ''}); with the "
            f"number of classes inferred as max label + 1 = {num_classes}, the model would get {num_classes} outputs. "
            f"Fix the stray label {top}, or set num_classes={num_classes} (config: data.num_classes = {num_classes}) "
            "if those classes really have no examples."
        )
    train_counts = torch.bincount(train, minlength=num_classes)
    missing = [c for c in range(num_classes) if int(train_counts[c]) == 0]
    if missing:
        log.warning(
            "%s: class%s %s %s no training example; the model can never learn to predict %s. Add examples, or "
            "check num_classes (%d).", where, "es" if len(missing) > 1 else "", _ranges(missing),
            "have" if len(missing) > 1 else "has", "them" if len(missing) > 1 else "it", num_classes,
        )


def _both_or_neither(X: Any, y: Any, split: str) -> None:
    if (X is None) != (y is None):
        given, missing = ("X", "y") if y is None else ("y", "X")
        raise DataError(f"{given}_{split} was given without {missing}_{split}; pass both or neither.")


def from_arrays(
    X_train: Any,
    y_train: Any,
    X_val: Any = None,
    y_val: Any = None,
    X_test: Any = None,
    y_test: Any = None,
    *,
    num_classes: int | None = None,
    normalize: str = "standardize",
    val_fraction: float = 0.2,
    seed: int = 0,
    name: str = "arrays",
    description: str = "",
) -> DataBundle:
    """Validate, split and normalize arrays (NumPy or torch) into a :class:`DataBundle`.

    Args:
        X_train, y_train: training features (N, ...) and integer labels (N,).
        X_val, y_val: validation split; when omitted, a stratified ``val_fraction`` of the training
            data is held out (seeded by ``seed``).
        X_test, y_test: optional test split; never used for fitting anything.
        num_classes: number of classes; inferred as max training label + 1 when None.
        normalize: ``"standardize"`` (default), ``"center"`` or ``"none"``; statistics come from the
            training split only.
        val_fraction: share held out for validation when ``X_val`` is None.
        seed: seed of that split.
        name, description: for reports.

    Raises:
        DataError: see :mod:`babysit.data._validate`; every message names the split and the fix.

    Example:
        >>> import numpy as np
        >>> b = from_arrays(np.random.rand(50, 3), np.arange(50) % 2)
        >>> b.summary()["train"], b.summary()["val"], b.num_classes
        (40, 10, 2)
    """
    _both_or_neither(X_val, y_val, "val")
    _both_or_neither(X_test, y_test, "test")
    Xtr, ytr = as_features(X_train, "X_train"), as_labels(y_train, "y_train")
    check_pair(Xtr, ytr, "train")
    if X_val is None:
        check_fractions(val_fraction=val_fraction)
        if val_fraction == 0:
            raise DataError(
                "no validation data: pass X_val and y_val, or a val_fraction > 0 to split it off."
            )
        tr, va = stratified_split(ytr.numpy(), (val_fraction,), seed)
        Xtr, ytr, Xva, yva = Xtr[tr], ytr[tr], Xtr[va], ytr[va]
    else:
        Xva, yva = as_features(X_val, "X_val"), as_labels(y_val, "y_val")
    splits = {"train": (Xtr, ytr), "val": (Xva, yva)}
    if X_test is not None:
        splits["test"] = (as_features(X_test, "X_test"), as_labels(y_test, "y_test"))
    for split, (X, y) in splits.items():
        check_pair(X, y, split)
    check_same_shape({split: X for split, (X, _) in splits.items()})
    inferred = num_classes is None
    k = int(ytr.max()) + 1 if num_classes is None else num_classes
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise DataError(f"num_classes must be a positive int, got num_classes={num_classes!r}.")
    for split, (_, y) in splits.items():
        check_label_range(y, split, k, inferred=inferred)
    check_classes({split: y for split, (_, y) in splits.items()}, k, inferred=inferred, where=f"the data {name!r}")
    stats = fit_normalization(Xtr, normalize)
    out: dict[str, torch.Tensor] = {}
    for split, (X, y) in splits.items():
        out[f"X_{split}"], out[f"y_{split}"] = apply_normalization(X, stats), y
    return DataBundle(**out, num_classes=k, name=name, normalization=stats, description=description)


def from_pool(
    X: Any,
    y: Any,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    normalize: str,
    num_classes: int | None = None,
    name: str,
    description: str = "",
) -> DataBundle:
    """Split one labelled pool into stratified train/val(/test) splits, then call :func:`from_arrays`.

    Used by the built-in data sets and CSV files, which arrive as a single table. ``test_fraction=0``
    gives a bundle without a test split.
    """
    check_fractions(val_fraction=val_fraction, test_fraction=test_fraction)
    if val_fraction == 0:
        raise DataError("val_fraction must be > 0 here: this source has no separate validation data.")
    Xs, ys = as_features(X, f"X ({name})"), as_labels(y, f"y ({name})")
    if len(ys) == 0:
        raise DataError(f"{name} has no examples; it needs at least one row per class and split.")
    if len(Xs) != len(ys):
        raise DataError(f"{name} has {len(Xs)} feature rows but {len(ys)} labels; give one label per row.")
    tr, va, te = stratified_split(ys.numpy(), (val_fraction, test_fraction), seed)
    test = (Xs[te], ys[te]) if test_fraction > 0 else (None, None)
    if test_fraction > 0 and len(te) == 0:
        raise DataError(
            f"the test split is empty: {len(ys)} examples are too few for test_fraction={test_fraction}; "
            f"raise test_fraction or set it to 0 for no test split."
        )
    return from_arrays(
        Xs[tr],
        ys[tr],
        Xs[va],
        ys[va],
        *test,
        num_classes=num_classes,
        normalize=normalize,
        seed=seed,
        name=name,
        description=description,
    )


REQUIRED_KEYS = ("X_train", "y_train", "X_val", "y_val")
OPTIONAL_KEYS = ("X_test", "y_test")


def from_mapping(arrays: Any, source: str, **options: Any) -> DataBundle:
    """Build a bundle from a mapping with the ``.npz`` keys (an ``.npz`` file or a factory's dict).

    Raises:
        DataError: a required key is missing, listing the keys found and the keys needed.
    """
    found = sorted(arrays.keys())
    missing = [k for k in REQUIRED_KEYS if k not in found]
    if missing:
        raise DataError(
            f"{source} is missing {', '.join(missing)}; it has {', '.join(found) or 'no arrays'}. "
            f"It needs {', '.join(REQUIRED_KEYS)} ({', '.join(OPTIONAL_KEYS)} optional). To hold out "
            f"validation data from training arrays, call babysit.data.from_arrays(X_train, y_train, "
            f"val_fraction=0.2) instead."
        )
    given = {k: arrays[k] for k in (*REQUIRED_KEYS, *OPTIONAL_KEYS) if k in found}
    return from_arrays(**given, **options)
