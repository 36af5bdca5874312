"""Names from user models and configs can never inject markup: a layer called <script> is shown, not run."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from _report_runs import monitored_run
from torch import nn

from babysit.history import History
from babysit.reporting import render_html

EVIL = "<script>alert(1)</script>"
MATH = "$x_1$"  # matplotlib would read this as math; it must be drawn as the literal name


def test_a_layer_named_script_shows_up_escaped(tmp_path: Path) -> None:
    model = nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(64, 16)), (EVIL, nn.ReLU()),
        ("fc2", nn.Linear(16, 16)), (MATH, nn.Tanh()), ("fc3", nn.Linear(16, 10)),
    ]))
    h = monitored_run(tmp_path / "evil", model, epochs=2)
    assert any(layer["name"] == EVIL for layer in h.layers)  # the monitor saw the layer under that name
    h.meta["config"] = {"name": f"run {EVIL}"}
    h.findings = [{"code": "dead_units", "severity": "warning", "message": f"layer {EVIL} has dead units",
                   "evidence": {"layer": EVIL}, "suggestion": f"<img src=x onerror=alert(2)> {EVIL}"}]
    html = render_html(h, tmp_path / "evil")
    # the markup never reaches the page as markup, only as text
    assert EVIL not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<script" not in html  # a finished run's page has no script at all
    # the figures with per-layer panels were drawn (the names went into them as plain text)
    assert 'id="fig-activations"' in html and "could not be drawn" not in html


def test_escaping_holds_in_a_running_page_too(tmp_path: Path) -> None:
    h = History(status="running", meta={"config": {"name": EVIL}}, run_dir=tmp_path)
    html = render_html(h, tmp_path)
    # the page's own reload script is the only script
    assert html.count("<script") == 1 and EVIL not in html and "&lt;script&gt;" in html
