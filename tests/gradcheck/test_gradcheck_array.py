"""check on NumPy arrays (cs231n-style hand-written layers) and on tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from babysit.gradcheck import GradcheckError, check

rng = np.random.default_rng(0)
X = rng.standard_normal((4, 5))
W = rng.standard_normal((5, 3))
DOUT = rng.standard_normal((4, 3))


def _affine(x: np.ndarray) -> float:
    return float(np.sum((x @ W) * DOUT))


def test_array_affine_backward_passes_and_a_transposed_one_fails() -> None:
    # dx = dout W^T is ideal; a wrong dx is wrong, with an index into x
    assert check(_affine, X, grad=DOUT @ W.T).verdict == "ideal"
    bad = DOUT @ W.T
    bad[:, 1] *= -1.0
    report = check(_affine, X, grad=bad)
    assert report.verdict == "wrong"
    assert report.failures[0].where.endswith(", 1]") and report.failures[0].ratio == pytest.approx(-1.0)


def _svm_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """cs231n's multiclass SVM loss: returns (loss, dscores)."""
    n = scores.shape[0]
    margins = np.maximum(0.0, scores - scores[np.arange(n), y][:, None] + 1.0)
    margins[np.arange(n), y] = 0.0
    ds = (margins > 0).astype(float)
    ds[np.arange(n), y] = -ds.sum(axis=1)
    return float(margins.sum() / n), ds / n


def test_array_function_returning_loss_and_gradient_with_kinks_at_the_point() -> None:
    y = np.array([0, 1, 2, 0])
    s = np.round(rng.standard_normal((4, 3)) * 4) / 4
    s[0, 1] = s[0, 0] - 1.0  # a margin exactly at 0: a kink at the point
    s[1, 2] = s[1, 1] - 1.0
    report = check(lambda v: _svm_loss(v, y), s, samples=12)
    # the kinks are found from one-sided differences (NumPy is not recorded) and not called wrong
    assert report.ok, str(report)
    assert report.rows[0].kinks >= 2


def test_array_relu_near_and_at_zero_in_numpy() -> None:
    x = np.array([-1e-6, 0.0, 2e-6, 1.5, -2.0])
    report = check(lambda v: float(np.maximum(v, 0.0).sum()), x, grad=(x > 0).astype(float))
    # the lecture's relu at -1e-6 with h = 1e-5, and relu at exactly 0
    assert report.ok, str(report)


def test_array_float32_function_is_judged_by_its_own_resolution() -> None:
    x = rng.standard_normal(6)

    def f32(v: np.ndarray) -> np.float32:
        return np.sum(np.tanh(v.astype(np.float32)) * 3.0)

    good = 3.0 * (1 - np.tanh(x) ** 2)
    # float32 round-off is not a bug, a factor of 2 still is
    assert check(f32, x, grad=good).ok
    assert check(f32, x, grad=2 * good).verdict == "wrong"


def test_array_numpy_dropout_is_checked_with_a_fixed_seed_and_the_rng_restored() -> None:
    x = rng.standard_normal((3, 4))

    def dropout_loss(v: np.ndarray) -> tuple[float, np.ndarray]:
        mask = (np.random.rand(*v.shape) > 0.5) / 0.5
        return float(np.sum(np.tanh(v) * mask)), (1 - np.tanh(v) ** 2) * mask

    np.random.seed(5)
    expected = np.random.rand(2)
    np.random.seed(5)
    report = check(dropout_loss, x)
    # the same mask at x+h, x-h and in the analytic gradient; the caller's NumPy stream continues
    assert report.verdict == "ideal", str(report)
    assert np.array_equal(np.random.rand(2), expected)


def test_array_leaves_x_untouched() -> None:
    x = X.copy()
    check(_affine, x, grad=DOUT @ W.T)
    # bit-identical
    assert np.array_equal(x, X)


def test_array_tensor_input_uses_autograd_or_a_given_gradient() -> None:
    x = torch.randn(3, 4)
    # grad=None: autograd supplies the analytic gradient
    assert check(lambda t: (t.sin() * t).sum(), x).verdict == "ideal"
    # a given gradient is compared as is
    assert check(lambda t: (t * t).sum(), x, grad=x.double()).verdict == "wrong"
    assert x.dtype == torch.float32 and x.grad is None


def test_array_rejects_bad_input() -> None:
    # clear messages: what came in and what to do
    with pytest.raises(GradcheckError, match="grad is required"):
        check(_affine, X)
    with pytest.raises(GradcheckError, match="shape"):
        check(_affine, X, grad=np.zeros(3))
    with pytest.raises(GradcheckError, match="floating"):
        check(lambda v: float(v.sum()), np.arange(4), grad=np.ones(4))
    with pytest.raises(GradcheckError, match="scalar"):
        check(lambda v: v * 2, X, grad=X)
