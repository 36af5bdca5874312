"""Shared fixtures: the real digits data (small, bundled with scikit-learn), loaded once."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def digits():
    from babysit import data

    return data.load("digits", seed=0)
