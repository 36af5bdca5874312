"""The CS231n spiral: the notes' generator, seeded, split by class."""

from __future__ import annotations

import numpy as np
import torch

import babysit.data as bd


def _notes_spiral(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The notes' code verbatim, with the global generator seeded."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        N, D, K = 100, 2, 3
        X = np.zeros((N * K, D))
        y = np.zeros(N * K, dtype="uint8")
        for j in range(K):
            ix = range(N * j, N * (j + 1))
            r = np.linspace(0.0, 1, N)  # radius
            t = np.linspace(j * 4, (j + 1) * 4, N) + np.random.randn(N) * 0.2  # theta
            X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
            y[ix] = j
    finally:
        np.random.set_state(state)
    return X, y


def test_make_spiral_matches_the_notes_generator() -> None:
    for seed in (0, 7):
        X, y = bd.make_spiral(seed=seed)
        Xn, yn = _notes_spiral(seed)
        # same points, same labels, for the same seed
        np.testing.assert_array_equal(X, Xn)
        np.testing.assert_array_equal(y, yn)
    assert not np.array_equal(bd.make_spiral(seed=0)[0], bd.make_spiral(seed=1)[0])


def test_spiral_bundle_has_three_classes_of_100() -> None:
    b = bd.load("spiral", normalize="none", seed=3)
    X = torch.cat([b.X_train, b.X_val, b.X_test])
    y = torch.cat([b.y_train, b.y_val, b.y_test])
    # 3 classes x 100 points, 2-D
    assert X.shape == (300, 2) and b.input_shape == (2,) and b.num_classes == 3
    assert torch.bincount(y).tolist() == [100, 100, 100]
    Xn, yn = _notes_spiral(3)
    # the splits hold exactly the generator's points, labels attached
    got = np.c_[X.numpy(), y.numpy()]
    want = np.c_[Xn, yn].astype(np.float32)
    np.testing.assert_array_equal(got[np.lexsort(got.T[::-1])], want[np.lexsort(want.T[::-1])])


def test_spiral_options_and_standardization() -> None:
    b = bd.load("spiral", points_per_class=40, classes=5, noise=0.1, test_fraction=0.0)
    assert b.num_classes == 5 and b.test is None
    assert b.summary()["train"] + b.summary()["val"] == 200
    torch.testing.assert_close(b.X_train.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(b.X_train.std(0, unbiased=False), torch.ones(2), atol=1e-5, rtol=0)
