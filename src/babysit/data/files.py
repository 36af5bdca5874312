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


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive (an .npz is one), or an empty one
_NPY_MAGIC = b"\x93NUMPY"


def _check_zip(p: Path) -> None:
    """An ``.npz`` is a zip archive of ``.npy`` arrays; say what the file is instead when it is not one
    (NumPy would call random bytes "pickled data")."""
    try:
        with p.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise DataError(f"cannot read {p}: {exc.strerror or exc}.") from None
    if head.startswith(_ZIP_MAGIC):
        return
    if head.startswith(_NPY_MAGIC):
        what = "a single .npy array (numpy.save), not an .npz archive of named arrays"
    elif not head:
        what = "empty"
    else:
        what = "not an .npz archive (an .npz is a zip file of .npy arrays; this one does not start like a zip file)"
    raise DataError(f"{p} is {what}. Write one with numpy.savez({p.name!r}, X_train=..., y_train=..., X_val=..., "
                    "y_val=...).")


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
    _check_zip(p)
    try:
        with np.load(p, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(f"{p} holds an object (pickled) array; babysit reads numeric arrays only and never "
                            "unpickles a data file. Save plain numeric arrays with numpy.savez.") from None
        raise DataError(f"cannot read {p} as an .npz archive of numeric arrays: {exc}") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{p} is a damaged .npz archive ({exc}); write it again with numpy.savez.") from None
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


def _read_table(p: Path, label: str | None, delimiter: str) -> tuple[np.ndarray, np.ndarray, str, np.ndarray]:
    """Read a CSV with a header row into features (N, F), labels (N,), the label column's name and each row's
    line number."""
    try:
        with p.open(newline="", encoding="utf-8") as f:
            rows = [(i, r) for i, r in enumerate(csv.reader(f, delimiter=delimiter), start=1) if r]
    except UnicodeDecodeError as exc:
        raise DataError(f"{p} is not a text CSV file (byte {exc.start} is not UTF-8 text); export the table as "
                        "UTF-8 CSV with a header row.") from None
    except csv.Error as exc:
        raise DataError(f"{p} is not a readable CSV file: {exc}.") from None
    if not rows:
        raise DataError(f"{p} is empty; a CSV needs a header row and one row per example.")
    header = [h.strip() for h in rows[0][1]]
    if label is None:
        if "label" not in header:
            raise DataError(
                f"{p.name} has no column named 'label'; its columns are: {', '.join(header)}. The label column "
                "holds each row's class index: rename yours to 'label', or name it with label='<column>' in Python "
                'or data.label = "<column>" in a config.'
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
    X, y, lines = [], [], []
    for lineno, row in rows[1:]:
        lines.append(lineno)
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
    if not X:
        raise DataError(f"{p.name} has a header row but no examples; add one row per example.")
    features = np.asarray(X, dtype=np.float64).reshape(len(X), len(header) - 1)
    return features, np.asarray(y), label, np.asarray(lines)


def _check_csv_labels(p: Path, y: np.ndarray, lines: np.ndarray, label: str, num_classes: int | None) -> None:
    """Labels against the classes, naming the lines at fault: a stray label is a typo until proven otherwise."""
    if len(y) == 0:
        return
    top = int(y.max())
    if num_classes is not None:
        if top >= num_classes:
            at = ", ".join(str(n) for n in lines[y >= num_classes][:5])
            raise DataError(
                f"{p.name}: label column {label!r} holds {top} (line {at}), outside 0..{num_classes - 1} "
                f"(num_classes = {num_classes}); fix those rows or raise data.num_classes."
            )
        return
    counts = np.bincount(y.astype(np.int64), minlength=top + 1)
    absent = [c for c in range(top + 1) if counts[c] == 0]
    if absent and len(absent) < top + 1:
        at = ", ".join(str(n) for n in lines[y == top][:5])
        shown = ", ".join(map(str, absent[:8])) + (", ..." if len(absent) > 8 else "")
        rows = int(counts[top])
        raise DataError(
            f"{p.name}: label {top} is on line {at} only ({rows} row{'s' if rows != 1 else ''}) and labels {shown} "
            f"never occur, so the number of classes would be inferred as {top + 1}. Fix the label on line {at}, or "
            f"set data.num_classes = {top + 1} if those classes really have no examples."
        )


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

    The format: the column named ``label`` (or the one ``label=`` names; ``data.label`` in a config) holds each
    row's class index 0..C-1; every other column is a feature, in file order. No index column, no class names
    (encode them as integers first); blank lines are skipped; a file without a ``label`` column is an error that
    lists its columns. For example::

        x1,x2,label
        0.5,1.2,0
        -0.3,0.8,2

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
    X, y_raw, label, lines = _read_table(p, label, delimiter)
    y = as_labels(y_raw, f"label column {label!r}")
    _check_csv_labels(p, y.numpy(), lines, label, num_classes)
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
