"""Layers grouped by block, so a depth axis of 50+ layers stays readable.

A deep model repeats one block: ``blocks.3.attn.qkv`` and ``blocks.3.mlp.fc1`` are both in ``blocks.3``,
``layer2.1.conv1`` is in ``layer2.1`` (torchvision), ``transformer.h.5.mlp.c_fc`` in ``transformer.h.5``
(Hugging Face). The block is the module path up to its first numbered part; a layer outside any numbered
container (a stem, a final norm, a head) is grouped with its un-numbered neighbours. The depth figures put
one tick per block instead of one per layer, and never more than ``MAX_TICKS`` labels on an axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MAX_TICKS = 20  # labels on one depth axis at most: more overlap at the page's width
PER_LAYER = 16  # up to this many layers each gets its own tick (small models read as they did)


@dataclass(frozen=True)
class Block:
    """Consecutive layers (positions ``start`` to ``stop - 1`` on the depth axis) of one block."""

    label: str
    start: int
    stop: int

    @property
    def centre(self) -> float:
        return (self.start + self.stop - 1) / 2


def block_of(name: str) -> str | None:
    """The module path of ``name``'s block: up to its first numbered part that is not the leaf itself
    (``blocks.3.attn.qkv`` -> ``blocks.3``, ``layer2.1.conv1.weight`` -> ``layer2.1``), None outside one."""
    parts = name.split("#")[0].split(".")
    for i, part in enumerate(parts[:-1]):
        if part.isdigit():
            return ".".join(parts[: i + 1])
    return None


def blocks(names: Sequence[str]) -> list[Block]:
    """``names`` (in depth order) cut into runs of the same block; un-numbered neighbours form one run."""
    out: list[Block] = []
    start = 0
    for i in range(1, len(names) + 1):
        if i == len(names) or block_of(names[i]) != block_of(names[start]):
            out.append(Block(_label(names[start:i]), start, i))
            start = i
    return out


def _label(names: Sequence[str]) -> str:
    """A run's name: its block, or for layers outside blocks their common prefix (``stem``), else the first."""
    block = block_of(names[0])
    if block is not None:
        return block
    if len(names) == 1:
        return names[0]
    first, last = min(names), max(names)  # the common prefix of all is that of the extremes
    size = next((i for i, (a, b) in enumerate(zip(first, last)) if a != b), min(len(first), len(last)))
    return first[:size].rstrip("._") or f"{names[0].split('.')[0]}…"


@dataclass(frozen=True)
class DepthTicks:
    """Where a depth axis puts its labels, and the block boundaries to draw (empty: one tick per layer)."""

    positions: list[float]
    labels: list[str]
    boundaries: list[float]

    @property
    def grouped(self) -> bool:
        return bool(self.boundaries)


def depth_ticks(names: Sequence[str], max_ticks: int = MAX_TICKS) -> DepthTicks:
    """One tick per layer for a small model; for a deep one one tick per block (every k-th block when there
    are more than ``max_ticks``), with the block boundaries; at most ``max_ticks`` labels either way."""
    names = list(names)
    if len(names) <= PER_LAYER:
        return DepthTicks([float(i) for i in range(len(names))], names, [])
    runs = blocks(names)
    if len(runs) == len(names):  # nothing to group by (a flat Sequential): every k-th layer
        k = math.ceil(len(names) / max_ticks)
        return DepthTicks([float(i) for i in range(0, len(names), k)], names[::k], [])
    k = math.ceil(len(runs) / max_ticks)
    shown = runs[::k]
    return DepthTicks([b.centre for b in shown], [b.label for b in shown], [b.start - 0.5 for b in runs[1:]])


def extremes(values: Sequence[float]) -> list[tuple[int, str]]:
    """The layers with the smallest and the largest finite value, as (position, "lowest"|"highest"): the
    depth figure names them, since a deep model's axis labels only its blocks."""
    finite = [(float(v), i) for i, v in enumerate(values) if math.isfinite(v) and v > 0]
    if len(finite) < 2:
        return []
    low, high = min(finite)[1], max(finite)[1]
    return [(low, "lowest"), (high, "highest")] if low != high else []
