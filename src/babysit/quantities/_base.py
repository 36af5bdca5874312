"""The contract of a quantity: a statistic the Monitor records, in two halves that never meet in time.

On a sampled step, :meth:`Quantity.measure` runs on the device and returns a :class:`Measurement`: 0-d
tensors and/or one 1-d tensor, plus a host-side ``context`` (sizes, names). It must not read anything back
(no ``.item()``, ``.cpu()``, ``float(t)``, ``bool(t)``): the Monitor packs every measurement of the step
into one device vector and reads all of an epoch's vectors in one transfer. At that readout,
:meth:`Quantity.reduce` turns the raw floats (plus the context) into ``{stat: value}``. Raw float64 sums are
measured rather than finished statistics because sums are the cheapest kernels and neither overflow nor
underflow; the division happens once, on the host.

A quantity also owns its keys (``keys``: stat -> template, see :mod:`babysit.quantities._keys`), so the
Monitor that writes a series and the rule or figure that reads it agree by construction; renaming a key is
an edit of one class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from babysit.quantities import _keys

if TYPE_CHECKING:
    from torch import Tensor

# What a quantity is computed from: the Monitor hands each family its own source (see _families.py).
SOURCES: tuple[str, ...] = ("activations", "inputs", "outputs", "gradients", "update", "evaluation")
# What one key names: a layer (``act/<layer>/...``), a parameter (``grad/<param>/...``) or the whole model.
SCOPES: tuple[str, ...] = ("layer", "parameter", "model")
STORES: tuple[str, ...] = ("series", "histograms")


class Measurement(NamedTuple):
    """What one quantity measured on the device for one sampled step (nothing read back yet).

    (A NamedTuple: one is made per quantity and layer on every sampled step, and a tuple is the cheapest
    record to make.)

    Attributes:
        scalars: 0-d tensors (any float or integer dtype; packed as float64).
        vector: one 1-d tensor, or None.
        context: host-side values :meth:`Quantity.reduce` needs (element counts, names); never a tensor
            that would have to be read.
    """

    scalars: tuple[Tensor, ...] = ()
    vector: Tensor | None = None
    context: Any = None


class Quantity(ABC):
    """A statistic the Monitor records on sampled steps. Subclass a family (``LayerQuantity``, ...), not this.

    Class attributes:
        name: stable snake_case name (``"dead_fraction"``): what ``Monitor(quantities=...)``, ``skip=`` and a
            rule's ``needs`` refer to.
        needs: the source it is computed from, one of ``SOURCES`` (set by the family).
        scope: what a key names, one of ``SCOPES`` (set by the family or the quantity).
        keys: ``{stat: key template}``; the first stat is the primary one.
        store: ``"series"`` (one number per sampled step) or ``"histograms"`` (a binned snapshot).
        histogram_steps_only: measured only on the sampled steps that keep histograms (for the costlier ones).
    """

    name: ClassVar[str]
    needs: ClassVar[str]
    scope: ClassVar[str]
    keys: ClassVar[Mapping[str, str]]
    store: ClassVar[str] = "series"
    histogram_steps_only: ClassVar[bool] = False

    # --- the two halves -----------------------------------------------------------------------------------
    @abstractmethod
    def measure(self, source: Any) -> Measurement | None:
        """Device half: the raw values of one sampled step (None: nothing to record this time)."""

    @abstractmethod
    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, Any]:
        """Host half: ``{stat: value}`` from the raw floats of :meth:`measure` and its context (``scalars`` as
        Python floats; ``vector`` likewise, or for a ``store = "histograms"`` quantity a float64 numpy array)."""

    def readings(self, target: str | None, scalars: Sequence[float], vector: Sequence[float],
                 context: Any) -> Iterator[tuple[str, Any]]:
        """``(key, value)`` pairs of one measurement (per-parameter families split theirs by name)."""
        for stat, value in self.reduce(scalars, vector, context).items():
            yield self.key(stat, target), value

    # --- keys -----------------------------------------------------------------------------------------------
    @property
    def stats(self) -> tuple[str, ...]:
        return tuple(self.keys)

    @property
    def primary(self) -> str:
        """The stat a bare ``series_of(quantity, target=...)`` means: the first of ``keys``."""
        return next(iter(self.keys))

    def key(self, stat: str | None = None, target: str | None = None) -> str:
        """The key of ``stat`` (default: the primary one) for ``target`` (None for a model-wide quantity)."""
        stat = self.primary if stat is None else stat
        template = self.keys.get(stat)
        if template is None:
            raise ValueError(f"quantity {self.name!r} has no stat {stat!r}; it has: {', '.join(self.keys)}")
        return _keys.build(template, target)

    def parse(self, key: str) -> tuple[str, str | None] | None:
        """``(stat, target)`` when ``key`` is one of this quantity's keys, else None."""
        for stat, template in self.keys.items():
            ok, target = _keys.match(template, key)
            if ok:
                return stat, target
        return None

    def __repr__(self) -> str:
        return f"<quantity {self.name}: {', '.join(self.keys.values())}>"
