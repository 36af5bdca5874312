"""Each bad input gets a DataError that names the problem and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import babysit.data as bd
from babysit.errors import BabysitError, DataError


def _xy(n: int = 20, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    return np.random.default_rng(0).normal(size=(n, 3)), np.arange(n) % k


def test_error_mismatched_lengths_names_split_and_both_lengths() -> None:
    X, y = _xy()
    with pytest.raises(DataError, match=r"train split has 20 examples in X_train but 19 labels in y_train"):
        bd.from_arrays(X, y[:19])
    with pytest.raises(DataError, match=r"val split has 5 examples in X_val but 4 labels"):
        bd.from_arrays(X, y, X[:5], y[:4])


def test_error_negative_label_names_it() -> None:
    X, y = _xy()
    y[3] = -1
    with pytest.raises(
        DataError, match=r"y_train contains the negative label -1 at index 3.*0\.\.num_classes-1"
    ):
        bd.from_arrays(X, y)


def test_error_label_beyond_num_classes_names_value_and_range() -> None:
    X, y = _xy()
    y[4] = 7
    with pytest.raises(
        DataError, match=r"y_train contains label 7, outside the valid range 0\.\.2 \(num_classes=3"
    ):
        bd.from_arrays(X, y, num_classes=3)


def test_error_val_label_beyond_inferred_num_classes() -> None:
    X, y = _xy(k=2)
    # the classes are inferred from training labels (0..1); a 5 in validation must be caught, not warned
    with pytest.raises(DataError, match=r"y_val contains label 5, outside the valid range 0\.\.1.*inferred"):
        bd.from_arrays(X, y, X[:3], np.array([0, 5, 1]))


def test_error_non_integer_label_names_it() -> None:
    X, y = _xy()
    y = y.astype(float)
    y[2] = 1.5
    with pytest.raises(DataError, match=r"y_train contains the non-integer label 1\.5 at index 2"):
        bd.from_arrays(X, y)


def test_error_non_finite_features_count_and_first_index() -> None:
    X, y = _xy()
    X[6, 1] = np.nan
    X[9, 0] = np.inf
    X[9, 2] = -np.inf
    with pytest.raises(DataError, match=r"X_train has 3 non-finite value\(s\).*first at index \(6, 1\)"):
        bd.from_arrays(torch.from_numpy(X), torch.from_numpy(y))


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_error_empty_split_names_it(split: str) -> None:
    X, y = _xy()
    arrays = {"X_train": X, "y_train": y, "X_val": X[:4], "y_val": y[:4], "X_test": X[:4], "y_test": y[:4]}
    arrays[f"X_{split}"], arrays[f"y_{split}"] = X[:0], y[:0]
    with pytest.raises(DataError, match=rf"the {split} split is empty"):
        bd.from_arrays(**arrays)


def test_error_split_rounding_to_empty_is_named() -> None:
    X, y = _xy(n=3, k=3)
    # one example per class: a 20% validation share rounds to nothing
    with pytest.raises(DataError, match=r"the val split is empty.*raise it"):
        bd.from_arrays(X, y)


def test_error_missing_npz_keys_lists_found_and_needed(tmp_path: Path) -> None:
    X, y = _xy()
    np.savez(tmp_path / "half.npz", X_train=X, y_train=y)
    with pytest.raises(DataError) as info:
        bd.load(tmp_path / "half.npz")
    msg = str(info.value)
    assert "missing X_val, y_val" in msg and "it has X_train, y_train" in msg
    assert "X_test, y_test optional" in msg and "val_fraction" in msg


def test_error_missing_csv_label_column_lists_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b,target\n1,2,0\n")
    with pytest.raises(DataError, match=r"no column named 'label'; its columns are: a, b, target.*label="):
        bd.load(path)
    with pytest.raises(DataError, match=r"no label column 'targt'; its columns are: a, b, target.*'target'"):
        bd.load(path, label="targt")


def test_error_unknown_source_lists_builtins_and_path_forms() -> None:
    with pytest.raises(DataError) as info:
        bd.load("mnist")
    msg = str(info.value)
    assert "'mnist'" in msg and "digits, spiral" in msg
    assert ".npz" in msg and ".csv" in msg and "package.module:function" in msg


def test_error_file_not_found_names_path(tmp_path: Path) -> None:
    for name in ("nope.npz", "nope.csv"):
        with pytest.raises(DataError, match=rf"data file not found: '.*{re.escape(name)}'"):
            bd.load(str(tmp_path / name))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bd.load("digits", lr=0.1), r"unknown option.*'lr'; choose one of: normalize, num_classes, seed"),
        (lambda: bd.load("spiral", normalize="whiten"), r"unknown normalization 'whiten'.*standardize"),
        (lambda: bd.load("spiral", val_fraction=1.5), r"val_fraction must be a number in \[0, 1\)"),
        (lambda: bd.load("spiral", val_fraction=0.5, test_fraction=0.5), r"leave nothing for training"),
        (
            lambda: bd.from_arrays(np.zeros((4, 2)), [0, 1, 0, 1], np.zeros((2, 2))),
            r"X_val was given without",
        ),
        (lambda: bd.from_arrays(np.zeros(4), [0, 1, 0, 1]), r"one row per example.*\(N, 1\)"),
        (lambda: bd.from_arrays(np.zeros((4, 2)), ["a", "b", "a", "b"]), r"y_train must be numeric"),
        (lambda: bd.from_arrays(np.zeros((4, 2)), np.eye(4)), r"1-D array of class indices.*argmax"),
        (
            lambda: bd.from_arrays(np.zeros((5, 2)), np.arange(5) % 2, np.zeros((2, 3)), [0, 1]),
            r"X_val.*\(3,\).*\(2,\)",
        ),
        (lambda: bd.tiny_subset((np.zeros((5, 2)), np.arange(5)), n=6), r"1 <= n <= 5"),
    ],
)
def test_error_other_bad_inputs(call: object, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        call()  # type: ignore[operator]
    # catchable as the package's base error and as a ValueError
    assert isinstance(info.value, BabysitError) and isinstance(info.value, ValueError)
