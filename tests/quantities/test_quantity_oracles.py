"""Every built-in quantity, recorded alone by a Monitor on a real digits training step, against a slow direct
computation on the same step (the oracle): full tensors kept by hooks, weights cloned around the step."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from babysit import Monitor
from babysit.quantities import DEFAULT

K = 16  # the Monitor's sub-sample of the batch
LAYERS = ("1", "2", "3", "4", "5")  # Linear, ReLU, Linear, Tanh, Linear (the Flatten is not watched)


class AlwaysDropout(nn.Module):
    """Dropout that ignores model.eval(): evaluation passes disagree."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, 0.5, training=True)


def _mlp(*, dropout: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 10))
    if dropout:  # one that model.eval() turns off, one that it does not
        model.extend([nn.Dropout(0.5), AlwaysDropout()])
    with torch.no_grad():
        model[1].bias[:8] = -10.0  # 8 of the 32 ReLUs can never fire: a dead fraction to find
        model[3].weight.mul_(20.0)  # many tanh inputs beyond +-5: a saturated share to find
    return model


@dataclass
class Reference:
    """One training step measured the slow way."""

    X: torch.Tensor
    loss: torch.Tensor
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    grads: dict[str, torch.Tensor] = field(default_factory=dict)
    before: dict[str, torch.Tensor] = field(default_factory=dict)
    after: dict[str, torch.Tensor] = field(default_factory=dict)
    own_bias_grad: torch.Tensor | None = None  # what this step's backward alone gave the last bias


def _reference_step(model: nn.Sequential, opt: torch.optim.Optimizer, X: torch.Tensor, y: torch.Tensor, *,
                    zero_grad: bool = True) -> Reference:
    ref = Reference(X, torch.tensor(0.0))

    def keep(name: str):
        def hook(module, args, out) -> None:
            ref.outputs[name], ref.inputs[name] = out.detach().clone(), args[0].detach().clone()

        return hook

    hooks = [m.register_forward_hook(keep(n)) for n, m in model.named_children()]
    scores = model(X)
    ref.loss = F.cross_entropy(scores, y)
    for h in hooks:
        h.remove()
    ref.outputs["<model>"] = scores.detach().clone()
    if zero_grad:
        opt.zero_grad()
    (ref.own_bias_grad,) = torch.autograd.grad(ref.loss, model[5].bias, retain_graph=True)
    ref.loss.backward()
    ref.before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ref.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    ref.after = {n: p.detach().clone() for n, p in model.named_parameters()}
    return ref


def _record(digits, quantity: str, *, steps: int = 2, zero_grad: bool = True, dropout: bool = False):
    """Train ``steps`` digits steps with a Monitor recording only ``quantity``; the History and the references."""
    model = _mlp(dropout=dropout)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    monitor = Monitor(model, opt, every=1, sample_size=K, histograms_every=1, watch_eval=False, quantities=[quantity])
    refs = []
    for i in range(steps):
        X, y = digits.X_train[64 * i : 64 * (i + 1)], digits.y_train[64 * i : 64 * (i + 1)]
        refs.append(_reference_step(model, opt, X, y, zero_grad=zero_grad))
        monitor.step(refs[-1].loss)
    history = monitor.history
    monitor.close()
    # it recorded what it was asked for and nothing else
    assert history.recorded_quantities() == [quantity]
    return history, refs


def test_activation_moments_matches_the_slow_reference(digits) -> None:
    h, refs = _record(digits, "activation_moments")
    for i, ref in enumerate(refs):
        for name in LAYERS:
            sub = ref.outputs[name][:K].double()
            assert h.series_of("activation_moments", "mean", name).values[i] == pytest.approx(sub.mean().item(),
                                                                                             rel=1e-6, abs=1e-9)
            assert h.series_of("activation_moments", "std", name).values[i] == pytest.approx(
                sub.std(correction=0).item(), rel=1e-5)
    assert h.targets("activation_moments") == list(LAYERS)


