"""check_module in place: every tensor checked inside its own module, at that module's cost."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from babysit.gradcheck import GradcheckError, check_module
from babysit.gradcheck import _module as module_check
from babysit.testing import gradzoo_transformer as zt

FINE = ("ideal", "ok")


def _tiny(**kw) -> zt.Transformer:
    return zt.transformer("0.4M", d=32, layers=2, heads=2, context=16, **kw)


def test_inplace_correct_transformer_passes_and_every_tensor_is_checked_in_its_module() -> None:
    model = _tiny(kernels=True)
    report = check_module(model, zt.loss, *zt.batch(model), method="in-place")
    assert report.ok, str(report)
    rows = {r.name: r for r in report.rows}
    # every parameter has its row, in the model's order, evaluated inside the module that owns it
    params = [n for n, _ in model.named_parameters()]
    assert [r.name for r in report.rows if r.name in params] == params
    assert rows["blocks.1.mlp.fc1.weight"].module == "blocks.1.mlp.fc1"
    assert rows["blocks.1.conv.weight"].module == "blocks.1.conv"
    # module inputs (the attention core has no parameters) and one end-to-end row over all parameters
    assert rows["blocks.1.attn.core:input[0]"].module == "blocks.1.attn.core"
    assert rows["blocks.1.mlp.fc2:input"].checked >= 2
    assert report.rows[-1].name == "end-to-end" and report.rows[-1].shape == (
        sum(p.numel() for p in model.parameters()),
    )
    assert report.meta["method"] == "in-place" and all(r.seconds >= 0 for r in report.rows)


def test_inplace_relu_kinks_and_torch_ops_are_not_false_alarms() -> None:
    for model in (_tiny(kernels=True, relu=True), _tiny()):
        report = check_module(model, zt.loss, *zt.batch(model), method="in-place")
        assert report.ok, str(report)


@pytest.mark.parametrize("plant", zt.PLANTS, ids=lambda p: f"{p[1]}-{p[2]}")
def test_inplace_planted_transformer_bug_is_named_in_its_layer(plant: tuple[str, str, str]) -> None:
    path, kernel, bug = plant
    path = path.format(k=1)
    model = zt.plant(_tiny(kernels=True), path, kernel, bug)
    report = check_module(model, zt.loss, *zt.batch(model), method="in-place")
    bad = [r for r in report.rows if r.verdict not in FINE]
    # caught; every failing row belongs to the planted layer, besides the end-to-end row over everything
    assert not report.ok
    assert any(r.module == path for r in bad), str(report)
    assert all(r.module == path or r.name == "end-to-end" for r in bad), [(r.name, r.module) for r in bad]
    assert report.failures[0].name.startswith(path)


class _HalfGrad(torch.autograd.Function):
    """Identity forward, half the gradient backward: a bug in the code *between* modules."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        return x.clone()

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return 0.5 * g


class _Glue(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(_HalfGrad.apply(torch.tanh(self.fc1(x))))


def test_inplace_bug_between_modules_is_caught_end_to_end_and_placed_in_its_parent() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), _Glue(), nn.Linear(8, 3))
    x, y = torch.randn(5, 6), torch.arange(5) % 3
    report = check_module(model, F.cross_entropy, x, y, method="in-place")
    rows = {r.name: r for r in report.rows}
    # each module's own backward agrees; the chain does not, and the module holding the faulty code says so
    assert all(rows[n].verdict in FINE for n, _ in model.named_parameters())
    assert rows["end-to-end"].verdict == "wrong"
    assert [r.name for r in report.rows if r.name.endswith(":module")] == ["2:module"]
    assert rows["2:module"].verdict == "wrong"


def test_inplace_tied_weight_is_checked_with_the_whole_model() -> None:
    model = _tiny(kernels=True, tied=True)
    report = check_module(model, zt.loss, *zt.batch(model), method="in-place")
    rows = {r.name: r for r in report.rows}
    # tok.weight is also the head's weight: the embedding alone does not account for its gradient
    assert report.ok, str(report)
    assert rows["tok.weight"].module == "" and rows["pos.weight"].module == "pos"
    buggy = zt.plant(_tiny(kernels=True, tied=True), "tok", "embedding", "overwrite")
    assert check_module(buggy, zt.loss, *zt.batch(buggy), method="in-place").failures[0].name == "tok.weight"


