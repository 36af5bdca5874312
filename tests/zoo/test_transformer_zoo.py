"""The transformer fault zoo: a character-level GPT on Python source; each fault named in every seed, no healthy
run flagged.

The set-ups live in transformer_setups.py (8 sick, 4 healthy, 3 seeds each; about a second per run on one core).
"""

from __future__ import annotations

import pytest
from transformer_setups import HEALTHY, SICK, VOCAB
from zoo_checks import SEEDS, check_healthy, check_sick


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("setup", SICK, ids=[s.name for s in SICK])
def test_transformer_fault_is_named(setup, seed: int) -> None:
    check_sick(setup, seed)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("setup", HEALTHY, ids=[s.name for s in HEALTHY])
def test_transformer_healthy_run_is_not_flagged(setup, seed: int) -> None:
    check_healthy(setup, seed, VOCAB)


def test_transformer_zoo_is_big_enough() -> None:
    # at least 6 faults over at least 6 different codes, and 3 healthy set-ups
    assert len(SICK) >= 6 and len({s.expected for s in SICK}) >= 6
    assert len(HEALTHY) >= 3
