"""The report of a real deep model (a 60-layer transformer language model): layers named by their module path,
depth plots labelled by block with a bounded number of labels, histograms from the first and the last step.

The figures are read back from the page itself: each is an inline SVG whose text (drawn as paths) is kept
in comments, one per label, so the tests see the labels a reader sees.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from _report_browser import Browser, find_chromium
from matplotlib.figure import Figure
from test_report_browser import ARTIFACTS

import babysit
from babysit.history import History
from babysit.reporting import _blocks, figures
from babysit.reporting.html import write_report

N_LAYER = 8  # blocks of 7 watched leaves each, plus embeddings, final norm and head: 60 layers


@pytest.fixture(scope="module")
def deep(tmp_path_factory: pytest.TempPathFactory) -> tuple[History, str]:
    data = babysit.data.load("pysource", max_chars=20_000, block_size=32)
    model = babysit.models.build("transformer", input_shape=(32,), num_classes=97, n_layer=N_LAYER, d_model=32,
                                 n_head=2, seed=0)
    folder = tmp_path_factory.mktemp("deep") / "run"
    history = babysit.fit(model, data, epochs=2, lr=3e-3, optimizer="adam", run_dir=folder,
                          monitor={"every": 4})  # 16 steps: sampled at 1, 5, 9, 13 (histograms at 1), and the last
    path = write_report(history)
    return history, path.read_text(encoding="utf-8")


def svg_labels(html: str, figure_id: str) -> list[str]:
    """The text labels of one figure of the page, in drawing order."""
    found = re.search(rf'id="fig-{figure_id}".*?src="data:image/svg\+xml;base64,([^"]+)"', html, re.S)
    assert found, f"figure {figure_id} is not on the page"
    return re.findall(r"<!-- (.*?) -->", base64.b64decode(found.group(1)).decode("utf-8"))


def test_a_deep_model_is_monitored_layer_by_layer_under_module_paths(deep) -> None:
    history, html = deep
    names = [layer["name"] for layer in history.layers]
    assert len(names) >= 50
    # every layer is named by its module path, in forward order, in the History and in the Layers table
    assert names[:3] == ["tok", "pos", "blocks.0.ln1"] and names[-2:] == ["ln_f", "head"]
    assert {f"blocks.{i}.attn.qkv" for i in range(N_LAYER)} <= set(names)
    assert all(f"<code>{name}</code>" in html for name in names)


def test_the_depth_plot_is_labelled_by_block_with_few_labels(deep) -> None:
    history, html = deep
    fig = figures.std_by_depth(history)
    assert isinstance(fig, Figure)
    activations, gradients = fig.axes
    ticks = [t.get_text() for t in gradients.get_xticklabels()]
    # 52 parameter tensors on the gradient axis, labelled by their 10 blocks, not one overlapping label each
    assert len(gradients.get_lines()[0].get_xdata()) > 50
    assert ticks == ["tok…", *(f"blocks.{i}" for i in range(N_LAYER)), "ln_f…"]
    assert len(ticks) <= _blocks.MAX_TICKS
    # the two panels are stacked, each the page's width, so the labels have room
    assert activations.get_position().y0 > gradients.get_position().y1
    # the page's figure shows those labels, and names the layers with the lowest and highest spread
    labels = svg_labels(html, "depth")
    assert [f"blocks.{i}" for i in range(N_LAYER)] == [t for t in labels if re.fullmatch(r"blocks\.\d+", t)]
    params = {p for layer in history.layers for p in layer["params"]}
    named = {t.split(": ")[0]: t.split(": ")[1] for t in labels if t.startswith(("lowest: ", "highest: "))}
    assert set(named) == {"lowest", "highest"} and set(named.values()) <= params
    assert "layer (input → output; 52 layers, 10 blocks)" in labels


def test_histograms_are_kept_at_the_first_and_the_last_step(deep) -> None:
    history, html = deep
    last = history.num_steps
    assert last == 16
    # the Monitor keeps histograms every 4 * 10 steps, but the run's last step is kept as well
    assert history.histograms and all([s["step"] for s in snaps] == [1, last] for snaps in history.histograms.values())
    # the off-grid last step adds histograms only: the series keep their sampling grid
    assert history.series["ratio/blocks.0.attn.qkv.weight"]["step"] == [1, 5, 9, 13]
    # the page shows first and last side by side, labelled with their steps, over module-path panel titles
    for figure_id in ("activations", "gradients"):
        labels = svg_labels(html, figure_id)
        assert "start (step 1)" in labels and f"end (step {last})" in labels
        assert any(t.startswith("blocks.") for t in labels)


@pytest.mark.parametrize(("names", "expected"), [
    (["stem", "stem_bn", "stem_act", "layer1.0.conv1", "layer1.0.bn1", "layer1.1.conv1", "fc"],
     ["stem", "layer1.0", "layer1.1", "fc"]),
    (["transformer.h.0.attn.c_attn.weight", "transformer.h.0.mlp.c_fc.weight", "transformer.h.1.ln_1.weight"],
     ["transformer.h.0", "transformer.h.1"]),
])
def test_blocks_are_module_path_prefixes(names: list[str], expected: list[str]) -> None:
    assert [b.label for b in _blocks.blocks(names)] == expected


def test_depth_ticks_stay_bounded_for_any_depth() -> None:
    few = [f"fc{i}" for i in range(5)]
    assert _blocks.depth_ticks(few).labels == few  # a small model keeps a label per layer
    deep = [f"blocks.{b}.{leaf}" for b in range(60) for leaf in ("ln", "qkv", "proj", "fc1", "act", "fc2")]
    ticks = _blocks.depth_ticks(deep)
    # 60 blocks: every 3rd block labelled, every boundary drawn
    assert len(ticks.labels) <= _blocks.MAX_TICKS and ticks.labels[:2] == ["blocks.0", "blocks.3"]
    assert len(ticks.boundaries) == 59
    flat = [str(i) for i in range(200)]  # a flat Sequential: nothing to group by, every k-th layer
    assert len(_blocks.depth_ticks(flat).labels) <= _blocks.MAX_TICKS



def test_the_deep_report_in_headless_chromium(deep) -> None:
    chromium = find_chromium()  # fails in CI when the browser is missing
    history, html = deep
    page = Path(history.run_dir) / "report.html"
    with Browser(chromium, width=1280, height=900) as browser:
        browser.open(page.as_uri())
        images = browser.evaluate("Array.from(document.images).map(i => ({w: i.naturalWidth, done: i.complete}))")
        overflow = browser.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        browser.screenshot(ARTIFACTS / "report-deep-model.png", full_page=True)
        errors = browser.console_errors()
    # every figure of the 60-layer page decodes, and the 60-row layer table does not widen the page
    assert len(images) == html.count("<img ") and all(i["done"] and i["w"] > 0 for i in images)
    assert overflow <= 0 and errors == []
