"""Where a run's report.html comes from: ``fit(run_dir=...)`` draws it when the run ends (the ``report`` extra
installed), ``FitOptions(report=False)`` leaves it out, ``babysit.report`` draws it any time."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import babysit
from babysit._extras import MissingExtraError
from babysit.reporting import LiveReport

ROOT = Path(__file__).resolve().parents[2]


def _fit(run_dir: Path, **kwargs: object) -> babysit.History:
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(60, 4, generator=g), torch.arange(60) % 3
    model = babysit.models.build("mlp", input_shape=(4,), num_classes=3, hidden=[8], seed=0)
    return babysit.fit(model, (X[:45], y[:45]), (X[45:], y[45:]), epochs=2, monitor=False, run_dir=run_dir,
                       **kwargs)  # type: ignore[arg-type]


def test_fit_with_a_run_dir_draws_the_report_when_the_run_ends(tmp_path: Path) -> None:
    _fit(tmp_path / "run")
    page = (tmp_path / "run/report.html").read_text(encoding="utf-8")
    assert "<html" in page.lower() and 'class="pill status-completed">completed<' in page  # the final page


def test_report_false_leaves_it_out_and_report_draws_it_afterwards(tmp_path: Path) -> None:
    _fit(tmp_path / "run", options={"report": False})
    assert (tmp_path / "run/history.jsonl").is_file() and not (tmp_path / "run/report.html").exists()
    assert babysit.report(tmp_path / "run") == tmp_path / "run/report.html"
    assert "<html" in (tmp_path / "run/report.html").read_text(encoding="utf-8").lower()


def test_a_live_report_of_your_own_is_the_only_one(tmp_path: Path) -> None:
    mine = LiveReport(min_interval=3600.0)
    _fit(tmp_path / "run", callbacks=[mine])
    assert mine.renders == 1 and (tmp_path / "run/report.html").is_file()  # drawn once, at the end, by it


def test_without_the_report_extra_fit_draws_none_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as in a core install: import matplotlib fails
    _fit(tmp_path / "core")
    assert (tmp_path / "core/history.jsonl").is_file() and not (tmp_path / "core/report.html").exists()
    with pytest.raises(MissingExtraError, match=r"pip install 'babysit\[report\]'"):
        _fit(tmp_path / "asked", options={"report": True})


def test_without_a_run_dir_nothing_is_drawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _fit(None)  # type: ignore[arg-type]
    assert not list(tmp_path.rglob("report.html"))


def test_readme_says_how_fit_gets_a_report() -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert "`fit` also draws `report.html` there when the run ends" in readme
    assert 'options={"report": False}' in readme
