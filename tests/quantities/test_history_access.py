"""Typed access on History: series by quantity, the targets that have one, what a history recorded (old ones
included), and the Monitor arming only what the chosen quantities need."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from babysit import Monitor
from babysit.errors import ConfigError
from babysit.history import History, Series
from babysit.quantities import DEFAULT, UpdateRatio
from babysit.testing.histories import make_history


def test_series_of_and_targets_read_by_quantity() -> None:
    h = make_history(series={"ratio/fc1.weight": [1e-3, 2e-3], "weight/fc1.weight/norm": [4.0, 4.1],
                             "ratio/fc2.weight": [5e-4, 6e-4], "act/act1/dead": [0.1, 0.2], "grad/carry": [0.0, 0.0]},
                     every=10)
    # the primary stat by default, another by name; class, instance and name are the same quantity
    assert h.series_of("update_ratio", target="fc1.weight") == Series([1, 11], [1e-3, 2e-3])
    assert h.series_of(UpdateRatio, "weight_norm", "fc1.weight").values == [4.0, 4.1]
    assert h.series_of(UpdateRatio(), target="fc2.weight").steps == [1, 11]
    assert h.series_of("gradient_carry") == Series([1, 11], [0.0, 0.0])
    # not recorded: empty, never an error
    assert h.series_of("update_ratio", target="fc9.weight") == Series([], [])
    assert h.targets("update_ratio") == ["fc1.weight", "fc2.weight"]
    assert h.targets("update_ratio", "weight_norm") == ["fc1.weight"]
    assert h.targets("dead_fraction") == ["act1"] and h.targets("gradient_carry") == []
    with pytest.raises(ConfigError, match="update_ratio"):
        h.series_of("update_ratios", target="fc1.weight")
    with pytest.raises(ValueError, match="snapshots_of"):
        h.series_of("activation_histogram", target="act1")


def test_recorded_quantities_of_new_old_and_handwritten_histories(tmp_path) -> None:
    # a history from before the list: the Monitor ran (its section is there), so the defaults were recorded
    old = make_history(train_loss=[2.3, 1.0])
    assert "quantities" not in old.sections["monitor"] and old.recorded_quantities() == list(DEFAULT)
    # no monitor at all: nothing, unless a quantity's keys are there (a history written by hand)
    assert History(epochs=old.epochs).recorded_quantities() == []
    assert History(series={"act/act1/dead": {"step": [1], "value": [0.9]}}).recorded_quantities() == ["dead_fraction"]
    # a new history lists its own, and the list survives the round trip through history.json
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    monitor = Monitor(model, torch.optim.SGD(model.parameters(), lr=0.1), skip=["dead_fraction", "saturation"])
    monitor.history.save(tmp_path)
    names = History.load(tmp_path).recorded_quantities()
    assert names == [n for n in DEFAULT if n not in ("dead_fraction", "saturation")]
    monitor.close()


def _step(model: nn.Module, opt: torch.optim.Optimizer, monitor: Monitor) -> None:
    X, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    loss = F.cross_entropy(model(X), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    monitor.step(loss)


@pytest.mark.parametrize(("skip", "copies"), [((), 1), (("update_ratio",), 0)])
def test_weights_are_copied_before_the_step_only_for_the_update_ratio(monkeypatch, skip, copies) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = Monitor(model, opt, every=1, skip=skip)
    calls = []
    real = torch._foreach_mul
    monkeypatch.setattr(torch, "_foreach_mul", lambda *a, **k: calls.append(1) or real(*a, **k))
    _step(model, opt, monitor)
    # one copy of the weights per sampled step with update_ratio, none without it
    assert len(calls) == copies
    assert ("ratio/0.weight" in monitor.history.series) is (copies == 1)
    monitor.close()


def test_the_pre_activation_is_kept_only_when_a_quantity_asks() -> None:
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    with Monitor(model, every=1) as wanted, Monitor(model, every=1, skip=["saturation"]) as unwanted:
        # only the tanh asks for its input, and only while saturation is recorded
        assert [p.wants_pre for p in wanted._sampler._per_layer] == [False, True, False]
        assert [p.wants_pre for p in unwanted._sampler._per_layer] == [False, False, False]
