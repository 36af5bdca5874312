"""What the tracker callbacks take from a History: only what is new (by step, so a thinned series neither
repeats nor loses points), and the settings of a run flattened into names a tracker takes; and `import babysit`
with the tracker modules loads neither tracker."""

from __future__ import annotations

import subprocess
import sys

from babysit.history import History
from babysit.integrations._tracking import NewPoints, flatten, hyperparameters


def test_new_points_hands_out_each_point_once_by_step_even_after_thinning() -> None:
    history = History(series={"ratio/w": {"step": [1, 2, 3, 4], "value": [1.0, 2.0, 3.0, 4.0]}},
                      epochs=[{"epoch": 1, "train_loss": 2.0, "val_acc": None, "lr": 0.1}])
    points = NewPoints()
    assert points.new_steps(history) == {1: {"ratio/w": 1.0}, 2: {"ratio/w": 2.0}, 3: {"ratio/w": 3.0},
                                         4: {"ratio/w": 4.0}}
    # a missing validation accuracy is left out, not sent as a number
    assert points.new_epochs(history) == [(1, {"train_loss": 2.0, "lr": 0.1})]
    history.series["ratio/w"] = {"step": [1, 3, 5, 6], "value": [1.0, 3.0, 5.0, float("nan")]}  # thinned
    history.epochs.append({"epoch": 2, "train_loss": 1.5, "lr": 0.1})
    assert points.new_steps(history) == {5: {"ratio/w": 5.0}}  # a NaN is not a number a tracker can chart
    assert points.new_epochs(history) == [(2, {"train_loss": 1.5, "lr": 0.1})]
    # a resumed run's cursor continues where the checkpoint's left off
    again = NewPoints()
    again.load_state_dict(points.state_dict())
    assert again.new_steps(history) == {} and again.new_epochs(history) == []


def test_hyperparameters_are_the_settings_flattened() -> None:
    meta = {"optimizer": {"name": "momentum", "momentum": 0.9}, "lr": 0.1, "schedule": None,
            "model_repr": "MLP(...)", "started_at": "2026-01-01", "config": {"train": {"epochs": 3},
            "model": {"hidden": [64, 32]}, "redacted": {"search.storage": "env"}},
            "data": {"name": "digits", "train": 1078, "class_counts": {"train": [1, 2]}}}
    assert flatten(hyperparameters(meta)) == {
        "optimizer.name": "momentum", "optimizer.momentum": 0.9, "lr": 0.1, "config.train.epochs": 3,
        "config.model.hidden": "[64, 32]", "data.name": "digits", "data.train": 1078}


def test_importing_babysit_and_the_tracker_modules_loads_no_tracker() -> None:
    # mlflow and wandb load when a tracker callback is built, never with `import babysit`
    code = ("import sys, babysit, babysit.integrations.mlflow, babysit.integrations.wandb, babysit.train.from_config\n"
            "print(sorted(m for m in ('mlflow', 'wandb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_no_tracker_callback_runs_on_the_training_step() -> None:
    # the loop calls only callbacks that override on_step_end: the trackers read the History at epoch ends
    from babysit.callbacks._base import Callback
    from babysit.integrations.mlflow import MLflowLogger
    from babysit.integrations.wandb import WandbLogger
    from babysit.reporting import TensorBoardLogger

    assert [c for c in (MLflowLogger, WandbLogger, TensorBoardLogger) if c.on_step_end is not Callback.on_step_end] \
        == []
