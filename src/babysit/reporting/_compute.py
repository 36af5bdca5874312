"""What the figures show, computed from a History: plain arrays and small records, no drawing.

Kept apart from ``figures.py`` (optuna's visualization split): every function here is pure and cheap, so
the drawing code only decides how things look. The Monitor's series are read by quantity
(:mod:`babysit.quantities`: ``"update_ratio"``, ``"activation_moments"``, ...), never by spelling a key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from babysit.history import History
from babysit.quantities import QuantityLike, get

MAX_POINTS = 1500  # per drawn line; longer series keep each bucket's min and max (spikes stay visible)


def column(values: Sequence[Any]) -> np.ndarray:
    """A float array with NaN where a value is missing (None, a string, ...)."""
    return np.array([float(v) if isinstance(v, (int, float)) else math.nan for v in values], dtype=float)


def epoch_column(history: History, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epoch numbers, per-epoch values of ``key``) with NaN where the value is missing."""
    return column(history.per_epoch("epoch")), column(history.per_epoch(key))


def has_values(y: np.ndarray) -> bool:
    """True when ``y`` holds at least one finite number."""
    return bool(np.isfinite(y).any())


def thin(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points that keep the shape: each bucket's min and max, in order."""
    n = len(x)
    if n <= max_points:
        return x, y
    buckets = max_points // 2
    keep: list[int] = []
    for idx in np.array_split(np.arange(n), buckets):
        chunk = y[idx]
        if not np.isfinite(chunk).any():
            keep.append(int(idx[0]))
            continue
        lo, hi = int(idx[np.nanargmin(chunk)]), int(idx[np.nanargmax(chunk)])
        keep.extend(sorted({lo, hi}))
    picked = np.array(keep)
    return x[picked], y[picked]


def step_to_epoch(history: History, steps: Sequence[float]) -> np.ndarray:
    """Fractional epochs of global step numbers (lecture B1: plot against epochs, not iterations)."""
    s = np.asarray(steps, dtype=float)
    table_steps, table_epochs = column(history.steps.get("step", [])), column(history.steps.get("epoch", []))
    if len(table_steps) >= 2:
        return _extrapolate(s, table_steps, table_epochs)
    per_epoch = history.meta.get("steps_per_epoch")
    return s / float(per_epoch) if isinstance(per_epoch, (int, float)) and per_epoch > 0 else s


def _extrapolate(s: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Linear interpolation inside the table and the last slope beyond it (a live series can run ahead)."""
    out = np.interp(s, xs, ys)
    slope = (ys[-1] - ys[0]) / (xs[-1] - xs[0]) if xs[-1] != xs[0] else 0.0
    beyond = s > xs[-1]
    out[beyond] = ys[-1] + (s[beyond] - xs[-1]) * slope
    return out


# --- per-layer series ------------------------------------------------------------------------------------------
def series_by_name(history: History, quantity: QuantityLike,
                   stat: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{layer or parameter: (steps, values)}`` of one stat of a per-layer or per-parameter quantity (default:
    its primary stat), in recording order; series without a finite value are left out."""
    q = get(quantity)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in history.targets(q, stat):
        s = history.series_of(q, stat, name)
        steps, values = column(s.steps), column(s.values)
        n = min(len(steps), len(values))
        if n and has_values(values[:n]):
            out[name] = (steps[:n], values[:n])
    return out


def depth_order(history: History, names: Sequence[str]) -> list[str]:
    """``names`` (layers or their parameters) in forward order, by the monitor's ``layers`` list when it knows
    them, else as given."""
    position: dict[str, tuple[Any, int, int]] = {}
    for i, layer in enumerate(history.layers):
        depth = layer.get("depth", i)
        position.setdefault(str(layer.get("name")), (depth, i, 0))
        for j, param in enumerate(layer.get("params") or []):
            position.setdefault(str(param), (depth, i, j + 1))
    known = sorted((n for n in names if n in position), key=lambda n: position[n])
    return known + [n for n in names if n not in position]


def prefer_activations(history: History, names: Sequence[str]) -> list[str]:
    """Only the activation layers (ReLU, tanh, ...) when the monitor says which they are: the lecture's B5
    plots are of the units' outputs; the linear layers' outputs in between would zigzag."""
    kinds = {str(layer.get("name")): layer.get("kind") for layer in history.layers}
    chosen = [n for n in names if kinds.get(n) == "activation"]
    return chosen or list(names)


def prefer_weights(names: Sequence[str]) -> list[str]:
    """Parameter names without the biases when there are weights (biases have their own, tiny scale)."""
    weights = [n for n in names if not n.endswith("bias")]
    return weights or list(names)


@dataclass(frozen=True)
class DepthProfile:
    """One statistic of every layer at the first and the last sampled step (lecture B5)."""

    names: list[str]
    start: np.ndarray
    end: np.ndarray
    start_step: float
    end_step: float


def depth_profile(history: History, quantity: QuantityLike, stat: str = "std") -> DepthProfile | None:
    """One stat of a per-layer or per-parameter quantity for every layer at the start and at the end of the
    run, in depth order."""
    q = get(quantity)
    found = series_by_name(history, q, stat)
    keep = prefer_weights(list(found)) if q.scope == "parameter" else prefer_activations(history, list(found))
    names = depth_order(history, keep)
    if not names:
        return None
    start = np.array([_first_finite(found[n][1]) for n in names])
    end = np.array([_last_finite(found[n][1]) for n in names])
    start_step = min(float(found[n][0][0]) for n in names)
    end_step = max(float(found[n][0][-1]) for n in names)
    return DepthProfile(names, start, end, start_step, end_step)


def _first_finite(v: np.ndarray) -> float:
    finite = v[np.isfinite(v)]
    return float(finite[0]) if len(finite) else math.nan


def _last_finite(v: np.ndarray) -> float:
    finite = v[np.isfinite(v)]
    return float(finite[-1]) if len(finite) else math.nan


@dataclass(frozen=True)
class Snapshot:
    """One histogram: ``counts`` in the bins ``edges`` at global ``step``."""

    step: float
    edges: np.ndarray
    counts: np.ndarray

    def density(self) -> np.ndarray:
        widths = np.diff(self.edges)
        total = float(self.counts.sum())
        return self.counts / (total * np.where(widths > 0, widths, 1.0)) if total > 0 else self.counts * 0.0


def first_and_last(history: History, quantity: QuantityLike) -> dict[str, tuple[Snapshot, Snapshot]]:
    """``{name: (first, last)}`` snapshots of a histogram quantity, in depth order."""
    q = get(quantity)
    out: dict[str, tuple[Snapshot, Snapshot]] = {}
    for name in history.targets(q):
        good = [_snapshot(s) for s in history.snapshots_of(q, name)]
        good = [s for s in good if s is not None]
        if good:
            out[name] = (good[0], good[-1])
    keep = prefer_weights(list(out)) if q.scope == "parameter" else prefer_activations(history, list(out))
    return {n: out[n] for n in depth_order(history, keep)}


def mass_range(snapshots: Sequence[Snapshot], tail: float = 0.005) -> tuple[float, float]:
    """The x range holding all but ``tail`` of the mass on either side, over all ``snapshots`` (a few
    extreme values would otherwise squeeze the histogram into one bar)."""
    lows, highs = [], []
    for snap in snapshots:
        cdf = np.concatenate([[0.0], np.cumsum(snap.counts)]) / snap.counts.sum()
        lows.append(float(np.interp(tail, cdf, snap.edges)))
        highs.append(float(np.interp(1 - tail, cdf, snap.edges)))
    low, high = min(lows), max(highs)
    if high <= low:
        return float(min(s.edges[0] for s in snapshots)), float(max(s.edges[-1] for s in snapshots))
    pad = 0.04 * (high - low)
    return low - pad, high + pad


def _snapshot(raw: Mapping[str, Any]) -> Snapshot | None:
    edges, counts = column(raw.get("edges", [])), column(raw.get("counts", []))
    if len(edges) != len(counts) + 1 or len(counts) == 0 or not np.isfinite(edges).all():
        return None
    counts = np.nan_to_num(counts, nan=0.0)
    if counts.sum() <= 0:
        return None
    return Snapshot(float(raw.get("step", 0)), edges, counts)


# --- first-layer weights (lecture B6) ------------------------------------------------------------------------
def image_shape(num_features: int, input_shape: Sequence[int] | None = None) -> tuple[int, int, int] | None:
    """(channels, height, width) of one input image, from the data's shape or guessed from a square count."""
    if input_shape is not None and len(input_shape) in (2, 3) and math.prod(input_shape) == num_features:
        shape = tuple(int(s) for s in input_shape)
        return (1, *shape) if len(shape) == 2 else shape  # type: ignore[return-value]
    for channels in (1, 3):
        if num_features % channels == 0:
            side = math.isqrt(num_features // channels)
            if side >= 3 and side * side * channels == num_features:
                return channels, side, side
    return None


def filters(weights: np.ndarray, input_shape: Sequence[int] | None = None) -> np.ndarray | None:
    """First-layer weights as images ``(K, H, W, C)``: a linear layer's rows (K, D) reshaped to the input
    image, or a conv layer's kernels (K, C, kh, kw); None when they are not images (e.g. 2-D points)."""
    w = np.asarray(weights, dtype=float)
    if w.ndim == 2:
        shape = image_shape(w.shape[1], input_shape)
        if shape is None:
            return None
        images = w.reshape(w.shape[0], *shape)
    elif w.ndim == 4 and min(w.shape[2:]) >= 2:
        images = w if w.shape[1] in (1, 3) else w[:, :1]  # many input channels: show the first
    else:
        return None
    return np.transpose(images, (0, 2, 3, 1))


def mosaic(images: np.ndarray, max_images: int = 256, pad: int = 1) -> np.ndarray:
    """Tile ``(K, H, W, C)`` images into one array, each scaled to [0, 1] on its own; NaN between tiles."""
    images = images[:max_images]
    k, h, w, c = images.shape
    cols = min(k, max(4, math.ceil(math.sqrt(k * 1.6))))  # a little wider than square: it suits a page
    rows = math.ceil(k / cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), np.nan)
    for i, img in enumerate(images):
        lo, hi = float(img.min()), float(img.max())
        scaled = (img - lo) / (hi - lo) if hi > lo else np.full_like(img, 0.5)
        r, q = divmod(i, cols)
        out[r * (h + pad): r * (h + pad) + h, q * (w + pad): q * (w + pad) + w] = scaled
    return out[..., 0] if c == 1 else out


# --- search (lecture H) -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    """One trial of a search, as the report reads it."""

    number: int
    params: dict[str, Any]
    value: float
    state: str
    stage: str
    curve: np.ndarray | None
    epochs: str = ""  # the epochs it trained: "5", or "2–5 (continues #7)" for a promoted trial
    parent: int | None = None  # the trial it continued (its curve starts with the parent's)


def trials(search: Mapping[str, Any]) -> list[Trial]:
    """The search's trials with numbers for values (NaN when missing) and their loss curves when given."""
    out = []
    labels = stage_labels(search)
    for i, raw in enumerate(search.get("trials") or []):
        if not isinstance(raw, Mapping):
            continue
        value = raw.get("value")
        curve = raw.get("train_loss")
        stage = raw.get("stage")
        out.append(
            Trial(
                number=int(raw.get("number", i)),
                params=dict(raw.get("params") or {}),
                value=float(value) if isinstance(value, (int, float)) else math.nan,
                state=str(raw.get("state", "complete")).lower(),
                stage=labels.get(stage, "" if stage is None else str(stage)),
                curve=column(curve) if isinstance(curve, Sequence) and len(curve) else None,
                epochs=_epochs_text(raw),
                parent=raw.get("continued_from") if isinstance(raw.get("continued_from"), int) else None,
            )
        )
    return out


def latest_continuations(found: Sequence[Trial]) -> list[Trial]:
    """The trials no other trial continued: a promoted trial's curve holds its parent's epochs and then its
    own, so drawing the parent too would draw those epochs twice."""
    continued = {t.parent for t in found if t.parent is not None}
    return [t for t in found if t.number not in continued]


def _epochs_text(raw: Mapping[str, Any]) -> str:
    """The epochs a trial trained; a trial that continued a shorter one shows which epochs it added."""
    epochs, start, parent = raw.get("epochs"), raw.get("start_epoch") or 0, raw.get("continued_from")
    if not isinstance(epochs, int):
        return ""
    if parent is None or not isinstance(start, int) or start <= 0:
        return str(epochs)
    return f"{start + 1}–{start + epochs} (continues #{parent})"


def stage_labels(search: Mapping[str, Any]) -> dict[Any, str]:
    """Readable names of numbered stages (``1`` -> ``"stage 1 · 1 epoch"``) from the search's ``stages``."""
    labels: dict[Any, str] = {}
    for stage in search.get("stages") or []:
        if isinstance(stage, Mapping) and "index" in stage:
            epochs = stage.get("epochs")
            tail = f" · {epochs} epoch{'s' if epochs != 1 else ''}" if isinstance(epochs, int) else ""
            labels[stage["index"]] = f"stage {stage['index']}{tail}"
    for raw in search.get("trials") or []:
        stage = raw.get("stage") if isinstance(raw, Mapping) else None
        if isinstance(stage, int) and not isinstance(stage, bool) and stage not in labels:
            labels[stage] = f"stage {stage}"
    return labels


LR_KEYS = ("lr", "learning_rate", "optimizer.lr")


def lr_key(params: Sequence[str]) -> str | None:
    """The hyperparameter that is the learning rate, if any."""
    for key in LR_KEYS:
        if key in params:
            return key
    return next((p for p in params if p.endswith(".lr") or p.endswith("_lr")), None)


def declared_log(space: Mapping[str, Any]) -> bool | None:
    """Whether a search space entry says log scale (``{"log": true}`` or ``{"scale": "log"}``), or None."""
    if "log" in space:
        return bool(space["log"])
    scale = space.get("scale")
    return None if scale is None else scale == "log"


def is_log_scale(values: np.ndarray, declared: bool | None = None) -> bool:
    """Log axis for a hyperparameter: as its search space says, else when positive and spanning >= 20x."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0 or (finite <= 0).any():
        return False
    if declared is not None:
        return declared
    return bool(finite.max() / finite.min() >= 20)
