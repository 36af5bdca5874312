"""One pure function per figure of the report: a History (or a search record) in, a matplotlib Figure out.

Each function returns ``None`` when the run holds no data for its figure (the report then leaves the
figure out), never an empty plot. The numbers come from ``_compute``; this module only decides how
they look. Lecture items: loss (B1, B2), accuracy (B3), update/weight ratios (B4), distributions and
their spread through depth (B5), first-layer filters (B6), data vs regularization loss (G8), the
learning-rate schedule (A1-A3) and the search (H2-H5).

Example:
    >>> import babysit
    >>> from babysit.reporting import figures
    >>> h = babysit.History(epochs=[{"epoch": 1, "train_loss": 2.1, "train_acc": 0.3},
    ...                             {"epoch": 2, "train_loss": 1.2, "train_acc": 0.6}])
    >>> fig = figures.loss_curves(h)
    >>> [ax.get_yscale() for ax in fig.axes]
    ['linear', 'log']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from babysit.history import History
from babysit.quantities import (
    ActivationHistogram,
    ActivationMoments,
    DeadFraction,
    GradientHistogram,
    GradientStd,
    Quantity,
    UpdateRatio,
)
from babysit.reporting import _blocks as B
from babysit.reporting import _compute as C
from babysit.reporting import _style as S

__all__ = [
    "HEALTHY_RATIO",
    "HEALTHY_RATIO_BAND",
    "accuracy_gap",
    "activation_histograms",
    "first_layer_filters",
    "gradient_histograms",
    "loss_by_learning_rate",
    "loss_curves",
    "loss_parts",
    "lr_schedule",
    "search_contour",
    "search_importance",
    "search_scatter",
    "std_by_depth",
    "update_ratios",
]

HEALTHY_RATIO = 1e-3  # lecture B4: norm(update) / norm(W) of about 1e-3 is healthy
HEALTHY_RATIO_BAND = (3e-4, 3e-3)  # half a decade either side, drawn as a band
MAX_PANELS = 8  # per-layer small multiples: at most this many layers, spread over the depth


# --- B1, B2: the loss ------------------------------------------------------------------------------------------
def loss_curves(history: History) -> Figure | None:
    """Loss against epochs on a linear and a log axis: per-step loss faint, per-epoch mean bold, validation
    loss at each epoch's end (lecture B1, B2). With L2 regularization the training data loss is drawn too,
    since the validation loss has no regularization term to compare with."""
    sx, sy = C.step_to_epoch(history, history.steps.get("step", [])), C.column(history.steps.get("loss", []))
    ex, train = C.epoch_column(history, "train_loss")
    _, data = C.epoch_column(history, "data_loss")
    _, val = C.epoch_column(history, "val_loss")
    if not (C.has_values(sy) or C.has_values(train)):
        return None
    with_reg = C.has_values(data) and bool(np.nanmax(np.abs(train - data)) > 1e-9)
    total = "train, data + reg" if with_reg else "train"
    with S.style():
        fig = S.new_figure(S.WIDE)
        axes = fig.subplots(1, 2)
        for ax, scale in zip(axes, ("linear", "log")):
            if C.has_values(sy):
                tx, ty = C.thin(sx, sy)
                ax.plot(tx, ty, color=S.TRAIN, alpha=0.28, linewidth=0.8, label=f"{total}, per step")
            if C.has_values(train):  # an epoch's mean belongs to the middle of the epoch
                ax.plot(ex - 0.5, train, color=S.TRAIN, linewidth=2.4, marker="o", markersize=3.5,
                        label=f"{total}, epoch mean")
            if with_reg:
                ax.plot(ex - 0.5, data, color=S.TRAIN, linewidth=1.6, linestyle="--", label="train, data loss")
            if C.has_values(val):
                ax.plot(ex, val, color=S.VAL, linewidth=2.0, marker="o", markersize=3.5, label="validation")
            ax.set_yscale(scale)
            if scale == "log":
                _readable_log(ax)
            _epoch_axis(ax)
            ax.set_ylabel("loss")
            ax.set_title(f"loss ({scale} scale)")
            ax.set_xlim(left=0)
            _mark_divergence(ax, history, sx, sy)
        _clip_linear_spikes(axes[0], sy if C.has_values(sy) else train)
        axes[0].legend(loc="upper right")
    return fig


def _clip_linear_spikes(ax: Any, y: np.ndarray) -> None:
    """On the linear axis a single exploding step would flatten everything else: cap the view."""
    finite = y[np.isfinite(y)]
    if len(finite) > 10:
        top = float(np.percentile(finite, 99.5)) * 1.15
        if top < float(finite.max()):
            ax.set_ylim(bottom=min(0.0, float(finite.min())), top=top)


def _mark_divergence(ax: Any, history: History, sx: np.ndarray, sy: np.ndarray) -> None:
    if history.status != "diverged" or not len(sx):
        return
    ax.axvline(sx[-1], color=S.BAD, linestyle="--", linewidth=1.2)
    ax.annotate("diverged", (sx[-1], 1.0), xycoords=("data", "axes fraction"), color=S.BAD,
                ha="right", va="top", xytext=(-4, -4), textcoords="offset points")


def loss_by_learning_rate(search: Mapping[str, Any]) -> Figure | None:
    """The lecture's overlay of loss curves for several learning rates (B2): one line per trial, coloured by
    its learning rate on a log colour scale. Needs trials with a ``train_loss`` list (per epoch). A trial a
    later stage continued is drawn once, as its continuation; a one-epoch trial is a dot."""
    everything = [t for t in C.trials(search) if t.curve is not None and C.has_values(t.curve)]
    found = C.latest_continuations(everything)
    if len(found) < 2:
        return _val_curves_by_learning_rate(search)
    key = C.lr_key(sorted({p for t in found for p in t.params}))
    lrs = np.array([float(t.params[key]) if key and isinstance(t.params.get(key), (int, float)) else math.nan
                    for t in found])
    with S.style():
        fig = S.new_figure(S.SINGLE)
        ax = fig.subplots()
        use_lr = bool(np.isfinite(lrs).all() and (lrs > 0).all() and lrs.max() > lrs.min())
        norm = LogNorm(lrs.min(), lrs.max()) if use_lr else Normalize(0, max(1, len(found) - 1))
        cmap = _lr_colormap()
        top = _loss_cap(found)
        for i, t in enumerate(found):
            colour = cmap(norm(lrs[i] if use_lr else i))
            x = np.arange(1, len(t.curve) + 1)
            exploded = not np.isfinite(t.curve).all() or float(np.nanmax(t.curve)) > top
            y = np.where(np.isfinite(t.curve), np.minimum(t.curve, top), top)  # exploded runs run along the top
            ax.plot(x, y, color=colour, linewidth=1.4, alpha=0.9, linestyle="--" if exploded else "-",
                    marker="o" if len(x) == 1 else None, markersize=4)
            if exploded:
                alone = len(x) == 1  # a dot at epoch 1: its label goes right of it, off the axis
                ax.annotate("exploded", (x[-1], top), xytext=(5 if alone else -2, -3), textcoords="offset points",
                            ha="left" if alone else "right", va="top", fontsize=8, color=colour)
        ax.set_yscale("log")
        _readable_log(ax)
        _epoch_axis(ax)
        ax.set_ylabel("training loss")
        merged = len(everything) - len(found)
        ax.set_title(f"training loss of {len(found)} trials" + (" by learning rate" if use_lr else "")
                     + (f" · {merged} continued ones merged" if merged else ""))
        if use_lr:
            bar = fig.colorbar(_mappable(cmap, norm), ax=ax, pad=0.01)
            bar.set_label(S.plain(key))
    return fig


def _val_curves_by_learning_rate(search: Mapping[str, Any]) -> Figure | None:
    """Without loss curves: the validation accuracy each trial reported per epoch (``curve``), by lr."""
    raw = [t for t in search.get("trials") or [] if isinstance(t, Mapping)]
    curves = [(t, C.column(t.get("curve") or [])) for t in raw]
    curves = [(t, c) for t, c in curves if C.has_values(c)]
    key = C.lr_key(sorted({p for t, _ in curves for p in (t.get("params") or {})}))
    lrs = np.array([float((t.get("params") or {}).get(key, math.nan)) if key else math.nan for t, _ in curves])
    if len(curves) < 2 or not (np.isfinite(lrs).all() and (lrs > 0).all() and lrs.max() > lrs.min()):
        return None
    with S.style():
        fig = S.new_figure(S.SINGLE)
        ax = fig.subplots()
        norm, cmap = LogNorm(lrs.min(), lrs.max()), _lr_colormap()
        for (_, c), lr in zip(curves, lrs):
            ax.plot(np.arange(1, len(c) + 1), 100 * c, color=cmap(norm(lr)), linewidth=1.3, alpha=0.85,
                    marker="o", markersize=2.5)
        _epoch_axis(ax)
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title(f"validation accuracy of {len(curves)} trials by learning rate")
        fig.colorbar(_mappable(cmap, norm), ax=ax, pad=0.01).set_label(S.plain(key))
    return fig


def _loss_cap(found: Sequence[C.Trial]) -> float:
    """Exploding trials would stretch the axis over many decades: cap it at 3x the typical first loss."""
    firsts = [float(t.curve[np.isfinite(t.curve)][0]) for t in found]
    return 3.0 * float(np.median(firsts))


# --- B3: accuracy --------------------------------------------------------------------------------------------------
def accuracy_gap(history: History) -> Figure | None:
    """Training vs validation accuracy per epoch with the gap between them shaded (lecture B3)."""
    ex, train = C.epoch_column(history, "train_acc")
    _, val = C.epoch_column(history, "val_acc")
    _, ema = C.epoch_column(history, "val_acc_ema")
    if not C.has_values(train):
        return None
    with S.style():
        fig = S.new_figure(S.SINGLE)
        ax = fig.subplots()
        ax.plot(ex, 100 * train, color=S.TRAIN, marker="o", markersize=3.5, label="train")
        if C.has_values(val):
            ax.plot(ex, 100 * val, color=S.VAL, marker="o", markersize=3.5, label="validation")
            ax.fill_between(ex, 100 * val, 100 * train, where=train >= val, interpolate=True, color=S.GAP,
                            alpha=0.16, linewidth=0, label="gap (overfitting)")
            _annotate_gap(ax, ex, train, val)
            best = history.best_epoch
            if best is not None:
                ax.plot([best["epoch"]], [100 * best["val_acc"]], marker="*", markersize=13, color=S.VAL,
                        markeredgecolor="white", linestyle="none", label=f"best: epoch {best['epoch']}")
        if C.has_values(ema):
            ax.plot(ex, 100 * ema, color=S.VAL, linestyle=":", linewidth=1.6, label="validation, weight average")
        classes = (history.meta.get("data") or {}).get("num_classes")
        lowest = float(np.nanmin(np.concatenate([train, val])))
        if isinstance(classes, int) and classes > 1 and lowest < 2 / classes:  # near chance: show where it is
            ax.axhline(100 / classes, color="#9ca3af", linestyle="--", linewidth=1, label="chance")
        _epoch_axis(ax)
        ax.set_ylabel("accuracy (%)")
        ax.set_title("train vs validation accuracy")
        ax.legend(loc="best")
    return fig


def _annotate_gap(ax: Any, ex: np.ndarray, train: np.ndarray, val: np.ndarray) -> None:
    ok = np.isfinite(train) & np.isfinite(val)
    if not ok.any():
        return
    i = int(np.flatnonzero(ok)[-1])
    gap = 100 * (train[i] - val[i])
    ax.annotate(f"gap {gap:+.1f} pts", (ex[i], 100 * min(train[i], val[i])), xytext=(-6, -6),
                textcoords="offset points", ha="right", va="top", color=S.INK, fontsize=8.5)


# --- B4: update / weight ratios -----------------------------------------------------------------------------------
def update_ratios(history: History) -> Figure | None:
    """norm(update) / norm(W) per parameter tensor over epochs on a log axis, with the healthy band around
    1e-3 (lecture B4). With many parameters: ten weights spread from the first layer to the last, no biases."""
    found = C.series_by_name(history, UpdateRatio, "ratio")
    names = list(found) if len(found) <= 10 else _spread(C.depth_order(history, C.prefer_weights(list(found))), 10)
    if not names:
        return None
    with S.style():
        fig = S.new_figure(S.SINGLE)
        ax = fig.subplots()
        ax.axhspan(*HEALTHY_RATIO_BAND, color=S.GOOD, alpha=0.10, linewidth=0, label="healthy (about 1e-3)")
        ax.axhline(HEALTHY_RATIO, color=S.GOOD, linestyle="--", linewidth=1)
        layers = list(dict.fromkeys(n.rpartition(".")[0] for n in names))  # one colour per layer
        for name in names:
            steps, values = found[name]
            x, y = C.thin(C.step_to_epoch(history, steps), np.where(values > 0, values, np.nan))
            colour = S.CYCLE[layers.index(name.rpartition(".")[0]) % len(S.CYCLE)]
            ax.plot(x, y, color=colour, linewidth=1.5, linestyle="--" if name.endswith("bias") else "-",
                    marker="o" if len(x) < 3 else None, markersize=4, label=S.plain(name))  # a lone point shows
        ax.set_yscale("log")
        _epoch_axis(ax)
        ax.set_ylabel("update / weight")
        ax.set_title("update-to-weight ratio per parameter")
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return fig


# --- B5: distributions and their spread through depth ---------------------------------------------------------
def activation_histograms(history: History) -> Figure | None:
    """Each layer's activation distribution at the start and at the end of training (lecture B5)."""
    return _histograms(history, ActivationHistogram, "activation")


