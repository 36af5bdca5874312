"""User factories 'pkg.mod:fn' returning each accepted form."""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path

import pytest
import torch

import babysit.data as bd
from babysit.errors import DataError

MODULE = """
import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

import babysit.data as bd

rng = np.random.default_rng(0)
X = rng.normal(size=(40, 3)).astype(np.float32)
y = np.arange(40) % 4

def as_bundle():
    return bd.from_arrays(X[:30], y[:30], X[30:], y[30:], name="mine", normalize="center")

def as_dict():
    return {"X_train": X[:30], "y_train": y[:30], "X_val": X[30:], "y_val": y[30:]}

class Pairs(Dataset):
    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi
    def __len__(self):
        return self.hi - self.lo
    def __getitem__(self, i):
        return torch.from_numpy(X[self.lo + i]), int(y[self.lo + i])

def as_datasets():
    train = TensorDataset(torch.from_numpy(X[:24]), torch.from_numpy(y[:24]))
    return train, Pairs(24, 32), Pairs(32, 40)

def as_string():
    return "not data"

def broken():
    raise KeyError("no such table")

NOT_CALLABLE = 3
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = "bsfactory_" + "".join(c if c.isalnum() else "_" for c in tmp_path.name)
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return name


def test_factory_returning_a_bundle(module: str) -> None:
    b = bd.load(f"{module}:as_bundle")
    # a bundle is used as built, its own normalization included
    assert b.name == "mine" and b.normalization["method"] == "center" and b.summary()["val"] == 10


def test_factory_returning_a_dict(module: str) -> None:
    b = bd.load(f"{module}:as_dict", normalize="none")
    assert b.summary()["train"] == 30 and b.num_classes == 4 and b.test is None
    assert b.name == "as_dict"


def test_factory_returning_datasets(module: str) -> None:
    mod = importlib.import_module(module)
    b = bd.load(f"{module}:as_datasets", normalize="none")
    # the Datasets are read item by item and stacked, in order
    assert torch.equal(b.X_train, torch.from_numpy(mod.X[:24]))
    assert torch.equal(b.X_val, torch.from_numpy(mod.X[24:32]))
    assert b.y_test.tolist() == mod.y[32:].tolist()
    assert b.y_val.dtype == torch.int64 and b.input_shape == (3,)


@pytest.mark.parametrize(
    ("attr", "message"),
    [
        ("as_string", r"returned a str; return a DataBundle, a dict"),
        ("broken", r"raised KeyError"),
        ("missing_fn", r"has no attribute 'missing_fn'"),
        ("NOT_CALLABLE", r"is a int, not a function"),
    ],
)
def test_factory_errors_name_the_problem(module: str, attr: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        bd.load(f"{module}:{attr}")


def test_factory_missing_module_names_it() -> None:
    with pytest.raises(DataError, match=r"cannot import module 'no_such_pkg_xyz\.data'"):
        bd.load("no_such_pkg_xyz.data:make")
