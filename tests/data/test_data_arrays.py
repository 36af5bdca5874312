"""from_arrays, the split helper and the bundle record."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import babysit.data as bd


def test_from_arrays_splits_validation_off_training_stratified() -> None:
    X = np.arange(100, dtype=float).reshape(50, 2)
    y = np.repeat([0, 1, 2, 3, 4], 10)
    b = bd.from_arrays(X, y, normalize="none", val_fraction=0.2, seed=5)
    # 20% of each class of 10 goes to validation
    assert torch.bincount(b.y_val).tolist() == [2] * 5
    assert b.summary()["train"] == 40 and b.test is None
    joined = torch.cat([b.X_train, b.X_val])[:, 0].sort().values
    assert torch.equal(joined, torch.from_numpy(X[:, 0]).float())


def test_from_arrays_accepts_tensors_and_float_whole_labels() -> None:
    X = torch.randn(12, 2, requires_grad=True)
    y = torch.tensor([0.0, 1.0, 2.0] * 4)
    b = bd.from_arrays(X, y, X[:3], y[:3], num_classes=4)
    assert b.y_train.dtype == torch.int64 and b.num_classes == 4 and not b.X_train.requires_grad


def test_bundle_pairs_summary_and_repr() -> None:
    b = bd.from_arrays(np.ones((8, 3)), [0, 1] * 4, np.ones((2, 3)), [0, 1], np.ones((2, 3)), [1, 1])
    assert b.train[0] is b.X_train and b.val[1] is b.y_val and b.test is not None
    assert b.summary()["class_counts"]["test"] == [0, 2]
    assert repr(b).startswith("DataBundle(name='arrays', train=8, val=2, test=2")


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    fracs=st.tuples(st.floats(0.0, 0.45), st.floats(0.0, 0.45)),
    seed=st.integers(0, 2**16),
)
def test_stratified_split_is_a_partition_with_fair_shares(
    counts: list[int], fracs: tuple[float, float], seed: int
) -> None:
    y = np.repeat(np.arange(len(counts)), counts)
    groups = bd.stratified_split(y, fracs, seed)
    # every index exactly once
    assert np.array_equal(np.sort(np.concatenate(groups)), np.arange(len(y)))
    for g, share in zip(groups, (1 - sum(fracs), *fracs), strict=True):
        per_class = np.bincount(y[g], minlength=len(counts))
        # each class's share is off by less than one example
        assert np.all(np.abs(per_class - share * np.array(counts)) < 1)
    assert all(np.array_equal(a, b) for a, b in zip(groups, bd.stratified_split(y, fracs, seed), strict=True))


def test_tiny_subset_uneven_classes() -> None:
    y = np.array([0] * 2 + [1] * 10 + [2] * 10)
    X, ys = bd.tiny_subset((np.arange(22.0).reshape(22, 1), y), n=9)
    counts = torch.bincount(ys).tolist()
    # the small class gives all it has, the other two share the rest evenly
    assert counts[0] == 2 and sorted(counts[1:]) == [3, 4]
    # and each example keeps its own label (feature i belongs to label y[i])
    assert torch.equal(ys, torch.from_numpy(y)[X[:, 0].long()])
