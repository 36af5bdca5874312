"""Data for babysit: built-in digits and spiral, scikit-learn's wine and breast-cancer tables (read as CSV), the
generated ``shapes32`` images, the standard library's source as next-character data (``pysource``), ``.npz``/CSV
files and user factories, all as one record.

Every source ends as a :class:`DataBundle`: stratified, seeded train/val(/test) splits, checked
(lengths, labels, NaNs, empty splits) with errors that say how to fix the data, and normalized with
statistics fitted on the training split only.
"""

from __future__ import annotations

from babysit.data._bundle import DataBundle
from babysit.data._dispatch import BUILTIN_SOURCES, load
from babysit.data.arrays import from_arrays
from babysit.data.builtin import make_spiral
from babysit.data.preprocess import apply_normalization
from babysit.data.split import stratified_split, tiny_subset

__all__ = [
    "BUILTIN_SOURCES",
    "DataBundle",
    "apply_normalization",
    "from_arrays",
    "load",
    "make_spiral",
    "stratified_split",
    "tiny_subset",
]
