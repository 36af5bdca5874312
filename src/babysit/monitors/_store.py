"""Bounded storage: device values wait for the epoch's readout, then land in the History with a cap.

Memory cap (documented in the Monitor): each series keeps at most ``max_points`` values; when a series
is full every other point is dropped (the first point, the initialisation, always stays), so old data
thins out and the cost stays ``O(max_points)`` per series however long the run. Histograms keep at most
``max_histograms`` snapshots per key, thinned the same way (the newest kept too). Between readouts the
pending values are at most one vector per sampled step of one epoch (histogram snapshots included:
``HISTOGRAM_VALUES`` floats each).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from babysit.history import History
from babysit.monitors._stats import Sample, Spec, decode


@dataclass
class Row:
    """One sampled step: its packed device vector and the specs that decode it."""

    step: int
    specs: list[Spec]
    scalars: int  # how many of the values are scalars (the rest are vector entries)
    values: Tensor

    @classmethod
    def of(cls, step: int, sample: Sample) -> Row:
        return cls(step, sample.specs, len(sample.scalars), sample.pack())


@dataclass
class Pending:
    """Values of sampled steps still on the device."""

    rows: list[Row] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


def read_out(pending: Pending, history: History, *, max_points: int, max_histograms: int) -> None:
    """Copy everything pending to the host in one transfer and append it to ``history`` (then clear)."""
    if not pending.rows:
        return
    flat = torch.cat([row.values.reshape(-1) for row in pending.rows]).detach()  # a quantity of yours may not be
    ranks = [values.numpy() for values in _gathered(flat)]  # the one copy (every row is float64 already)
    offset = 0
    for row in pending.rows:
        n = row.values.numel()
        decoded = [decode(row.specs, v[offset : offset + row.scalars], v[offset + row.scalars : offset + n])
                   for v in ranks]
        offset += n
        for items in zip(*decoded):
            quantity, key, value = items[0]
            if quantity.store == "histograms":  # rank 0's snapshot: values of different examples do not average
                _append_histogram(history, key, row.step, value, max_histograms)
            else:
                _append(history.series, key, row.step, value if len(items) == 1 else _mean(items), max_points)
    pending.rows.clear()


def _gathered(flat: torch.Tensor) -> list[torch.Tensor]:
    """This process's packed values, or under DistributedDataParallel every process's (one all_gather at the
    readout, rank 0's first; every process reads out at the same moments, so the packings match)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [flat.cpu()]
    parts = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, flat)
    return [p.cpu() for p in parts]


def _mean(items: tuple[tuple[Any, str, float], ...]) -> float:
    """The mean over processes of one reading (a NaN on any process stays visible)."""
    return sum(value for _, _, value in items) / len(items)


def _append(series: dict[str, dict[str, list[float]]], key: str, step: int, value: float, cap: int) -> None:
    column = series.setdefault(key, {"step": [], "value": []})
    column["step"].append(step)
    column["value"].append(value)
    if len(column["step"]) > cap:
        column["step"][:] = column["step"][::2]
        column["value"][:] = column["value"][::2]


def _append_histogram(history: History, key: str, step: int, snapshot: dict[str, Any], cap: int) -> None:
    snapshots = history.histograms.setdefault(key, [])
    snapshots.append({"step": step, **snapshot})
    if len(snapshots) > cap:  # thinned, the first and the newest kept (the run's last may be the newest)
        snapshots[:] = [*snapshots[:-1:2], snapshots[-1]]
