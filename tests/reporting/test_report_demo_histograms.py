"""The demo's own report (``babysit demo``, run once per test session): its distribution figures compare the
first and the last step of training, and its search figure matches its caption."""

from __future__ import annotations

import base64
import re

from babysit.history import History


def figure_card(html: str, figure_id: str) -> tuple[str, list[str]]:
    """(caption, text labels) of one figure of the page."""
    card = re.search(rf'id="fig-{figure_id}".*?</figure>', html, re.S)
    assert card, f"figure {figure_id} is not on the page"
    caption = re.search(r"<figcaption>(.*?)</figcaption>", card.group(0), re.S).group(1)
    svg = base64.b64decode(re.search(r'base64,([^"]+)"', card.group(0)).group(1)).decode("utf-8")
    return caption, re.findall(r"<!-- (.*?) -->", svg)


def test_the_demo_report_shows_histograms_of_the_first_and_the_last_step(full_demo) -> None:
    runs, result = full_demo
    assert result.exit_code in (0, 1), result.output
    history = History.load(runs / "demo")
    html = (runs / "demo" / "report.html").read_text(encoding="utf-8")
    last = history.num_steps
    # the demo samples every 100th step and keeps histograms every 1,000th: the last step is kept on top
    assert all(snaps[0]["step"] == 1 and snaps[-1]["step"] == last for snaps in history.histograms.values())
    for figure_id in ("activations", "gradients"):
        _, labels = figure_card(html, figure_id)
        assert "start (step 1)" in labels and f"end (step {last})" in labels


def test_the_demo_search_figure_matches_its_caption(full_demo) -> None:
    runs, _ = full_demo
    html = (runs / "demo" / "report.html").read_text(encoding="utf-8")
    caption, labels = figure_card(html, "search-loss")
    assert "training loss per epoch" in caption and "coloured by its learning rate" in caption
    assert {"training loss", "epoch", "optimizer.lr"} <= set(labels)
    assert any(re.fullmatch(r"training loss of \d+ trials by learning rate( · \d+ continued ones merged)?", t)
               for t in labels), labels
