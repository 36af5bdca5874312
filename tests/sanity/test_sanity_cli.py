"""``babysit sanity CONFIG`` through the real CLI: exit codes, the table, the JSON report."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from babysit.cli import app

runner = CliRunner()

CONFIG = """
name = "digits_sanity"
runs_dir = "{runs}"
[data]
source = "digits"
[model]
kind = "mlp"
hidden = [64]
bias_init = {bias}
[train]
reg = 1e-3
"""


def _config(tmp_path: Path, bias: float = 0.0) -> Path:
    path = tmp_path / "sanity.toml"
    path.write_text(CONFIG.format(runs=tmp_path / "runs", bias=bias))
    return path


def test_sanity_command_passes_and_writes_json(tmp_path) -> None:
    out = tmp_path / "sanity.json"
    result = runner.invoke(app, ["sanity", str(_config(tmp_path)), "--json", str(out)])
    # every check passes: exit 0, a table naming the checks, the report as JSON
    assert result.exit_code == 0, result.output
    assert "overfit_tiny" in result.output and "all sanity checks passed" in result.output
    assert json.loads(out.read_text())["ok"] is True


def test_sanity_command_fails_with_exit_1_and_a_suggestion(tmp_path) -> None:
    result = runner.invoke(app, ["sanity", str(_config(tmp_path, bias=-5.0))])
    # dead ReLUs cannot overfit 20 examples: exit 1 with what to try
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "try:" in result.output


def test_sanity_command_bad_config_exits_2(tmp_path) -> None:
    result = runner.invoke(app, ["sanity", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2
