"""TensorBoardLogger's findings (text) and hyperparameters (the HParams tab: the run's settings and its final
numbers), read back from the event files with TensorBoard's own reader; and a thinned series still writes
every new point once."""

from __future__ import annotations

from pathlib import Path

import pytest
from _tracker_runs import need, sick_run

from babysit.history import History
from babysit.reporting import TensorBoardLogger

need("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402


def _reader(folder: Path) -> EventAccumulator:
    reader = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    reader.Reload()
    return reader


def test_findings_and_hyperparameters_are_in_the_event_files(tmp_path: Path) -> None:
    h = sick_run(tmp_path / "run", [TensorBoardLogger()], report=False)
    reader = _reader(tmp_path / "run" / "tensorboard")
    # the findings as one text entry, every code in it
    assert h.findings, "the sick run must have findings to write"
    (text,) = reader.Tensors("babysit/findings/text_summary")
    markdown = tensor_util.make_ndarray(text.tensor_proto).item().decode()
    assert all(f"`{f['code']}`" in markdown for f in h.findings)
    # the settings of the run as hparams, the final numbers as its metrics
    content = reader.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["optimizer"].string_value == "sgd" and hparams["lr"].number_value == 2.0
    assert hparams["epochs"].number_value == 2 and hparams["model"].string_value == "MLP"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    metrics = {m.name.tag for m in experiment.metric_infos}
    assert {"hparams/best_val_acc", "hparams/final_val_loss", "hparams/final_train_loss"} <= metrics
    (best,) = reader.Scalars("hparams/best_val_acc")
    assert best.value == pytest.approx(h.best_val_acc)
    (final,) = reader.Scalars("hparams/final_val_loss")
    assert final.value == pytest.approx(h.epochs[-1]["val_loss"]) and final.step == 2


def test_a_thinned_series_still_writes_each_new_point_once(tmp_path: Path) -> None:
    history = History(series={"ratio/w": {"step": [1, 2, 3, 4], "value": [1.0, 2.0, 3.0, 4.0]}})
    with TensorBoardLogger(tmp_path) as tb:
        tb.write(history)
        # the Monitor thinned the full series (every other point dropped), then read out steps 5 and 6
        history.series["ratio/w"] = {"step": [1, 3, 5, 6], "value": [1.0, 3.0, 5.0, 6.0]}
        tb.write(history)
    assert [(e.step, e.value) for e in _reader(tmp_path).Scalars("ratio/w")] == [
        (1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0), (6, 6.0)]
