"""One torch thread while these tests train tiny models: two threads fight on a busy 2-core machine (a range
test measured 0.8 s with one thread, 37 s with two under load); the session's setting is restored after."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