class _BiasMeanLinear(nn.Linear):
    """A linear layer whose bias gradient averages over the batch instead of summing."""

    class _Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, b):  # type: ignore[override]
            ctx.save_for_backward(x, w)
            return x @ w.t() + b

        @staticmethod
        def backward(ctx, g):  # type: ignore[override]
            x, w = ctx.saved_tensors
            return g @ w, g.t() @ x, g.mean(0)  # bug: should be g.sum(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._Fn.apply(x, self.weight, self.bias)


def test_inplace_agrees_with_the_whole_model_method_on_a_planted_bias_bug() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), _BiasMeanLinear(32, 16), nn.Tanh(), nn.Linear(16, 5))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 10, generator=g), torch.randint(0, 5, (16,), generator=g)
    reports = [check_module(model, F.cross_entropy, x, y, method=m) for m in ("whole-model", "in-place")]
    # the same tensor, the same coordinate kind, the same ratio (1/3: divided by the batch of 3)
    for report in reports:
        assert report.verdict == "wrong" and report.failures[0].name == "2.bias"
        assert report.failures[0].is_coordinate and report.failures[0].ratio == pytest.approx(1 / 3, rel=1e-6)
    # a module's own check failed: the whole-model end-to-end evaluations are spared, and the report says so
    assert reports[1].meta["end_to_end"].startswith("skipped") and reports[1].rows[-1].name != "end-to-end"


def _count_calls(module: nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls  # the check's deep copy keeps the hook: it counts the copy's calls too


def test_inplace_runs_the_whole_model_a_fixed_number_of_times() -> None:
    model = _tiny(kernels=True)
    whole = _count_calls(model)
    report = check_module(model, zt.loss, *zt.batch(model), method="in-place")
    # hundreds of evaluations, but the model itself runs only for the recording pass and the end-to-end check
    assert report.meta["evaluations"] > 300
    assert whole[0] <= 12


def test_inplace_warns_nothing_and_leaves_model_and_rng_untouched() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 5))
    x, y = torch.randn(16, 10), torch.arange(16) % 5
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    report = check_module(model, F.cross_entropy, x, y, method="in-place")
    # dropout redraws the model's own mask inside its module; batch-norm sees the same statistics
    assert report.ok, str(report)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)


def test_auto_checks_large_models_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = torch.randn(4, 4), torch.arange(4) % 3
    assert check_module(model, F.cross_entropy, x, y).meta["method"] == "whole-model"
    monkeypatch.setattr(module_check, "IN_PLACE_FROM", 10)
    # from IN_PLACE_FROM parameters on, the default is in place
    assert check_module(model, F.cross_entropy, x, y).meta["method"] == "in-place"


def test_inplace_rejects_bad_options() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = torch.randn(4, 4), torch.arange(4) % 3
    with pytest.raises(GradcheckError, match="method must be one of"):
        check_module(model, F.cross_entropy, x, y, method="fast")
    with pytest.raises(GradcheckError, match="cannot be combined"):
        check_module(model, F.cross_entropy, x, y, only=model[0], method="whole-model")


def test_inplace_modules_that_write_into_their_input_are_checked_on_copies() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.5, inplace=True), nn.ReLU(inplace=True), nn.Linear(16, 3))
    x, y = torch.randn(5, 6), torch.arange(5) % 3
    report = check_module(model, F.cross_entropy, x, y, method="in-place")
    # dropout scaling its own input in place would otherwise compound over evaluations
    assert report.ok, str(report)
    assert {"1:input", "2:input"} <= {r.name for r in report.rows}


def test_inplace_cnn_with_batchnorm_and_max_pool_passes() -> None:
    torch.manual_seed(0)
    cnn = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip
    x = torch.randn(6, 1, 8, 8)
    report = check_module(cnn, F.cross_entropy, x, torch.arange(6) % 10, method="in-place")
    # max-pool winners and relu kinks inside their own modules are not false alarms
    assert report.ok, str(report)
    assert {"3:input", "6:input", "input"} <= {r.name for r in report.rows}
