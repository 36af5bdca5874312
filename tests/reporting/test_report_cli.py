"""`babysit report RUN_DIR [--open]`, and `babysit train` writing the report into the run folder."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from typer.testing import CliRunner

from babysit.cli import app

runner = CliRunner()

CONFIG = """
name = "small"
runs_dir = "{runs}"
[model]
hidden = [16]
[train]
epochs = 2
{extra}
"""


def _train(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "small.toml"
    config.write_text(CONFIG.format(runs=tmp_path / "runs", extra=extra))
    result = runner.invoke(app, ["train", str(config), "--no-progress"])
    assert result.exit_code == 0, result.output
    return tmp_path / "runs" / "small"


def test_train_writes_the_report_into_the_run_folder(tmp_path: Path) -> None:
    run = _train(tmp_path)
    page = (run / "report.html").read_text(encoding="utf-8")
    # the run's name, its data summary (added after fit) and the config it ran with
    assert "<h1>small" in page and "digits · train" in page and 'name = "small"' in html.unescape(page)


def test_report_false_writes_no_page(tmp_path: Path) -> None:
    assert not (_train(tmp_path, "report = false") / "report.html").exists()


def test_report_command_writes_and_prints_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _train(tmp_path, "report = false")
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url))
    result = runner.invoke(app, ["report", str(run), "--open"])
    assert result.exit_code == 0, result.output
    assert "report written to" in result.output and (run / "report.html").is_file()
    assert opened == [(run / "report.html").resolve().as_uri()]


def test_report_command_on_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path / "missing")])
    # bad input: exit 2 with a message naming the folder
    assert result.exit_code == 2 and "no history.jsonl" in result.output


def test_help_lists_report() -> None:
    assert "report" in runner.invoke(app, ["--help"]).output