def gradient_histograms(history: History) -> Figure | None:
    """Each layer's gradient distribution at the start and at the end of training (lecture B5)."""
    return _histograms(history, GradientHistogram, "gradient")


def _histograms(history: History, quantity: type[Quantity], what: str) -> Figure | None:
    found = C.first_and_last(history, quantity)
    dead_units = C.series_by_name(history, DeadFraction, "dead") if quantity.scope == "layer" else {}
    names = _spread(list(found), MAX_PANELS)
    if not names:
        return None
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    with S.style():
        fig = S.new_figure((min(S.WIDE[0], 2.9 * cols + 0.4), 2.7 * rows + 0.6))
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
        for ax, name in zip(axes, names):
            first, last = found[name]
            if last.step > first.step:
                ax.stairs(first.density(), first.edges, fill=True, color=S.START, alpha=0.45,
                          label=f"start (step {first.step:g})")
            ax.stairs(last.density(), last.edges, color=S.END, linewidth=1.6,
                      label=f"end (step {last.step:g})" if last.step > first.step else f"step {last.step:g}")
            ax.set_xlim(*C.mass_range([first, last]))
            ax.set_title(S.plain(name), fontsize=9.5)
            dead = dead_units.get(name)
            if dead is not None:
                ax.annotate(f"dead units: {100 * dead[1][-1]:.0f}%", (0.98, 0.72), xycoords="axes fraction",
                            ha="right", fontsize=7.5, color=S.INK)
            ax.set_yticks([])
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))  # small gradients' long labels would overlap
            ax.tick_params(axis="x", labelsize=8)
        for ax in axes[len(names):]:
            ax.set_visible(False)
        axes[0].legend(loc="upper right", fontsize=7.5)
        shown = f" ({len(names)} of {len(found)}, spread over the depth)" if len(names) < len(found) else ""
        fig.suptitle(f"{what} distributions per layer{shown}", fontsize=10.5, fontweight="bold", color=S.INK)
    return fig


