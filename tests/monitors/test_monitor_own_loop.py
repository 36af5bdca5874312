"""babysit.Monitor in a plain PyTorch loop: nothing read from the device while training, hooks only on sampled
steps, bounded memory, the zero_grad check, evaluation determinism, the first non-finite layer."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from babysit import Monitor
from babysit.errors import ConfigError
from babysit.monitors import monitor as monitor_module
from babysit.testing.contracts import check_series_scheme


def _net(dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))


def _train(model, opt, monitor, steps, *, zero_grad=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        X, y = torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)
        loss = F.cross_entropy(model(X), y)
        if zero_grad:
            opt.zero_grad()
        loss.backward()
        opt.step()
        monitor.step(loss)


@contextlib.contextmanager
def _no_device_reads(monkeypatch):
    """Every way to pull a tensor's value to the host raises inside this block."""
    def refuse(*args, **kwargs):
        raise AssertionError("a tensor was read from the device during training")

    with monkeypatch.context() as m:
        for name in ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__"):
            m.setattr(torch.Tensor, name, refuse)
        yield


def test_training_steps_read_nothing_from_the_device(monkeypatch) -> None:
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    monitor = Monitor(model, opt, every=2, histograms_every=1)
    with _no_device_reads(monkeypatch):  # sampled and plain steps alike
        _train(model, opt, monitor, 9)
    monitor.end_epoch(train_acc=0.5, val_acc=0.4)  # the one read, per epoch
    # the statistics arrive at the epoch's end, for steps 1, 3, 5, 7, 9
    assert monitor.history.series["ratio/0.weight"]["step"] == [1, 3, 5, 7, 9]
    check_series_scheme(monitor.history)


def test_hooks_exist_only_on_sampled_steps() -> None:
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = Monitor(model, opt, every=5, watch_eval=False)
    hooked = []
    for _ in range(10):
        _train(model, opt, monitor, 1)
        hooked.append(bool(model[0]._forward_hooks) or bool(opt._optimizer_step_pre_hooks))
    # armed after steps 5 and 10 (for steps 6 and 11), bare otherwise
    assert hooked == [False, False, False, False, True, False, False, False, False, True]
    monitor.close()
    assert not model[0]._forward_hooks and not model._forward_hooks and not opt._optimizer_step_pre_hooks


def test_memory_is_bounded_and_keeps_the_first_point() -> None:
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = Monitor(model, opt, every=1, max_points=8, max_histograms=4, histograms_every=1)
    for _ in range(6):
        _train(model, opt, monitor, 20)
        monitor.end_epoch()
    h = monitor.history
    # at most max_points per series and max_histograms per key, the initialisation always kept
    assert all(len(col["step"]) <= 8 for col in h.series.values())
    assert all(col["step"][0] == 1 for key, col in h.series.items() if not key.startswith("eval/"))
    assert all(len(snaps) <= 4 and snaps[0]["step"] == 1 for snaps in h.histograms.values())
    assert len(monitor._pending) == 0


def test_pending_values_are_flushed_without_end_epoch(monkeypatch) -> None:
    monkeypatch.setattr(monitor_module, "MAX_PENDING", 16)
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = Monitor(model, opt, every=1)
    _train(model, opt, monitor, 50)
    # a loop that never ends an epoch still keeps at most MAX_PENDING sampled steps on the device
    assert len(monitor._pending.rows) < 16


def test_own_loop_records_steps_epochs_and_diagnoses() -> None:
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = Monitor(model, opt, every=3)
    for _ in range(2):
        _train(model, opt, monitor, 10)
        monitor.end_epoch(train_acc=0.6, val_acc=0.5, val_loss=1.0)
    h = monitor.history
    # per-step losses with fractional epochs, one record per epoch, layers in forward order
    assert len(h.steps["loss"]) == 20 and h.steps["epoch"][9] == 1.0 and h.steps["epoch"][-1] == 2.0
    assert [e["epoch"] for e in h.epochs] == [1, 2] and h.epochs[0]["val_acc"] == 0.5
    assert [x["name"] for x in h.layers] == ["0", "1", "3"]
    assert isinstance(monitor.diagnose(), list)


