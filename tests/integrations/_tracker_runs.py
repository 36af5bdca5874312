"""Real short digits runs for the experiment-tracker tests, and the callbacks that end a run each way.

``sick_run`` trains a digits MLP with SGD at a learning rate far too high (2.0), so the diagnosis has
findings to send (update ratios far above 1e-3, a noisy loss), and draws the report page at the end.
"""

from __future__ import annotations

import functools
import importlib
import os
from pathlib import Path
from typing import Any

import pytest

import babysit
from babysit.findings import SEVERITIES
from babysit.history import History
from babysit.reporting import LiveReport


def need(package: str) -> Any:
    """Import a tracker package; without it the module's tests skip, except in CI (it is in the dev extra)."""
    try:
        return importlib.import_module(package)
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{package} is not installed; it is in the dev extra (pip install -e '.[dev]')")
        pytest.skip(f"{package} is not installed (pip install 'babysit[trackers]')", allow_module_level=True)


@functools.cache
def digits() -> babysit.data.DataBundle:
    return babysit.data.load("digits", seed=0)


def sick_run(run_dir: Path, callbacks: list[Any], *, epochs: int = 2, lr: float = 2.0, report: bool = True,
             **fit_kwargs: Any) -> History:
    """A real 2-epoch digits run in ``run_dir`` with the Monitor sampling every 3rd step (about 23 per epoch)."""
    model = babysit.models.build("mlp", input_shape=digits().input_shape, num_classes=10, hidden=[32], seed=0)
    extra = [LiveReport()] if report else []
    return babysit.fit(model, digits(), epochs=epochs, lr=lr, optimizer="sgd", run_dir=run_dir,
                       monitor={"every": 3}, callbacks=[*callbacks, *extra], **fit_kwargs)


def highest_severities(findings: list[dict[str, Any]]) -> dict[str, str]:
    """``{code: the highest severity of that code}``, written out here apart from the code under test."""
    ranked = sorted(findings, key=lambda f: SEVERITIES.index(f["severity"]))
    return {f["code"]: f["severity"] for f in ranked}


class EndAfterEpoch(babysit.Callback):
    """Raise ``exc`` at the end of epoch ``epoch``: StopTraining (stopped), KeyboardInterrupt (interrupted), any
    other error (failed)."""

    def __init__(self, exc: BaseException, epoch: int = 1) -> None:
        self.exc, self.epoch = exc, epoch

    def on_epoch_end(self, run: Any, record: dict[str, Any]) -> None:
        if record["epoch"] == self.epoch:
            raise self.exc