def _spread(names: list[str], k: int) -> list[str]:
    """At most ``k`` names spread evenly from the first to the last (depth order kept)."""
    if len(names) <= k:
        return names
    return [names[round(i * (len(names) - 1) / (k - 1))] for i in range(k)]


def std_by_depth(history: History) -> Figure | None:
    """The standard deviation of activations and gradients against depth, at the start and at the end
    (lecture B5: it should stay similar from layer to layer, not shrink or grow). A deep model's axis is
    labelled by block (``blocks.3``, ``layer2.1``), its panels stacked full width, and the layers with the
    lowest and highest spread at the end named on the plot."""
    panels = [(prof, title) for quantity, title in ((ActivationMoments, "activations"), (GradientStd, "gradients"))
              if (prof := C.depth_profile(history, quantity, "std")) is not None]
    if not panels:
        return None
    deep = max(len(prof.names) for prof, _ in panels) > B.PER_LAYER
    with S.style():
        if deep:
            fig = S.new_figure((S.WIDE[0], 3.9 * len(panels) + 0.3))
            axes = np.atleast_1d(fig.subplots(len(panels), 1))
        else:
            fig = S.new_figure(S.WIDE if len(panels) == 2 else S.SINGLE)
            axes = np.atleast_1d(fig.subplots(1, len(panels)))
        for ax, (prof, title) in zip(axes, panels):
            _depth_panel(ax, prof, title)
    return fig


