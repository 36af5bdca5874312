"""The babysit command: train and demo through the real CLI, exit codes, help, run folders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from babysit.cli import app
from babysit.history import History

runner = CliRunner()

SPIRAL = """
name = "spiral"
runs_dir = "{runs}"
[data]
source = "spiral"
normalize = "none"
[model]
kind = "mlp"
hidden = [100]
[train]
reg = 1e-3
epochs = {epochs}
batch_size = 300
[optimizer]
name = "sgd"
lr = 1.0
"""


def _config(tmp_path: Path, epochs: int = 150) -> Path:
    path = tmp_path / "spiral.toml"
    path.write_text(SPIRAL.format(runs=tmp_path / "runs", epochs=epochs))
    return path


def test_python_dash_m_babysit_runs_the_command() -> None:
    """For an environment whose scripts folder is not on PATH: the same command, the same version."""
    done = subprocess.run([sys.executable, "-m", "babysit", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("babysit ")
    import babysit

    assert done.stdout.split()[1] == babysit.__version__


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "train" in result.output and "demo" in result.output


def test_train_spiral_reaches_the_notes_accuracy(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(_config(tmp_path)), "--no-progress"])
    assert result.exit_code == 0, result.output
    h = History.load(tmp_path / "runs" / "spiral")
    # the notes' 2-layer net with 100 hidden units reaches ~98% training accuracy on the spiral
    assert h.epochs[-1]["train_acc"] > 0.95
    assert (tmp_path / "runs" / "spiral" / "config.toml").is_file()
    assert "results in" in result.output


def test_second_run_never_overwrites_the_first(tmp_path: Path) -> None:
    config = _config(tmp_path, epochs=1)
    assert runner.invoke(app, ["train", str(config), "--no-progress"]).exit_code == 0
    assert runner.invoke(app, ["train", str(config), "--no-progress"]).exit_code == 0
    # the first run is kept; the second goes to <name>-2
    assert (tmp_path / "runs" / "spiral" / "history.jsonl").is_file()
    assert (tmp_path / "runs" / "spiral-2" / "history.jsonl").is_file()


def test_set_overrides_reach_the_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(_config(tmp_path, epochs=1)), "--no-progress",
                                 "--set", "optimizer.lr=0.5", "--set", "train.epochs=2"])
    assert result.exit_code == 0, result.output
    h = History.load(tmp_path / "runs" / "spiral")
    assert len(h.epochs) == 2 and h.epochs[0]["lr"] == 0.5


def test_bad_config_exits_2_with_the_key(tmp_path: Path) -> None:
    config = _config(tmp_path)
    result = runner.invoke(app, ["train", str(config), "--set", "train.epochs=0"])
    assert result.exit_code == 2
    assert "train.epochs" in result.output


def test_diverged_run_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(_config(tmp_path, epochs=3)), "--no-progress",
                                 "--set", "optimizer.lr=1e12"])
    # the run ran but went wrong: exit code 1 and the status is printed
    assert result.exit_code == 1, result.output
    assert "diverged" in result.output


def test_resume_without_run_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(_config(tmp_path)), "--resume"])
    assert result.exit_code == 2
    assert "no run to resume" in result.output


def test_demo_short_without_search(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--runs-dir", str(tmp_path), "--epochs", "3", "--no-search", "--no-progress"])
    assert result.exit_code == 0, result.output
    h = History.load(tmp_path / "demo")
    # three epochs of the demo MLP already classify most digits
    assert h.best_val_acc > 0.9
    # the gradient check and sanity stages ran first and their results are in the run and its report
    assert h.sections["gradcheck"]["ok"] and h.sections["sanity"]["ok"]
    assert (tmp_path / "demo" / "report.html").is_file()
    assert not (tmp_path / "demo-search").exists()


def test_full_demo_runs_every_stage_and_reaches_97_percent(full_demo) -> None:
    runs, result = full_demo
    assert result.exit_code == 0, result.output
    for stage in ("1. gradient check", "2. sanity checks", "3. hyperparameter search", "4. training", "5. report"):
        assert stage in result.output
    h = History.load(runs / "demo")
    # the acceptance bar of the foundation issue: >= 97% validation accuracy on digits, by the model the run
    # keeps (checkpoints/best.pt, evaluated again here from its weights), and no collapse by the last epoch
    # (that one wobbles by a digit or two: over demo seeds 0-6 it ended at 96.7-97.8%, the best at >= 97.2%)
    assert h.best_val_acc >= 0.97
    assert _val_accuracy_of_best_weights(runs / "demo") == pytest.approx(h.best_val_acc)
    assert h.epochs[-1]["val_acc"] >= 0.96
    # the final model was trained with the search's best settings, and the report shows the search
    best = h.sections["search"]["best"]["params"]
    assert h.meta["config"]["optimizer"]["lr"] == pytest.approx(best["optimizer.lr"])
    assert (runs / "demo" / "report.html").is_file() and (runs / "demo-search" / "search.json").is_file()


def _val_accuracy_of_best_weights(run_dir: Path) -> float:
    """Rebuild the run's model from its config, load checkpoints/best.pt and score the validation split."""
    import torch

    from babysit import data, models
    from babysit.config import config_from_dict
    from babysit.train.checkpoint import load_weights

    cfg = config_from_dict(History.load(run_dir).meta["config"])
    bundle = data.load(cfg.data.source, **cfg.data_options())
    model = models.build(cfg.model.kind, input_shape=bundle.input_shape, num_classes=bundle.num_classes,
                         seed=cfg.seed, **cfg.model_options())
    load_weights(run_dir, model, "best")
    model.eval()
    with torch.no_grad():
        return float((model(bundle.X_val).argmax(dim=1) == bundle.y_val).float().mean())
