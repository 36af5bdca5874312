"""Benchmark: babysit.gradcheck.check_module against torch.autograd.gradcheck on the same function.

MLPs of ~10k, ~100k and ~1M parameters (784 inputs, ReLU, 10 classes), cross-entropy on the same 3
examples in float64.  torch.autograd.gradcheck gets the same function of all parameters:

* fast mode: run in full on every size;
* exact mode (2 evaluations per parameter): run in full where it takes under ~--exact-budget seconds,
  otherwise timed on a subset of the parameters (the last layers' tensors, as extra inputs of the same
  full-size model) and *estimated* as (measured seconds per coordinate) x (number of parameters).
  Estimated numbers are marked "est.".

Then the detection side: one entry of the 1M model's middle weight matrix gets a doubled gradient;
does each tool see it, and does it say where?

Last, the design choice behind the evaluations: 20 coordinate perturbations of the first weight matrix
evaluated one by one (in place on a float64 copy, as check_module does) against one
``torch.func.vmap(functional_call)`` over 20 perturbed copies.

Both tools run single-threaded (check_module always does: its evaluations are tiny; torch's gradcheck
crawls on a busy 2-core machine with 2 intra-op threads).  Budget (issue 3): 1M parameters <= 5 s.

    .venv/bin/python bench/gradcheck_speed.py
    .venv/bin/python bench/gradcheck_speed.py --repeats 5 --exact-budget 60
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from babysit.gradcheck import check_module

SIZES = {"10k": (784, 12, 10), "100k": (784, 120, 40, 10), "1M": (784, 1000, 200, 10)}


class _DoubledEntry(torch.autograd.Function):
    """A linear layer whose weight gradient is doubled at one entry (``index``)."""

    index: tuple[int, int] = (3, 7)

    @staticmethod
    def forward(ctx, x, w, b):  # type: ignore[override]
        ctx.save_for_backward(x, w)
        return x @ w.t() + b

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        x, w = ctx.saved_tensors
        gw = g.t() @ x
        gw[_DoubledEntry.index] *= 2.0
        return g @ w, gw, g.sum(0)


class _BuggyLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _DoubledEntry.apply(x, self.weight, self.bias)


def mlp(sizes: tuple[int, ...], buggy_layer: int | None = None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers += [_BuggyLinear(a, b) if i == buggy_layer else nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def torch_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str]):
    """The loss as a function of the named parameters (the others fixed), for torch's gradcheck."""
    fixed = {n: p.detach() for n, p in model.named_parameters()}

    def f(*tensors: torch.Tensor) -> torch.Tensor:
        params = {**fixed, **dict(zip(names, tensors, strict=True))}
        return F.cross_entropy(functional_call(model, params, (x,)), y)

    return f


def torch_gradcheck(m64: nn.Module, x, y, names: list[str], fast: bool) -> bool:
    """torch.autograd.gradcheck of the loss w.r.t. the named parameters of a float64 model."""
    inputs = tuple(dict(m64.named_parameters())[n].detach().clone().requires_grad_(True) for n in names)
    f = torch_fn(m64, x.double(), y, names)
    return torch.autograd.gradcheck(f, inputs, fast_mode=fast, raise_exception=False)


