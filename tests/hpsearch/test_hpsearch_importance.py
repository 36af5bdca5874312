"""Which hyperparameters mattered: fANOVA importances and the contour of the top two, from a real search."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

import babysit
from babysit.hpsearch.importance import param_importances
from babysit.reporting import figures

SPACE = {"lr": {"kind": "loguniform", "low": 1e-4, "high": 1.0}, "width": {"kind": "int", "low": 16, "high": 32}}


def _search(n: int, *, diverged_above: float = math.inf) -> dict:
    trials = []
    for i in range(n):
        lr, width = 10 ** (-4 + 4 * i / (n - 1)), 16 + (7 * i) % 17
        diverged = lr > diverged_above
        trials.append({"number": i, "params": {"lr": lr, "width": width}, "stage": 1,
                       "value": None if diverged else 1 - abs(math.log10(lr) + 2) / 4,
                       "state": "diverged" if diverged else "complete"})
    return {"trials": trials, "stages": [{"index": 1, "epochs": 1, "space": SPACE}], "space": SPACE}


def test_the_parameter_the_accuracy_depends_on_comes_first() -> None:
    found = param_importances(_search(20))
    assert found is not None and found.stage == 1 and found.trials == 20
    assert found.top(1) == ["lr"] and found.importances["lr"] > 0.8
    assert math.isclose(sum(found.importances.values()), 1.0)


def test_diverged_trials_count_at_the_worst_accuracy() -> None:
    # a rate that diverges is what matters most: dropping those trials would hide it
    found = param_importances(_search(20, diverged_above=0.05))
    assert found is not None and found.trials == 20 and found.top(1) == ["lr"]


def test_too_few_trials_give_no_importances_and_no_figures() -> None:
    search = _search(5)
    assert param_importances(search) is None
    assert figures.search_importance(search) is None and figures.search_contour(search) is None


def test_without_optuna_the_figures_are_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ImportError
    assert figures.search_importance(_search(20)) is None


def test_a_real_search_ranks_the_learning_rate_first_and_the_report_shows_both_figures(tmp_path: Path) -> None:
    # 16 one-epoch digits trials over the lecture's learning-rate range: the rate decides (from 10% to 97%)
    space = {"optimizer.lr": babysit.space.loguniform(1e-5, 10.0),
             "optimizer.momentum": babysit.space.uniform(0.5, 0.9)}
    config = {"name": "imp", "seed": 0, "data": {"source": "digits", "normalize": "standardize"},
              "model": {"kind": "mlp", "hidden": 32}, "train": {"epochs": 1, "batch_size": 64, "monitor": False},
              "optimizer": {"name": "momentum", "lr": 0.05, "momentum": 0.9}}
    result = babysit.search(config, space, strategy="random", trials=16, epochs=1, seed=0, progress=False,
                            search_dir=tmp_path / "s")
    saved = (tmp_path / "s" / "search.json")
    import json

    search = json.loads(saved.read_text())
    found = param_importances(search)
    assert found is not None and found.top(1) == ["optimizer.lr"], found
    assert found.trials == len([t for t in result.trials if t.state in ("complete", "pruned", "diverged")])
    bars = figures.search_importance(search)
    assert [t.get_text() for t in bars.axes[0].get_yticklabels()][-1] == "optimizer.lr"  # the top bar
    contour = figures.search_contour(search)
    assert contour.axes[0].get_xlabel() == "optimizer.lr (log scale)"
    assert contour.axes[0].get_ylabel() == "optimizer.momentum"
    from babysit.reporting import report

    html = report(tmp_path / "s").read_text()
    assert 'id="fig-search-importance"' in html and 'id="fig-search-contour"' in html
    assert "could not be drawn" not in html
