"""``Diagnose``: judge the run once it ends, so the findings are in the History before anyone saves or shows it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from babysit.callbacks._base import Callback

if TYPE_CHECKING:
    from babysit.train.run import Run

log = logging.getLogger("babysit")

__all__ = ["NO_VALIDATION", "Diagnose"]

NO_VALIDATION = (
    "fit got no validation data: the history will hold no val_loss or val_acc, there is no best checkpoint, and the "
    "diagnosis cannot tell overfitting. Pass val_data=(X_val, y_val), or train on babysit.data.from_arrays(X, y), "
    "which holds out a seeded, stratified 20% for validation."
)


class Diagnose(Callback):
    """Run :func:`babysit.diagnose.diagnose` at the end of the run into ``history.findings`` (``fit`` adds it)."""

    order = -50  # after the monitor's last readout, before the run folder, the report and the trackers

    def on_fit_start(self, run: Run) -> None:
        if not run.has_validation:  # said before training, not found missing afterwards
            log.warning(NO_VALIDATION)

    def on_fit_end(self, run: Run, status: str) -> None:
        from babysit.diagnose import diagnose

        run.history.findings = [f.to_dict() for f in diagnose(run.history)]
        if run.history.findings:
            log.info("diagnosis: %s", ", ".join(f"{f['code']} ({f['severity']})" for f in run.history.findings))
