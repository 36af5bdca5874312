"""check_function(fast, *inputs, reference=slow): a low-precision kernel against a float64 reference.

Centered differences need float64 (L-G5): in float32 the round-off of ``f`` divided by ``h`` swamps
the derivative, and in bf16 nothing is left at all.  A fused kernel that only runs in float32, bf16
or fp16 is therefore checked the way kernel authors check them: its backward, in the dtype it runs
in, against the float64 autograd of a plain reference implementation (torch ops, trusted), on the
same input values and the same upstream gradient (random signed weights ``w`` on every output,
rounded to the kernel's dtype so both sides see identical numbers).

How close is close enough is measured, not assumed: the reference is also run in the kernel's own
dtype, and its error against float64 is what that dtype costs with torch's own ops.  A tensor passes
when the kernel's largest absolute error is within ``FACTOR`` times that, and never below one unit
of the dtype (``eps``) at the tensor's largest value::

    tolerance = max(FACTOR * max|baseline - reference|, eps * max|reference|)
    ok           error <= tolerance            (ideal: error <= eps * max|reference|)
    suspicious   error <= WRONG_AT * tolerance
    wrong        beyond

Every row names its worst element (index, kernel value, reference value) and the report carries the
dtype, eps, the measured baseline and the tolerance of every row (``meta["reference"]``).  The
outputs are compared too (row ``output``): a forward that disagrees explains a backward that does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ._check import Check, format_index
from ._errors import GradcheckError
from ._findings import row_findings
from ._outputs import flat_outputs
from ._relative_error import relative_error
from ._report import GradReport, GradRow
from ._session import session

__all__ = ["FACTOR", "WRONG_AT", "check_against_reference"]

FACTOR = 4.0  # a kernel may be this many times less exact than torch's own ops in its dtype
WRONG_AT = 10.0  # beyond this many tolerances a disagreement is a bug, not precision


def _run(
    fn: Callable[..., Any],
    args: list[Any],
    checked: Sequence[int],
    weights: torch.Tensor,
    reseed: Callable[[], None],
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Outputs (flat) and the gradients of the checked inputs under upstream weights, all as float64."""
    reseed()
    with torch.enable_grad():
        out = flat_outputs(fn(*args))
        targets = [args[i] for i in checked]
        w = weights.to(out.dtype)
        grads = (
            torch.autograd.grad(out, targets, grad_outputs=w, allow_unused=True)
            if out.requires_grad
            else [None] * len(targets)
        )
    return out.detach().to(torch.float64), [
        torch.zeros(t.shape, dtype=torch.float64, device=t.device) if g is None else g.detach().to(torch.float64)
        for g, t in zip(grads, targets, strict=True)
    ]


def _copies(inputs: Sequence[Any], floating: Sequence[int], checked: Sequence[int], dtype: Any) -> list[Any]:
    out = []
    for i, x in enumerate(inputs):
        if i in floating:
            x = x.detach().clone()
            x = x.to(dtype) if dtype is not None else x
            out.append(x.requires_grad_(i in checked))
        else:
            out.append(x.detach().clone() if isinstance(x, torch.Tensor) else x)
    return out


def _row(
    name: str, fast: torch.Tensor, ref: torch.Tensor, base: torch.Tensor | None, eps: float, dtype: torch.dtype
) -> tuple[GradRow, dict[str, Any]]:
    diff = (fast - ref).abs().reshape(-1)
    err = float(diff.max()) if diff.numel() else 0.0
    scale = float(ref.abs().max()) if ref.numel() else 0.0
    baseline = float((base - ref).abs().max()) if base is not None and base.numel() else None
    floor = eps * scale
    tol = max(FACTOR * baseline, floor) if baseline is not None else FACTOR * floor
    if err <= floor:
        verdict = "ideal"
    elif err <= tol:
        verdict = "ok"
    elif err <= WRONG_AT * tol:
        verdict = "suspicious"
    else:
        verdict = "wrong"
    checks: tuple[Check, ...] = ()
    if diff.numel():
        i = int(diff.argmax())
        a, n = float(fast.reshape(-1)[i]), float(ref.reshape(-1)[i])
        note = f"{str(dtype).removeprefix('torch.')} kernel vs float64 reference, tolerance {tol:.2e}"
        where = format_index(i, tuple(ref.shape))
        checks = (Check(name, where, a, n, relative_error(a, n), 0.0, verdict, tol, False, False, note),)
    row = GradRow(name, "", tuple(ref.shape), ref.numel(), err / scale if scale > 0 else err, 0, verdict, scale,
                  False, checks)  # fmt: skip
    info = {
        "error": err,
        "tolerance": tol,
        "baseline_error": baseline,
        "scale": scale,
        "ratio": err / tol if tol else None,
    }
    return row, info


