"""The fault zoo on the real digits data: each sick set-up yields its finding, no healthy one yields a warning.

The set-ups live in zoo_setups.py (18 sick, 6 healthy; each a few seconds at most on 2 cores).
"""

from __future__ import annotations

import time

import pytest
from zoo_setups import HEALTHY, SICK, Setup

PER_RUN_BUDGET_S = 20  # the bound per set-up on 2 cores (most take 1-3 s)


def _codes(history) -> dict[str, str]:
    return {f["code"]: f["severity"] for f in history.findings}


@pytest.mark.parametrize("setup", SICK, ids=[s.name for s in SICK])
def test_sick_setup_yields_its_finding(setup: Setup) -> None:
    started = time.perf_counter()
    history = setup.build()
    elapsed = time.perf_counter() - started
    codes = _codes(history)
    # the planted mistake is named, as a warning or an error, with a suggestion
    assert setup.expected in codes, f"{setup.name}: expected {setup.expected}, got {codes}"
    assert codes[setup.expected] in ("warning", "error")
    finding = next(f for f in history.findings if f["code"] == setup.expected)
    assert finding["message"] and finding["suggestion"]
    assert elapsed < PER_RUN_BUDGET_S


@pytest.mark.parametrize("setup", HEALTHY, ids=[s.name for s in HEALTHY])
def test_healthy_setup_yields_no_warning(setup: Setup) -> None:
    history = setup.build()
    loud = {c: s for c, s in _codes(history).items() if s in ("warning", "error")}
    # hard but healthy runs (tiny batches, a slow learning rate) are not flagged
    assert not loud, f"{setup.name}: {loud}"
    assert history.best_val_acc is None or history.best_val_acc > 0.8


def test_zoo_is_big_enough() -> None:
    # at least 14 sick set-ups over at least 14 different codes, and 5 healthy ones
    assert len(SICK) >= 14 and len({s.expected for s in SICK}) >= 14
    assert len(HEALTHY) >= 5
