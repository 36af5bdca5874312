"""Shared fixtures: the real digits data (small, bundled with scikit-learn), loaded once."""

from __future__ import annotations

import signal

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def digits():
    from babysit import data

    return data.load("digits", seed=0)


@pytest.fixture(scope="session")
def full_demo(tmp_path_factory):
    """`babysit demo` end to end (all five stages, full length), run once for every test that reads it."""
    from typer.testing import CliRunner

    from babysit.cli import app

    runs = tmp_path_factory.mktemp("demo-runs")
    result = CliRunner().invoke(app, ["demo", "--runs-dir", str(runs), "--no-progress"], env={"COLUMNS": "200"})
    return runs, result


@pytest.fixture
def plain_sigint():
    """Ctrl-C as an interactive Python process has it (Python's own handler, not blocked), also when the test
    run was started in the background, where SIGINT is ignored; put back afterwards."""
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    yield
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    signal.signal(signal.SIGINT, handler)
