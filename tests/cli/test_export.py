"""``babysit export RUN_DIR``: the run log as one history.json that reads back to the same History."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import babysit
from babysit._io import json_text, read_json
from babysit.cli import app
from babysit.history import History


def test_export_writes_the_whole_history_as_one_file(digits, tmp_path: Path) -> None:
    model = babysit.models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[16], seed=0)
    h = babysit.fit(model, digits, lr=0.05, epochs=2, run_dir=tmp_path / "run", monitor={"every": 5})
    result = CliRunner().invoke(app, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "one.json")])
    assert result.exit_code == 0, result.output
    data = read_json(tmp_path / "one.json")
    # everything the run recorded, in one file that History reads back as it was (NaN ratios included)
    assert [e["epoch"] for e in data["epochs"]] == [1, 2] and data["status"] == "completed"
    again = History.from_dict(data)
    for name in ("epochs", "steps", "series", "histograms", "layers", "findings"):
        assert json_text(getattr(again, name)) == json_text(getattr(h, name)), name
    assert again.num_steps == h.num_steps


def test_export_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "missing" in result.output
