"""check: one scalar function of one array or tensor (issue item 7, cs231n-style layers).

NumPy users pass the analytic gradient they derived by hand (or let ``f`` return ``(loss, dx)`` as
cs231n's layer functions do); tensor users leave ``grad=None`` and autograd supplies it.  NumPy code
is not recorded by the kink recorder; kinks there are found from one-sided differences
(``_kinks.kink_at_point``).  NumPy's global RNG is re-seeded before every evaluation too (and
restored afterwards), so a hand-written dropout layer is checked like torch's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ._errors import GradcheckError
from ._findings import row_findings
from ._function import validate_options
from ._numeric import Evaluator, Slot
from ._plan import check_slots
from ._report import GradReport, make_row
from ._session import session

__all__ = ["check"]


def _scalar(value: Any) -> torch.Tensor:
    """f's value as a 1-element tensor in the dtype f computed in (a float32 result sets the resolution)."""
    if isinstance(value, tuple):
        value = value[0]
    if isinstance(value, torch.Tensor):
        out = value.detach().reshape(-1)
    else:
        arr = np.asarray(value)
        if not np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(np.float64)
        out = torch.from_numpy(np.array(arr, copy=True).reshape(-1))
    if out.numel() != 1:
        raise GradcheckError(
            f"f must return a scalar (the loss), got {out.numel()} values; "
            "use check_function for functions with many outputs."
        )
    return out


def _numpy_target(
    f: Callable[..., Any], x: np.ndarray, grad: Any
) -> tuple[torch.Tensor, torch.Tensor, Callable[[], torch.Tensor]]:
    if not np.issubdtype(x.dtype, np.floating):
        raise GradcheckError(f"x must be a floating array, got dtype={x.dtype}; cast it with x.astype(float).")
    x64 = np.array(x, dtype=np.float64, copy=True, order="C")  # the caller's array is never touched
    if grad is None:
        first = f(x64.copy())
        if not (isinstance(first, tuple) and len(first) == 2):
            raise GradcheckError(
                "grad is required for a NumPy f: pass the analytic gradient (an array shaped "
                "like x) or let f return (loss, dx) as cs231n layers do."
            )
        grad = first[1]
    g = np.asarray(grad, dtype=np.float64)
    if g.shape != x.shape:
        raise GradcheckError(f"grad must have x's shape {x.shape}, got {g.shape}.")
    return torch.from_numpy(x64), torch.from_numpy(g.copy()).reshape(-1), lambda: _scalar(f(x64))


def check(
    f: Callable[..., Any],
    x: Any,
    grad: Any = None,
    *,
    h: float = 1e-5,
    samples: int | None = None,
    seed: int = 0,
) -> GradReport:
    """Check the gradient of a scalar function ``f`` at ``x``.

    Args:
        f: ``f(x) -> scalar`` (or ``-> (loss, dx)``); NumPy or torch.
        x: A floating NumPy array or tensor; a float64 copy is perturbed, ``x`` stays bit-identical.
        grad: The analytic gradient at ``x`` (required for NumPy unless f returns it); None for a
            tensor means autograd.
        h: The centered-difference step (fallbacks are automatic).
        samples: Coordinates checked besides two random directions (None: all of a tiny x, else 5).
        seed: Seeds directions, coordinates and every evaluation of ``f`` (torch and NumPy RNGs).

    Example:
        >>> import numpy as np
        >>> x = np.array([1.0, -2.0, 3.0])
        >>> check(lambda v: float((v ** 2).sum()), x, grad=2 * x).ok
        True
    """
    validate_options(h, samples, seed)
    start = time.perf_counter()
    is_numpy = not isinstance(x, torch.Tensor)
    with session(seed, [] if is_numpy else [x], numpy=True) as reseed:
        grad_fn = None
        if is_numpy:
            reseed()
            t, analytic, value_fn = _numpy_target(f, np.asarray(x), grad)
        else:
            if not x.is_floating_point():
                raise GradcheckError(f"x must be a floating tensor, got dtype={x.dtype}.")
            t = x.detach().clone().to(torch.float64).contiguous()

            def value_fn() -> torch.Tensor:
                return _scalar(f(t))

            def autograd_fn() -> list[torch.Tensor]:
                reseed()
                leaf = t.detach().requires_grad_(True)  # shares t's storage, so perturbations show
                with torch.enable_grad():
                    out = f(leaf)
                    out = out[0] if isinstance(out, tuple) else out
                    if not isinstance(out, torch.Tensor) or out.numel() != 1 or not out.requires_grad:
                        raise GradcheckError(
                            "with grad=None, f must return a scalar tensor that depends on x "
                            "through autograd; pass grad= for other functions."
                        )
                    (g,) = torch.autograd.grad(out.reshape(()), leaf)
                return [g.detach().to(torch.float64).reshape(-1)]

            if grad is None:
                grad_fn = autograd_fn
                analytic = autograd_fn()[0]
            else:
                analytic = torch.as_tensor(np.asarray(grad) if not isinstance(grad, torch.Tensor) else grad)
                analytic = analytic.detach().to(torch.float64, copy=True).reshape(-1).to(t.device)
                if analytic.numel() != t.numel():
                    raise GradcheckError(f"grad must have x's shape {tuple(x.shape)}, got {tuple(np.shape(grad))}.")
        ev = Evaluator(
            value_fn,
            torch.ones(1, dtype=torch.float64, device=t.device),
            reseed=reseed,
            record=not is_numpy,
            grad_fn=grad_fn,
        )
        slot = Slot("x", t, analytic.to(t.device))
        (checks,) = check_slots(ev, [slot], samples=samples, h=h, seed=seed)
    rows = [make_row("x", "", tuple(t.shape), checks, slot.analytic)]
    meta = {
        "kind": "numpy" if is_numpy else "tensor",
        "method": "centered differences",
        "h": h,
        "seed": seed,
        "evaluations": ev.evaluations,
        "seconds": round(time.perf_counter() - start, 4),
    }
    return GradReport(tuple(rows), tuple(row_findings(rows)), meta)
