"""The learning-rate range test on the real digits: its suggestion trains well, it never suggests a rate past the
explosion, it leaves the model alone, and its curve reaches the report and the command line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import babysit
from babysit import models
from babysit.cli import app
from babysit.train.lr_find import LRFindResult, read_curve


def _mlp(digits, **kw):
    return models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[128, 64], seed=0, **kw)


@pytest.fixture(scope="module")
def sweep(digits) -> LRFindResult:
    """One range test up to far too high a rate (batch 64, Nesterov), shared by the tests that only read it."""
    return babysit.lr_find(_mlp(digits), digits, optimizer="nesterov", batch_size=64, steps=150, max_lr=100.0)


@pytest.mark.parametrize("optimizer", [{"name": "momentum", "momentum": 0.9}, "adam"], ids=["sgd-momentum", "adam"])
def test_suggested_rate_trains_digits_to_97_percent_in_30_epochs(digits, optimizer) -> None:
    model = _mlp(digits)
    found = babysit.lr_find(model, digits, optimizer=optimizer, reg=1e-2)
    assert found.suggestion is not None and found.explodes_at is not None
    history = babysit.fit(model, digits, optimizer=optimizer, lr=found.suggestion, reg=1e-2, epochs=30,
                          device="cpu", monitor=False, options={"progress": False})
    # the lecture's good rate: it falls fast and does not stall, so 30 epochs reach 97% on the validation split
    assert history.best_val_acc >= 0.97, (found.reason, history.best_val_acc)


@pytest.mark.parametrize("batch_size", [4, 64])
def test_suggestion_stays_below_the_explosion_on_noisy_and_smooth_curves(digits, sweep, batch_size) -> None:
    found = sweep if batch_size == 64 else babysit.lr_find(_mlp(digits), digits, optimizer="nesterov",
                                                           batch_size=batch_size, steps=150, max_lr=100.0)
    # the sweep reached rates where the loss explodes, and the suggestion keeps 10x below them and the minimum
    assert found.explodes_at is not None and found.explodes_at < 100.0
    assert found.suggestion is not None
    assert found.suggestion <= found.explodes_at / 10
    assert found.suggestion <= found.minimum_at / 10 * 1.0001
    # the smoothed curve really is lower at the suggestion than where it started, and the reason says so
    at = min(range(len(found.lrs)), key=lambda i: abs(math.log(found.lrs[i] / found.suggestion)))
    assert found.smoothed[at] < found.smoothed[0]
    assert "explodes" in found.reason and f"{found.suggestion:.3g}" in found.reason


def test_single_spikes_of_a_noisy_curve_are_not_read_as_the_explosion(sweep) -> None:
    found = sweep
    raw = list(found.losses)
    for i in range(20, len(raw) // 2, 15):  # one very bad batch now and then, well before the true explosion
        raw[i] *= 8
    reread = read_curve(found.lrs, raw, stopped_early=len(raw) < 150)
    # a lone spike is smoothed away: the explosion and the suggestion stay where the clean curve put them
    assert reread.explodes_at is not None and reread.explodes_at >= found.explodes_at / 2
    assert reread.suggestion is not None and reread.suggestion < reread.explodes_at


def test_lr_find_trains_a_copy_and_leaves_model_and_optimizer_untouched(digits) -> None:
    model = _mlp(digits)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    found = babysit.lr_find(model, digits, optimizer=opt, steps=60)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not opt.state and opt.param_groups[0]["lr"] == 1e-3
    # the built optimizer's class was used on the copy; the rates rose exponentially
    assert found.optimizer == "Adam"
    ratios = [b / a for a, b in zip(found.lrs, found.lrs[1:])]
    assert max(ratios) / min(ratios) < 1.0001 and ratios[0] > 1


def test_result_round_trips_and_the_run_report_shows_the_curve(digits, sweep, tmp_path: Path) -> None:
    found = sweep
    folder = tmp_path / "run"
    babysit.fit(_mlp(digits), digits, optimizer="nesterov", lr=found.suggestion, epochs=1, device="cpu",
                run_dir=folder, monitor=False, options={"progress": False})
    found.save(folder)
    again = LRFindResult.load(folder)
    assert again.suggestion == found.suggestion and again.lrs == found.lrs
    fig = again.plot()
    assert fig.axes[0].get_xscale() == "log"
    page = babysit.report(folder).read_text(encoding="utf-8")
    assert "Learning-rate range test" in page


def test_cli_lr_find_prints_the_suggestion_and_writes_the_curve(tmp_path: Path) -> None:
    config = tmp_path / "digits.toml"
    config.write_text(f'name = "lrf"\nruns_dir = "{tmp_path / "runs"}"\ndevice = "cpu"\n[model]\nhidden = [64]\n'
                      '[optimizer]\nname = "nesterov"\nlr = 0.05\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["lr-find", str(config), "--steps", "80"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "suggested lr" in result.output and "explodes at" in result.output
    folder = tmp_path / "runs" / "lrf"
    assert (folder / "lr_find.json").is_file() and (folder / "lr_find.png").stat().st_size > 1000
    bad = CliRunner().invoke(app, ["lr-find", str(config), "--min-lr", "1", "--max-lr", "0.1"])
    # a range that cannot make a sweep is bad input, named in one line
    assert bad.exit_code == 2 and "min_lr" in bad.output
