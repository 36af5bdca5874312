"""Each figure function on real short digits runs: the expected axes, scales and series, and no empty plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _report_runs import add_sections, digits_mlp, monitored_run
from matplotlib.figure import Figure
from matplotlib.patches import StepPatch

import babysit
from babysit.history import History
from babysit.reporting import _page, figures


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> History:
    folder = tmp_path_factory.mktemp("fig") / "run"
    history = monitored_run(folder, epochs=4, schedule={"name": "step", "every": 2, "factor": 0.5})
    return add_sections(history)


def drawn(ax) -> int:
    """How many artists of ``ax`` hold data (lines with a finite point, filled areas, images, histograms)."""
    lines = sum(np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any() for line in ax.get_lines())
    filled = sum(len(c.get_paths()) > 0 or len(c.get_offsets()) > 0 for c in ax.collections)
    return int(lines + filled + len(ax.get_images()) + sum(isinstance(p, StepPatch) for p in ax.patches))


def assert_not_empty(fig: Figure | None) -> Figure:
    assert isinstance(fig, Figure)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    # every visible panel shows data: no empty plot reaches the page
    assert visible and all(drawn(ax) > 0 for ax in visible)
    return fig


def labels(ax) -> list[str]:
    return [line.get_label() for line in ax.get_lines()] + [c.get_label() for c in ax.collections]


def test_loss_curves_linear_and_log_per_step_and_per_epoch(run: History) -> None:
    fig = assert_not_empty(figures.loss_curves(run))
    linear, log = fig.axes
    # lecture B1/B2: the same curves on a linear and a log axis, against epochs
    assert (linear.get_yscale(), log.get_yscale()) == ("linear", "log")
    assert linear.get_xlabel() == "epoch"
    names = labels(linear)
    assert any("per step" in n for n in names) and any("epoch mean" in n for n in names)
    assert "validation" in names and "train, data loss" in names  # reg > 0: the data loss is drawn apart
    per_step = next(line for line in linear.get_lines() if "per step" in line.get_label())
    assert len(per_step.get_xdata()) == len(run.steps["step"])
    # per-step points sit at fractional epochs, inside the run
    assert min(per_step.get_xdata()) > 0 and max(per_step.get_xdata()) == pytest.approx(4.0)


def test_loss_curves_mark_a_diverged_run(tmp_path: Path) -> None:
    data = babysit.data.load("digits", seed=0)
    h = babysit.fit(digits_mlp(), data, epochs=2, lr=1e4, optimizer="sgd", run_dir=tmp_path / "boom",
                    monitor=False)
    assert h.status == "diverged"
    fig = assert_not_empty(figures.loss_curves(h))
    # the point where the loss became non-finite is marked on both panels
    assert all(any(t.get_text() == "diverged" for t in ax.texts) for ax in fig.axes)


def test_accuracy_gap_is_shaded_and_best_epoch_starred(run: History) -> None:
    fig = assert_not_empty(figures.accuracy_gap(run))
    (ax,) = fig.axes
    names = labels(ax)
    # lecture B3: train and validation accuracy with the gap between them shaded
    assert {"train", "validation", "gap (overfitting)"} <= set(names)
    assert any(n.startswith("best: epoch") for n in names)
    assert any("gap" in t.get_text() for t in ax.texts)


def test_update_ratios_on_a_log_axis_with_the_healthy_band(run: History) -> None:
    fig = assert_not_empty(figures.update_ratios(run))
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    params = [n for n, _ in digits_mlp().named_parameters()]
    # lecture B4: one line per parameter tensor, and the band around 1e-3
    assert set(params) <= set(labels(ax))
    band = [p for p in ax.patches if p.get_label().startswith("healthy")]
    assert band and figures.HEALTHY_RATIO_BAND[0] < figures.HEALTHY_RATIO < figures.HEALTHY_RATIO_BAND[1]


def test_activation_and_gradient_histograms_per_layer(run: History) -> None:
    acts = assert_not_empty(figures.activation_histograms(run))
    # lecture B5: one panel per activation layer (the ReLUs), start and end drawn as histograms
    assert [ax.get_title() for ax in acts.axes if ax.get_visible()] == ["act1", "act2"]
    assert all(sum(isinstance(p, StepPatch) for p in ax.patches) == 2 for ax in acts.axes if ax.get_visible())
    grads = assert_not_empty(figures.gradient_histograms(run))
    assert [ax.get_title() for ax in grads.axes if ax.get_visible()] == ["fc1.weight", "fc2.weight", "fc3.weight"]


def test_std_by_depth_at_start_and_end(run: History) -> None:
    fig = assert_not_empty(figures.std_by_depth(run))
    acts, grads = fig.axes
    assert [t.get_text() for t in acts.get_xticklabels()] == ["act1", "act2"]
    assert [t.get_text() for t in grads.get_xticklabels()] == ["fc1.weight", "fc2.weight", "fc3.weight"]
    for ax in (acts, grads):
        # two profiles through the depth: at the first and at the last sampled step
        starts = [line for line in ax.get_lines() if line.get_label().startswith("start")]
        ends = [line for line in ax.get_lines() if line.get_label().startswith("end")]
        assert len(starts) == len(ends) == 1 and len(ends[0].get_ydata()) == len(ax.get_xticks())


def test_first_layer_filters_of_the_digits_mlp_are_8x8_images(run: History) -> None:
    name, weights = _page.first_layer_weights(run.run_dir)
    assert name == "fc1" and weights.shape == (32, 64)
    fig = assert_not_empty(figures.first_layer_filters(weights, (1, 8, 8), name=name))
    (ax,) = fig.axes
    # lecture B6: 32 rows of fc1 shown as 8x8 images in one mosaic
    assert ax.get_title() == "fc1: 32 filters of 8x8"
    image = ax.get_images()[0].get_array()
    assert image.shape[0] >= 8 and image.shape[1] >= 8 * 4


def test_first_layer_filters_of_a_cnn_are_its_kernels(tmp_path: Path) -> None:
    data = babysit.data.load("digits", seed=0)
    model = babysit.models.build("cnn", input_shape=(1, 8, 8), num_classes=10, seed=0)
    babysit.fit(model, data, epochs=1, run_dir=tmp_path / "cnn", monitor=False)
    name, weights = _page.first_layer_weights(tmp_path / "cnn")
    assert name == "conv1" and weights.shape == (16, 1, 3, 3)
    fig = assert_not_empty(figures.first_layer_filters(weights, name=name))
    assert fig.axes[0].get_title() == "conv1: 16 filters of 3x3"


def test_first_layer_weights_of_a_search_trial_come_from_its_best_checkpoint(tmp_path: Path) -> None:
    # a search trial saves only checkpoints/best.pt (weights alone), no last.pt
    raw = {"name": "t", "runs_dir": str(tmp_path), "data": {"source": "digits"}, "model": {"kind": "mlp", "hidden": 24},
           "train": {"epochs": 1, "monitor": False}, "optimizer": {"name": "sgd", "lr": 0.1}}
    result = babysit.search(raw, {"optimizer.lr": babysit.space.loguniform(0.05, 0.2)}, strategy="random", trials=1,
                            progress=False)
    trial = tmp_path / "t-search" / result.trials[0].run_dir
    assert not (trial / "checkpoints" / "last.pt").exists()
    name, weights = _page.first_layer_weights(trial)
    assert name == "fc1" and weights.shape == (24, 64)


def test_first_layer_filters_need_image_inputs() -> None:
    # the spiral's first layer sees 2-D points: no image to show, so no figure
    assert figures.first_layer_filters(np.random.default_rng(0).normal(size=(100, 2))) is None


def test_loss_parts_shows_data_and_regularization(run: History) -> None:
    fig = assert_not_empty(figures.loss_parts(run))
    (ax,) = fig.axes
    assert {"data loss", "data + regularization"} <= set(labels(ax))
    assert "reg" in ax.get_title() and "%" in ax.get_title()


def test_lr_schedule_shows_the_step_decay(run: History) -> None:
    fig = assert_not_empty(figures.lr_schedule(run))
    (ax,) = fig.axes
    line = next(line for line in ax.get_lines() if line.get_label() == "learning rate")
    # step decay halving every 2 epochs over 4 epochs: two distinct rates
    assert sorted(set(np.round(line.get_ydata(), 6))) == [0.025, 0.05]


def test_search_figures_overlay_loss_by_lr_and_scatter_per_hyperparameter(run: History) -> None:
    search = run.sections["search"]
    overlay = assert_not_empty(figures.loss_by_learning_rate(search))
    main, colorbar = overlay.axes
    # lecture B2: one loss curve per learning rate, log axis, coloured by lr
    assert main.get_yscale() == "log" and len(main.get_lines()) == len(search["trials"])
    assert colorbar.get_ylabel() == "lr"
    scatter = assert_not_empty(figures.search_scatter(search))
    panels = [ax for ax in scatter.axes if ax.get_visible()]
    # lecture H2: lr and reg on log axes; H5: stages apart; the best trial starred
    assert [ax.get_xlabel() for ax in panels] == ["lr", "reg"]
    assert all(ax.get_xscale() == "log" for ax in panels)
    assert {"coarse", "fine", "best"} <= {c.get_label() for c in panels[0].collections}


@pytest.mark.parametrize("name", ["loss_curves", "accuracy_gap", "update_ratios", "activation_histograms",
                                  "gradient_histograms", "std_by_depth", "loss_parts", "lr_schedule"])
def test_figures_without_data_are_left_out(name: str) -> None:
    # an empty History has nothing to draw: None, never an empty plot
    assert getattr(figures, name)(History()) is None


def test_search_figures_without_trials_are_left_out() -> None:
    assert figures.search_scatter({"trials": []}) is None
    assert figures.loss_by_learning_rate({"trials": [{"params": {"lr": 0.1}, "value": 0.5}]}) is None