def _depth_panel(ax: Any, prof: C.DepthProfile, title: str) -> None:
    x = np.arange(len(prof.names))
    many = len(prof.names) > B.PER_LAYER
    marker = {"marker": "o", "markersize": 3 if many else 6}
    ax.plot(x, prof.start, color=S.START, linewidth=1.8, label=f"start (step {prof.start_step:g})", **marker)
    ax.plot(x, prof.end, color=S.END, linewidth=2.0, label=f"end (step {prof.end_step:g})", **marker)
    ticks = B.depth_ticks(prof.names)
    slanted = len(ticks.labels) > 4
    ax.set_xticks(ticks.positions, [S.plain(n) for n in ticks.labels], rotation=35 if slanted else 0,
                  ha="right" if slanted else "center", rotation_mode="anchor", fontsize=7.5 if many else 8)
    for edge in ticks.boundaries:
        ax.axvline(edge, color="#d1d5db", linewidth=0.6, zorder=0)
    ax.set_xlim(-0.6, len(x) - 0.4)
    finite = np.concatenate([prof.start, prof.end])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if len(finite) and finite.max() / finite.min() > 20:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    if many:
        for i, which in B.extremes(prof.end):
            ax.annotate(f"{which}: {S.plain(prof.names[i])}", (x[i], prof.end[i]), xytext=(0, 7 if which ==
                        "highest" else -11), textcoords="offset points", ha="center", fontsize=7.5, color=S.INK)
    blocks = f", {len(B.blocks(prof.names))} blocks" if ticks.grouped else ""
    ax.set_xlabel(f"layer (input → output; {len(prof.names)} layers{blocks})" if many else "layer (input → output)")
    ax.set_ylabel("standard deviation")
    ax.set_title(f"{title}: spread through depth")
    ax.legend(loc="best")


