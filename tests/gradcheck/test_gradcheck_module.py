"""check_module: every parameter, data and regularization apart, on a copy (L-G7..G10)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from babysit.gradcheck import GradcheckError, check_module


def _batch(n: int = 16, d: int = 10, classes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, d, generator=g), torch.randint(0, classes, (n,), generator=g)


def _l2(strength: float):
    return lambda m: strength * sum((p * p).sum() for n, p in m.named_parameters() if n.endswith("weight"))


class _BiasMeanLinear(torch.autograd.Function):
    """A linear layer whose bias gradient averages over the batch instead of summing."""

    @staticmethod
    def forward(ctx, x, w, b):  # type: ignore[override]
        ctx.save_for_backward(x, w)
        return x @ w.t() + b

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        x, w = ctx.saved_tensors
        return g @ w, g.t() @ x, g.mean(0)  # bug: should be g.sum(0)


class _BuggyBiasLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _BiasMeanLinear.apply(x, self.weight, self.bias)


def test_module_bug_in_one_bias_is_found_and_localised() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), _BuggyBiasLinear(32, 16), nn.Tanh(), nn.Linear(16, 5))
    x, y = _batch()
    report = check_module(model, F.cross_entropy, x, y)
    verdicts = {r.name: r.verdict for r in report.rows}
    # only the buggy bias is wrong; every other tensor passes
    assert verdicts.pop("2.bias") == "wrong"
    assert all(v in ("ideal", "ok") for v in verdicts.values()), verdicts
    worst = report.failures[0]
    # the message says where and by how much: 1/3 = divided by the batch of 3 examples
    assert worst.name == "2.bias" and worst.is_coordinate
    assert worst.ratio == pytest.approx(1 / 3, rel=1e-6)
    assert "batch size" in worst.describe(report.meta["batch"])
    assert [f.code for f in report.findings] == ["gradient_mismatch"]
    assert report.findings[0].severity == "error"


def test_module_every_parameter_tensor_gets_a_row() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 5))
    report = check_module(model, F.cross_entropy, *_batch())
    # biases too, and the input gradient
    assert [r.name for r in report.rows] == [n for n, _ in model.named_parameters()] + ["input"]
    assert all(r.checked >= 3 for r in report.rows)


def test_module_mlp_with_dropout_and_l2_passes_after_warmup() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 5))
    report = check_module(model, F.cross_entropy, *_batch(), regularization=_l2(1e-3), warmup_steps=5)
    # dropout stays on and is checked; data and regularization rows are separate (L-G8)
    assert report.ok, str(report)
    assert {r.part for r in report.rows} == {"data", "regularization"}
    losses = report.meta["warmup_losses"]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert not any(f.code == "warmup_no_progress" for f in report.findings)


def test_module_warmup_that_does_not_lower_the_loss_is_reported() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 5))
    report = check_module(model, F.cross_entropy, *_batch(), warmup_steps=2, warmup_lr=300.0)
    # a far too large step raises the loss: an info finding says the check is not in training's regime (L-G7);
    # the saturated copy's ~1e-40 gradients are flagged tiny, not called wrong
    (finding,) = [f for f in report.findings if f.code == "warmup_no_progress"]
    assert finding.severity == "info" and report.ok
    assert any(f.code == "gradient_tiny" for f in report.findings)


def test_module_cnn_with_max_pool_passes() -> None:
    torch.manual_seed(0)
    cnn = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip
    x = torch.randn(6, 1, 8, 8)
    report = check_module(cnn, F.cross_entropy, x, torch.arange(6) % 10)
    # max-pool winners and relu kinks are not false alarms
    assert report.ok, str(report)


def test_module_deep_tanh_net_passes() -> None:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(10):
        layers += [nn.Linear(20, 20), nn.Tanh()]
    deep = nn.Sequential(*layers, nn.Linear(20, 3))
    x, y = _batch(8, 20, 3)
    report = check_module(deep, F.cross_entropy, x, y)
    # round-off grows with depth; the resolution grows with it, a wrong gradient would still show
    assert report.ok, str(report)
    assert report.meta["depth"] == 11


def test_module_leaves_model_inputs_and_rng_bit_identical() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 5))
    x, y = _batch()
    x.requires_grad_(True)
    F.cross_entropy(model(x), y).backward()  # the user's grads and BN running stats exist already
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    x_before, y_before = x.detach().clone(), y.clone()
    rng = torch.get_rng_state()
    report = check_module(model, F.cross_entropy, x, y, warmup_steps=3, regularization=_l2(1e-2))
    assert report.ok, str(report)
    # weights, buffers, grads, inputs, dtype, mode and the RNG are exactly as before
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters(), strict=True))
    assert torch.equal(x.detach(), x_before) and torch.equal(y, y_before)
    assert next(model.parameters()).dtype == torch.float32 and model.training
    assert torch.equal(torch.get_rng_state(), rng)


def test_module_regularization_dominates_is_reported() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 5))
    strong = check_module(model, F.cross_entropy, *_batch(), regularization=_l2(10.0))
    weak = check_module(model, F.cross_entropy, *_batch(), regularization=_l2(1e-4))
    # the finding carries the two gradient norms and their ratio (L-G8)
    (finding,) = [f for f in strong.findings if f.code == "regularization_dominates"]
    assert finding.evidence["ratio"] > 10 and finding.evidence["grad_norm_reg"] > finding.evidence["grad_norm_data"]
    assert not any(f.code == "regularization_dominates" for f in weak.findings)


class _DoubleL2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w):  # type: ignore[override]
        ctx.save_for_backward(w)
        return 0.5 * 1e-6 * (w * w).sum()

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        (w,) = ctx.saved_tensors
        return g * 2e-6 * w  # counted twice; gradients ~1e-7, invisible to an atol of 1e-5


@pytest.mark.parametrize(
    ("name", "regularization"),
    [
        ("double_counted", lambda m: sum(_DoubleL2.apply(p) for p in m.parameters())),
        ("detached", lambda m: 1e-3 * sum((p.detach() * p).sum() for p in m.parameters())),
    ],
)
def test_module_regularization_bug_is_found_in_the_regularization_rows(name: str, regularization) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 5))
    report = check_module(model, F.cross_entropy, *_batch(), regularization=regularization)
    # the data loss is fine; the regularization term alone is wrong (L-G8: check them apart)
    assert all(r.verdict in ("ideal", "ok") for r in report.rows if r.part == "data")
    assert all(r.verdict == "wrong" for r in report.rows if r.part == "regularization"), name


def test_module_single_wrong_entry_in_a_million_parameters_is_localised() -> None:
    class OneEntry(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, b):  # type: ignore[override]
            ctx.save_for_backward(x, w)
            return x @ w.t() + b

        @staticmethod
        def backward(ctx, g):  # type: ignore[override]
            x, w = ctx.saved_tensors
            gw = g.t() @ x
            gw[3, 7] *= 2.0  # one entry of 200 000
            return g @ w, gw, g.sum(0)

    class Layer(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return OneEntry.apply(x, self.weight, self.bias)

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 1000), nn.ReLU(), Layer(1000, 200), nn.ReLU(), nn.Linear(200, 10))
    x = torch.randn(8, 784)
    report = check_module(model, F.cross_entropy, x, torch.arange(8) % 10)
    # random signed directions see it, bisection pins it: "2.weight[3, 7] ... ratio 2"
    assert sum(p.numel() for p in model.parameters()) > 980_000
    assert report.verdict == "wrong"
    assert report.failures[0].describe().startswith("2.weight[3, 7]: analytic")
    assert report.failures[0].ratio == pytest.approx(2.0, rel=1e-6)


def test_module_rejects_bad_input() -> None:
    model = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    # each message names the problem
    with pytest.raises(GradcheckError, match=r"torch\.nn\.Module"):
        check_module(lambda t: t, F.mse_loss, x, x)  # type: ignore[arg-type]
    with pytest.raises(GradcheckError, match="scalar"):
        check_module(model, lambda out, t: out, x, torch.zeros(4))
    with pytest.raises(GradcheckError, match="examples"):
        check_module(model, F.cross_entropy, x, torch.zeros(4, dtype=torch.long), examples=0)
