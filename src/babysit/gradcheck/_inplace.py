"""The in-place method: every tensor checked inside its own module, at that module's cost.

A whole-model check pays one forward pass of the model per evaluation, and every tensor needs a dozen
evaluations, so its time grows with parameters x forward cost.  Here one forward and backward of the
whole model records what each module received (``_capture``); then

1. every parameter tensor is checked inside the smallest module that accounts for its whole gradient
   (``_units``): an evaluation runs that module alone on its recorded inputs, projected on its recorded
   upstream gradient.  Two directions over all of a module's tensors come first; only a module whose
   directions disagree has each tensor checked on its own (``_group``); the sampled coordinates of
   every parameter run either way;
2. the input gradient of every such module, and of every module without parameters and without
   submodules (an attention core, an activation, a hand-written kernel wrapped in a module), is checked
   there too (``blocks.3.mlp.fc2:input``): a wrong input gradient corrupts every tensor upstream while
   each module's own parameters still agree;
3. the model's own inputs and the tensors no module accounts for are checked with the whole model;
4. two directions over every parameter at once check the whole chain end to end (``end-to-end``),
   covering the code between modules that no module owns.  When they disagree, every module that holds
   others is checked in place as a whole; the deepest that disagrees holds the faulty code in its own
   forward (``blocks.3.attn:module``).  When a module's own check has already failed, this step is
   skipped (``meta["end_to_end"]`` says so): the model is known to be wrong, and a fix comes first.

The same steps check one layer of a model where it sits (``only=``): the layer's recorded calls take
the place of the loss, and nothing outside the layer is evaluated again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from ._capture import capture
from ._check import Check
from ._errors import GradcheckError
from ._group import check_group, group_agrees
from ._numeric import Evaluator, GroupSlot, Slot
from ._plan import _direction, check_slot
from ._report import GradRow, make_row
from ._units import Unit, agrees, parent_of

__all__ = ["InPlace", "check_in_place"]

Reseed = Callable[[], None]
_FINE = ("ideal", "ok")


@dataclass
class InPlace:
    """What the in-place method returns: rows, evaluations, the parameters' gradients, how time was spent."""

    rows: list[GradRow]
    evaluations: int
    data_grads: list[torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)


def _in_scope(path: str, scope: str) -> bool:
    return scope == "" or path == scope or path.startswith(scope + ".")


def _owner(name: str) -> str:
    return name.rpartition(".")[0]


def _input_names(prefix: str, n: int) -> list[str]:
    base = f"{prefix}:input" if prefix else "input"
    return [base] if n == 1 else [f"{base}[{i}]" for i in range(n)]


