"""Data sets stored as files: ``.npz`` archives with named splits, and CSV tables."""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path

import numpy as np

from babysit._names import did_you_mean
from babysit.data._bundle import DataBundle
from babysit.data._validate import as_labels
from babysit.data.arrays import from_mapping, from_pool
from babysit.errors import DataError

__all__ = ["load_csv", "load_npz"]


def _existing_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"data file not found: {str(path)!r} (looked for {p.resolve()}); check the path.")
    if not p.is_file():
        raise DataError(f"{str(path)!r} is not a file; pass the path of a .npz or .csv file.")
    return p


def load_npz(
    path: str | os.PathLike[str],
    *,
    normalize: str = "standardize",
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    num_classes: int | None = None,
) -> DataBundle:
    """Load an ``.npz`` with ``X_train, y_train, X_val, y_val`` (and optionally ``X_test, y_test``).

    The file carries its own splits, so ``val_fraction`` and ``test_fraction`` are accepted (one
    config can switch sources) but unused. Write one with ``np.savez(path, X_train=..., ...)``.
    """
    del val_fraction, test_fraction  # the file's own splits win
    p = _existing_file(path)
    try:
        with np.load(p, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {p} as an .npz archive of numeric arrays: {exc}") from exc
    return from_mapping(
        arrays,
        str(p),
        num_classes=num_classes,
        normalize=normalize,
        seed=seed,
        name=p.stem,
        description=f"arrays from {p.name}",
    )


def _parse(cell: str, column: str, lineno: int, what: str) -> float:
    try:
        return float(cell)
    except ValueError:
        raise DataError(f"column {column!r} is not numeric: line {lineno} has {cell!r}; {what}") from None


def _read_table(p: Path, label: str | None, delimiter: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Read a CSV with a header row into features (N, F), labels (N,) and the label column's name."""
    with p.open(newline="") as f:
        rows = [(i, r) for i, r in enumerate(csv.reader(f, delimiter=delimiter), start=1) if r]
    if not rows:
        raise DataError(f"{p} is empty; a CSV needs a header row and one row per example.")
    header = [h.strip() for h in rows[0][1]]
    if label is None:
        if "label" not in header:
            raise DataError(
                f"{p.name} has no column named 'label'; its columns are: {', '.join(header)}. "
                f"Pass label='<column>' to say which column holds the class."
            )
        label = "label"
    elif label not in header:
        raise DataError(
            f"{p.name} has no label column {label!r}; its columns are: {', '.join(header)}."
            f"{did_you_mean(label, header)}"
        )
    if len(header) < 2:
        raise DataError(f"{p.name} has only the label column {label!r}; it needs feature columns too.")
    li = header.index(label)
    X, y = [], []
    for lineno, row in rows[1:]:
        if len(row) != len(header):
            raise DataError(f"{p.name} line {lineno} has {len(row)} fields but the header has {len(header)}.")
        y.append(
            _parse(
                row[li],
                label,
                lineno,
                "labels must be class indices 0..num_classes-1; encode class names as integers first.",
            )
        )
        X.append(
            [
                _parse(
                    c,
                    header[j],
                    lineno,
                    f"every column except the label {label!r} must be a number; "
                    "drop or encode that column first.",
                )
                for j, c in enumerate(row)
                if j != li
            ]
        )
    return np.asarray(X, dtype=np.float64).reshape(len(X), len(header) - 1), np.asarray(y), label


def load_csv(
    path: str | os.PathLike[str],
    *,
    label: str | None = None,
    delimiter: str = ",",
    normalize: str = "standardize",
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    num_classes: int | None = None,
) -> DataBundle:
    """Load a CSV table: one header row, one example per row, every column numeric.

    Args:
        path: the file.
        label: the column holding class indices; defaults to a column named ``label``. Every other
            column is a feature.
        delimiter: field separator.
        normalize, seed, val_fraction, test_fraction, num_classes: as in :func:`babysit.data.load`;
            the rows are split, stratified by class, into train/val/test.

    Raises:
        DataError: file not found, no such label column (listing the columns), a non-numeric cell
            (naming the column and line), or any check of :func:`babysit.data.from_arrays`.
    """
    p = _existing_file(path)
    X, y_raw, label = _read_table(p, label, delimiter)
    y = as_labels(y_raw, f"label column {label!r}")
    return from_pool(
        X,
        y,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        normalize=normalize,
        num_classes=num_classes,
        name=p.stem,
        description=f"{len(y)} rows of {p.name}, label column {label!r}",
    )
