"""A few bad inputs through the installed ``babysit`` command in its own process, where an escaped exception would
print a traceback on stderr: one line, the exit code, no traceback (the in-process suite covers the rest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BABYSIT = [str(Path(sys.executable).with_name("babysit"))]
HERE = Path(__file__).resolve().parent

BASE = """
name = "bad"
runs_dir = "{runs}"
[data]
source = "{source}"
[model]
kind = "{model}"
hidden = [8]
[train]
epochs = 1
monitor = false
report = false
[optimizer]
name = "sgd"
lr = 0.1
"""


def _babysit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(HERE)}
    env.pop("BABYSIT_STORAGE", None)
    return subprocess.run([*BABYSIT, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def _config(tmp: Path, source: str = "spiral", model: str = "mlp") -> str:
    path = tmp / "bad.toml"
    path.write_text(BASE.format(runs=tmp / "runs", source=source, model=model))
    return str(path)


def _history(tmp: Path, text: str) -> str:
    folder = tmp / "run"
    folder.mkdir()
    (folder / "history.json").write_text(text)
    return str(folder)


@pytest.mark.parametrize(
    ("make", "phrase"),
    [
        (lambda t: ["diagnose", _history(t, '{"epochs": [{"epoch": 1,')], "not valid JSON"),
        (lambda t: ["report", _history(t, "")], "history.json is empty"),
        (lambda t: (t.joinpath("x.npz").write_bytes(np.random.default_rng(1).bytes(200)),
                    ["train", _config(t, source=str(t / "x.npz"))])[1], "not an .npz archive"),
        (lambda t: ["train", _config(t, model="bad_input_factories:flat_model")], "returns scores shaped (2,)"),
        (lambda t: (t.joinpath("s").mkdir(), t.joinpath("s", "study.json").write_text(json.dumps(
            {"name": "x", "storage": f"sqlite:///{t}/elsewhere/x.db"})), ["search", "status", str(t / "s")])[2],
         "opens only URLs given to it"),
    ],
    ids=["diagnose-truncated", "report-empty", "train-noise-npz", "train-flat-model", "status-planted-url"],
)
def test_no_traceback_reaches_stderr(tmp_path: Path, make, phrase: str) -> None:
    done = _babysit(*make(tmp_path), cwd=tmp_path)
    err = " ".join(done.stderr.split())
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    assert phrase in err and err.count("error:") == 1, err
