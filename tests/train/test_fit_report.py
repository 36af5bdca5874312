"""Where a run's report.html comes from, as the README says: ``fit(run_dir=...)`` draws none itself (no second of
drawing, no matplotlib in a core install); ``LiveReport`` draws it at the end, ``babysit.report`` afterwards."""

from __future__ import annotations

from pathlib import Path

import torch

import babysit
from babysit.reporting import LiveReport

ROOT = Path(__file__).resolve().parents[2]


def _fit(run_dir: Path, **kwargs: object) -> babysit.History:
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(60, 4, generator=g), torch.arange(60) % 3
    model = babysit.models.build("mlp", input_shape=(4,), num_classes=3, hidden=[8], seed=0)
    return babysit.fit(model, (X[:45], y[:45]), (X[45:], y[45:]), epochs=2, monitor=False, run_dir=run_dir,
                       **kwargs)  # type: ignore[arg-type]


def test_fit_with_a_run_dir_draws_no_report_and_report_draws_it_afterwards(tmp_path: Path) -> None:
    _fit(tmp_path / "run")
    assert (tmp_path / "run/history.jsonl").is_file() and not (tmp_path / "run/report.html").exists()
    assert babysit.report(tmp_path / "run") == tmp_path / "run/report.html"
    assert "<html" in (tmp_path / "run/report.html").read_text(encoding="utf-8").lower()


def test_live_report_callback_draws_the_report_when_fit_ends(tmp_path: Path) -> None:
    _fit(tmp_path / "run", callbacks=[LiveReport()])
    assert (tmp_path / "run/report.html").is_file()


def test_readme_says_how_fit_gets_a_report() -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert "`fit` draws no `report.html` itself" in readme and "LiveReport()" in readme
