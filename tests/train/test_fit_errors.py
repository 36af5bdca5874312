"""Bad input to fit() gets an error that names the problem (one test per error)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import babysit
from babysit import models
from babysit.errors import BabysitError, ConfigError, DataError, OptimError


@pytest.fixture
def model():
    return models.build("mlp", input_shape=(4,), num_classes=3, hidden=[8], seed=0)


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    return torch.randn(30, 4, generator=g), torch.randint(0, 3, (30,), generator=g)


def _fit(model, train, **kw):
    kw.setdefault("epochs", 1)
    return babysit.fit(model, train, **kw)


def test_mismatched_lengths(model, pair) -> None:
    X, y = pair
    with pytest.raises(DataError, match=r"train split has 30 examples in X_train but 29 labels in y_train"):
        _fit(model, (X, y[:29]))


def test_labels_not_integers(model, pair) -> None:
    X, _ = pair
    y = np.full(30, 1.5)
    with pytest.raises(DataError, match=r"y_train contains the non-integer label 1\.5"):
        _fit(model, (X, y))


def test_labels_out_of_range(model, pair) -> None:
    X, y = pair
    y = y.clone()
    y[3] = 7
    with pytest.raises(DataError, match=r"train label 7 is out of range.*0\.\.2"):
        _fit(model, (X, y))


def test_negative_label(model, pair) -> None:
    X, y = pair
    y = y.clone()
    y[0] = -1
    with pytest.raises(DataError, match=r"negative label -1 at index 0"):
        _fit(model, (X, y))


def test_validation_labels_out_of_range(model, pair) -> None:
    X, y = pair
    with pytest.raises(DataError, match=r"validation label 5 is out of range"):
        _fit(model, (X, y), val_data=(X[:5], torch.tensor([0, 1, 2, 5, 0])))


class _LaterBadLabel(torch.utils.data.Dataset):
    """Examples whose labels are fine except at one index past the first, which fit checks before training."""

    def __init__(self, pair, bad_index: int, bad_label: int) -> None:
        self.X, self.y = pair
        self.bad_index, self.bad_label = bad_index, bad_label

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int):
        return self.X[i], torch.tensor(self.bad_label if i == self.bad_index else int(self.y[i]))


@pytest.mark.parametrize("bad_label", [7, -3])
def test_a_datasets_later_label_out_of_range_is_named_when_its_batch_is_trained(model, pair, bad_label,
                                                                                  tmp_path) -> None:
    with pytest.raises(DataError, match=rf"a training label is {bad_label}, out of range.*epoch 1, batch 2") as info:
        loader = torch.utils.data.DataLoader(_LaterBadLabel(pair, 20, bad_label), batch_size=16)  # in order
        _fit(model, loader, run_dir=tmp_path / "run")
    assert isinstance(info.value.__cause__, IndexError)  # torch's own error stays as the cause
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()  # a failed run is not a resumable one


def test_a_validation_datasets_later_label_out_of_range_is_named(model, pair) -> None:
    with pytest.raises(DataError, match=r"a validation label is 5, out of range .*found while evaluating"):
        _fit(model, pair, val_data=_LaterBadLabel(pair, 12, 5))


def test_non_finite_features(model, pair) -> None:
    X, y = pair
    X = X.clone()
    X[2, 1] = float("nan")
    with pytest.raises(DataError, match=r"X_train has 1 non-finite value.*index \(2, 1\)"):
        _fit(model, (X, y))


def test_empty_data(model) -> None:
    with pytest.raises(DataError, match=r"train split is empty"):
        _fit(model, (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)))


def test_empty_dataset(model) -> None:
    with pytest.raises(DataError, match=r"empty Dataset"):
        _fit(model, TensorDataset(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)))


def test_unsupported_data_type(model) -> None:
    with pytest.raises(DataError, match=r"cannot train on str"):
        _fit(model, "digits")


def test_unknown_optimizer_name(model, pair) -> None:
    with pytest.raises(OptimError, match=r"adma.*adam"):
        _fit(model, pair, optimizer="adma")


def test_unknown_schedule_name(model, pair) -> None:
    with pytest.raises(OptimError, match=r"stepp"):
        _fit(model, pair, schedule="stepp")


def test_unknown_loss(model, pair) -> None:
    with pytest.raises(ConfigError, match=r"unknown loss 'hinge'.*softmax, svm"):
        _fit(model, pair, loss_fn="hinge")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"epochs": 0}, r"epochs must be an integer >= 1, got epochs=0"),
        ({"batch_size": -3}, r"batch_size must be an integer >= 1, got batch_size=-3"),
        ({"reg": -1.0}, r"reg .* must be a finite number >= 0, got reg=-1.0"),
        ({"lr": 0.0}, r"lr must be a finite number > 0, got lr=0.0"),
        ({"options": {"precision": "fp8"}}, r"precision must be one of fp32, bf16, fp16, got precision='fp8'"),
        ({"device": "tpu:0"}, r"device 'tpu:0'"),
        ({"resume": True}, r"resume=True needs run_dir"),
    ],
)
def test_bad_settings(model, pair, kwargs, pattern) -> None:
    with pytest.raises(BabysitError, match=pattern):
        _fit(model, pair, **kwargs)


def test_resume_without_checkpoint(model, pair, tmp_path) -> None:
    with pytest.raises(BabysitError, match=r"nothing to resume"):
        _fit(model, pair, run_dir=tmp_path, resume=True)
