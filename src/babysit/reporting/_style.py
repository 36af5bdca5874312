"""The look shared by every figure: one palette, one set of matplotlib settings, one way to save.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot, no global figure registry), so
drawing needs no display and leaves no state behind.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib
from cycler import cycler
from matplotlib.figure import Figure

# Colours with a meaning; the same quantity has the same colour in every figure and in the page's CSS.
TRAIN = "#2563eb"
VAL = "#ea580c"
GAP = "#f97316"
DATA = "#2563eb"
REG = "#a855f7"
LR = "#0f766e"
START = "#94a3b8"
END = "#2563eb"
GOOD = "#16a34a"
BAD = "#dc2626"
INK = "#374151"
CYCLE = ["#2563eb", "#ea580c", "#16a34a", "#a855f7", "#0891b2", "#db2777", "#65a30d", "#b45309", "#475569",
         "#7c3aed"]

SINGLE = (6.4, 3.5)  # inches at 100 dpi: one panel, half the page width
WIDE = (11.5, 3.6)  # two or more panels, the whole page width

RC = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.titlecolor": INK,
    "axes.labelsize": 9.5,
    "axes.labelcolor": INK,
    "axes.edgecolor": "#9ca3af",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.prop_cycle": cycler(color=CYCLE),
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8,
    "xtick.color": "#4b5563",
    "ytick.color": "#4b5563",
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "lines.linewidth": 1.8,
    "svg.hashsalt": "babysit",  # stable ids: the same history gives the same SVG
    "svg.fonttype": "path",  # text as shapes: the SVG looks the same without the fonts installed
    "image.interpolation": "nearest",
}


@contextmanager
def style() -> Iterator[None]:
    """Apply the report's matplotlib settings while figures are built and saved."""
    with matplotlib.rc_context(RC):
        yield


def plain(name: object) -> str:
    """A name from a user's model or config, drawn literally: ``$`` would otherwise start math mode."""
    return str(name).replace("$", r"\$")


def new_figure(size: tuple[float, float] = SINGLE) -> Figure:
    """An empty figure with constrained layout, outside pyplot."""
    return Figure(figsize=size, layout="constrained")


def svg_bytes(fig: Figure) -> bytes:
    """The figure as SVG, without the date stamp so the output is reproducible."""
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def svg_data_uri(fig: Figure) -> str:
    """The figure as an ``<img src=...>`` data URI (base64 SVG): inline, no network, opens from disk."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg_bytes(fig)).decode("ascii")
