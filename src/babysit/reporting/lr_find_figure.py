"""The learning-rate range test as a figure: loss against rate on a log axis, with the lecture's reading.

Raw losses faint, the smoothed curve bold; the suggested rate, the rate of the lowest loss and the point
where the loss explodes are marked, and the three regions the lecture names on a loss curve (B2: too low,
good, too high) shaded behind them.
"""

from __future__ import annotations

import math
from typing import Any

from matplotlib.figure import Figure

from babysit.reporting import _style as S


def lr_find_figure(result: Any) -> Figure | None:
    """Draw an :class:`~babysit.train.lr_find.LRFindResult` (or its dict); None when it holds no curve."""
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    lrs = [float(x) for x in data.get("lrs") or []]
    raw = [math.nan if x is None else float(x) for x in data.get("losses") or []]
    smoothed = [math.nan if x is None else float(x) for x in data.get("smoothed") or []]
    if len(lrs) < 2:
        return None
    suggestion, explodes, minimum = data.get("suggestion"), data.get("explodes_at"), data.get("minimum_at")
    with S.style():
        fig = S.new_figure(S.SINGLE)
        ax = fig.subplots()
        ax.plot(lrs, raw, color=S.TRAIN, alpha=0.3, linewidth=0.8, label="loss per step")
        ax.plot(lrs[: len(smoothed)], smoothed, color=S.TRAIN, linewidth=2.2, label="smoothed")
        ax.set_xscale("log")
        _set_ylim(ax, raw, smoothed)
        if suggestion:
            ax.axvspan(lrs[0], suggestion, color=S.START, alpha=0.08, linewidth=0)
            ax.axvline(suggestion, color=S.GOOD, linewidth=2.0, label=f"suggested {suggestion:.2g}")
        if minimum:
            ax.axvline(minimum, color=S.VAL, linewidth=1.2, linestyle="--", label=f"lowest loss {minimum:.2g}")
        if explodes:
            ax.axvspan(explodes, lrs[-1] if lrs[-1] > explodes else explodes * 1.5, color=S.BAD, alpha=0.1,
                       linewidth=0)
            ax.axvline(explodes, color=S.BAD, linewidth=1.6, label=f"explodes {explodes:.2g}")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("training loss")
        name = data.get("optimizer") or ""
        ax.set_title(f"learning-rate range test{f' ({S.plain(name)})' if name else ''}")
        ax.legend(loc="upper left")
    return fig


def _set_ylim(ax: Any, raw: list[float], smoothed: list[float]) -> None:
    """Keep the interesting part in view: an exploding tail would otherwise flatten the rest."""
    finite = [x for x in smoothed if math.isfinite(x)] or [x for x in raw if math.isfinite(x)]
    if not finite:
        return
    low, start = min(finite), finite[0]
    top = max(start, low) * 1.6
    ax.set_ylim(max(0.0, low - 0.1 * (top - low)), top)
