"""The search's "loss curves by learning rate" on a real coarse-to-fine search: what the caption says is drawn
(every trial once, a continued trial as its continuation, a one-epoch trial as a dot) is what the figure
draws."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from babysit.hpsearch.demo import run_demo_search
from babysit.reporting import _page, figures, report


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("search")
    run_demo_search(runs, budget_epochs=30, progress=False)  # stages of 1, 4 and more epochs; a few continue
    return runs / "demo-search"


def test_loss_by_learning_rate_draws_each_trial_once(searched: Path) -> None:
    record = json.loads((searched / "search.json").read_text(encoding="utf-8"))
    trials = record["trials"]
    continued = {t["continued_from"] for t in trials if t.get("continued_from") is not None}
    assert continued, "the search continued no trial: nothing to check"
    fig = figures.loss_by_learning_rate(_page.with_loss_curves(record, searched))
    main = fig.axes[0]
    lines = main.get_lines()
    # one line per trial no other trial continued; a continuation holds its parent's epochs and its own
    assert len(lines) == len(trials) - len(continued)
    longest = max(t["start_epoch"] + t["epochs"] for t in trials if t["number"] not in continued)
    assert max(len(line.get_xdata()) for line in lines) == longest
    # a one-epoch trial is a visible dot, not a line of one point
    dots = [line for line in lines if len(line.get_xdata()) == 1]
    assert dots and all(line.get_marker() == "o" for line in dots)
    assert main.get_title() == (f"training loss of {len(lines)} trials by learning rate · {len(continued)} "
                                "continued ones merged")


def test_the_caption_on_the_page_describes_the_figure(searched: Path) -> None:
    html = report(searched).read_text(encoding="utf-8")
    card = re.search(r'id="fig-search-loss".*?</figure>', html, re.S)
    assert card, "no loss-by-learning-rate figure on the search's page"
    caption = re.search(r"<figcaption>(.*?)</figcaption>", card.group(0), re.S).group(1)
    svg = base64.b64decode(re.search(r'base64,([^"]+)"', card.group(0)).group(1)).decode("utf-8")
    labels = re.findall(r"<!-- (.*?) -->", svg)
    # the caption says training loss per epoch by learning rate, each trial once: so do the axes and the title
    assert "training loss per epoch" in caption and "drawn once" in caption and "dot" in caption
    assert {"training loss", "epoch", "optimizer.lr"} <= set(labels)
    assert any(t.startswith("training loss of ") and "continued ones merged" in t for t in labels)
