"""TensorBoardLogger: scalars and per-layer histograms as TensorBoard event files, read back with
TensorBoard's own reader; ``tensorboard = true`` in a config turns it on."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from _report_runs import monitored_run

from babysit.config import config_from_dict
from babysit.errors import ConfigError
from babysit.reporting import TensorBoardLogger
from babysit.train.from_config import train_from_config


def event_reader(folder: Path):
    """TensorBoard's reader over ``folder``; in CI a missing tensorboard fails instead of skipping."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("tensorboard is not installed; it is in the dev extra (pip install -e '.[dev]')")
        pytest.skip("tensorboard is not installed (pip install 'babysit[tensorboard]')")
    reader = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    reader.Reload()
    return reader


def test_scalars_series_and_histograms_are_written(tmp_path: Path) -> None:
    event_reader(tmp_path)  # skip early without tensorboard
    with TensorBoardLogger(tmp_path / "tb") as tb:
        h = monitored_run(tmp_path / "run", epochs=3, callbacks=(tb,))
    reader = event_reader(tmp_path / "tb")
    tags = reader.Tags()
    # per-epoch numbers (x = epoch), per-step loss and lr (x = step), the monitor's series
    assert {"epoch/train_loss", "epoch/val_acc", "epoch/lr", "step/loss", "step/lr"} <= set(tags["scalars"])
    assert {"ratio/fc1.weight", "act/act1/std", "grad/fc2.weight/norm"} <= set(tags["scalars"])
    # every epoch once, in order, with the History's values
    epochs = reader.Scalars("epoch/val_acc")
    assert [e.step for e in epochs] == [1, 2, 3]
    assert [e.value for e in epochs] == pytest.approx([r["val_acc"] for r in h.epochs], rel=1e-6)
    assert len(reader.Scalars("step/loss")) == len(h.steps["step"])
    # the per-layer histograms, one event per snapshot
    assert {"act/act1", "grad/fc1.weight"} <= set(tags["histograms"])
    assert len(reader.Histograms("act/act1")) == len(h.histograms["act/act1"])
    first = reader.Histograms("act/act1")[0].histogram_value
    assert first.num == sum(h.histograms["act/act1"][0]["counts"])


def test_tensorboard_true_in_a_config(tmp_path: Path) -> None:
    event_reader(tmp_path)
    cfg = config_from_dict({"name": "tb", "runs_dir": str(tmp_path), "train": {"epochs": 2, "tensorboard": True,
                            "report": False}, "model": {"hidden": [16]}})
    train_from_config(cfg, progress=False)
    reader = event_reader(tmp_path / "tb" / "tensorboard")
    assert [e.step for e in reader.Scalars("epoch/train_loss")] == [1, 2]
    assert not (tmp_path / "tb" / "report.html").exists()  # report = false


def test_a_missing_tensorboard_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'babysit\[tensorboard\]'"):
        TensorBoardLogger("unused")