# --- B6: first-layer weights -------------------------------------------------------------------------------------
def first_layer_filters(
    weights: Any, input_shape: Sequence[int] | None = None, name: str = "first layer"
) -> Figure | None:
    """The first layer's weights as a grid of images, each scaled on its own (lecture B6): a linear layer's
    rows reshaped to the input image (digits: 8x8), or a conv layer's kernels. None when not images."""
    images = C.filters(np.asarray(weights), input_shape)
    if images is None or len(images) == 0:
        return None
    grid = C.mosaic(images)
    k, h, w, _ = images.shape
    shown = min(k, 256)
    with S.style():
        height = min(5.5, max(2.2, 6.4 * grid.shape[0] / grid.shape[1] + 0.6))
        fig = S.new_figure((6.4, height))
        ax = fig.subplots()
        cmap = _colormap("gray").with_extremes(bad="white")
        ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1)
        ax.set_axis_off()
        more = f", first {shown} of {k}" if shown < k else ""
        ax.set_title(f"{S.plain(name)}: {k} filters of {h}x{w}{more}")
    return fig


# --- G8: data vs regularization loss; A: the schedule --------------------------------------------------------------
def loss_parts(history: History) -> Figure | None:
    """The data loss and the L2 regularization loss per epoch, stacked, so one cannot hide the other (G8)."""
    ex, data = C.epoch_column(history, "data_loss")
    _, reg = C.epoch_column(history, "reg_loss")
    if not C.has_values(data):
        return None
    reg = np.nan_to_num(reg, nan=0.0)
    with S.style():
        fig = S.new_figure(S.SINGLE)
        ax = fig.subplots()
        if (reg > 0).any():
            ax.fill_between(ex, 0, data, color=S.DATA, alpha=0.25, linewidth=0)
            ax.fill_between(ex, data, data + reg, color=S.REG, alpha=0.25, linewidth=0)
            ax.plot(ex, data, color=S.DATA, marker="o", markersize=3, label="data loss")
            ax.plot(ex, data + reg, color=S.REG, marker="o", markersize=3, label="data + regularization")
            share = reg[-1] / (data[-1] + reg[-1]) if data[-1] + reg[-1] > 0 else math.nan
            ax.set_title(f"data vs regularization loss (reg {100 * share:.0f}% at the end)")
        else:
            ax.plot(ex, data, color=S.DATA, marker="o", markersize=3, label="data loss")
            ax.set_title("data loss (no regularization: reg = 0)")
        ax.set_ylim(bottom=0)
        _epoch_axis(ax)
        ax.set_ylabel("loss")
        ax.legend(loc="upper right")
    return fig