def check_against_reference(
    fn: Callable[..., Any],
    reference: Callable[..., Any],
    inputs: Sequence[Any],
    names: list[str],
    *,
    seed: int,
) -> GradReport:
    """Compare ``fn``'s outputs and input gradients, in its inputs' dtype, with ``reference``'s in float64."""
    if not callable(reference):
        raise GradcheckError(f"reference must be callable (the plain implementation), got {type(reference).__name__}.")
    start = time.perf_counter()
    floating = [i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor) and x.is_floating_point()]
    checked = [i for i in floating if inputs[i].requires_grad] or floating
    if not checked:
        raise GradcheckError(
            "check_function needs at least one floating tensor among the inputs, got types "
            f"{[type(x).__name__ for x in inputs]}."
        )
    dtype = min((inputs[i].dtype for i in checked), key=lambda d: torch.finfo(d).bits)
    with session(seed, [x for x in inputs if isinstance(x, torch.Tensor)]) as reseed:
        fast_args = _copies(inputs, floating, checked, None)
        reseed()
        with torch.no_grad():
            probe = flat_outputs(fn(*fast_args))
        out_dtype = probe.dtype
        eps = max(torch.finfo(dtype).eps, torch.finfo(out_dtype).eps)
        gen = torch.Generator().manual_seed(seed)
        # rounded to the kernel's output dtype first, so both sides receive exactly the same upstream gradient
        w = torch.randn(probe.numel(), generator=gen, dtype=torch.float64).to(out_dtype).to(torch.float64)
        w = w.to(probe.device)
        ref_args = _copies(inputs, floating, checked, torch.float64)
        reseed()
        with torch.no_grad():
            n_ref = flat_outputs(reference(*ref_args)).numel()
        if n_ref != probe.numel():
            raise GradcheckError(
                f"fn returned {probe.numel()} values and reference {n_ref}; they must compute the same outputs."
            )
        y_fast, g_fast = _run(fn, fast_args, checked, w, reseed)
        y_ref, g_ref = _run(reference, ref_args, checked, w, reseed)
        try:
            y_base, g_base = _run(reference, _copies(inputs, floating, checked, None), checked, w, reseed)
        except (RuntimeError, TypeError):  # the reference does not run in this dtype: eps alone sets the bar
            y_base, g_base = None, [None] * len(checked)
    rows, tolerances = [], {}
    for name, fast, ref, base in [("output", y_fast, y_ref, y_base)] + [
        (names[i], f, r, b) for i, f, r, b in zip(checked, g_fast, g_ref, g_base, strict=True)
    ]:
        row, info = _row(name, fast, ref, base, eps, dtype)
        rows.append(row)
        tolerances[name] = info
    meta = {
        "kind": "function",
        "method": "reference",
        "dtype": str(dtype).removeprefix("torch."),
        "seed": seed,
        "evaluations": 5,
        "seconds": round(time.perf_counter() - start, 4),
        "outputs": probe.numel(),
        "reference": {"eps": eps, "factor": FACTOR, "wrong_at": WRONG_AT, "rows": tolerances},
    }
    return GradReport(tuple(rows), tuple(row_findings(rows)), meta)