def _flat(grads: list[torch.Tensor | None], tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [
        torch.zeros(t.numel(), dtype=torch.float64, device=t.device)
        if g is None
        else g.detach().reshape(-1).to(torch.float64)
        for g, t in zip(grads, tensors, strict=True)
    ]


def _group_step(h: float, n: int) -> float:
    """The first step of a direction over ``n`` entries at once.

    The truncation error of a centered difference grows with the length of the step ``h |d|``; this
    keeps that length at most that of a direction over 1e5 entries, a size ``h`` suits in float64.
    """
    return h * min(1.0, (1e5 / max(n, 1)) ** 0.5)


def _timed_slot(
    ev: Evaluator, slot: Slot, module: str, *, samples: int | None, h: float, gen: torch.Generator
) -> GradRow:
    start = time.perf_counter()
    checks = check_slot(ev, slot, samples=samples, directions=2, h=h, gen=gen)
    seconds = time.perf_counter() - start
    return make_row(slot.name, "data", tuple(slot.tensor.shape), checks, slot.analytic, seconds=seconds, module=module)


def _check_unit(
    ev: Evaluator,
    path: str,
    leaves: list[tuple[str, torch.Tensor]],
    analytic: list[torch.Tensor],
    *,
    samples: list[int | None],
    h: float,
    gen: torch.Generator,
) -> list[GradRow]:
    """Check a module's tensors: two directions over all of them first, each on its own only on disagreement.

    The sampled coordinates of every tensor run either way (the lecture's check, with an index).
    """
    start = time.perf_counter()
    group = GroupSlot(path, torch.empty(0), torch.cat(analytic), 0, members=leaves)
    shared: list[Check] = []
    agreed = group.analytic.numel() > len(leaves)  # tensors of one entry each: checked entry by entry anyway
    for j in range(2 if agreed else 0):
        where = f" along a direction over all of {path} {j + 1}"
        ok, c = group_agrees(ev, group, _direction(group.analytic, gen), _group_step(h, group.analytic.numel()), where)
        shared.append(c)
        if not ok:
            agreed = False
            break
    t_shared = (time.perf_counter() - start) / len(leaves)
    rows = []
    for k, ((name, t), g) in enumerate(zip(leaves, analytic, strict=True)):
        begin = time.perf_counter()
        slot = Slot(name, t, g, k)
        if agreed:
            checks = [replace(c, name=name) for c in shared]
            checks += check_slot(ev, slot, samples=samples[k], directions=0, h=h, gen=gen)
        else:
            checks = check_slot(ev, slot, samples=samples[k], directions=2, h=h, gen=gen)
        seconds = time.perf_counter() - begin + t_shared
        rows.append(make_row(name, "data", tuple(t.shape), checks, g, seconds=seconds, module=path))
    return rows


def _assign(
    units: dict[str, Unit], params: list[tuple[str, torch.Tensor]], reference: list[torch.Tensor], scope: str
) -> tuple[dict[str, list[int]], dict[str, list[torch.Tensor]]]:
    """Place every parameter in the smallest module whose own backward reproduces its whole gradient.

    Returns the parameter indices per module path (``scope`` for those no module accounts for) and, per
    module, the gradients of its placed parameters then of its inputs, from the backward that decided.
    """
    pending: dict[str, list[int]] = {}
    for i, (name, _) in enumerate(params):
        pending.setdefault(_owner(name), []).append(i)
    placed: dict[str, list[int]] = {}
    grads: dict[str, list[torch.Tensor]] = {}
    while pending:
        path = max(pending, key=lambda p: (p.count(".") + (p != ""), p))  # deepest first; the scope last
        idx = pending.pop(path)
        up = parent_of(path) if _in_scope(parent_of(path), scope) else scope
        unit = units.get(path)
        if path == scope or unit is None:
            target = placed if path == scope else pending
            target.setdefault(path if path == scope else up, []).extend(idx)
            continue
        local = unit.gradients([params[i][1] for i in idx] + unit.inputs)
        keep = [k for k, i in enumerate(idx) if agrees(local[k], reference[i])]
        pending_up = [i for k, i in enumerate(idx) if k not in keep]
        if pending_up:
            pending.setdefault(up, []).extend(pending_up)
        if keep:
            placed[path] = [idx[k] for k in keep]
            grads[path] = [local[k] for k in keep] + local[len(idx) :]
    return placed, grads


class _Root:
    """The scope's own function: the data loss of the whole model, or a layer under its upstream gradient."""

    def __init__(
        self,
        value: Callable[[], torch.Tensor],
        weights: torch.Tensor,
        grads: Callable[[list[torch.Tensor]], list[torch.Tensor]],
        leaves: list[tuple[str, torch.Tensor]],
        n_inputs: int,
    ) -> None:
        self.value, self.weights, self._grads, self.leaves = value, weights, grads, leaves
        self.n_inputs = n_inputs

    def with_group(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """Every leaf's gradient, then all parameters' concatenated (the end-to-end group's slot)."""
        n_params = len(self.leaves) - self.n_inputs
        return [*grads, torch.cat(grads[:n_params]) if n_params else torch.zeros(0, dtype=torch.float64)]

    def grad_fn(self) -> list[torch.Tensor]:
        """Recomputed at the current point (the probe's shifted-point re-check)."""
        return self.with_group(self._grads([t for _, t in self.leaves]))


def _whole_model_root(
    run: Callable[[], torch.Tensor],
    params: list[tuple[str, torch.Tensor]],
    model_inputs: list[torch.Tensor],
    reseed: Reseed,
    restore: Callable[[], None],
) -> _Root:
    def grads(ts: list[torch.Tensor]) -> list[torch.Tensor]:
        reseed()
        restore()
        with torch.enable_grad():
            loss = run()
            gs = torch.autograd.grad(loss.sum(), ts, allow_unused=True) if loss.requires_grad else [None] * len(ts)
        return _flat(list(gs), ts)

    def value() -> torch.Tensor:
        restore()
        return run()

    inputs = list(zip(_input_names("", len(model_inputs)), model_inputs, strict=True))
    device = (params[0][1] if params else model_inputs[0]).device
    return _Root(value, torch.ones(1, dtype=torch.float64, device=device), grads, params + inputs, len(inputs))


def check_in_place(
    model: nn.Module,
    run: Callable[[], torch.Tensor],
    params: list[tuple[str, torch.Tensor]],
    model_inputs: list[torch.Tensor],
    *,
    all_params: list[torch.Tensor],
    layer: str | None,
    reseed: Reseed,
    restore: Callable[[], None],
    samples: int | None,
    h: float,
    seed: int,
    depth: int,
) -> InPlace:
    """Check ``params`` (those of the model, or of ``layer``) in place; see the module docstring.

    ``run()`` is the whole model's data loss as a 1-element tensor; ``model_inputs`` are its floating
    inputs (checked only when ``layer`` is None); ``all_params`` every parameter of the model.
    """
    t0 = time.perf_counter()
    scope = layer or ""
    modules = {p: mod for p, mod in model.named_modules() if _in_scope(p, scope) and (p or layer is not None)}
    reseed()
    restore()
    # the recording backward asks for every parameter: the autograd engine only runs what the requested
    # gradients need, and a module's upstream gradient is recorded only if its output is on that path
    tensors = [p for _, p in params] + (list(model_inputs) if layer is None else [])
    calls, full_grads, _ = capture(modules, run, tensors if layer is None else all_params)
    evaluations = 1
    units = {p: Unit(p, modules[p], calls[p], restore) for p in modules if calls[p]}
    for unit in units.values():
        for t in unit.inputs:
            t.requires_grad_(True)
    gen = torch.Generator().manual_seed(seed + 7919)
    if layer is None:
        root = _whole_model_root(run, params, model_inputs, reseed, restore)
        root_analytic = root.with_group(_flat(full_grads, tensors))
    else:
        if layer not in units:
            raise GradcheckError(
                f"the layer {layer!r} was not called in the model's forward pass; pass a module the model uses."
            )
        top = units.pop(layer)
        inputs = list(zip(_input_names(layer, len(top.inputs)), top.inputs, strict=True))
        root = _Root(top.outputs, top.weights, top.gradients, params + inputs, len(inputs))
        root_analytic = root.grad_fn()
        evaluations += 1
    reference = root_analytic[: len(params)]
    root_inputs = root.leaves[len(params) :]
    t_capture = time.perf_counter() - t0

    placed, unit_grads = _assign(units, params, reference, scope)
    input_samples = 0 if samples is None else samples  # a module's input: directions (coordinates on failure)
    param_rows: dict[int, GradRow] = {}
    input_rows: dict[str, list[GradRow]] = {}
    # modules without parameters or submodules that pass a gradient on: their input is checked too
    bare = [
        p
        for p, u in units.items()
        if p not in placed and u.inputs and next(u.module.children(), None) is None and bool(u.weights.any())
    ]
    for path in [p for p in modules if (p in placed and p != scope) or p in bare]:
        unit, idx = units[path], placed.get(path, [])
        leaves = [params[i] for i in idx] + list(zip(_input_names(path, len(unit.inputs)), unit.inputs, strict=True))
        analytic = unit_grads[path] if path in unit_grads else unit.gradients([t for _, t in leaves])
        ev = Evaluator(
            unit.outputs,
            unit.weights,
            reseed=reseed,
            depth=unit.depth(),
            grad_fn=lambda u=unit, ls=leaves: u.gradients([t for _, t in ls]),
        )
        per_leaf: list[int | None] = [samples] * len(idx) + [input_samples] * len(unit.inputs)
        for k, row in enumerate(_check_unit(ev, path, leaves, analytic, samples=per_leaf, h=h, gen=gen)):
            if k < len(idx):
                param_rows[idx[k]] = row
            else:
                input_rows.setdefault(path, []).append(row)
        evaluations += ev.evaluations + 1

    explained = any(
        r.verdict not in _FINE for r in [*param_rows.values(), *(r for rs in input_rows.values() for r in rs)]
    )
    root_ev: Evaluator | None = None
    if placed.get(scope) or root_inputs or (params and not explained):  # two evaluations of the whole scope
        root_ev = Evaluator(root.value, root.weights, reseed=reseed, depth=depth, grad_fn=root.grad_fn)
    for i in placed.get(scope, []):
        name, t = params[i]
        param_rows[i] = _timed_slot(root_ev, Slot(name, t, root_analytic[i], i), scope, samples=samples, h=h, gen=gen)
    scope_input_rows = [
        _timed_slot(
            root_ev,
            Slot(name, t, root_analytic[len(params) + k], len(params) + k),
            scope,
            samples=samples if layer is None else input_samples,
            h=h,
            gen=gen,
        )
        for k, (name, t) in enumerate(root_inputs)
    ]

    # The end-to-end check looks for bugs no module's own check can see; once a module's check has
    # failed, the model is known to be wrong and the whole-scope evaluations are spared.
    t_group = time.perf_counter()
    end_rows: list[GradRow] = []
    if root_ev is not None and params and not explained:
        n_all = sum(p.numel() for _, p in params)
        group = GroupSlot("end-to-end", torch.empty(0), root_analytic[-1], len(root_analytic) - 1, members=params)
        label = "a direction over every parameter" if layer is None else f"a direction over all of {layer}"
        checks = check_group(root_ev, group, directions=2, h=_group_step(h, n_all), gen=gen, label=label)
        end_rows.append(
            make_row(
                group.name,
                "data",
                (n_all,),
                checks,
                group.analytic,
                seconds=time.perf_counter() - t_group,
                module=scope,
            )
        )
        if end_rows[0].verdict not in _FINE:
            glue_rows, n_glue = _modules_as_wholes(units, modules, scope, reseed, h=h, gen=gen)
            end_rows += glue_rows
            evaluations += n_glue
    t_group = time.perf_counter() - t_group

    rows = [param_rows[i] for i, (name, _) in enumerate(params) if _owner(name) == scope]
    for path in modules:  # module order: a module's parameters, then its input
        rows += [param_rows[i] for i, (name, _) in enumerate(params) if _owner(name) == path and path != scope]
        rows += input_rows.get(path, [])
    rows += scope_input_rows + end_rows
    evaluations += root_ev.evaluations if root_ev is not None else 0
    meta = {
        "method": "in-place",
        "end_to_end": "checked" if end_rows else "skipped: a module's own check already failed",
        "modules_checked": len(input_rows) + len([p for p in placed if p != scope and p not in input_rows]),
        "tensors_in_whole_scope": len(placed.get(scope, [])),
        "seconds_capture": round(t_capture, 4),
        "seconds_end_to_end": round(t_group, 4),
    }
    return InPlace(rows, evaluations, reference, meta)


def _modules_as_wholes(
    units: dict[str, Unit],
    modules: dict[str, nn.Module],
    scope: str,
    reseed: Reseed,
    *,
    h: float,
    gen: torch.Generator,
) -> tuple[list[GradRow], int]:
    """After an end-to-end disagreement no module explains: each module holding others, checked as a whole.

    Returns the rows of the deepest ones that disagree (none of their submodules does): the code
    between their submodules, in their own forward, is where the bug is.
    """
    failing: list[GradRow] = []
    evaluations = 0
    for path, mod in modules.items():
        unit = units.get(path)
        if path == scope or unit is None or next(mod.children(), None) is None:
            continue
        members = [(f"{path}.{n}", p) for n, p in mod.named_parameters()]
        members += list(zip(_input_names(path, len(unit.inputs)), unit.inputs, strict=True))
        if not members:
            continue
        flat = torch.cat(unit.gradients([t for _, t in members]))
        ev = Evaluator(unit.outputs, unit.weights, reseed=reseed, depth=unit.depth())
        group = GroupSlot(f"{path}:module", torch.empty(0), flat, 0, members=members)
        start = time.perf_counter()
        checks = check_group(
            ev, group, directions=1, h=_group_step(h, flat.numel()), gen=gen, label=f"a direction over all of {path}"
        )
        row = make_row(
            group.name, "data", (flat.numel(),), checks, flat, seconds=time.perf_counter() - start, module=path
        )
        evaluations += ev.evaluations + 1
        if row.verdict not in _FINE:
            failing.append(row)
    deepest = [r for r in failing if not any(o.module.startswith(r.module + ".") for o in failing)]
    return deepest, evaluations
