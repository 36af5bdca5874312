"""``LiveReport``: a ``fit`` callback that keeps ``report.html`` fresh while training runs.

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

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from babysit.history import History

log = logging.getLogger("babysit")

__all__ = ["LiveReport"]


class LiveReport:
    """Refresh ``<run_dir>/report.html`` at epoch ends within a time budget; never stops training.

    Args:
        run_dir: where the page goes; None: the History's own run folder (nothing is written without one).
        budget: the largest share of training time spent drawing the page (0.03 = 3 %).
        min_interval: seconds between two refreshes at least.
        final: also draw the page after the last planned epoch, whatever the budget (its one-off cost is not
            training time). ``train_from_config`` passes False because it writes the final page itself.
        first_estimate: the assumed cost of a refresh, in seconds, before one has been measured.
        clock: the time source (seconds), replaceable in tests.
    """

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
            raise ValueError(f"budget is a share of the training time in (0, 1], got budget={budget!r}.")
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.budget, self.min_interval, self.final = budget, min_interval, final
        self.clock = clock
        self.renders = 0  # how many times the page was written
        self.seconds = 0.0  # time spent writing it
        self._estimate = first_estimate
        self._last: float | None = None
        self._failures = 0

    def __call__(self, history: History) -> None:
        folder = self.run_dir or history.run_dir
        if folder is None or self._failures >= 2 or not history.epochs:
            return None
        last_planned = self.final and history.epochs[-1].get("epoch") == history.meta.get("epochs")
        if not (last_planned or self._due(history)):
            return None
        if last_planned and history.status == "running":  # fit marks it completed right after the callbacks
            history = dataclasses.replace(history, status="completed")
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
        return None

    def _due(self, history: History) -> bool:
        trained = sum(e.get("seconds") or 0.0 for e in history.epochs)
        within_budget = self.seconds + self._estimate <= self.budget * trained
        rested = self._last is None or self.clock() - self._last >= self.min_interval
        return within_budget and rested
