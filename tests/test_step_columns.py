"""Per-step columns at bounded resolution: every step kept until the capacity, then pairs merge and no spike is lost."""

from __future__ import annotations

import math
import random

import pytest

from babysit._steps import StepColumns


def _steps(n: int, seed: int = 0) -> list[tuple[int, float, float, float]]:
    rng = random.Random(seed)
    out = []
    for step in range(1, n + 1):
        loss = 2.0 / math.sqrt(step) + rng.random() * 0.1
        if step in (37, 90):
            loss = 50.0  # spikes
        out.append((step, step / 10, loss, 0.1))
    return out


@pytest.mark.parametrize("chunk", [1, 3, 7, 16, 40])
def test_extending_in_chunks_equals_appending_step_by_step(chunk: int) -> None:
    # fit drains an epoch's steps through extend, which takes a column-wide path while the points fit
    steps = _steps(100)
    one = StepColumns(capacity=16)
    for s, e, x, r in steps:
        one.append(s, e, x, r)
    many = StepColumns(capacity=16)
    for i in range(0, len(steps), chunk):
        part = steps[i : i + chunk]
        many.extend(*(list(c) for c in zip(*part)))
    assert many.columns == one.columns
    assert many.state() == one.state() and many.merges == one.merges


def test_memory_stays_bounded_and_spikes_survive_the_merges() -> None:
    columns = StepColumns(capacity=16)
    columns.extend(*(list(c) for c in zip(*_steps(1000))))
    assert len(columns.columns["step"]) <= 16 and columns.stride >= 64 and columns.num_steps == 1000
    assert max(columns.columns["loss_max"]) == 50.0  # the spike at step 37 is inside some bucket's extremes
    assert columns.columns["step"] == sorted(columns.columns["step"])
