"""Real tables that ship with scikit-learn, as CSV files: ``wine`` (178 wines, 13 measurements, 3 cultivars) and
``breast_cancer`` (569 tumours, 30 measurements, benign or malignant). No download.

The CSV format babysit reads: one header row; one row per example; every column a number; the column named
``label`` holds the class index 0..C-1 (another name with ``data.label``); every other column is a feature.
:func:`write_csv` writes a table that way (features first, ``label`` last), and the built-in sources ``wine``
and ``breast_cancer`` load through that same file and the same CSV reader, so what a user's own CSV meets is
what the demo meets. From the shell: ``python -m babysit.data wine wine.csv``.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from babysit._names import unknown_name
from babysit.data._bundle import DataBundle
from babysit.data.files import load_csv
from babysit.errors import DataError

__all__ = ["TABLES", "load_breast_cancer", "load_wine", "write_csv"]

TABLES = {
    "wine": "UCI wine recognition: 178 wines, 13 chemical measurements, 3 cultivars",
    "breast_cancer": "UCI breast cancer Wisconsin (diagnostic): 569 tumours, 30 cell-nucleus measurements, "
    "0 = malignant, 1 = benign",
}


def write_csv(table: str, path: str | os.PathLike[str]) -> Path:
    """Write scikit-learn's ``table`` as a CSV with a header row, the features, and a ``label`` column last.

    Example:
        >>> import tempfile, pathlib
        >>> p = write_csv("wine", pathlib.Path(tempfile.mkdtemp()) / "wine.csv")
        >>> p.read_text().splitlines()[0].split(",")[-2:]
        ['proline', 'label']
    """
    if table not in TABLES:
        raise DataError(unknown_name("table", table, TABLES))
    from sklearn import datasets  # deferred: scikit-learn is slow to import

    raw = getattr(datasets, f"load_{table}")()
    names = [re.sub(r"\W+", "_", str(n).strip()).strip("_").lower() for n in raw.feature_names]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*names, "label"])
        for row, label in zip(raw.data, raw.target):
            writer.writerow([*(repr(float(v)) for v in row), int(label)])
    return out


def _load_table(table: str, **options: Any) -> DataBundle:
    with tempfile.TemporaryDirectory(prefix="babysit-") as folder:
        bundle = load_csv(write_csv(table, Path(folder) / f"{table}.csv"), **options)
    object.__setattr__(bundle, "description", f"{TABLES[table]} (scikit-learn; read as CSV, label column 'label')")
    return bundle


def load_wine(*, label: str = "label", normalize: str = "standardize", seed: int = 0,
              val_fraction: float = 0.2, test_fraction: float = 0.2, num_classes: int | None = None) -> DataBundle:
    """scikit-learn's wine table through the CSV reader: (N, 13) features, 3 classes, stratified splits."""
    return _load_table("wine", label=label, normalize=normalize, seed=seed, val_fraction=val_fraction,
                       test_fraction=test_fraction, num_classes=num_classes)


def load_breast_cancer(*, label: str = "label", normalize: str = "standardize", seed: int = 0,
                       val_fraction: float = 0.2, test_fraction: float = 0.2,
                       num_classes: int | None = None) -> DataBundle:
    """scikit-learn's breast-cancer table through the CSV reader: (N, 30) features, 2 classes."""
    return _load_table("breast_cancer", label=label, normalize=normalize, seed=seed, val_fraction=val_fraction,
                       test_fraction=test_fraction, num_classes=num_classes)

