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

Two methods evaluate the data loss.  ``whole-model`` runs the model and the loss for every
evaluation: each row is an end-to-end derivative of the loss, and its cost is about 14 forward passes
per tensor.  ``in-place`` (``_inplace``) records what every module receives in one forward and
backward, then checks each tensor inside its own module at that module's cost, plus an end-to-end
check over all parameters at once; a transformer of 25M parameters takes seconds instead of minutes.
``only=layer`` checks one layer that way.  The default picks in place when tensors x parameters
reaches ``IN_PLACE_FROM``: the whole-model method's cost grows with both (evaluations per tensor x
the cost of a forward pass).
"""

from __future__ import annotations

import difflib
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
from ._inplace import check_in_place
from ._numeric import Evaluator, Slot
from ._plan import check_slots
from ._report import GradReport, GradRow, make_row
from ._session import session
from ._warmup import regularization_dominates, warm_up, warmup_stalled

__all__ = ["IN_PLACE_FROM", "METHODS", "check_module", "layer_path"]

METHODS = ("auto", "whole-model", "in-place")
# tensors x parameters from which a model is checked in place by default: below it (an MLP of 1M
# parameters in 6 tensors is 6e6) a whole-model check takes about a second, and its rows are
# end-to-end derivatives of the loss with no hooks involved.
IN_PLACE_FROM = 10_000_000

log = logging.getLogger("babysit")

Loss = Callable[..., torch.Tensor]


def _loss_value(model: nn.Module, loss_fn: Loss, xs: Any, ys: Any) -> torch.Tensor:
    out = model(*xs) if isinstance(xs, (tuple, list)) else model(xs)
    loss = loss_fn(out) if ys is None else loss_fn(out, ys)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise GradcheckError(f"loss_fn must return a scalar tensor, got {getattr(loss, 'shape', type(loss))}.")
    return loss.reshape(1)


def layer_path(model: nn.Module, only: nn.Module | str | None) -> str | None:
    """The name of ``only`` in ``model`` (None for the whole model); a clear error when it is not there."""
    if only is None:
        return None
    names = {name for name, _ in model.named_modules() if name}
    if isinstance(only, str):
        if only not in names:
            close = difflib.get_close_matches(only, sorted(names), n=5, cutoff=0.6)
            raise GradcheckError(
                f"the model has no module named {only!r}"
                + (f"; similar names: {', '.join(close)}" if close else "")
                + "; pass a name from model.named_modules()."
            )
        return only
    if isinstance(only, nn.Module):
        for name, mod in model.named_modules():
            if mod is only and name:
                return name
        raise GradcheckError(
            f"only= must be a layer inside the model (got a {type(only).__name__} that is not one of its "
            "submodules, or the model itself); pass e.g. model.blocks[3]."
        )
    raise GradcheckError(f"only= must be a module of the model or its name, got {type(only).__name__}.")


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
    seconds: list[float] = []
    results = check_slots(ev, slots, samples=samples, h=h, seed=seed, seconds=seconds)
    rows = [
        make_row(s.name, name, tuple(s.tensor.shape), c, s.analytic, seconds=t)
        for s, c, t in zip(slots, results, seconds, strict=True)
    ]
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
    only: nn.Module | str | None = None,
    method: str = "auto",
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
        only: A layer of ``model`` (the module itself, or its name in ``model.named_modules()``): check
            that layer alone where it sits, under the inputs and upstream gradient it receives in one
            forward and backward of the whole model; its parameters, its input gradient, nothing else.
        method: ``"whole-model"`` (every evaluation runs the model and the loss), ``"in-place"`` (every
            tensor checked inside its own module, plus an end-to-end check; see ``_inplace``) or
            ``"auto"``: in place when tensors x parameters reaches ``IN_PLACE_FROM`` (1e7), or when
            ``only`` is given.  In place, a module's input is checked along directions only (its
            coordinates when they disagree) unless ``samples`` is given.

    Returns:
        A GradReport with one row per parameter and loss part, plus the input (in place: also the
        input of every module checked, and the ``end-to-end`` row).
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
    if method not in METHODS:
        raise GradcheckError(f"method must be one of {list(METHODS)}, got {method!r}.")
    layer = layer_path(model, only)
    if layer is not None and method == "whole-model":
        raise GradcheckError("only= checks a layer in place; it cannot be combined with method='whole-model'.")
    start = time.perf_counter()
    m: nn.Module = copy_as_float64(model, "model")
    lf = copy_as_float64(loss_fn, "loss function") if isinstance(loss_fn, nn.Module) else loss_fn
    xs_all, ys_all = as_float64(inputs), as_float64(targets)
    all_params = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
    params = [(n, p) for n, p in all_params if layer is None or n.startswith(layer + ".")]
    if not all_params:
        raise GradcheckError("the model has no parameter that requires grad: nothing to check.")
    n_params = sum(p.numel() for _, p in all_params)
    if method == "auto":
        big = len(all_params) * n_params >= IN_PLACE_FROM
        method = "in-place" if layer is not None or big else "whole-model"
    depth = sum(1 for mod in m.modules() if next(mod.parameters(recurse=False), None) is not None)
    meta: dict[str, Any] = {
        "kind": "module",
        "method": method,
        "h": h,
        "seed": seed,
        "mode": "train" if m.training else "eval",
        "depth": depth,
        "parameters": sum(p.numel() for _, p in params),
    }
    if layer is not None:
        meta["layer"] = layer
        meta["model_parameters"] = n_params
    with session(seed, [p for _, p in all_params]) as reseed:
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
            if method == "in-place":
                done = check_in_place(
                    m,
                    lambda: _loss_value(m, lf, xs, ys),
                    params,
                    flat_in,
                    all_params=[p for _, p in all_params],
                    layer=layer,
                    reseed=reseed,
                    restore=restore,
                    samples=samples,
                    h=h,
                    seed=seed,
                    depth=depth,
                )
                rows, g_data, n_eval = done.rows, done.data_grads, done.evaluations
                meta.update(done.meta)
            else:
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
        if reg is not None and params:
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
