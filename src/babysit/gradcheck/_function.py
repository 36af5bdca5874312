"""check_function: the gradient of every floating input of any callable on tensors (issue item 6).

For custom ``autograd.Function``s, fused kernels, any ``fn(*inputs) -> tensor(s)``.  The outputs are
projected on fixed random *signed* weights ``w`` (``f = w . vec(outputs)``), so one backward pass
gives the analytic gradient of every input and a bug in any output's gradient shows up with
probability one.  Coordinates then localise a failure.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ._errors import GradcheckError
from ._findings import row_findings
from ._numeric import Evaluator, Slot
from ._outputs import flat_outputs
from ._plan import check_slots
from ._reference import check_against_reference
from ._report import GradReport, make_row
from ._session import session

__all__ = ["check_function", "flat_outputs", "validate_options"]

log = logging.getLogger("babysit")


def validate_options(h: float, samples: int | None, seed: int) -> None:
    """Raise a GradcheckError naming a bad ``h``, ``samples`` or ``seed``."""
    if not (isinstance(h, (int, float)) and 1e-12 < h < 1.0):
        raise GradcheckError(f"h must be a step in (1e-12, 1), got h={h!r}; the lecture's choice is h=1e-5.")
    if samples is not None and (not isinstance(samples, int) or samples < 0):
        raise GradcheckError(
            f"samples must be None or a count >= 0 of coordinates per tensor, got samples={samples!r}."
        )
    if not isinstance(seed, int):
        raise GradcheckError(f"seed must be an int, got seed={seed!r}.")


def _names(fn: Callable[..., Any], n: int) -> list[str]:
    try:
        params = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return params[:n] if len(params) >= n else [f"input[{i}]" for i in range(n)]


def _analytic(
    fn: Callable[..., Any],
    args: list[Any],
    checked: Sequence[int],
    w: torch.Tensor,
    reseed: Callable[[], None],
) -> list[torch.Tensor]:
    reseed()
    with torch.enable_grad():
        v = flat_outputs(fn(*args)).to(torch.float64)
        targets = [args[i] for i in checked]
        if not v.requires_grad:
            return [torch.zeros(t.numel(), dtype=torch.float64, device=t.device) for t in targets]
        grads = torch.autograd.grad((w * v).sum(), targets, allow_unused=True)
    return [
        torch.zeros(t.numel(), dtype=torch.float64, device=t.device)
        if g is None
        else g.detach().to(torch.float64).reshape(-1)
        for g, t in zip(grads, targets, strict=True)
    ]


def check_function(
    fn: Callable[..., Any],
    *inputs: Any,
    h: float = 1e-5,
    samples: int | None = None,
    seed: int = 0,
    reference: Callable[..., Any] | None = None,
) -> GradReport:
    """Check the gradient of ``fn`` with respect to every floating input.

    Inputs that require grad are checked; if none does, every floating tensor input is.  The inputs
    are copied to float64 first; the caller's tensors are left bit-identical.

    With ``reference``, ``fn`` is a kernel that runs in low precision (float32, bf16, fp16): it runs in
    its inputs' own dtype and its outputs and input gradients are compared with the float64 autograd
    of ``reference`` (a plain implementation), with tolerances measured for that dtype
    (``_reference``).  No centered differences then: ``h`` and ``samples`` do not apply.

    Args:
        fn: Any callable on tensors returning tensor(s), e.g. ``MyFunction.apply``.
        *inputs: Its positional arguments (tensors and anything else).
        h: The centered-difference step (fallbacks 1e-4 / 1e-6 and smaller near kinks are automatic).
        samples: Coordinates checked per input besides the random directions (None: all of a tiny
            input, else 5).
        seed: Seeds the projection, the directions and every evaluation of ``fn`` (dropout inside).
        reference: A plain implementation of the same function (torch ops); see above.

    Returns:
        A GradReport with one row per checked input (with ``reference``: first a row ``output``).

    Example:
        >>> x = torch.randn(3, 4, requires_grad=True)
        >>> check_function(torch.tanh, x).ok
        True
    """
    validate_options(h, samples, seed)
    if not callable(fn):
        raise GradcheckError(f"fn must be callable, got {type(fn).__name__}.")
    if reference is not None:
        return check_against_reference(fn, reference, inputs, _names(fn, len(inputs)), seed=seed)
    start = time.perf_counter()
    floating = [i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor) and x.is_floating_point()]
    checked = [i for i in floating if inputs[i].requires_grad] or floating
    if not checked:
        raise GradcheckError(
            "check_function needs at least one floating tensor among the inputs, got types "
            f"{[type(x).__name__ for x in inputs]}."
        )
    args = [
        x.detach().clone().to(torch.float64).contiguous()
        if i in floating
        else (x.detach().clone() if isinstance(x, torch.Tensor) else x)
        for i, x in enumerate(inputs)
    ]
    for i in checked:
        args[i].requires_grad_(True)
    names = _names(fn, len(inputs))
    with session(seed, [a for a in args if isinstance(a, torch.Tensor)]) as reseed:
        reseed()
        with torch.no_grad():
            size = flat_outputs(fn(*args)).numel()
        gen = torch.Generator().manual_seed(seed)
        w = torch.randn(size, generator=gen, dtype=torch.float64).to(args[checked[0]].device)
        analytic = _analytic(fn, args, checked, w, reseed)
        slots = [Slot(names[i], args[i], g, k) for k, (i, g) in enumerate(zip(checked, analytic, strict=True))]
        ev = Evaluator(
            lambda: flat_outputs(fn(*args)),
            w,
            reseed=reseed,
            grad_fn=lambda: _analytic(fn, args, checked, w, reseed),
        )
        results = check_slots(ev, slots, samples=samples, h=h, seed=seed)
    rows = [
        make_row(s.name, "", tuple(s.tensor.shape), checks, s.analytic)
        for s, checks in zip(slots, results, strict=True)
    ]
    meta = {
        "kind": "function",
        "method": "centered differences",
        "h": h,
        "seed": seed,
        "evaluations": ev.evaluations,
        "seconds": round(time.perf_counter() - start, 4),
        "outputs": size,
    }
    log.debug("check_function: %d evaluations in %.3fs", ev.evaluations, meta["seconds"])
    return GradReport(tuple(rows), tuple(row_findings(rows)), meta)
