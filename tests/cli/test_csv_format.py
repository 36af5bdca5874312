"""The CSV format as the README writes it trains as it is, and a CSV without a ``label`` column is refused with
one line that names the column, lists the file's columns and says how to name another one in a config."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from babysit.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

CONFIG = '''
name = "table"
runs_dir = "{runs}"
[data]
source = "{csv}"
[train]
epochs = 1
monitor = false
report = false
'''


def _write(tmp_path: Path, header: str) -> Path:
    rng = np.random.default_rng(0)
    rows = [f"{a:.3f},{b:.3f},{i % 3}" for i, (a, b) in enumerate(rng.normal(size=(60, 2)))]
    csv = tmp_path / "table.csv"
    csv.write_text("\n".join([header, *rows]) + "\n")
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(runs=tmp_path / "runs", csv=csv))
    return config


def test_readme_csv_example_is_the_format_the_loader_reads(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"\*\*A CSV file\*\*.*?```\n(.*?)```", readme, re.S)
    assert example is not None, "README.md lost its CSV format paragraph"
    (tmp_path / "readme.csv").write_text(example.group(1))
    from babysit.data.files import _read_table

    X, y, label, _ = _read_table(tmp_path / "readme.csv", None, ",")
    assert label == "label" and X.shape == (2, 2) and y.tolist() == [0, 2]


def test_csv_with_a_label_column_trains(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(_write(tmp_path, "x1,x2,label")), "--no-progress"])
    assert result.exit_code in (0, 1), result.output  # 1: a finding after one epoch; it trained


@pytest.mark.parametrize("fix", [None, "data.label=target"])
def test_csv_without_a_label_column_names_the_column_and_the_fix(tmp_path: Path, fix: str | None) -> None:
    config = _write(tmp_path, "x1,x2,target")
    result = runner.invoke(app, ["train", str(config), "--no-progress", *(["--set", fix] if fix else [])])
    if fix:
        assert result.exit_code in (0, 1), result.output  # the fix the message gives works
        return
    text = " ".join(result.output.split())
    assert result.exit_code == 2
    assert "no column named 'label'" in text and "its columns are: x1, x2, target" in text
    assert 'data.label = "<column>"' in text
