"""What every family's zoo asserts: the planted fault is named (code and cause) in every seed, a healthy set-up
gets no warning and learns. One thread per run: these models are so small that a second thread only waits."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from zoo_loop import Setup

from babysit.history import History

SEEDS = (0, 1, 2)
PER_RUN_BUDGET_S = 20  # as the digits zoo: most runs take 1-2 s on a free core


@contextmanager
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run(setup: Setup, seed: int) -> History:
    started = time.perf_counter()
    with one_thread():
        history = setup.build(seed)
    assert time.perf_counter() - started < PER_RUN_BUDGET_S
    return history


def _one_rate(history: History) -> None:
    rates = {f["evidence"]["recommended_lr"] for f in history.findings if f["evidence"].get("recommended_lr")}
    # every finding that recommends a learning rate recommends the same one
    assert len(rates) <= 1, rates


def check_sick(setup: Setup, seed: int) -> None:
    history = run(setup, seed)
    _one_rate(history)
    found = {f["code"]: f for f in history.findings}
    # the planted mistake is named, as a warning or an error, with a suggestion, and its cause where the code
    # alone is only a symptom
    assert setup.expected in found, f"{setup.name} seed {seed}: expected {setup.expected}, got {sorted(found)}"
    finding = found[setup.expected]
    assert finding["severity"] in ("warning", "error") and finding["message"] and finding["suggestion"]
    if setup.cause is not None:
        assert finding["evidence"].get("cause_code") == setup.cause, finding["message"]


def check_healthy(setup: Setup, seed: int, num_classes: int) -> None:
    history = run(setup, seed)
    _one_rate(history)
    loud = {f["code"]: f["message"] for f in history.findings if f["severity"] in ("warning", "error")}
    # hard but healthy runs (noisy small batches, a slow rate) are not flagged ...
    assert not loud, f"{setup.name} seed {seed}: {loud}"
    # ... and they do learn: the validation loss ends well below an untrained model's ln C
    assert history.epochs[-1]["val_loss"] < 0.9 * math.log(num_classes)
