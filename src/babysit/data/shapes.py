"""``shapes32``: a generated set of 32x32 colour images of six shapes, with texture and noise; no download.

Each image is a shape (disk, ring, square, frame, triangle, cross) at a random place, size, rotation and colour
on a random smooth colour gradient, plus pixel noise. The class is the shape alone: colour, position, size and
the background carry no information, so a model must learn edges and their arrangement, which is what
convolutions with skip connections and batch norm are for. Scaled-up 8x8 digits would teach little that the
digits MLP has not (their 64 real pixels interpolated to 1,024 add no structure); here the structure is real
and there is as much of it as asked for.
"""

from __future__ import annotations

import numpy as np

from babysit.data._bundle import DataBundle
from babysit.data.arrays import from_pool
from babysit.errors import DataError

__all__ = ["SHAPES", "load_shapes32", "make_shapes32"]

SHAPES = ("disk", "ring", "square", "frame", "triangle", "cross")
SIZE = 32


def _mask(shape: str, u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Pixels inside ``shape`` of radius ``r``, in coordinates ``(u, v)`` centred on it and rotated with it."""
    d = np.sqrt(u**2 + v**2)
    box = np.maximum(np.abs(u), np.abs(v))
    if shape == "disk":
        return d <= r
    if shape == "ring":
        return (d <= r) & (d >= 0.55 * r)
    if shape == "square":
        return box <= 0.8 * r
    if shape == "frame":
        return (box <= 0.8 * r) & (box >= 0.45 * r)
    if shape == "triangle":  # three half-planes, normals 120 degrees apart
        angles = (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3)
        return np.all([np.cos(a) * u + np.sin(a) * v <= 0.5 * r for a in angles], axis=0)
    if shape == "cross":
        arm = 0.3 * r
        return ((np.abs(u) <= arm) & (np.abs(v) <= r)) | ((np.abs(v) <= arm) & (np.abs(u) <= r))
    raise DataError(f"unknown shape {shape!r}; shapes32 draws {', '.join(SHAPES)}.")


def _draw(label: int, n: int, rs: np.random.RandomState, noise: float) -> np.ndarray:
    """``n`` images of shape ``SHAPES[label]``: (n, 3, 32, 32) float32 in about 0..1."""
    grid = np.arange(SIZE, dtype=np.float64) + 0.5
    gy, gx = np.meshgrid(grid, grid, indexing="ij")  # (32, 32)
    r = rs.uniform(6.0, 12.0, size=(n, 1, 1))
    cx, cy = (rs.uniform(r[:, 0, 0] + 1, SIZE - r[:, 0, 0] - 1)[:, None, None] for _ in range(2))
    theta = rs.uniform(0, 2 * np.pi, size=(n, 1, 1))
    dx, dy = gx - cx, gy - cy  # (n, 32, 32)
    u, v = np.cos(theta) * dx + np.sin(theta) * dy, -np.sin(theta) * dx + np.cos(theta) * dy
    inside = _mask(SHAPES[label], u, v, r)[:, None]  # (n, 1, 32, 32)
    # background: a smooth gradient between two random colours, in a random direction
    c0, c1 = rs.uniform(0, 1, size=(2, n, 3, 1, 1))
    phi = rs.uniform(0, 2 * np.pi, size=(n, 1, 1, 1))
    ramp = ((np.cos(phi) * gx + np.sin(phi) * gy) / SIZE + 1) / 2  # (n, 1, 32, 32) in 0..1
    background = c0 + (c1 - c0) * ramp
    # the shape's colour stays away from the background's mean, so it is visible but says nothing itself
    fg = (background.mean(axis=(2, 3), keepdims=True) + rs.uniform(0.35, 0.65, size=(n, 3, 1, 1))) % 1.0
    images = np.where(inside, fg, background) + rs.normal(0, noise, size=(n, 3, SIZE, SIZE))
    return images.astype(np.float32)


def make_shapes32(per_class: int = 500, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``per_class`` images of each of the six shapes.

    Returns:
        ``(X, y)``: float32 (6 * per_class, 3, 32, 32) and int64 (6 * per_class,), class by class.

    Example:
        >>> X, y = make_shapes32(per_class=4)
        >>> X.shape, np.bincount(y).tolist()
        ((24, 3, 32, 32), [4, 4, 4, 4, 4, 4])
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise DataError(f"shapes32 option per_class must be a positive int, got per_class={per_class!r}.")
    if not noise >= 0:
        raise DataError(f"shapes32 option noise must be >= 0, got noise={noise!r}.")
    rs = np.random.RandomState(seed)
    X = np.concatenate([_draw(label, per_class, rs, noise) for label in range(len(SHAPES))])
    y = np.repeat(np.arange(len(SHAPES), dtype=np.int64), per_class)
    return X, y


def load_shapes32(
    *, per_class: int = 500, noise: float = 0.1, normalize: str = "standardize", seed: int = 0,
    val_fraction: float = 0.2, test_fraction: float = 0.2, num_classes: int | None = None,
) -> DataBundle:
    """Generate shapes32 with ``seed`` and split it, stratified: (N, 3, 32, 32) images, six classes.

    Example:
        >>> b = load_shapes32(per_class=10)
        >>> b.input_shape, b.num_classes, b.summary()["train"]
        ((3, 32, 32), 6, 36)
    """
    if num_classes is not None and num_classes != len(SHAPES):
        raise DataError(f"shapes32 has {len(SHAPES)} classes ({', '.join(SHAPES)}), but num_classes={num_classes!r} "
                        "was asked for; remove data.num_classes (or set it to 6).")
    X, y = make_shapes32(per_class, noise, seed)
    return from_pool(
        X, y, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, normalize=normalize,
        num_classes=len(SHAPES), name="shapes32",
        description=f"generated 32x32 colour images of {len(SHAPES)} shapes ({', '.join(SHAPES)}), "
        f"{per_class} each, random place, size, rotation, colours and gradient background, pixel noise {noise}",
    )