def test_zero_grad_missing_is_caught_but_deliberate_accumulation_is_not() -> None:
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    monitor = Monitor(model, opt, every=2)
    _train(model, opt, monitor, 8, zero_grad=False)
    carry = monitor.history.series["grad/carry"]["value"]
    # from the second step on most of .grad is left over from earlier steps
    assert carry[0] < 1e-3 and min(carry[1:]) > 0.3

    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    monitor = Monitor(model, opt, every=2)
    g = torch.Generator().manual_seed(0)
    for _ in range(8):  # two micro-batches per step, zero_grad after the step, loss scaled x1024 and unscaled
        for _ in range(2):
            X, y = torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)
            (1024 * F.cross_entropy(model(X), y)).backward()
        for p in model.parameters():
            p.grad.div_(2048)
        opt.step()
        opt.zero_grad()
        monitor.step()
    # deliberate accumulation and loss scaling are not a missing zero_grad
    assert max(monitor.history.series["grad/carry"]["value"]) < 1e-3


def test_evaluation_in_training_mode_with_dropout_is_caught() -> None:
    model = _net(dropout=0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = Monitor(model, opt, every=4)
    X = torch.randn(64, 6)
    for epoch in range(3):
        _train(model, opt, monitor, 8, seed=epoch)
        with torch.no_grad():
            model(X)  # the forgotten model.eval()
        monitor.end_epoch()
    values = monitor.history.series["eval/disagreement_train_mode"]["value"]
    # once per epoch, two passes over the same examples disagree
    assert len(values) == 3 and min(values) > 0.1
    assert "eval_nondeterministic" in {f.code for f in monitor.diagnose()}


def test_dropout_that_ignores_eval_is_caught() -> None:
    class AlwaysDropout(nn.Module):
        def forward(self, x):
            return F.dropout(x, 0.5, training=True)

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), AlwaysDropout(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = Monitor(model, opt, every=2)
    _train(model, opt, monitor, 4)
    model.eval()
    monitor.end_epoch()
    # evaluation-mode passes still disagree: a layer stays random after model.eval()
    assert monitor.history.series["eval/disagreement"]["value"][0] > 0.1
    assert not model.training


def test_first_nonfinite_layer_is_named() -> None:
    class LogLayer(nn.Module):
        def forward(self, x):
            return torch.log(x)  # log(0) = -inf for every dead unit

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), LogLayer(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = Monitor(model, opt, every=1)
    _train(model, opt, monitor, 2)
    findings = monitor.diagnose()
    # the custom layer whose output is the first to be non-finite is named
    assert monitor.history.sections["monitor"]["nonfinite"]["layer"] == "2"
    assert findings[0].code == "loss_diverged" and "2" in findings[0].evidence["first_nonfinite_layer"]


def test_a_module_called_twice_gets_two_keys() -> None:
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2, self.act = nn.Linear(6, 8), nn.Linear(8, 3), nn.ReLU()

        def forward(self, x):
            return self.fc2(self.act(self.act(self.fc1(x)) * 2 - 1))

    model = Shared()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = Monitor(model, opt, every=1)
    _train(model, opt, monitor, 2)
    # each call of the shared ReLU is its own entry in forward order
    assert [x["name"] for x in monitor.history.layers] == ["fc1", "act", "act#2", "fc2"]
    assert "act/act#2/dead" in monitor.history.series


def test_settings_are_validated() -> None:
    model = _net()
    with pytest.raises(ConfigError, match="every"):
        Monitor(model, every=0)
    with pytest.raises(ConfigError, match="Module"):
        Monitor("model")
    monitor = Monitor(model, torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ConfigError, match="another optimizer"):
        monitor.watch_optimizer(torch.optim.SGD(model.parameters(), lr=0.1))
