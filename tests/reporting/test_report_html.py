"""report(run_dir): one self-contained page; each section appears when its data exists, and never fails
because one is missing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _report_runs import add_sections, digits_mlp, hpsearch_folder, monitored_run

import babysit
from babysit.errors import CheckpointError
from babysit.history import History
from babysit.reporting import figures, render_html, report


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("html") / "full"
    add_sections(monitored_run(folder, epochs=3))
    return folder


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("html") / "plain"
    babysit.fit(digits_mlp(), babysit.data.load("digits", seed=0), epochs=2, run_dir=folder,
                monitor=False)
    return folder


def section_ids(html: str) -> set[str]:
    return set(re.findall(r'<section id="([^"]+)"', html))


def test_report_writes_one_self_contained_page(full_run: Path) -> None:
    path = report(full_run)
    html = path.read_text(encoding="utf-8")
    assert path == full_run / "report.html"
    # nothing is fetched: no external stylesheets, scripts, images or fonts
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "<link" not in html and "<script src" not in html and "@import" not in html
    images = re.findall(r'<img src="([^"]*)"', html)
    assert len(images) >= 10 and all(src.startswith("data:image/svg+xml;base64,") for src in images)
    # every section with data is there, in order
    assert section_ids(html) == {"summary", "findings", "checks", "training", "layers", "search", "config"}
    order = [html.index(f'id="{s}"') for s in ("summary", "findings", "checks", "training", "search", "config")]
    assert order == sorted(order)


def test_report_shows_summary_findings_and_check_verdicts(full_run: Path) -> None:
    html = report(full_run).read_text(encoding="utf-8")
    h = History.load(full_run)
    assert f"{100 * h.last['val_acc']:.1f}%" in html  # the final validation accuracy on top
    assert "torch" in html and h.meta["versions"]["torch"] in html  # versions
    # findings as cards with their severity, lecture item and suggestion
    assert 'class="card warning"' in html and "lecture B3" in html and "raise reg 3-10x" in html
    # the gradient check table and the sanity checks, with verdict colours
    assert 'class="pill good"' in html and ">ideal<" in html
    sanity = History.load(full_run).sections["sanity"]
    assert all(c["name"] in html for c in sanity["checks"])
    assert re.search(r'class="pill (good|bad|warn)">(pass|fail|skipped)<', html)
    # the lecture's figures in its order
    ids = re.findall(r'id="fig-([^"]+)"', html)
    lecture_order = ["loss", "accuracy", "update-ratio", "activations", "gradients", "depth", "filters",
                     "loss-parts", "lr"]
    assert [i for i in ids if i in lecture_order] == lecture_order
    assert {"search-loss", "search-scatter"} <= set(ids)


def test_report_leaves_out_what_a_plain_run_lacks(plain_run: Path) -> None:
    html = report(plain_run).read_text(encoding="utf-8")
    # no gradient check, sanity, monitor or search data: those sections are simply not there
    assert section_ids(html) == {"summary", "findings", "training", "config"}
    ids = set(re.findall(r'id="fig-([^"]+)"', html))
    assert {"loss", "accuracy", "filters", "loss-parts", "lr"} <= ids
    assert not ids & {"update-ratio", "activations", "gradients", "depth", "search-scatter"}
    assert "could not be drawn" not in html


def test_a_failing_figure_costs_that_figure_only(plain_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(history: History) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(figures, "accuracy_gap", broken)
    html = render_html(History.load(plain_run), plain_run)
    assert "This figure could not be drawn: RuntimeError: boom" in html
    assert 'id="fig-loss"' in html  # the others are still there


def test_report_of_a_search_folder(tmp_path: Path, full_run: Path) -> None:
    search = History.load(full_run).sections["search"]
    (tmp_path / "search.json").write_text(json.dumps(search))
    html = report(tmp_path).read_text(encoding="utf-8")
    # a search folder has no training of its own: the search section carries the page
    assert "search" in section_ids(html) and "training" not in section_ids(html)
    assert "best validation accuracy" in html and "widen the range" in html


def test_report_of_a_babysit_search_folder(tmp_path: Path) -> None:
    hpsearch_folder(tmp_path)
    html = report(tmp_path).read_text(encoding="utf-8")
    # numbered stages get readable names, Finding warnings become cards, every trial is in the table
    assert "stage 1 · 1 epoch" in html and "stage 2 · 2 epochs" in html
    assert "best_at_range_edge" in html and "lecture H4" in html and "widen the range upwards" in html
    assert html.count('<td class="num">') >= 5 * 4 and ">diverged<" in html
    # the loss overlay read each trial's own history.json (run_dir, relative to the search folder)
    assert 'id="fig-search-loss"' in html and 'id="fig-search-scatter"' in html


def test_report_shows_which_trials_continued_a_shorter_one(tmp_path: Path) -> None:
    config = {"name": "cont", "data": {"source": "digits"}, "model": {"kind": "mlp", "hidden": 16},
              "train": {"epochs": 3, "monitor": False}, "optimizer": {"name": "momentum", "lr": 0.1}}
    result = babysit.search(config, {"optimizer.lr": babysit.space.loguniform(1e-2, 0.5)}, search_dir=tmp_path,
                            stages=[{"epochs": 1, "trials": 4}, {"epochs": 3, "trials": 2}], progress=False)
    html = report(tmp_path).read_text(encoding="utf-8")
    # a promoted trial's row says which epochs it added to which trial; a fresh one just its epochs
    continued = [t for t in result.trials if t.continued_from is not None]
    assert continued
    for t in continued:
        assert f"{t.start_epoch + 1}–{t.last_epoch} (continues #{t.continued_from})" in html
    assert '<td class="num">1</td><td class="num">0.' in html  # a 1-epoch trial of stage 1, then its accuracy


def test_report_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no history\.json"):
        report(tmp_path / "nowhere")


def test_a_running_run_reloads_itself_and_a_finished_one_does_not(plain_run: Path) -> None:
    h = History.load(plain_run)
    assert "<script" not in render_html(h, plain_run)
    h.status = "running"
    live = render_html(h, plain_run)
    assert "location.reload()" in live and "reloads itself" in live


def test_findings_from_every_stage_most_serious_first(plain_run: Path) -> None:
    h = History.load(plain_run)
    h.findings = [{"code": "loss_noisy", "severity": "info", "message": "noisy", "evidence": {}}]
    h.sections["gradcheck"] = {"verdict": "wrong", "rows": [], "findings": [
        {"code": "gradient_mismatch", "severity": "error", "message": "fc1.weight[0, 3] disagrees",
         "evidence": {"rel_error": 0.3}, "suggestion": "check the backward pass"}]}
    html = render_html(h, plain_run)
    # the error from the gradient check comes before the training's info note
    assert html.index("gradient_mismatch") < html.index("loss_noisy")
    assert "lecture G" in html and "rel_error = 0.3" in html
