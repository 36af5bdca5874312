"""``babysit search CONFIG`` and ``babysit search status DIR`` through the real CLI, on tiny digits runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from babysit.cli import app
from babysit.config import load_config
from babysit.hpsearch import SearchResult, run_demo_search

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CONFIG = """
name = "tiny"
runs_dir = "{runs}"
[data]
source = "digits"
[model]
kind = "mlp"
hidden = 16
[train]
epochs = 3
monitor = false
[optimizer]
name = "momentum"
lr = 0.05
momentum = 0.9
[search]
budget_epochs = 24
[search.space]
"optimizer.lr" = {{loguniform = [1e-3, 1.0]}}
"model.hidden" = {{logint = [8, 64]}}
"""


def _config(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(text.format(runs=tmp_path / "runs"))
    return path


def test_search_cli_runs_coarse_to_fine_and_ensembles_on_test(tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", str(_config(tmp_path)), "--ensemble", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "runs" / "tiny-search"
    # the terminal shows the stages, the trials table, the best settings, the ensemble and the folder
    for text in ("stages", "trials (", "best validation accuracy", "ensemble of the top 3", str(folder)):
        assert text in result.output.replace("\n", " ") or text in result.output
    saved = SearchResult.load(folder)
    # 24 epochs: stage 1 of 1-epoch trials, then 2-epoch, then 3-epoch ones; test split only in the ensemble
    assert [s["epochs"] for s in saved.stages] == [1, 2, 3] and saved.epochs_used <= 24
    assert saved.ensemble["k"] == 3 and 0.5 < saved.ensemble["test_acc"] <= 1.0
    # three different settings: a promoted trial and the shorter trial it continued are one model, not two
    by_number = {t.number: t for t in saved.trials}
    settings = {json.dumps(by_number[m["number"]].params, sort_keys=True) for m in saved.ensemble["members"]}
    assert len(settings) == 3
    assert saved.best_config["train"]["epochs"] == 3 and "search" not in saved.best_config

    status = runner.invoke(app, ["search", "status", str(folder)])
    # the master's view: the study is done, with counts per state and per worker
    assert status.exit_code == 0, status.output
    assert "done" in status.output and "complete" in status.output and "workers" in status.output


def test_search_cli_flags_override_the_search_table(tmp_path: Path) -> None:
    result = runner.invoke(app, [
        "search", str(_config(tmp_path)), "--strategy", "random", "--trials", "3", "--budget-epochs", "30",
        "--dir", str(tmp_path / "here"), "--set", "train.epochs=2", "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "here" / "search.json").read_text())
    # the flags win over [search]: 3 random trials of 2 epochs in the given folder
    assert data["strategy"] == "random" and len(data["trials"]) == 3
    assert {t["epochs"] for t in data["trials"]} == {2}


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (('"model.hidden" = {{logint = [8, 64]}}', '"model.hiden" = {{logint = [8, 64]}}'), "model.hiden"),
        (("loguniform = [1e-3, 1.0]", "loguniform = [0, 1.0]"), "needs low > 0"),
        (("budget_epochs = 24", "budget_epochs = 24\nstrategy = \"annealing\""), "strategy"),
    ],
)
def test_search_cli_bad_config_exits_2_naming_the_key(tmp_path: Path, replace: tuple[str, str], message: str) -> None:
    text = CONFIG.replace(*replace)
    result = runner.invoke(app, ["search", str(_config(tmp_path, text)), "--no-progress"])
    # bad input: exit code 2 and a message that names the problem
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", "")


def test_worker_without_a_study_says_how_to_join(tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", str(_config(tmp_path)), "--worker"])
    assert result.exit_code == 2 and "--storage postgresql://" in " ".join(result.output.split())
    missing = runner.invoke(app, ["search", "status", str(tmp_path)])
    assert missing.exit_code == 2 and "holds no search" in " ".join(missing.output.split())


def test_example_search_config_is_valid() -> None:
    cfg = load_config(EXAMPLES / "digits_search.toml")
    # the example's space names real config keys and log ranges in values
    assert cfg.search is not None and cfg.search.space["optimizer.lr"] == {"loguniform": [1e-4, 1.0]}
    assert cfg.search.settings()["budget_epochs"] == 200


def test_demo_search_gives_a_config_to_train(tmp_path: Path) -> None:
    result = run_demo_search(tmp_path, budget_epochs=24, progress=False)
    # a short coarse-to-fine search in <runs>/demo-search, and the demo config with the best values
    assert (tmp_path / "demo-search" / "search.json").is_file() and len(result.stages) == 3
    cfg = result.best_config
    assert cfg["optimizer"]["lr"] == result.best_params["optimizer.lr"] and cfg["train"]["epochs"] == 10
    assert cfg["model"]["hidden"] == result.best_params["model.hidden"]