def lr_schedule(history: History) -> Figure | None:
    """The learning rate at every step (and the momentum when it is annealed) against epochs (A1-A3, U2)."""
    x, lr = C.step_to_epoch(history, history.steps.get("step", [])), C.column(history.steps.get("lr", []))
    if not C.has_values(lr):
        x, lr = C.epoch_column(history, "lr")
        x = x - 1  # an epoch's rate holds from its start
    if not C.has_values(lr):
        return None
    with S.style():
        fig = S.new_figure(S.SINGLE)
        ax = fig.subplots()
        x, lr = C.thin(x, lr)
        ax.plot(x, lr, color=S.LR, drawstyle="steps-post", linewidth=2, label="learning rate")
        finite = lr[np.isfinite(lr) & (lr > 0)]
        if len(finite) and finite.max() / finite.min() > 10:
            ax.set_yscale("log")
        else:
            ax.set_ylim(0, 1.15 * float(np.nanmax(lr)))
        _epoch_axis(ax)
        ax.set_ylabel("learning rate")
        constant = len(finite) and finite.max() == finite.min()
        ax.set_title("learning-rate schedule" + (f" (constant {finite[0]:.3g})" if constant else ""))
        ex, mom = C.epoch_column(history, "momentum")
        if C.has_values(mom) and np.nanmax(mom) - np.nanmin(mom) > 1e-9:
            twin = ax.twinx()
            twin.plot(ex - 1, mom, color=S.REG, drawstyle="steps-post", linewidth=1.5, label="momentum")
            twin.set_ylabel("momentum")
            twin.grid(False)
            fig.legend(loc="upper right", bbox_to_anchor=(0.9, 0.9))
    return fig


# --- H: the search ---------------------------------------------------------------------------------------------------
STAGE_COLOURS = {"coarse": "#94a3b8", "fine": S.TRAIN}


