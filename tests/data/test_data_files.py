"""Files as sources: .npz with named splits, CSV with a label column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import babysit.data as bd
from babysit.errors import DataError


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "X_train": rng.normal(size=(30, 4)),
        "y_train": np.arange(30) % 3,
        "X_val": rng.normal(size=(9, 4)),
        "y_val": np.arange(9) % 3,
        "X_test": rng.normal(size=(6, 4)),
        "y_test": np.arange(6) % 3,
    }


def test_npz_round_trip(tmp_path: Path) -> None:
    arrays = _arrays()
    path = tmp_path / "toy.npz"
    np.savez(path, **arrays)
    b = bd.load(path, normalize="none")
    # every array comes back as saved, as float32 / int64 tensors
    for key, value in arrays.items():
        got = getattr(b, key)
        assert got.dtype == (torch.int64 if key.startswith("y") else torch.float32)
        np.testing.assert_array_equal(got.numpy(), value.astype(got.numpy().dtype))
    assert b.name == "toy" and b.num_classes == 3 and b.input_shape == (4,)
    s = bd.load(str(path))
    torch.testing.assert_close(s.X_train.mean(0), torch.zeros(4), atol=1e-5, rtol=0)


def test_npz_test_split_is_optional(tmp_path: Path) -> None:
    arrays = _arrays()
    del arrays["X_test"], arrays["y_test"]
    np.savez(tmp_path / "no_test.npz", **arrays)
    b = bd.load(tmp_path / "no_test.npz", num_classes=5)
    assert b.test is None and b.summary()["test"] == 0 and b.num_classes == 5


def _write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_csv_with_named_label_column(tmp_path: Path) -> None:
    rows = [f"{i * 0.5},{i % 2},{-i}" for i in range(40)]
    path = _write_csv(tmp_path / "table.csv", "width,kind,height", rows)
    b = bd.load(path, label="kind", normalize="none", val_fraction=0.25, test_fraction=0.25)
    # the label column is not a feature; the other two are, in file order
    assert b.input_shape == (2,) and b.num_classes == 2
    X = torch.cat([b.X_train, b.X_val, b.X_test])
    y = torch.cat([b.y_train, b.y_val, b.y_test])
    assert len(y) == 40 and b.summary()["val"] == 10 and b.summary()["test"] == 10
    i = (X[:, 0] * 2).round().long()
    assert torch.equal(y, i % 2) and torch.equal(X[:, 1], -i.float())


def test_csv_default_label_column(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "t.csv", "a,label", [f"{i},{i % 4}.0" for i in range(40)])
    b = bd.load(path, test_fraction=0)
    assert b.num_classes == 4 and b.test is None and b.summary()["train"] == 32


def test_csv_non_numeric_feature_names_column_and_line(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "t.csv", "a,color,label", ["1,2,0", "3,red,1"])
    with pytest.raises(DataError, match=r"column 'color' is not numeric: line 3 has 'red'"):
        bd.load(path)


def test_csv_non_numeric_label_says_encode(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "t.csv", "a,label", ["1,cat", "3,dog"])
    with pytest.raises(DataError, match=r"column 'label' is not numeric: line 2 has 'cat'.*encode"):
        bd.load(path)
