"""The values of one sampled step: device measurements packed into one vector, decoded by their quantities.

A :class:`Sample` collects, for one sampled step, what each quantity measured (0-d tensors and 1-d vectors,
see :class:`babysit.quantities.Measurement`) without reading any of it, plus a host-side :class:`Spec` per
measurement. At the step's end they are stacked into one float64 device vector that waits for the epoch's
readout (one transfer for the whole epoch), where :func:`decode` hands each quantity back its own raw
floats and context and it reduces them (the formulas live with the quantities, :mod:`babysit.quantities`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from babysit.quantities import Measurement, Quantity
from babysit.quantities._families import first_tensor
from babysit.quantities._numbers import F64

__all__ = ["Sample", "Spec", "decode", "first_tensor"]


class Spec(NamedTuple):
    """How to read one measurement back: whose it is, for which target, and how many values it took."""

    quantity: Quantity
    target: str | None
    context: Any
    scalars: int
    vector: int


class Sample:
    """Device values of one sampled step, in order, and the specs that decode them.

    ``scalars`` are 0-d tensors (stacked at the end), ``vectors`` 1-d ones (concatenated after them).
    """

    __slots__ = ("scalars", "specs", "vectors")

    def __init__(self) -> None:
        self.scalars: list[Tensor] = []
        self.vectors: list[Tensor] = []
        self.specs: list[Spec] = []

    def add(self, quantity: Quantity, target: str | None, measured: Measurement | None) -> None:
        """Keep what ``quantity`` measured for ``target`` (nothing, when it measured nothing)."""
        if measured is None:
            return
        if not isinstance(measured, Measurement):
            raise TypeError(f"quantity {quantity.name!r}: measure() must return a babysit.quantities.Measurement "
                            f"or None, got {type(measured).__name__}")
        scalars, vector = measured.scalars, measured.vector
        if scalars:
            self.scalars.extend(scalars)
        size = 0
        if vector is not None:
            self.vectors.append(vector)
            size = vector.numel()  # shape metadata: no device read
        self.specs.append(Spec(quantity, target, measured.context, len(scalars), size))

    def extend(self, other: Sample) -> None:
        self.scalars += other.scalars
        self.vectors += other.vectors
        self.specs += other.specs

    def pack(self) -> Tensor:
        """All values as one float64 device vector: the scalars stacked, then the vectors."""
        # cat promotes floating dtypes exactly (float32 and bfloat16 into float64 lose nothing); integer vectors
        # are made float64 first, so a large count is not rounded to float32 on the way
        parts = ([torch.stack(self.scalars)] if self.scalars else []) + \
            [v if v.is_floating_point() else v.to(F64) for v in self.vectors]
        return torch.cat(parts).to(F64)  # cat makes a new tensor even for one part: a row never aliases a live one


def decode(specs: Sequence[Spec], scalars: np.ndarray, vectors: np.ndarray) -> Iterator[tuple[Quantity, str, Any]]:
    """``(quantity, key, value)`` of every measurement, in the order the specs were written: each quantity
    reduces its own raw floats (a value is a float for a series, a binned snapshot for a histogram).

    ``scalars`` and ``vectors`` are one row's float64 values on the host. A series quantity gets Python floats;
    a histogram quantity gets its vector as a numpy array (binned as it is, never made a list of 1,024 floats).
    """
    i = j = 0
    for spec in specs:
        raw_scalars = scalars[i : i + spec.scalars].tolist()
        raw_vector = vectors[j : j + spec.vector]
        i += spec.scalars
        j += spec.vector
        quantity = spec.quantity
        for key, value in quantity.readings(spec.target, raw_scalars,
                                            raw_vector if quantity.store == "histograms" else raw_vector.tolist(),
                                            spec.context):
            yield quantity, key, value
