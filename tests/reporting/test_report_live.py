"""LiveReport: the page is refreshed at epoch ends within a time budget, and never costs the training."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from _report_runs import digits_mlp

import babysit
from babysit.history import History
from babysit.reporting import LiveReport, html


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def scripted(epochs: int, seconds: float, planned: int = 1000) -> History:
    h = History(meta={"epochs": planned}, run_dir=Path("unused"))
    h.epochs = [{"epoch": e, "seconds": seconds, "train_loss": 1.0} for e in range(1, epochs + 1)]
    return h


@pytest.fixture()
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(html, "write_report", lambda history, folder: calls.append(history.status))
    return calls


def test_refreshes_only_within_the_time_budget(renders: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    live = LiveReport(budget=0.05, min_interval=0.0, first_estimate=1.0, clock=clock)
    record = html.write_report

    def slow(history: History, folder: Path) -> None:  # each refresh costs 1 s of (fake) time
        clock.now += 1.0
        record(history, folder)

    monkeypatch.setattr(html, "write_report", slow)
    for n in range(1, 101):  # 100 epochs of 1 s each
        clock.now += 1.0
        live.refresh(scripted(n, seconds=1.0))
        # at no point has drawing the page taken more than 5 % of the training time
        assert live.seconds <= 0.05 * n + 1e-9
    # ... and yet the page was refreshed several times while training ran
    assert live.renders == 5 and renders == ["running"] * 5


def test_waits_min_interval_between_refreshes(renders: list[str]) -> None:
    clock = FakeClock()
    live = LiveReport(budget=1.0, min_interval=10.0, first_estimate=0.0, clock=clock)
    for n in range(1, 31):  # 30 epochs of 1 s, drawing is free: still at most one refresh per 10 s
        clock.now += 1.0
        live.refresh(scripted(n, seconds=1.0))
    assert live.renders == 3


@pytest.mark.parametrize("status", ["completed", "stopped", "diverged", "interrupted"])
def test_the_final_page_is_drawn_when_the_run_ends_with_its_real_status(renders: list[str], status: str) -> None:
    history = scripted(5, seconds=0.01, planned=5)
    history.status = status
    live = LiveReport(clock=FakeClock())
    live.on_epoch_end(SimpleNamespace(history=history), history.epochs[-1])  # within budget: nothing yet
    live.on_fit_end(SimpleNamespace(history=history), status)
    # a short run gets its page at the end, with the status fit closed it with (no reload loop)
    assert renders == [status]
    LiveReport(final=False, clock=FakeClock()).on_fit_end(SimpleNamespace(history=history), status)
    assert len(renders) == 1


def test_in_a_real_short_fit_the_page_is_written_once_at_the_end(tmp_path: Path) -> None:
    live = LiveReport()
    h = babysit.fit(digits_mlp(), babysit.data.load("digits", seed=0), epochs=3, run_dir=tmp_path,
                    monitor=False, callbacks=[live])
    # epochs of a few ms: no refresh fits the 3 % budget before the end, so training was not slowed
    assert live.renders == 1 and h.status == "completed"
    assert "status-completed" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_a_generous_budget_refreshes_every_epoch_while_running(tmp_path: Path) -> None:
    seen: list[bool] = []

    class Look(babysit.Callback):
        order = LiveReport.order + 1  # right after the refresh

        def on_epoch_end(self, run, record) -> None:
            seen.append("status-running" in (tmp_path / "report.html").read_text(encoding="utf-8"))

    live = LiveReport(budget=1.0, min_interval=0.0, first_estimate=0.0, final=False)
    babysit.fit(digits_mlp(), babysit.data.load("digits", seed=0), epochs=3, run_dir=tmp_path,
                monitor=False, callbacks=[live, Look()])
    # the page could be reloaded after every epoch, and said the run was still going
    assert seen == [True, True, True]


def test_a_failing_page_never_stops_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(history: History, folder: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(html, "write_report", broken)
    live = LiveReport(budget=1.0, min_interval=0.0, first_estimate=0.0)
    h = babysit.fit(digits_mlp(), babysit.data.load("digits", seed=0), epochs=4, run_dir=tmp_path,
                    monitor=False, callbacks=[live])
    # training completed; after two failures the page stops being attempted
    assert h.status == "completed" and live.renders == 2


def test_budget_must_be_a_share() -> None:
    with pytest.raises(ValueError, match="budget"):
        LiveReport(budget=0.0)
