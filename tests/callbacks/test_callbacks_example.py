"""examples/callbacks.py runs as documented: a user's callback beside early stopping and EMA."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "callbacks.py"


def test_the_callbacks_example_runs(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(EXAMPLE), "--epochs", "3", "--run-dir", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # the user's numbers and the EMA's are in the epoch records; the run folder holds them
    assert "grad norm" in result.stdout and "EMA val acc" in result.stdout
    assert (tmp_path / "run" / "history.jsonl").is_file()