def test_activation_moments_of_an_exploding_layer_are_numbers_not_inf(digits) -> None:
    """Outputs near 1e25 square beyond float32's range: the moments accumulate in float64, so the std of an
    exploding layer is the number the diagnosis needs to call it exploding, not NaN."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Linear(32, 10))
    with torch.no_grad():
        model[1].weight.mul_(1e24)
    kept: dict[str, torch.Tensor] = {}
    model[1].register_forward_hook(lambda module, args, out: kept.update(out=out.detach().clone()))
    monitor = Monitor(model, every=1, sample_size=K, watch_eval=False, quantities=["activation_moments"])
    model(digits.X_train[:64]).sum().backward()
    monitor.step()
    sub = kept["out"][:K].double()
    assert not torch.isfinite(torch.square(kept["out"][:K]).sum())  # float32 squares would overflow
    std = monitor.history.series_of("activation_moments", "std", "1").values[0]
    assert std == pytest.approx(sub.std(correction=0).item(), rel=1e-6)
    assert monitor.history.series_of("activation_moments", "mean", "1").values[0] == pytest.approx(sub.mean().item(),
                                                                                                   rel=1e-6)
    monitor.close()


def test_dead_fraction_matches_the_slow_reference(digits) -> None:
    h, refs = _record(digits, "dead_fraction")
    # only the ReLU has dead units to count; 8 of its 32 units have bias -10
    assert h.targets("dead_fraction") == ["2"]
    for i, ref in enumerate(refs):
        dead = (ref.outputs["2"][:K].amax(dim=0) <= 0).float().mean().item()
        assert h.series_of("dead_fraction", target="2").values[i] == pytest.approx(dead)
        assert dead >= 8 / 32


def test_saturation_matches_the_slow_reference(digits) -> None:
    h, refs = _record(digits, "saturation")
    assert h.targets("saturation") == ["4"]
    for i, ref in enumerate(refs):
        saturated = (ref.inputs["4"][:K].abs() > 5).float().mean().item()
        assert h.series_of("saturation", target="4").values[i] == pytest.approx(saturated)
        assert 0 < saturated < 1


def test_activation_histogram_matches_the_slow_reference(digits) -> None:
    h, refs = _record(digits, "activation_histogram")
    for i, ref in enumerate(refs):
        for name in LAYERS:
            values = ref.outputs[name][:K].double().reshape(-1).numpy()  # at most 512 values: all kept
            snap = h.snapshots_of("activation_histogram", name)[i]
            low, high = (-1.0, 1.0) if name == "4" else (values.min(), values.max())  # tanh: fixed edges
            assert snap["edges"] == pytest.approx(np.linspace(low, high, 31).tolist())
            assert snap["counts"] == np.histogram(values, bins=np.asarray(snap["edges"]))[0].tolist()


def test_input_moments_matches_the_slow_reference(digits) -> None:
    h, refs = _record(digits, "input_moments")
    for i, ref in enumerate(refs):
        sub = ref.X[:K].double()
        assert h.series_of("input_moments", "mean").values[i] == pytest.approx(sub.mean().item(), rel=1e-6, abs=1e-9)
        assert h.series_of("input_moments", "std").values[i] == pytest.approx(sub.std(correction=0).item(), rel=1e-6)


def test_output_range_matches_the_slow_reference(digits) -> None:
    h, refs = _record(digits, "output_range")
    for i, ref in enumerate(refs):
        scores = ref.outputs["<model>"][:K].double()
        assert h.series_of("output_range", "min").values[i] == pytest.approx(scores.min().item())
        assert h.series_of("output_range", "max").values[i] == pytest.approx(scores.max().item())
        rowsum = (scores.sum(dim=1) - 1).abs().max().item()
        assert h.series_of("output_range", "rowsum_err").values[i] == pytest.approx(rowsum, rel=1e-6)


def test_gradient_norm_matches_the_slow_reference(digits) -> None:
    h, refs = _record(digits, "gradient_norm")
    for i, ref in enumerate(refs):
        for p, g in ref.grads.items():
            assert h.series_of("gradient_norm", target=p).values[i] == pytest.approx(g.norm().item(), rel=1e-5)


def test_gradient_std_matches_the_slow_reference(digits) -> None:
    h, refs = _record(digits, "gradient_std")
    for i, ref in enumerate(refs):
        for p, g in ref.grads.items():
            assert h.series_of("gradient_std", target=p).values[i] == pytest.approx(g.std(correction=0).item(),
                                                                                   rel=1e-4, abs=1e-9)


def test_gradient_carry_matches_the_slow_reference(digits) -> None:
    h, refs = _record(digits, "gradient_carry", steps=3, zero_grad=False)
    carry = h.series_of("gradient_carry").values
    for i, ref in enumerate(refs):
        # the share of .grad no multiple of this step's own gradient explains: min_c |g - c i| / |g|
        g, own = ref.grads["5.bias"].double(), ref.own_bias_grad.double()
        c = torch.dot(g, own) / torch.dot(own, own)
        assert carry[i] == pytest.approx(((g - c * own).norm() / g.norm()).item(), rel=1e-4, abs=1e-6)
    # the first step's gradient is all its own; zero_grad missing leaves most of the later ones over
    assert carry[0] < 1e-6 and min(carry[1:]) > 0.3


def test_gradient_histogram_matches_the_slow_reference(digits) -> None:
    h, refs = _record(digits, "gradient_histogram")
    # weight matrices only, biases are left out
    assert h.targets("gradient_histogram") == ["1.weight", "3.weight", "5.weight"]
    for i, ref in enumerate(refs):
        for p in ("3.weight", "5.weight"):  # 512 and 160 values: all kept
            values = ref.grads[p].double().reshape(-1).numpy()
            snap = h.snapshots_of("gradient_histogram", p)[i]
            assert snap["edges"] == pytest.approx(np.linspace(values.min(), values.max(), 31).tolist())
            assert snap["counts"] == np.histogram(values, bins=np.asarray(snap["edges"]))[0].tolist()
        # 2048 values: 1024 evenly strided ones are kept
        assert sum(h.snapshots_of("gradient_histogram", "1.weight")[i]["counts"]) == 1024


def test_update_ratio_matches_the_slow_reference(digits) -> None:
    h, refs = _record(digits, "update_ratio")
    for i, ref in enumerate(refs):
        for p, before in ref.before.items():
            # the step momentum SGD really took, against the weights before it
            ratio = (ref.after[p] - before).norm().item() / before.norm().item()
            assert h.series_of("update_ratio", target=p).values[i] == pytest.approx(ratio, rel=1e-4)
            assert h.series_of("update_ratio", "weight_norm", p).values[i] == pytest.approx(before.norm().item(),
                                                                                           rel=1e-5)


def _eval_monitor(digits) -> tuple[nn.Module, Monitor, torch.Tensor]:
    model = _mlp(dropout=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = Monitor(model, opt, every=1, sample_size=K, quantities=["eval_disagreement"])
    X, y = digits.X_train[:64], digits.y_train[:64]
    monitor.step(_reference_step(model, opt, X, y).loss)
    return model, monitor, X[:K]


def _two_passes(model: nn.Module, X: torch.Tensor, state: torch.Tensor) -> float:
    """max |a - b| / max |a| of two passes over ``X`` from the RNG state the Monitor started from."""
    torch.set_rng_state(state)
    with torch.no_grad():
        a, b = model(X), model(X)
    return ((a - b).abs().max() / a.abs().max()).item()


def test_eval_disagreement_matches_the_slow_reference(digits) -> None:
    # a forgotten model.eval() (nn.Dropout active): the Monitor runs the same evaluation pass again and compares
    model, monitor, X = _eval_monitor(digits)
    state = torch.get_rng_state()
    with torch.no_grad():
        model(X)
    train_mode = _two_passes(model, X, state)
    monitor.end_epoch()
    assert monitor.history.series_of("eval_disagreement", "train_mode").values == [pytest.approx(train_mode, rel=1e-5)]
    monitor.close()
    # evaluation mode, on the examples kept from the sampled step: a layer that ignores eval() still disagrees
    model, monitor, X = _eval_monitor(digits)
    state = torch.get_rng_state()
    monitor.end_epoch()
    model.eval()
    eval_mode = _two_passes(model, X, state)
    model.train()
    assert monitor.history.series_of("eval_disagreement", "eval_mode").values == [pytest.approx(eval_mode, rel=1e-5)]
    monitor.close()
    assert train_mode > 0.1 and eval_mode > 0.1


def test_every_builtin_quantity_has_an_oracle_test() -> None:
    module = sys.modules[__name__]
    # adding a quantity is one class and a test: this file names one per built-in
    assert all(callable(getattr(module, f"test_{name}_matches_the_slow_reference", None)) for name in DEFAULT)
