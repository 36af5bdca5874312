"""``babysit diagnose RUN_DIR`` through the real CLI: findings table, exit 1 on an error finding, --save."""

from __future__ import annotations

from typer.testing import CliRunner

import babysit
from babysit.cli import app
from babysit.cli.diagnose import print_findings
from babysit.history import History
from babysit.testing.histories import make_history

runner = CliRunner()


def test_diagnose_command_exit_1_on_error_finding(tmp_path) -> None:
    make_history(train_loss=[2.3, 2.1, 5.0, 80.0, float("inf")]).save(tmp_path)
    result = runner.invoke(app, ["diagnose", str(tmp_path)])
    # a diverged run is an error: the table names it and the exit code is 1
    assert result.exit_code == 1, result.output
    assert "loss_diverged" in result.output


def test_diagnose_command_exit_0_and_save(tmp_path, digits) -> None:
    model = babysit.models.build("mlp", input_shape=digits.input_shape, num_classes=10, seed=0, hidden=[64])
    babysit.fit(model, digits, optimizer="nesterov", lr=0.05, epochs=3, run_dir=tmp_path)
    history = History.load(tmp_path)
    history.findings = []
    history.save()
    result = runner.invoke(app, ["diagnose", str(tmp_path), "--save"])
    # a healthy run: no error, exit 0; --save writes the findings back
    assert result.exit_code == 0, result.output
    assert History.load(tmp_path).findings == [f.to_dict() for f in History.load(tmp_path).diagnose()]


def test_diagnose_command_single_rule_and_missing_folder(tmp_path) -> None:
    make_history(series={"act/act1/dead": [0.9] * 3}, train_loss=[2.3, 2.2, 2.1]).save(tmp_path / "run")
    result = runner.invoke(app, ["diagnose", str(tmp_path / "run"), "--rule", "dead_units"])
    assert result.exit_code == 0 and "dead_units" in result.output
    assert runner.invoke(app, ["diagnose", str(tmp_path / "nothing")]).exit_code == 2


def test_print_findings_accepts_findings_and_dicts() -> None:
    from rich.console import Console

    findings = make_history(train_loss=[2.3, 2.1, 80.0]).diagnose()
    console = Console(width=200, force_terminal=False)
    with console.capture() as capture:
        print_findings(findings, out=console)
        print_findings([f.to_dict() for f in findings], out=console)
        print_findings([], out=console)
    text = capture.get()
    # objects and their dicts print alike; an empty list says nothing looks wrong
    assert text.count("loss_diverged") == 2 and "nothing looks wrong" in text
