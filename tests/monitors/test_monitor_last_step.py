"""The run's last step is kept with histograms, so the report compares the distributions at the start and at
the end of training, whatever the sampling grid; the step itself reads nothing from the device."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import babysit
from babysit import Monitor
from babysit.errors import ConfigError


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def _train(model: nn.Module, opt: torch.optim.Optimizer, monitor: Monitor, steps: int, *,
           hand_loss: bool = True) -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        X, y = torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)
        loss = F.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        monitor.step(loss if hand_loss else None)


@contextlib.contextmanager
def _no_device_reads(monkeypatch: pytest.MonkeyPatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a tensor was read from the device during training")

    with monkeypatch.context() as m:
        for name in ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__"):
            m.setattr(torch.Tensor, name, refuse)
        yield


def test_the_last_step_keeps_histograms_off_the_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = Monitor(model, opt, every=3, histograms_every=10)
    monitor.expect_last_step(8)
    with _no_device_reads(monkeypatch):  # the extra sampled step, like any other, stays on the device
        _train(model, opt, monitor, 8)
    monitor.end_epoch()
    history = monitor.history
    # histograms at step 1 (the grid's first histogram step) and at step 8, the last, which is off the grid
    steps = {key: [s["step"] for s in snaps] for key, snaps in history.histograms.items()}
    assert {"act/0", "act/1", "act/2", "grad/0.weight", "grad/2.weight"} <= set(steps)
    assert all(seen == [1, 8] for seen in steps.values()), steps
    # the series keep their grid (1, 4, 7); only the histogram steps' own series gain the last step
    assert history.series["ratio/0.weight"]["step"] == [1, 4, 7]
    assert history.series["act/1/std"]["step"] == [1, 4, 7]
    assert history.series["grad/0.weight/std"]["step"] == [1, 8]


def test_without_histograms_the_last_step_is_not_sampled() -> None:
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = Monitor(model, opt, every=3, histograms_every=0)
    monitor.expect_last_step(5)
    _train(model, opt, monitor, 5)
    monitor.end_epoch()
    assert monitor.history.histograms == {}
    assert monitor.history.series["ratio/0.weight"]["step"] == [1, 4]
    with pytest.raises(ConfigError, match="step number"):
        monitor.expect_last_step(0)


def test_thinning_keeps_the_first_and_the_newest_snapshot() -> None:
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = Monitor(model, opt, every=1, histograms_every=1, max_histograms=3)  # odd: [::2] would drop the last
    _train(model, opt, monitor, 9)
    monitor.end_epoch()
    steps = [s["step"] for s in monitor.history.histograms["act/1"]]
    assert steps[0] == 1 and steps[-1] == 9 and len(steps) <= 4


def test_fit_keeps_histograms_at_its_first_and_last_step() -> None:
    data = babysit.data.load("digits", seed=0)
    model = babysit.models.build("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=[16], seed=0)
    history = babysit.fit(model, data, epochs=2, lr=0.05, monitor=True)  # every 100th step: only step 1 sampled
    last = history.num_steps
    assert 1 < last < 100
    assert history.histograms and all([s["step"] for s in snaps] == [1, last]
                                      for snaps in history.histograms.values())


@pytest.mark.parametrize(("every", "last"), [(1, 5), (3, 8), (3, 9), (3, 10), (4, 2), (7, 30)])
def test_steps_given_no_loss_sample_the_same_grid_and_last_step(every: int, last: int) -> None:
    """fit calls ``step()`` without a loss, and a step with nothing to do then only counts itself: the grid
    (1, 1 + every, ...) and the run's last step are sampled exactly as in a loop that hands over its losses."""
    recorded = []
    for hand_loss in (True, False):
        model = _net()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        monitor = Monitor(model, opt, every=every, histograms_every=2, watch_eval=False)
        monitor.expect_last_step(last)
        _train(model, opt, monitor, last, hand_loss=hand_loss)
        history = monitor.history
        recorded.append((history.series["ratio/0.weight"]["step"],
                         {key: [s["step"] for s in snaps] for key, snaps in history.histograms.items()}))
    assert recorded[0] == recorded[1]
    grid = list(range(1, last + 1, every))
    assert recorded[1][0] == grid
    assert all(steps == sorted({*grid[::2], last}) for steps in recorded[1][1].values())
