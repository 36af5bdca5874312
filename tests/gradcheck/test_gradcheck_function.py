"""check_function against torch.autograd.gradcheck where torch is right (the oracle), and its contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from babysit.gradcheck import GradcheckError, check_function


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # torch.autograd.gradcheck's many tiny ops crawl when 2 threads share 2 busy cores
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _inputs(*shapes: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(*s, generator=g, dtype=torch.float64, requires_grad=True) for s in shapes)


SMOOTH = {
    "tanh": (torch.tanh, [(3, 4)]),
    "softmax": (lambda x: torch.softmax(x, dim=1), [(3, 5)]),
    "matmul": (torch.matmul, [(3, 4), (4, 2)]),
    "conv2d": (lambda x, w: F.conv2d(x, w, padding=1), [(2, 3, 5, 5), (4, 3, 3, 3)]),
    "layer_norm": (lambda x: F.layer_norm(x, (6,)), [(3, 6)]),
    "logsumexp": (lambda x: torch.logsumexp(x, dim=0), [(4, 3)]),
    "two_outputs": (lambda x, y: (x * y, (x - y).exp()), [(3,), (3,)]),
}


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_function_agrees_with_torch_gradcheck_on_correct_smooth_ops(name: str) -> None:
    fn, shapes = SMOOTH[name]
    # the oracle passes, and so do we (ideal, or ok within the resolution of the numerical estimate)
    assert torch.autograd.gradcheck(fn, _inputs(*shapes))
    report = check_function(fn, *_inputs(*shapes))
    assert report.ok, str(report)
    assert all(c.verdict == "ideal" or abs(c.analytic - c.numerical) <= c.resolution for c in report.failures)
    assert len(report.rows) == len(shapes)


class _ScaledExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):  # type: ignore[override]
        y = torch.exp(x)
        ctx.save_for_backward(y)
        ctx.scale = scale
        return y

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        (y,) = ctx.saved_tensors
        return g * y * ctx.scale, None


@pytest.mark.parametrize("scale", [0.5, 1.5, -1.0])
def test_function_flags_what_torch_gradcheck_flags(scale: float) -> None:
    (x,) = _inputs((3, 4))
    # where the oracle finds a bug, we find it too
    assert not torch.autograd.gradcheck(lambda t: _ScaledExp.apply(t, scale), (x,), raise_exception=False)
    assert check_function(_ScaledExp.apply, x, scale).verdict == "wrong"


def test_function_checks_only_inputs_that_require_grad() -> None:
    x, w = _inputs((3, 4), (4, 2))
    w.requires_grad_(False)
    report = check_function(torch.matmul, x, w)
    # one row: w was not asked for
    assert [r.name for r in report.rows] == ["input[0]"]


def test_function_uses_argument_names_and_leaves_inputs_untouched() -> None:
    def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * y.sin()

    x, y = _inputs((5,), (5,))
    x32 = x.detach().float().requires_grad_(True)
    before = (x32.clone(), y.clone())
    report = check_function(f, x32, y)
    # rows are named after the parameters; the float32 input was checked on a float64 copy
    assert [r.name for r in report.rows] == ["x", "y"]
    assert torch.equal(x32, before[0]) and x32.dtype == torch.float32 and torch.equal(y, before[1])
    assert x32.grad is None


def test_function_rng_state_is_restored() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_function(lambda t: F.dropout(t, 0.5), *_inputs((4,)))
    # the caller's RNG stream continues as if no check had run
    assert torch.equal(torch.rand(3), expected)


def test_function_rejects_bad_input() -> None:
    # clear errors name the problem
    with pytest.raises(GradcheckError, match="floating tensor"):
        check_function(torch.neg, torch.arange(3))
    with pytest.raises(GradcheckError, match="h must be"):
        check_function(torch.tanh, *_inputs((3,)), h=0.0)
    with pytest.raises(GradcheckError, match="no floating tensor"):
        check_function(lambda t: t.argmax(), *_inputs((3,)))
    with pytest.raises(GradcheckError, match="not finite"):
        check_function(torch.log, -torch.ones(3, dtype=torch.float64, requires_grad=True))
