"""check_function(kernel, *inputs, reference=plain): low-precision kernels against float64 autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from babysit.gradcheck import GradcheckError, check_function
from babysit.testing._gradzoo_kernels import kernel

FINE = ("ideal", "ok")
BF16 = torch.bfloat16


def _fused_layernorm(bug: str | None) -> type[torch.autograd.Function]:
    """A bf16 layer norm written like a fused kernel: float32 inside, bf16 in and out."""

    class FusedLayerNorm(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, b):  # type: ignore[override]
            x32 = x.float()
            mu, var = x32.mean(-1, keepdim=True), x32.var(-1, unbiased=False, keepdim=True)
            rstd = torch.rsqrt(var + 1e-5)
            xhat = (x32 - mu) * rstd
            ctx.save_for_backward(xhat, rstd, w)
            return (xhat * w.float() + b.float()).to(x.dtype)

        @staticmethod
        def backward(ctx, g):  # type: ignore[override]
            xhat, rstd, w = ctx.saved_tensors
            g32 = g.float()
            gxhat = g32 * w.float()
            gx = gxhat - (gxhat * xhat).mean(-1, keepdim=True) * xhat
            if bug != "missing_mean":
                gx = gx - gxhat.mean(-1, keepdim=True)
            gw = (g32 * xhat).reshape(-1, xhat.shape[-1]).sum(0)
            if bug == "one_gain_entry":
                gw[5] *= 2.0
            gb = g32.reshape(-1, xhat.shape[-1]).sum(0)
            return (gx * rstd).to(g.dtype), gw.to(w.dtype), gb.to(w.dtype)

    return FusedLayerNorm


def _layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), w, b, 1e-5)


def _inputs(dtype: torch.dtype = BF16, d: int = 64) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 8, d, generator=g)
    w, b = 1.0 + 0.5 * torch.randn(d, generator=g), 0.1 * torch.randn(d, generator=g)
    return tuple(t.to(dtype).requires_grad_(True) for t in (x, w, b))


def test_reference_correct_bf16_kernel_is_not_flagged_and_the_tolerance_is_reported() -> None:
    report = check_function(_fused_layernorm(None).apply, *_inputs(), reference=_layer_norm)
    assert report.ok, str(report)
    # one row for the outputs, one per input; bf16's eps and each row's measured tolerance are in the report
    assert [r.name for r in report.rows] == ["output", "input[0]", "input[1]", "input[2]"]
    ref = report.meta["reference"]
    assert report.meta["method"] == "reference" and report.meta["dtype"] == "bfloat16"
    assert ref["eps"] == torch.finfo(BF16).eps
    for row in report.rows:
        info = ref["rows"][row.name]
        assert info["error"] <= info["tolerance"] and info["tolerance"] >= ref["eps"] * info["scale"]
    assert "bfloat16 kernel vs float64 reference" in str(report).splitlines()[0]


@pytest.mark.parametrize(("bug", "row"), [("missing_mean", "input[0]"), ("one_gain_entry", "input[1]")])
def test_reference_planted_bug_in_bf16_kernel_is_caught_where_it_is(bug: str, row: str) -> None:
    report = check_function(_fused_layernorm(bug).apply, *_inputs(), reference=_layer_norm)
    verdicts = {r.name: r.verdict for r in report.rows}
    # the wrong gradient is flagged, the others (and the forward) are not
    assert verdicts.pop(row) not in FINE
    assert all(v in FINE for v in verdicts.values()), verdicts
    worst = report.failures[0]
    assert worst.name == row and "reference" in worst.describe()
    if bug == "one_gain_entry":
        assert worst.where == "[5]" and worst.ratio == pytest.approx(2.0, rel=0.05)


def test_reference_tolerance_follows_the_dtype() -> None:
    slip = kernel("layernorm", "ignores_eps").apply  # relative error ~1e-5: float32 resolves it, bf16 cannot
    fp32 = check_function(slip, *_inputs(torch.float32), reference=_layer_norm)
    bf16 = check_function(slip, *_inputs(BF16), reference=_layer_norm)
    assert not fp32.ok
    assert bf16.ok, str(bf16)
    tol = {r: bf16.meta["reference"]["rows"][r]["tolerance"] / fp32.meta["reference"]["rows"][r]["tolerance"]
           for r in ("input[0]", "input[1]")}  # fmt: skip
    assert min(tol.values()) > 100  # bf16's unit is 2^16 times float32's


def test_reference_fp16_attention_kernel() -> None:
    g = torch.Generator().manual_seed(1)
    qkv = [torch.randn(2, 2, 16, 8, generator=g).half().requires_grad_(True) for _ in range(3)]

    def sdpa(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    assert check_function(kernel("attention").apply, *qkv, reference=sdpa).ok
    bad = check_function(kernel("attention", "last_query").apply, *qkv, reference=sdpa)
    # dq of the last position is missing: the failure points at time step 15 of q
    assert bad.verdict == "wrong" and bad.failures[0].name == "input[0]"
    assert bad.failures[0].where.split(", ")[2] == "15"


def test_reference_forward_disagreement_shows_on_the_output_row() -> None:
    def off(x, w, b):
        y = _layer_norm(x, w, b)
        return y * (1 + (torch.arange(y.shape[-1]) == 3).to(y.dtype))  # one channel doubled

    report = check_function(off, *_inputs(), reference=_layer_norm)
    assert {r.name: r.verdict for r in report.rows}["output"] == "wrong"


def test_reference_leaves_inputs_alone_and_rejects_a_mismatched_reference() -> None:
    x, w, b = _inputs()
    before = x.detach().clone()
    check_function(_fused_layernorm(None).apply, x, w, b, reference=_layer_norm)
    assert torch.equal(x.detach(), before) and x.grad is None and x.dtype == BF16
    with pytest.raises(GradcheckError, match="same outputs"):
        check_function(_fused_layernorm(None).apply, x, w, b, reference=lambda x, w, b: x.sum(-1))
    with pytest.raises(GradcheckError, match="reference must be callable"):
        check_function(torch.tanh, x, reference=3)  # type: ignore[arg-type]