def _stage_colour(k: int, n: int) -> Any:
    """Numbered stages from light (coarse) to dark (fine)."""
    return _colormap("Blues")(0.35 + 0.6 * k / max(1, n - 1)) if n > 1 else S.TRAIN


def search_scatter(search: Mapping[str, Any]) -> Figure | None:
    """Validation accuracy against each hyperparameter (log axes for scale-like ones, H2), coarse and fine
    stages apart (H5), the best trial starred and the range edges drawn (H4)."""
    found = [t for t in C.trials(search) if np.isfinite(t.value)]
    names = sorted({p for t in found for p, v in t.params.items() if isinstance(v, (int, float, str, bool))})
    if not found or not names:
        return None
    space = search.get("space") or {}
    best = max(found, key=lambda t: t.value)
    stages = list(dict.fromkeys(t.stage for t in found))
    cols = min(len(names), 4)
    rows = math.ceil(len(names) / cols)
    with S.style():
        fig = S.new_figure((min(S.WIDE[0], 3.2 * cols + 0.6), 3.0 * rows + 0.5))
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
        for ax, name in zip(axes, names):
            _search_panel(ax, name, found, stages, best, space.get(name) or {})
        for ax in axes[len(names):]:
            ax.set_visible(False)
        axes[0].set_ylabel(S.plain(search.get("metric", "validation accuracy")))
        if len(stages) > 1 or stages != [""]:
            axes[0].legend(loc="best", fontsize=7.5)
        fig.suptitle(f"search: {len(found)} trials", fontsize=10.5, fontweight="bold", color=S.INK)
    return fig


def _search_panel(ax: Any, name: str, found: list[C.Trial], stages: list[str], best: C.Trial,
                  space: Mapping[str, Any]) -> None:
    raw = [t.params.get(name) for t in found]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw if v is not None)
    if numeric:
        x = C.column(raw)
        categories = None
    else:
        categories = sorted({str(v) for v in raw if v is not None})
        x = np.array([categories.index(str(v)) if v is not None else np.nan for v in raw], dtype=float)
    y = np.array([t.value for t in found])
    for k, stage in enumerate(stages):
        mask = np.array([t.stage == stage for t in found])
        colour = STAGE_COLOURS.get(stage.lower(), _stage_colour(k, len(stages)))
        ax.scatter(x[mask], y[mask], s=26, color=colour, alpha=0.85, edgecolors="white", linewidths=0.5,
                   label=S.plain(stage) or "trials")
    bi = found.index(best)
    ax.scatter([x[bi]], [y[bi]], marker="*", s=170, color=S.VAL, edgecolors="white", linewidths=0.7, zorder=5,
               label="best")
    if categories is not None:
        ax.set_xticks(range(len(categories)), [S.plain(c) for c in categories], fontsize=8)
    elif C.is_log_scale(x, C.declared_log(space)):
        ax.set_xscale("log")
        _readable_log(ax, "x")
    for edge in ("low", "high"):
        if isinstance(space.get(edge), (int, float)):
            ax.axvline(space[edge], color="#9ca3af", linestyle=":", linewidth=1)
    ax.set_xlabel(S.plain(name))


def search_importance(search: Mapping[str, Any]) -> Figure | None:
    """How much of the accuracy's variation each hyperparameter explains (Optuna's fANOVA on one stage, H2):
    the one at the top deserves the finest range in the next search; one near zero can be fixed."""
    found = _importances(search)
    if found is None:
        return None
    names = list(found.importances)[::-1]
    shares = [found.importances[n] for n in names]
    with S.style():
        fig = S.new_figure((S.SINGLE[0], 0.45 * len(names) + 1.3))
        ax = fig.subplots()
        bars = ax.barh(range(len(names)), shares, color=S.TRAIN, alpha=0.85)
        ax.set_yticks(range(len(names)), [S.plain(n) for n in names], fontsize=8.5)
        for bar, share in zip(bars, shares):
            ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, f"{share:.0%}", va="center",
                    fontsize=8, color=S.INK)
        ax.set_xlim(0, min(1.0, max(shares) + 0.15))
        ax.set_xlabel("share of the accuracy's variance explained (fANOVA)")
        ax.set_title(f"stage {found.stage}: {found.trials} trials", fontsize=9, color=S.INK)
    return fig


