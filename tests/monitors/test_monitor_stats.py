"""The Monitor's numbers against a slow per-layer reference loop (the oracle), for SGD, momentum and Adam."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from babysit import Monitor

K = 8  # the Monitor's sub-sample of the batch


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(24, 6, generator=g), torch.randint(0, 3, (24,), generator=g)


def _reference_step(model, opt, X, y):
    """One training step measured the slow way: full outputs kept, weights cloned around the step."""
    outputs, inputs = {}, {}

    def keep(name):
        def hook(module, args, out) -> None:
            outputs[name], inputs[name] = out.detach().clone(), args[0].detach().clone()

        return hook

    hooks = [m.register_forward_hook(keep(n)) for n, m in model.named_children()]
    loss = F.cross_entropy(model(X), y)
    opt.zero_grad()
    loss.backward()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    for h in hooks:
        h.remove()
    return loss, outputs, inputs, before, grads


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.SGD(p, lr=0.1),
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    lambda p: torch.optim.Adam(p, lr=0.01),
], ids=["sgd", "momentum", "adam"])
def test_statistics_match_the_slow_reference(make_opt) -> None:
    model = _net()
    opt = make_opt(model.parameters())
    monitor = Monitor(model, opt, every=1, sample_size=K, histograms_every=1, watch_eval=False)
    references = []
    for step in range(3):
        X, y = _batch(step)
        loss, outputs, inputs, before, grads = _reference_step(model, opt, X, y)
        after = {n: p.detach().clone() for n, p in model.named_parameters()}
        monitor.step(loss)
        references.append((outputs, inputs, before, after, grads, X))
    s = monitor.history.series
    for i, (outputs, inputs, before, after, grads, X) in enumerate(references):
        for name, out in outputs.items():
            sub = out[:K]
            # activation mean and std over the sub-sample (population std)
            assert s[f"act/{name}/mean"]["value"][i] == pytest.approx(sub.mean().item(), rel=1e-5, abs=1e-7)
            assert s[f"act/{name}/std"]["value"][i] == pytest.approx(sub.std(correction=0).item(), rel=1e-4)
        # dead: units never positive over the sub-sample; saturated: pre-activations beyond +-5
        dead = (outputs["1"][:K].amax(dim=0) <= 0).float().mean().item()
        assert s["act/1/dead"]["value"][i] == pytest.approx(dead)
        saturated = (inputs["3"][:K].abs() > 5).float().mean().item()
        assert s["act/3/saturated"]["value"][i] == pytest.approx(saturated)
        assert s["input/mean"]["value"][i] == pytest.approx(X[:K].mean().item(), rel=1e-5)
        for p in before:
            # gradient norm and std, weight norm, and the update the optimizer actually took
            assert s[f"grad/{p}/norm"]["value"][i] == pytest.approx(grads[p].norm().item(), rel=1e-5)
            assert s[f"grad/{p}/std"]["value"][i] == pytest.approx(grads[p].std(correction=0).item(), rel=1e-4)
            assert s[f"weight/{p}/norm"]["value"][i] == pytest.approx(before[p].norm().item(), rel=1e-5)
            ratio = (after[p] - before[p]).norm().item() / before[p].norm().item()
            assert s[f"ratio/{p}"]["value"][i] == pytest.approx(ratio, rel=1e-4)
        # zero_grad ran: none of the gradient is left over from an earlier step
        assert s["grad/carry"]["value"][i] < 1e-3


def test_adam_ratio_is_the_step_taken_not_lr_times_gradient() -> None:
    model = _net()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    monitor = Monitor(model, opt, every=1, histograms_every=0)
    X, y = _batch(0)
    loss, _, _, before, grads = _reference_step(model, opt, X, y)
    monitor.step(loss)
    ratio = monitor.history.series["ratio/0.weight"]["value"][0]
    naive = 0.01 * grads["0.weight"].norm().item() / before["0.weight"].norm().item()
    # Adam's first step moves every weight by ~lr regardless of the gradient's scale: far from lr*|g|/|W|
    assert ratio == pytest.approx(0.01 * before["0.weight"].numel() ** 0.5 / before["0.weight"].norm().item(),
                                  rel=0.05)
    assert abs(ratio - naive) / ratio > 0.5


def test_dead_fraction_counts_conv_channels() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16, 2))
    with torch.no_grad():
        model[0].bias[:3] = -100.0  # three of four channels can never fire
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    monitor = Monitor(model, opt, every=1)
    loss = F.cross_entropy(model(torch.randn(8, 1, 4, 4)), torch.randint(0, 2, (8,)))
    opt.zero_grad()
    loss.backward()
    opt.step()
    monitor.step(loss)
    # units of a conv output are its channels
    assert monitor.history.series["act/1/dead"]["value"] == [0.75]


def test_histograms_have_fixed_bins_and_tanh_range() -> None:
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = Monitor(model, opt, every=1, histograms_every=1)
    X, y = _batch(0)
    loss, *_ = _reference_step(model, opt, X, y)
    monitor.step(loss)
    h = monitor.history.histograms
    # activation and weight-gradient histograms, 30 bins; tanh's over [-1, 1]
    assert {"act/0", "act/1", "act/3", "grad/0.weight", "grad/4.weight"} <= set(h)
    snapshot = h["act/3"][0]
    assert len(snapshot["counts"]) == 30 and snapshot["edges"][0] == -1.0 and snapshot["edges"][-1] == 1.0
    assert sum(snapshot["counts"]) == 24 * 16  # the default sub-sample (32) covers the whole batch of 24
