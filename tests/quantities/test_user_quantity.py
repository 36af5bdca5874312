"""A statistic of your own is one class: passed to the Monitor (or to fit), it is recorded with no edit to
babysit, read back by quantity, and still costs no device read during training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
import torch
import torch.nn.functional as F

import babysit
from babysit import Monitor, models
from babysit.quantities import (
    DEFAULT,
    GradientQuantity,
    Gradients,
    LayerOutput,
    LayerQuantity,
    Measurement,
    PerName,
    PerParameter,
)
from babysit.testing.contracts import check_series_scheme


class ActivationMax(LayerQuantity):
    """The largest output value of every watched layer."""

    name = "activation_max"
    keys: ClassVar[dict[str, str]] = {"max": "act/{target}/max"}

    def measure(self, source: LayerOutput) -> Measurement:
        return Measurement((source.output.amax(),))

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        return {"max": scalars[0]}


class GradientMaxAbs(PerParameter, GradientQuantity):
    """The largest |gradient entry| of every parameter: one vector for all of them."""

    name = "gradient_max_abs"
    keys: ClassVar[dict[str, str]] = {"max_abs": "grad/{target}/max_abs"}

    def measure(self, source: Gradients) -> Measurement:
        return Measurement((), torch.stack([g.abs().amax() for g in source.grads]), PerName(source.names))

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        return {"max_abs": vector[0]}


def _mlp(digits):
    return models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=0)


def test_a_user_quantity_is_recorded_by_the_monitor(digits) -> None:
    model = _mlp(digits)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = Monitor(model, opt, every=2, sample_size=8, quantities=[*DEFAULT, ActivationMax, GradientMaxAbs()])
    reference: dict[int, dict[str, float]] = {}
    grads: dict[int, dict[str, float]] = {}
    for step in range(1, 6):
        X, y = digits.X_train[64 * step : 64 * (step + 1)], digits.y_train[64 * step : 64 * (step + 1)]
        outputs: dict[str, torch.Tensor] = {}

        def keep(module, args, out, seen=outputs) -> None:
            seen[module] = out.detach()[:8].max()

        hooks = [m.register_forward_hook(keep) for n, m in model.named_children() if n in ("fc1", "act1", "fc2")]
        loss = F.cross_entropy(model(X), y)
        for h in hooks:
            h.remove()
        opt.zero_grad()
        loss.backward()
        names = {m: n for n, m in model.named_children()}
        reference[step] = {names[m]: float(v) for m, v in outputs.items()}
        grads[step] = {n: float(p.grad.abs().max()) for n, p in model.named_parameters()}
        opt.step()
        monitor.step(loss)
    monitor.end_epoch(train_acc=0.5, val_acc=0.5)
    h = monitor.history
    monitor.close()
    # recorded next to the built-ins, under its own keys, on the sampled steps 1, 3, 5
    assert h.sections["monitor"]["quantities"] == [*DEFAULT, "activation_max", "gradient_max_abs"]
    assert h.targets(ActivationMax) == ["fc1", "act1", "fc2"]
    for layer in ("fc1", "act1", "fc2"):
        series = h.series_of(ActivationMax, target=layer)
        assert series.steps == [1, 3, 5]
        assert series.values == pytest.approx([reference[s][layer] for s in (1, 3, 5)])
    for param in ("fc1.weight", "fc2.bias"):
        assert h.series_of(GradientMaxAbs, target=param).values == pytest.approx([grads[s][param] for s in (1, 3, 5)])
    # the built-ins are untouched, and the keys follow the scheme once the quantities are named
    assert h.series_of("activation_moments", "std", "act1").steps == [1, 3, 5]
    check_series_scheme(h, [ActivationMax(), GradientMaxAbs()])


def test_a_user_quantity_reads_nothing_from_the_device_while_training(digits, monkeypatch) -> None:
    model = _mlp(digits)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = Monitor(model, opt, every=1, quantities=[ActivationMax, GradientMaxAbs])
    X, y = digits.X_train[:64], digits.y_train[:64]
    with monkeypatch.context() as m:
        for name in ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__"):
            m.setattr(torch.Tensor, name, lambda *a, **k: pytest.fail("a tensor was read during training"))
        for _ in range(3):
            loss = F.cross_entropy(model(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            monitor.step(loss)
    # the one read is the epoch's readout
    monitor.end_epoch()
    assert len(monitor.history.series_of(ActivationMax, target="act1").values) == 3
    monitor.close()


def test_fit_records_a_user_quantity_from_monitor_settings(digits) -> None:
    h = babysit.fit(_mlp(digits), digits, optimizer="sgd", lr=0.05, epochs=2,
                    monitor={"every": 5, "quantities": [*DEFAULT, ActivationMax]})
    # fit forwards the settings to the Monitor: the class is all it takes
    assert "activation_max" in h.sections["monitor"]["quantities"]
    assert h.series_of(ActivationMax, target="act1").steps[:3] == [1, 6, 11]


class WeightScale(LayerQuantity):
    """A weighted layer's largest |weight|, read from the module in the forward hook, where gradients are on:
    the measurement itself is part of an autograd graph."""

    name = "weight_scale"
    keys: ClassVar[dict[str, str]] = {"max": "weight_scale/{target}"}

    def applies(self, layer) -> bool:
        return isinstance(getattr(layer.module, "weight", None), torch.nn.Parameter)

    def measure(self, source: LayerOutput) -> Measurement:
        return Measurement((source.layer.module.weight.abs().amax(),))

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        return {"max": scalars[0]}


def test_a_user_quantity_that_requires_grad_is_read_out(digits) -> None:
    model = _mlp(digits)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = Monitor(model, opt, every=1, quantities=[WeightScale])
    X, y = digits.X_train[:64], digits.y_train[:64]
    before = model.fc1.weight.detach().abs().max().item()
    loss = F.cross_entropy(model(X), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    monitor.step()
    assert monitor.history.series_of(WeightScale(), target="fc1").values == [pytest.approx(before)]
    monitor.close()
