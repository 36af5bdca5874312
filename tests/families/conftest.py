"""One intra-op thread: these models are small, and with other processes on the two cores a second thread
mostly waits on OpenMP barriers (see tests/integrations/conftest.py)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
