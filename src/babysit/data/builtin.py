"""The two data sets that ship with babysit: real handwritten digits and the lecture's spiral.

Neither needs a download: digits is bundled with scikit-learn, and the spiral is generated.
"""

from __future__ import annotations

import numpy as np

from babysit.data._bundle import DataBundle
from babysit.data.arrays import from_pool
from babysit.errors import DataError

__all__ = ["load_digits", "load_spiral", "make_spiral"]


def load_digits(
    *, normalize: str = "standardize", seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2,
    num_classes: int | None = None,
) -> DataBundle:
    """Load scikit-learn's 1,797 8x8 handwritten digits as a stratified, seeded three-way split.

    The images keep their layout, (N, 1, 8, 8), so the same bundle feeds an MLP (flatten) or a CNN;
    raw pixel values are 0..16 before ``normalize``. Three corner pixels are blank in every image,
    which is why standardization floors the std of constant features.

    Example:
        >>> b = load_digits()
        >>> b.input_shape, b.num_classes, sum(b.summary()[s] for s in ("train", "val", "test"))
        ((1, 8, 8), 10, 1797)
    """
    if num_classes is not None and num_classes != 10:
        raise DataError(f"digits has 10 classes (0-9), but num_classes={num_classes!r} was asked for; remove "
                        "data.num_classes (or set it to 10).")
    from babysit._extras import needs

    with needs("digits", 'data.load("digits")'):
        from sklearn.datasets import load_digits as _sk_digits  # deferred: sklearn is slow to import

    raw = _sk_digits()
    X = raw.images.reshape(-1, 1, 8, 8)  # (1797, 1, 8, 8), float64 in 0..16
    return from_pool(
        X,
        raw.target,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        normalize=normalize,
        num_classes=10,
        name="digits",
        description="scikit-learn digits: 1,797 real 8x8 grayscale handwritten digits (UCI), 10 classes",
    )


def make_spiral(
    points_per_class: int = 100, classes: int = 3, noise: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Generate the CS231n case study's K interleaved 2-D spirals.

    This is the notes' generator, with ``np.random.randn`` replaced by a seeded ``RandomState`` (same
    stream as ``np.random.seed(seed)``)::

        r = np.linspace(0.0, 1, N)
        t = np.linspace(j * 4, (j + 1) * 4, N) + np.random.randn(N) * 0.2
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]

    Returns:
        ``(X, y)``: float64 (N*K, 2) and int64 (N*K,), class by class.

    Example:
        >>> X, y = make_spiral()
        >>> X.shape, np.bincount(y).tolist()
        ((300, 2), [100, 100, 100])
    """
    for key, value in (("points_per_class", points_per_class), ("classes", classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DataError(f"spiral option {key} must be a positive int, got {key}={value!r}.")
    if not noise >= 0:
        raise DataError(f"spiral option noise must be >= 0, got noise={noise!r}.")
    rs = np.random.RandomState(seed)
    n = points_per_class
    X = np.zeros((n * classes, 2))
    y = np.zeros(n * classes, dtype=np.int64)
    for j in range(classes):
        ix = slice(n * j, n * (j + 1))
        r = np.linspace(0.0, 1, n)  # radius
        t = np.linspace(j * 4, (j + 1) * 4, n) + rs.randn(n) * noise  # theta
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[ix] = j
    return X, y


def load_spiral(
    *,
    points_per_class: int = 100,
    classes: int | None = None,
    noise: float = 0.2,
    normalize: str = "standardize",
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    num_classes: int | None = None,
) -> DataBundle:
    """Generate the spiral with ``seed`` and split it, stratified, with the same seed.

    The notes train on all 300 points; here a share is held out so validation accuracy can be
    watched. The data is already centred, so standardization mostly rescales it. ``classes`` (the arms,
    default 3) and ``num_classes`` are the same number: give either.
    """
    if classes is not None and num_classes is not None and classes != num_classes:
        raise DataError(f"the spiral's classes={classes!r} and num_classes={num_classes!r} disagree: each arm is "
                        "one class; give one of them.")
    classes = classes if classes is not None else num_classes if num_classes is not None else 3
    if isinstance(classes, int) and not isinstance(classes, bool) and classes < 2:
        raise DataError(f"a spiral needs at least 2 arms (classes), got classes={classes!r}: one class leaves "
                        "nothing to classify.")
    X, y = make_spiral(points_per_class, classes, noise, seed)
    return from_pool(
        X,
        y,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        normalize=normalize,
        num_classes=classes,
        name="spiral",
        description=f"CS231n spiral: {classes} interleaved 2-D spirals, {points_per_class} points each, "
        f"angle noise {noise}",
    )
