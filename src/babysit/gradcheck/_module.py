"""check_module: every parameter tensor of a model, data loss and regularization apart (L-G7..G10).

The check runs on a float64 deep copy of the model, inputs and loss, on the first ``examples`` (3)
examples of the batch.  Every parameter tensor is checked (biases too: sampling one concatenated
vector would miss them), with random signed directions, bisection when one fails, and a few sampled
coordinates.  The data loss and the regularization term are checked *separately* (L-G8), and a
``regularization_dominates`` finding says when the regularization gradient swamps the data gradient.
``warmup_steps`` trains the copy a few SGD steps first, so the check runs in the "characteristic
mode" of training rather than at a symmetric initialisation (L-G7).  Dropout stays on and is checked
with the same seed before every evaluation; batch-norm keeps the mode the model is in and its running
statistics are restored before every evaluation, so all evaluations see the same model (L-G9).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from babysit.findings import Finding

from ._copies import as_float64, batch_size, copy_as_float64, take_examples
from ._errors import GradcheckError
from ._findings import row_findings
from ._function import validate_options
from ._numeric import Evaluator, Slot
from ._plan import check_slots
from ._report import GradReport, GradRow, make_row
from ._session import session
from ._warmup import regularization_dominates, warm_up, warmup_stalled

__all__ = ["check_module"]

log = logging.getLogger("babysit")

Loss = Callable[..., torch.Tensor]


def _loss_value(model: nn.Module, loss_fn: Loss, xs: Any, ys: Any) -> torch.Tensor:
    out = model(*xs) if isinstance(xs, (tuple, list)) else model(xs)
    loss = loss_fn(out) if ys is None else loss_fn(out, ys)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise GradcheckError(f"loss_fn must return a scalar tensor, got {getattr(loss, 'shape', type(loss))}.")
    return loss.reshape(1)


def _part(
    name: str,
    value: Callable[[], torch.Tensor],
    leaves: list[tuple[str, torch.Tensor]],
    reseed: Callable[[], None],
    restore: Callable[[], None],
    depth: int,
    samples: int | None,
    h: float,
    seed: int,
) -> tuple[list[GradRow], list[torch.Tensor], int]:
    """Check one loss part (data or regularization) over the named leaves."""

    def value_fn() -> torch.Tensor:
        restore()
        return value()

    def grad_fn() -> list[torch.Tensor]:
        reseed()
        restore()
        with torch.enable_grad():
            loss = value()
            tensors = [t for _, t in leaves]
            grads = (
                torch.autograd.grad(loss.sum(), tensors, allow_unused=True)
                if loss.requires_grad
                else [None] * len(tensors)
            )
        return [
            torch.zeros(t.numel(), dtype=torch.float64, device=t.device)
            if g is None
            else g.detach().reshape(-1).to(torch.float64)
            for g, t in zip(grads, tensors, strict=True)
        ]

    analytic = grad_fn()
    ones = torch.ones(1, dtype=torch.float64, device=leaves[0][1].device)
    ev = Evaluator(value_fn, ones, reseed=reseed, depth=depth, grad_fn=grad_fn)
    slots = [Slot(n, t, g, i) for i, ((n, t), g) in enumerate(zip(leaves, analytic, strict=True))]
    results = check_slots(ev, slots, samples=samples, h=h, seed=seed)
    rows = [make_row(s.name, name, tuple(s.tensor.shape), c, s.analytic) for s, c in zip(slots, results, strict=True)]
    return rows, analytic, ev.evaluations


def check_module(
    model: nn.Module,
    loss_fn: Loss,
    inputs: Any,
    targets: Any = None,
    *,
    regularization: Callable[[nn.Module], torch.Tensor] | None = None,
    samples: int | None = None,
    warmup_steps: int = 0,
    seed: int = 0,
    h: float = 1e-5,
    examples: int | None = 3,
    warmup_lr: float = 1e-2,
) -> GradReport:
    """Check the gradient of every parameter of ``model`` (and of its input) under ``loss_fn``.

    Args:
        model: The model; never modified (a float64 deep copy is checked).
        loss_fn: ``loss_fn(model(inputs), targets) -> scalar``, the data loss without regularization.
        inputs: A batch (tensor, or tuple of tensors passed as ``model(*inputs)``).
        targets: The targets (None: ``loss_fn(output)``).
        regularization: ``regularization(model) -> scalar``; it may read the parameters directly.
        samples: Coordinates per tensor besides two random directions (None: all of a tiny tensor, else 5).
        warmup_steps: SGD steps (lr ``warmup_lr``, data + regularization, whole batch) on the copy first.
        seed: Seeds every evaluation (dropout), the directions and the sampled coordinates.
        h: The centered-difference step (fallbacks are automatic).
        examples: How many examples of the batch the check uses (None: all).
        warmup_lr: The warm-up learning rate.

    Returns:
        A GradReport with one row per parameter and loss part, plus the input.
    """
    validate_options(h, samples, seed)
    if not isinstance(model, nn.Module):
        raise GradcheckError(
            f"model must be a torch.nn.Module, got {type(model).__name__}; use check_function for plain functions."
        )
    if not callable(loss_fn) or (regularization is not None and not callable(regularization)):
        raise GradcheckError("loss_fn and regularization must be callables returning a scalar tensor.")
    if warmup_steps < 0 or warmup_lr <= 0 or (examples is not None and examples < 1):
        raise GradcheckError(
            f"need warmup_steps >= 0, warmup_lr > 0 and examples >= 1, got {warmup_steps=} {warmup_lr=} {examples=}."
        )
    start = time.perf_counter()
    m: nn.Module = copy_as_float64(model, "model")
    lf = copy_as_float64(loss_fn, "loss function") if isinstance(loss_fn, nn.Module) else loss_fn
    xs_all, ys_all = as_float64(inputs), as_float64(targets)
    params = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
    if not params:
        raise GradcheckError("the model has no parameter that requires grad: nothing to check.")
    depth = sum(1 for mod in m.modules() if next(mod.parameters(recurse=False), None) is not None)
    meta: dict[str, Any] = {
        "kind": "module",
        "h": h,
        "seed": seed,
        "mode": "train" if m.training else "eval",
        "depth": depth,
        "parameters": sum(p.numel() for _, p in params),
    }
    with session(seed, [p for _, p in params]) as reseed:
        reg = (lambda: regularization(m).reshape(1)) if regularization is not None else None
        if warmup_steps:
            meta["warmup_losses"] = warm_up(
                m,
                lambda: _loss_value(m, lf, xs_all, ys_all),
                reg,
                steps=warmup_steps,
                lr=warmup_lr,
                reseed=reseed,
            )
        xs, ys = take_examples(xs_all, examples), take_examples(ys_all, examples)
        meta["batch"] = batch_size(xs)
        flat_in = [
            t
            for t in (xs if isinstance(xs, (tuple, list)) else [xs])
            if isinstance(t, torch.Tensor) and t.is_floating_point()
        ]
        for t in flat_in:
            t.requires_grad_(True)
        in_names = ["input"] if len(flat_in) == 1 else [f"input[{i}]" for i in range(len(flat_in))]
        saved = [(b, b.detach().clone()) for b in m.buffers()]

        def restore() -> None:  # batch-norm's running statistics: the same model for every evaluation
            with torch.no_grad():
                for b, s in saved:
                    b.copy_(s)

        try:
            rows, g_data, n_eval = _part(
                "data",
                lambda: _loss_value(m, lf, xs, ys),
                params + list(zip(in_names, flat_in, strict=True)),
                reseed,
                restore,
                depth,
                samples,
                h,
                seed,
            )
        except (RuntimeError, TypeError) as e:
            raise GradcheckError(f"the model or loss failed on {meta['batch']} examples in float64: {e}") from e
        findings: list[Finding] = []
        stalled = warmup_stalled(meta.get("warmup_losses", []), warmup_lr)
        findings += [stalled] if stalled is not None else []
        if reg is not None:
            reg_rows, g_reg, n_reg = _part("regularization", reg, params, reseed, restore, 1, samples, h, seed)
            rows, n_eval = rows + reg_rows, n_eval + n_reg
            finding = regularization_dominates(
                [n for n, _ in params],
                g_data[: len(params)],
                g_reg,
                float(_loss_value(m, lf, xs, ys).detach()),
                float(reg().detach()),
            )
            findings += [finding] if finding is not None else []
    meta.update(evaluations=n_eval, seconds=round(time.perf_counter() - start, 4), examples=meta["batch"])
    log.debug("check_module: %d evaluations in %.3fs", n_eval, meta["seconds"])
    return GradReport(tuple(rows), tuple(row_findings(rows, meta["batch"]) + findings), meta)
