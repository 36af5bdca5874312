"""`babysit gradcheck CONFIG` checks the model a training config describes, data loss and L2 apart."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from babysit.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_gradcheck_of_the_demo_config_passes() -> None:
    result = CliRunner().invoke(app, ["gradcheck", str(EXAMPLES / "digits_mlp.toml")], env={"COLUMNS": "200"})
    # the digits MLP's autograd gradients are right: exit 0, with rows for every parameter and the L2 term
    assert result.exit_code == 0, result.output
    for name in ("fc1.weight", "fc1.bias", "fc3.weight"):
        assert name in result.output
    assert "reg" in result.output.split("input")[1]  # the L2 rows come after the data rows
