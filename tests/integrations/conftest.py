"""One intra-op thread for the integration tests.

Their models are tiny (a digits MLP, a 2-layer GPT-2 of width 64), so a second thread buys nothing, and when
other processes share the two cores, OpenMP barriers waiting on a descheduled thread make a Trainer run 5-10x
slower (measured: a 2 s GPT-2 run took 20-32 s with two threads under load, 2-4 s with one).
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
