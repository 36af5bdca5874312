"""Bounded storage: device values wait for the epoch's readout, then land in the History with a cap.

Memory cap (documented in the Monitor): each series keeps at most ``max_points`` values; when a series
is full every other point is dropped (the first point, the initialisation, always stays), so old data
thins out and the cost stays ``O(max_points)`` per series however long the run. Histograms keep at most
``max_histograms`` snapshots per key, thinned the same way. Between readouts the pending values are at
most one vector per sampled step of one epoch, plus ``HISTOGRAM_VALUES`` floats per histogram snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from babysit.history import History
from babysit.monitors._stats import Sample, decode

HISTOGRAM_BINS = 30
# Activations with a known range get fixed edges, so snapshots of one layer line up bin by bin.
FIXED_RANGES = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0), "hardtanh": (-1.0, 1.0), "softsign": (-1.0, 1.0)}


@dataclass
class Row:
    """One sampled step: its packed device vector and the specs that decode it."""

    step: int
    specs: list[tuple[str, Any, int, int]]
    scalars: int  # how many of the values are scalars (the rest are vector entries)
    values: Tensor

    @classmethod
    def of(cls, step: int, sample: Sample) -> Row:
        return cls(step, sample.specs, len(sample.scalars), sample.pack())


@dataclass
class Pending:
    """Values of sampled steps still on the device."""

    rows: list[Row] = field(default_factory=list)
    histograms: list[tuple[int, str, str | None, Tensor]] = field(default_factory=list)  # (step, key, act, values)

    def __len__(self) -> int:
        return len(self.rows) + len(self.histograms)


def read_out(pending: Pending, history: History, *, max_points: int, max_histograms: int) -> None:
    """Copy everything pending to the host in one transfer and append it to ``history`` (then clear)."""
    if not len(pending):
        return
    vectors = [row.values for row in pending.rows] + [h[3] for h in pending.histograms]
    flat = torch.cat([v.detach().reshape(-1).to(torch.float64) for v in vectors]).cpu().tolist()  # the one copy
    offset = 0
    for row in pending.rows:
        n = row.values.numel()
        values = flat[offset : offset + n]
        offset += n
        pairs = decode(row.specs, iter(values[: row.scalars]), iter(values[row.scalars :]))
        for key, value in pairs:
            _append(history.series, key, row.step, value, max_points)
    for step, key, activation, values in pending.histograms:
        n = values.numel()
        _append_histogram(history, key, step, activation, np.asarray(flat[offset : offset + n]), max_histograms)
        offset += n
    pending.rows.clear()
    pending.histograms.clear()


def _append(series: dict[str, dict[str, list[float]]], key: str, step: int, value: float, cap: int) -> None:
    column = series.setdefault(key, {"step": [], "value": []})
    column["step"].append(step)
    column["value"].append(value)
    if len(column["step"]) > cap:
        column["step"][:] = column["step"][::2]
        column["value"][:] = column["value"][::2]


def _append_histogram(
    history: History, key: str, step: int, activation: str | None, values: np.ndarray, cap: int
) -> None:
    finite = values[np.isfinite(values)]
    if activation in FIXED_RANGES:
        low, high = FIXED_RANGES[activation]
    elif finite.size:
        low, high = float(finite.min()), float(finite.max())
        if low == high:
            low, high = low - 0.5, high + 0.5
    else:
        low, high = -1.0, 1.0
    # fixed-width bins by index arithmetic: several times faster than np.histogram for 1024 values
    width = (high - low) / HISTOGRAM_BINS
    index = np.clip(((finite - low) / width).astype(np.int64), 0, HISTOGRAM_BINS - 1)
    counts = np.bincount(index, minlength=HISTOGRAM_BINS)
    edges = [low + i * width for i in range(HISTOGRAM_BINS)] + [high]
    snapshots = history.histograms.setdefault(key, [])
    snapshots.append({"step": step, "edges": edges, "counts": counts.tolist()})
    if len(snapshots) > cap:
        snapshots[:] = snapshots[::2]
