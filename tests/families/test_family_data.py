"""The families' data sources: real tables through the CSV reader, generated shapes, the stdlib's source."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from babysit import data
from babysit.data.pysource import VOCAB, decode, encode, stdlib_text
from babysit.data.shapes import SHAPES, make_shapes32
from babysit.data.tabular import write_csv
from babysit.errors import DataError


@pytest.mark.parametrize(("table", "features", "classes", "rows"), [("wine", 13, 3, 178),
                                                                    ("breast_cancer", 30, 2, 569)])
def test_table_csv_has_a_label_column_and_loads_like_the_builtin(tmp_path: Path, table, features, classes,
                                                                rows) -> None:
    path = write_csv(table, tmp_path / f"{table}.csv")
    with path.open(newline="") as f:
        header, *body = list(csv.reader(f))
    # the documented format: a header row, the features, then the class index in a column named "label"
    assert header[-1] == "label" and len(header) == features + 1 and len(body) == rows
    assert sorted({int(r[-1]) for r in body}) == list(range(classes))
    from_file, builtin = data.load(path), data.load(table)
    # the built-in source goes through the same reader, so the same rows land in the same splits
    assert from_file.input_shape == builtin.input_shape == (features,) and builtin.num_classes == classes
    assert torch.equal(from_file.X_train, builtin.X_train) and torch.equal(from_file.y_val, builtin.y_val)
    assert builtin.summary()["train"] + builtin.summary()["val"] + builtin.summary()["test"] == rows


def test_table_csv_with_a_stray_label_is_refused(tmp_path: Path) -> None:
    path = write_csv("wine", tmp_path / "wine.csv")
    lines = path.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ",7"  # a typo: class 7 in a 3-class table
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 6"):
        data.load(path)


def test_shapes32_is_seeded_balanced_and_the_shape_is_the_signal() -> None:
    X, y = make_shapes32(per_class=30, seed=3)
    X2, _ = make_shapes32(per_class=30, seed=3)
    assert X.shape == (180, 3, 32, 32) and np.array_equal(X, X2)
    assert np.bincount(y).tolist() == [30] * len(SHAPES)
    # colour carries no class information: the mean colour per class is about the same for every shape
    means = np.stack([X[y == c].mean(axis=(0, 2, 3)) for c in range(len(SHAPES))])  # (6, 3)
    assert np.ptp(means, axis=0).max() < 0.15
    bundle = data.load("shapes32", per_class=10)
    assert bundle.input_shape == (3, 32, 32) and bundle.num_classes == 6


def test_pysource_targets_are_the_inputs_shifted_by_one() -> None:
    b = data.load("pysource", max_chars=30_000)
    assert b.sequence and b.input_shape == (64,) and b.num_classes == len(VOCAB) == 97
    assert b.X_train.dtype == torch.long and b.y_train.shape == b.X_train.shape
    # within a window, position t's target is the input at t + 1
    assert torch.equal(b.y_train[:, :-1], b.X_train[:, 1:])
    text = stdlib_text(30_000)
    assert len(text) == 30_000 and "def " in text
    assert decode(encode("def f(x):\n")) == "def f(x):\n"
    assert decode(b.X_train[0]) in text  # real text, in order
    # the splits share no window
    rows = {tuple(r.tolist()) for r in b.X_train}
    assert not rows & {tuple(r.tolist()) for r in b.X_val}
    assert math.isclose(math.log(b.num_classes), 4.5747, abs_tol=1e-4)


def test_sequence_labels_are_checked() -> None:
    X = torch.randint(0, 5, (4, 8))
    with pytest.raises(DataError, match="one target per position"):
        data.DataBundle(X_train=X, y_train=X[:, :4], X_val=X, y_val=X, num_classes=5, sequence=True)
    with pytest.raises(DataError, match="label 5"):
        data.DataBundle(X_train=X, y_train=X + 1, X_val=X, y_val=X, num_classes=5, sequence=True)
    # without sequence=True a 2-D label array is still taken for one-hot rows
    with pytest.raises(DataError, match="1-D array of class indices"):
        data.DataBundle(X_train=X.float(), y_train=X, X_val=X.float(), y_val=X, num_classes=5)


def test_tiny_subset_of_sequences_draws_whole_sequences() -> None:
    b = data.load("pysource", max_chars=20_000)
    X, y = data.tiny_subset(b, n=5, seed=1)
    # five whole windows of the training split, each with its own shifted targets
    assert X.shape == y.shape == (5, 64)
    assert all(any(torch.equal(x, row) for row in b.X_train) for x in X)
    assert torch.equal(y[:, :-1], X[:, 1:])
    X2, _ = data.tiny_subset((b.X_train, b.y_train), n=5, seed=1)
    assert torch.equal(X, X2)  # a pair draws what the bundle draws


def test_python_m_babysit_data_writes_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from babysit.data.__main__ import main

    assert main(["breast_cancer", str(tmp_path / "bc.csv")]) == 0
    assert data.load(tmp_path / "bc.csv").num_classes == 2
    # a wrong table name gets the usage line and exit code 2
    assert main(["iris", str(tmp_path / "iris.csv")]) == 2 and "wine|breast_cancer" in capsys.readouterr().err