def search_contour(search: Mapping[str, Any]) -> Figure | None:
    """Validation accuracy over the two most important hyperparameters (interpolated between trials, each trial
    a dot, the best starred): where the good region lies, and whether it runs into a range's edge (H4)."""
    found = _importances(search)
    if found is None or len(found.importances) < 2:
        return None
    first, second = found.top(2)
    space = search.get("space") or {}
    rows = [t for t in search.get("trials") or [] if isinstance(t, Mapping) and t.get("stage") == found.stage
            and _numeric(t.get("value")) and isinstance(t.get("params"), Mapping)
            and _numeric(t["params"].get(first)) and _numeric(t["params"].get(second))]
    if len(rows) < 4:
        return None
    columns = [C.column([t["params"][n] for t in rows]) for n in (first, second)]
    logs = [C.is_log_scale(c, C.declared_log(space.get(n) or {})) and bool(np.all(c > 0))
            for c, n in zip(columns, (first, second))]
    x, y = (np.log10(c) if log else c for c, log in zip(columns, logs))
    z = np.array([t["value"] for t in rows], dtype=float)
    with S.style():
        fig = S.new_figure()
        ax = fig.subplots()
        cmap = _lr_colormap()
        if len(rows) >= 6 and np.ptp(x) > 0 and np.ptp(y) > 0:
            with suppress(ValueError, RuntimeError):  # points on a line: no triangulation; the dots still show it
                ax.tricontourf(x, y, z, levels=12, cmap=cmap, alpha=0.55)
        dots = ax.scatter(x, y, c=z, cmap=cmap, s=22, edgecolors="white", linewidths=0.5)
        best = int(np.argmax(z))
        ax.scatter([x[best]], [y[best]], marker="*", s=170, color=S.VAL, edgecolors="white", linewidths=0.7, zorder=5)
        fig.colorbar(dots, ax=ax, label=S.plain(search.get("metric", "validation accuracy")))
        for axis, name, log in ((ax.xaxis, first, logs[0]), (ax.yaxis, second, logs[1])):
            if log:
                axis.set_major_formatter(FuncFormatter(lambda v, _: f"{10 ** v:.3g}"))
            (ax.set_xlabel if axis is ax.xaxis else ax.set_ylabel)(S.plain(name) + (" (log scale)" if log else ""))
        ax.set_title(f"stage {found.stage}: the two hyperparameters that mattered most", fontsize=9, color=S.INK)
    return fig


def _importances(search: Mapping[str, Any]) -> Any:
    """The search's parameter importances, or None (too few trials, or Optuna not installed here)."""
    try:
        from babysit.hpsearch.importance import param_importances

        return param_importances(search)
    except ImportError:  # the report without the search extra (Optuna): the figure is left out
        return None


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- small helpers ------------------------------------------------------------------------------------------------
def _readable_log(ax: Any, which: str = "y") -> None:
    """Plain numbers (0.2, 0.5, 1, 2) on a log axis spanning under three decades, instead of 2x10^-1."""
    low, high = ax.get_ylim() if which == "y" else ax.get_xlim()
    axis = ax.yaxis if which == "y" else ax.xaxis
    if low > 0 and high / low < 1e3:
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))


def _epoch_axis(ax: Any) -> None:
    """Epochs are the unit (lecture B1): whole-number ticks."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")


def _colormap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name]


def _lr_colormap() -> Any:
    """Viridis without its pale yellow end, which vanishes on white."""
    from matplotlib.colors import ListedColormap

    return ListedColormap(_colormap("viridis")(np.linspace(0.0, 0.85, 256)))


def _mappable(cmap: Any, norm: Any) -> Any:
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=cmap)
