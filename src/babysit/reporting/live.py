"""``LiveReport``: a ``fit`` callback that keeps ``report.html`` fresh while training runs, and draws the
final page when the run ends (with its real status and findings, whatever ended it).

Drawing the page takes about a second, an epoch on a small model a few milliseconds, so refreshing at
every epoch would multiply the training time. The page is therefore redrawn at an epoch's end only while
the time spent drawing stays within ``budget`` (3 %) of the time spent training, and at most every
``min_interval`` seconds; a short run gets its page at the end, a long one every few minutes. The
page of a running run reloads itself in the browser.

Example:
    >>> live = LiveReport()
    >>> h = babysit.fit(model, data, run_dir="runs/mine", callbacks=[live])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babysit.callbacks._base import Callback
from babysit.errors import ConfigError
from babysit.history import History

if TYPE_CHECKING:
    from babysit.train.run import Run

log = logging.getLogger("babysit")

__all__ = ["LiveReport"]


class LiveReport(Callback):
    """Refresh ``<run_dir>/report.html`` at epoch ends within a time budget; never stops training.

    Args:
        run_dir: where the page goes; None: the History's own run folder (nothing is written without one).
        budget: the largest share of training time spent drawing the page (0.03 = 3 %).
        min_interval: seconds between two refreshes at least.
        final: draw the page when the run ends, whatever the budget (its one-off cost is not training time).
        first_estimate: the assumed cost of a refresh, in seconds, before one has been measured.
        clock: the time source (seconds), replaceable in tests.
    """

    order = 90  # after the diagnosis: the final page shows the findings

    def __init__(
        self,
        run_dir: str | Path | None = None,
        *,
        budget: float = 0.03,
        min_interval: float = 10.0,
        final: bool = True,
        first_estimate: float = 1.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not 0.0 < budget <= 1.0:
            raise ConfigError(f"budget is a share of the training time in (0, 1], got budget={budget!r}.")
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.budget, self.min_interval, self.final = budget, min_interval, final
        self.clock = clock
        self.renders = 0  # how many times the page was written
        self.seconds = 0.0  # time spent writing it
        self._estimate = first_estimate
        self._last: float | None = None
        self._failures = 0

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        self.refresh(run.history)

    def on_fit_end(self, run: Run, status: str) -> None:
        if self.final:
            self.draw(run.history)

    def refresh(self, history: History) -> bool:
        """Draw the page of a running run when the budget allows; whether it was drawn."""
        if not history.epochs or not self._due(history):
            return False
        return self.draw(history)

    def draw(self, history: History) -> bool:
        """Draw the page now (at most two failures are tolerated, then it stops trying); whether it was drawn."""
        folder = self.run_dir or history.run_dir
        if folder is None or self._failures >= 2:
            return False
        from babysit._extras import needs

        with needs("report", "LiveReport"):
            from babysit.reporting.html import write_report  # matplotlib loads on the first refresh only

        started = self.clock()
        try:
            write_report(history, folder)
        except Exception as exc:  # the page is a convenience: training goes on without it
            self._failures += 1
            log.warning("live report: could not write %s/report.html: %s: %s", folder, type(exc).__name__, exc)
        cost = self.clock() - started
        self.renders += 1
        self.seconds += cost
        self._estimate = cost
        self._last = self.clock()
        return True

    def _due(self, history: History) -> bool:
        trained = sum(e.get("seconds") or 0.0 for e in history.epochs)
        within_budget = self.seconds + self._estimate <= self.budget * trained
        rested = self._last is None or self.clock() - self._last >= self.min_interval
        return within_budget and rested
