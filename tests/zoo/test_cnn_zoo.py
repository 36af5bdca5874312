"""The CNN fault zoo: a small ResNet on 32x32 images; each fault named in every seed, no healthy run flagged.

The set-ups live in cnn_setups.py (6 sick, 3 healthy, 3 seeds each; a second or two per run on one core).
"""

from __future__ import annotations

import pytest
from cnn_setups import ANGLES, HEALTHY, SICK
from zoo_checks import SEEDS, check_healthy, check_sick


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("setup", SICK, ids=[s.name for s in SICK])
def test_cnn_fault_is_named(setup, seed: int) -> None:
    check_sick(setup, seed)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("setup", HEALTHY, ids=[s.name for s in HEALTHY])
def test_cnn_healthy_run_is_not_flagged(setup, seed: int) -> None:
    check_healthy(setup, seed, len(ANGLES))


def test_cnn_zoo_is_big_enough() -> None:
    # at least 6 faults over at least 6 different codes, and 3 healthy set-ups
    assert len(SICK) >= 6 and len({s.expected for s in SICK}) >= 6
    assert len(HEALTHY) >= 3