def exact_seconds(model: nn.Module, x, y, n_params: int, budget: float) -> tuple[float, bool]:
    """Exact mode on all parameters if affordable, else seconds/coordinate on a subset x n_params."""
    names = [n for n, _ in model.named_parameters()]
    if n_params * 2.5e-4 < budget:  # a rough guess of the full run's cost decides
        t, _ = timed(lambda: torch_gradcheck(model, x, y, names, fast=False), 1)
        return t, False
    sizes = dict((n, p.numel()) for n, p in model.named_parameters())
    subset = names[-2:]  # the last layer: weight and bias (2010 coordinates)
    t, _ = timed(lambda: torch_gradcheck(model, x, y, subset, fast=False), 1)
    return t / sum(sizes[n] for n in subset) * n_params, True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--exact-budget", type=float, default=30.0, help="seconds an exact run may take in full")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x_all, y_all = torch.randn(64, 784), torch.randint(0, 10, (64,))
    x3, y3 = x_all[:3], y_all[:3]  # check_module uses the first 3 examples by default; so does torch here
    check_module(mlp(SIZES["10k"]), F.cross_entropy, x_all, y_all)  # warm-up (imports, allocator)

    print("speed: seconds (median of repeats); ratio = torch / babysit")
    print(
        f"{'model':>6} {'params':>9} {'babysit':>9} {'evals':>6} {'verdict':>8} {'torch fast':>11} "
        f"{'ratio':>7} {'torch exact':>13} {'ratio':>9}"
    )
    exact_1m = float("nan")
    for label, sizes in SIZES.items():
        torch.manual_seed(0)
        model = mlp(sizes)
        n = sum(p.numel() for p in model.parameters())
        ours, report = timed(lambda m=model: check_module(m, F.cross_entropy, x_all, y_all), args.repeats)
        m64 = copy.deepcopy(model).double()
        names = [k for k, _ in m64.named_parameters()]
        fast, _ = timed(lambda m=m64, k=names: torch_gradcheck(m, x3, y3, k, fast=True), args.repeats)
        exact, estimated = exact_seconds(m64, x3, y3, n, args.exact_budget)
        exact_1m = exact
        est = " est." if estimated else ""
        print(
            f"{label:>6} {n:>9,d} {ours:>8.3f}s {report.meta['evaluations']:>6d} {report.verdict:>8} "
            f"{fast:>10.3f}s {fast / ours:>6.1f}x {exact:>8.1f}s{est:<4} {exact / ours:>8.0f}x"
        )

    torch.manual_seed(0)
    buggy = mlp(SIZES["1M"], buggy_layer=1)
    # plant the bug where the true gradient is not 0 (a dead ReLU column would hide any factor)
    probe = mlp(SIZES["1M"])
    probe.load_state_dict(buggy.state_dict())
    F.cross_entropy(probe(x3), y3).backward()
    g = probe[2].weight.grad.abs()
    flat = int((g - g[g > 0].median()).abs().argmin())  # a typical non-zero entry
    _DoubledEntry.index = (flat // g.shape[1], flat % g.shape[1])
    print(
        f"\ndetection: the 1M MLP with 2.weight[{_DoubledEntry.index[0]}, {_DoubledEntry.index[1]}]'s "
        "gradient doubled (one entry of 200,000, a typical magnitude)"
    )
    t_ours, report = timed(lambda: check_module(buggy, F.cross_entropy, x_all, y_all), 1)
    where = report.failures[0].describe() if report.failures else "-"
    print(f"  babysit     verdict={report.verdict:<10} {t_ours:6.2f}s  {where}")
    b64 = copy.deepcopy(buggy).double()
    names = [k for k, _ in b64.named_parameters()]
    t_fast, ok = timed(lambda: torch_gradcheck(b64, x3, y3, names, fast=True), 1)
    print(f"  torch fast  {'detected' if not ok else 'MISSED':<19} {t_fast:6.2f}s  (says which input, not where)")
    print(f"  torch exact would detect it (every coordinate), est. {exact_1m:.0f}s = the 1M row above; not run")
    vmap_vs_sequential(args.repeats)


def vmap_vs_sequential(repeats: int) -> None:
    """Perturbed evaluations one by one (in place) vs one vmap over stacked perturbed copies."""
    from torch.func import vmap

    print("\nperturbed evaluations: 20 coordinates of 0.weight, in place one by one vs vmap(functional_call)")
    x, y = torch.randn(3, 784, dtype=torch.float64), torch.tensor([1, 2, 3])
    for label, sizes in SIZES.items():
        torch.manual_seed(0)
        model = mlp(sizes).double()
        params = {k: v.detach() for k, v in model.named_parameters()}
        w, k = params["0.weight"], 20
        idx = torch.randperm(w.numel())[:k]

        def one_by_one(w=w, idx=idx, model=model) -> torch.Tensor:
            out, flat = [], w.view(-1)
            with torch.no_grad():
                for i in idx:
                    saved = flat[i].clone()
                    flat[i] += 1e-5
                    out.append(F.cross_entropy(model(x), y))
                    flat[i] = saved
            return torch.stack(out)

        def batched(w=w, idx=idx, model=model, params=params, k=k) -> torch.Tensor:
            ws = w.expand(k, *w.shape).clone()
            ws.view(k, -1)[torch.arange(k), idx] += 1e-5
            with torch.no_grad():
                return vmap(lambda wp: F.cross_entropy(functional_call(model, {**params, "0.weight": wp}, (x,)), y))(ws)

        t_seq, a = timed(one_by_one, repeats)
        t_vmap, b = timed(batched, repeats)
        diff = float((a - b).abs().max())
        print(
            f"  {label:>5}: one by one {t_seq * 1e3:7.2f} ms   vmap {t_vmap * 1e3:7.2f} ms   "
            f"({t_vmap / t_seq:.1f}x; results differ by up to {diff:.1e})"
        )


if __name__ == "__main__":
    main()
