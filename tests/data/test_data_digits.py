"""The built-in digits bundle: real sklearn data, seeded stratified splits, train-only statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import babysit.data as bd


@pytest.fixture(scope="module")
def raw() -> bd.DataBundle:
    return bd.load("digits", normalize="none")


@pytest.fixture(scope="module")
def std() -> bd.DataBundle:
    return bd.load("digits")


def _rows(*xs: torch.Tensor) -> np.ndarray:
    """All examples of the given splits as sorted flat rows, a multiset to compare."""
    flat = np.concatenate([x.reshape(len(x), -1).numpy() for x in xs])
    return flat[np.lexsort(flat.T[::-1])]


def test_digits_sizes_shapes_and_classes(raw: bd.DataBundle) -> None:
    s = raw.summary()
    # every one of the 1,797 images lands in exactly one split
    assert s["train"] + s["val"] + s["test"] == 1797
    assert raw.num_classes == 10 and raw.input_shape == (1, 8, 8)
    assert raw.X_train.shape[1:] == (1, 8, 8) and raw.X_train.dtype == torch.float32
    assert raw.y_train.dtype == torch.int64 and raw.X_train.device.type == "cpu"
    assert raw.X_train.min() >= 0 and raw.X_train.max() == 16
    json.dumps(s)  # reports store it


def test_digits_splits_partition_the_real_data(raw: bd.DataBundle) -> None:
    sk = load_digits().images.reshape(1797, -1).astype(np.float32)
    # the union of the splits is sklearn's data set, each image once
    np.testing.assert_array_equal(_rows(raw.X_train, raw.X_val, raw.X_test), sk[np.lexsort(sk.T[::-1])])


def test_digits_split_is_stratified(raw: bd.DataBundle) -> None:
    totals = np.bincount(load_digits().target)
    for split, frac in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        counts = np.array(raw.summary()["class_counts"][split])
        # every class in every split, each with its share up to rounding
        assert (counts > 0).all()
        assert np.abs(counts - frac * totals).max() <= 1


def test_digits_split_reproducible_for_a_seed_and_different_for_another(raw: bd.DataBundle) -> None:
    again = bd.load("digits", normalize="none", seed=0)
    other = bd.load("digits", normalize="none", seed=1)
    assert torch.equal(again.X_train, raw.X_train) and torch.equal(again.y_val, raw.y_val)
    assert not torch.equal(other.y_train, raw.y_train)


def test_digits_standardization_fitted_on_train_only(raw: bd.DataBundle, std: bd.DataBundle) -> None:
    x = raw.X_train.double()
    mean, sd = x.mean(0), x.std(0, unbiased=False)
    constant = sd == 0
    stats = std.normalization
    assert stats["method"] == "standardize" and stats["fitted_on"] == "train"
    json.dumps(stats)
    # the stored statistics are the raw training split's, computed by hand
    torch.testing.assert_close(torch.tensor(stats["mean"], dtype=torch.float64), mean)
    torch.testing.assert_close(
        torch.tensor(stats["std"], dtype=torch.float64), torch.where(constant, 1.0, sd)
    )
    assert stats["constant_features"] == int(constant.sum()) >= 3  # blank corner pixels
    # and not those of all the data, which would leak validation and test images into training
    everything = torch.cat([raw.X_train, raw.X_val, raw.X_test]).double().mean(0)
    assert not torch.allclose(torch.tensor(stats["mean"], dtype=torch.float64), everything)
    t = std.X_train.double()
    torch.testing.assert_close(t.mean(0), torch.zeros_like(mean), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        t.std(0, unbiased=False)[~constant],
        torch.ones(int((~constant).sum()), dtype=torch.float64),
        atol=1e-5,
        rtol=0,
    )
    # validation data is transformed with the training statistics, so its mean is not exactly 0
    assert std.X_val.double().mean(0)[~constant].abs().max() > 1e-3
    expected_val = ((raw.X_val.double() - mean) / torch.where(constant, 1.0, sd)).float()
    torch.testing.assert_close(std.X_val, expected_val)
    torch.testing.assert_close(bd.apply_normalization(raw.X_test, stats), std.X_test)


def test_digits_constant_pixels_give_no_nan(std: bd.DataBundle) -> None:
    # dividing the blank pixels by their zero std would give NaN or inf
    for X in (std.X_train, std.X_val, std.X_test):
        assert torch.isfinite(X).all()


def test_digits_center_subtracts_the_mean_only(raw: bd.DataBundle) -> None:
    c = bd.load("digits", normalize="center")
    assert c.normalization["method"] == "center" and "std" not in c.normalization
    torch.testing.assert_close(
        c.X_train, raw.X_train - raw.X_train.double().mean(0).float(), atol=1e-5, rtol=0
    )


def test_digits_tiny_subset_balanced_and_seeded(std: bd.DataBundle) -> None:
    X, y = bd.tiny_subset(std, n=20, seed=0)
    # 20 examples over 10 classes: two of each
    assert X.shape == (20, 1, 8, 8) and torch.bincount(y, minlength=10).tolist() == [2] * 10
    X2, y2 = bd.tiny_subset(std, n=20, seed=0)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    assert not torch.equal(bd.tiny_subset(std, n=20, seed=1)[0], X)
    # each drawn example is a training example with its own label
    rows = {
        tuple(r.tolist()): int(lab)
        for r, lab in zip(std.X_train.reshape(len(std.X_train), -1), std.y_train, strict=True)
    }
    assert all(rows[tuple(r.tolist())] == int(lab) for r, lab in zip(X.reshape(20, -1), y, strict=True))
