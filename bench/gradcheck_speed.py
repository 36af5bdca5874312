"""Benchmark: babysit.gradcheck.check_module against torch.autograd.gradcheck on the same function.

Part 1, transformers (``--skip-transformers`` leaves it out): character-level pre-norm transformers of
about 0.4M, 3M and 25M parameters (``babysit.testing.gradzoo_transformer``: 2/4/8 blocks, d =
128/256/512, context 64, 3 sequences; ``--big`` adds GPT-2 small's shape, 124M with its tied 50,257-token
embedding).  Each is checked with check_module's default (in place from tensors x parameters = 1e7), in place,
with the landed whole-model method (run in full under ``--landed-budget`` seconds, otherwise
estimated as its evaluations x one measured forward pass) and with torch.autograd.gradcheck (fast
mode run under the same budget, otherwise estimated the same way: 2 evaluations per tensor; exact
mode always estimated: 2 per parameter).  Then one layer checked where it sits (``only=``) in models
of 2, 4 and 8 blocks of d = 512, and a bug planted in one block of the 25M model (``--plants``: every
planted bug of the zoo, and the zoo's correct kernels everywhere).

Part 2, MLPs (``--skip-mlp`` leaves it out): the landed comparison below.

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
crawls on a busy 2-core machine with 2 intra-op threads).  Budget: 1M parameters <= 5 s.

    .venv/bin/python bench/gradcheck_speed.py
    .venv/bin/python bench/gradcheck_speed.py --repeats 5 --exact-budget 60
    .venv/bin/python bench/gradcheck_speed.py --skip-mlp --plants --big

Measured on 2 shared CPU cores (AMD EPYC VM, load average 3-6 from other jobs, torch 2.13.0+cpu), with
``.venv/bin/python bench/gradcheck_speed.py --skip-mlp`` run six times (each row a median of 3; below
the median of the six runs, then their range):

    transformer 0.4M  in place 0.49 s (0.42-0.80)   whole model (landed) 4.7 s (4.1-8.1)      torch fast 0.95 s
    transformer 3M    in place 2.35 s (1.90-4.48)   whole model (landed) 53.3 s (37.6-81.9)   torch fast 7.4 s
    transformer 25M   in place 19.9 s (14.7-29.0)   whole model est. 513 s (404-904)
                      torch fast est. 74 s, torch exact est. 197 days
    one block of d=512 (3.15M parameters) where it sits, in models of 2 / 4 / 8 blocks: 2.95 / 3.37 / 3.97 s,
    205 evaluations each; the recording pass of the whole model is 0.33-0.72 / 0.55-0.92 / 0.93-2.12 s of it
    a bug planted in block 3 of the 25M model: 12 of 12 caught and named in their layer, 15.8-21.0 s
    each (``--skip-mlp --skip-speed --plants``); the zoo's correct kernels everywhere: no false alarm, 21.1 s

``--skip-mlp --sizes 124M --repeats 1`` (GPT-2 small's shape, tied embedding): 129 s in place, whole
model est. 3,345 s, torch fast est. 480 s.
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
from babysit.testing import gradzoo_transformer as zt

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


def _forward_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int = 3) -> float:
    """One evaluation of the loss, as the checks run it: float64 copy, no grad, median of ``repeats``."""
    m64 = copy.deepcopy(model).double()
    with torch.no_grad():
        zt.loss(m64(x), y)
        t, _ = timed(lambda: zt.loss(m64(x), y), repeats)
    return t


def _torch_transformer(model: nn.Module, x: torch.Tensor, y: torch.Tensor, fast: bool) -> bool:
    """torch.autograd.gradcheck of the transformer's loss w.r.t. every parameter, float64."""
    m64 = copy.deepcopy(model).double()
    names = [n for n, _ in m64.named_parameters()]
    fixed = {n: p.detach() for n, p in m64.named_parameters()}
    inputs = tuple(fixed[n].clone().requires_grad_(True) for n in names)

    def f(*tensors: torch.Tensor) -> torch.Tensor:
        return zt.loss(functional_call(m64, {**fixed, **dict(zip(names, tensors, strict=True))}, (x,)), y)

    return torch.autograd.gradcheck(f, inputs, fast_mode=fast, raise_exception=False)


def _seconds(label: float, estimated: bool) -> str:
    text = f"{label:,.1f}s" if label < 1e5 else f"{label / 86400:,.0f}d"
    return text + (" est." if estimated else "")


def transformers(args: argparse.Namespace) -> None:
    """Part 1: transformers of 0.4M..25M (124M with --big), one layer where it sits, planted bugs."""
    if not args.skip_speed:
        speed_rows(args)
        layer_rows(args)
    planted(args)


def speed_rows(args: argparse.Namespace) -> None:
    """One row per transformer size: the default, in place, the landed method and torch's gradcheck."""
    sizes = args.sizes.split(",") + (["124M"] if args.big else [])
    print("transformers: seconds, median of --repeats; est. = evaluations x one measured forward pass")
    head = (
        f"{'size':>5} {'params':>12} {'tensors':>7} {'forward':>8} {'default':>18} {'in place':>9} {'evals':>6} "
        f"{'verdict':>8} {'whole model (landed)':>21} {'ratio':>6} {'torch fast':>12} {'torch exact':>12}"
    )
    print(head)
    for size in sizes:
        model = zt.transformer(size)
        x, y = zt.batch(model)
        n = sum(p.numel() for p in model.parameters())
        n_tensors = len(list(model.parameters()))
        t_fwd = _forward_seconds(model, x, y)
        t_default, report = timed(lambda m=model, x=x, y=y: check_module(m, zt.loss, x, y), args.repeats)
        method = report.meta["method"]
        if method == "in-place":
            t_in, r_in = t_default, report
        else:
            t_in, r_in = timed(
                lambda m=model, x=x, y=y: check_module(m, zt.loss, x, y, method="in-place"), args.repeats
            )
        # the landed plan: 2 directions + 5 coordinates per tensor, 2 evaluations each; 3 to start
        landed_est = (14 * n_tensors + 3) * t_fwd
        if landed_est <= args.landed_budget:
            landed, _ = timed(lambda m=model, x=x, y=y: check_module(m, zt.loss, x, y, method="whole-model"), 1)
            landed_txt = f"{_seconds(landed, False)} (est. {landed_est:,.0f}s)"
        else:
            landed, landed_txt = landed_est, _seconds(landed_est, True)
        fast_est = (2 * n_tensors + 2) * t_fwd  # fast mode: one directional difference per input tensor
        if fast_est <= args.landed_budget:
            fast, _ = timed(lambda m=model, x=x, y=y: _torch_transformer(m, x, y, fast=True), 1)
            fast_txt = _seconds(fast, False)
        else:
            fast_txt = _seconds(fast_est, True)
        exact_txt = _seconds(2 * n * t_fwd, True)
        print(
            f"{size:>5} {n:>12,d} {n_tensors:>7d} {t_fwd * 1e3:>6.0f}ms {f'{t_default:.2f}s {method}':>18} "
            f"{t_in:>8.2f}s {r_in.meta['evaluations']:>6d} {r_in.verdict:>8} {landed_txt:>21} "
            f"{landed / t_in:>5.0f}x {fast_txt:>12} {exact_txt:>12}"
        )


def layer_rows(args: argparse.Namespace) -> None:
    """One block of d = 512 checked where it sits, in models of 2, 4 and 8 blocks: its cost stays the layer's."""
    print("\none layer where it sits: only=model.blocks[1], d=512; the recording pass runs the whole model once")
    print(
        f"{'blocks':>6} {'params':>12} {'layer params':>12} {'seconds':>8} {'recording':>9} {'evals':>6} {'verdict':>8}"
    )
    for layers in (2, 4, 8):
        model = zt.transformer("25M", layers=layers)
        x, y = zt.batch(model)
        t, report = timed(lambda m=model, x=x, y=y: check_module(m, zt.loss, x, y, only=m.blocks[1]), args.repeats)
        n = sum(p.numel() for p in model.parameters())
        print(
            f"{layers:>6d} {n:>12,d} {report.meta['parameters']:>12,d} {t:>7.2f}s "
            f"{report.meta['seconds_capture']:>8.2f}s {report.meta['evaluations']:>6d} {report.verdict:>8}"
        )


def planted(args: argparse.Namespace) -> None:
    """Bugs planted in block 3 of the 25M model: caught, and named in the planted layer?"""
    plants = list(zt.PLANTS) if args.plants else [zt.PLANTS[0]]
    print("\nplanted bugs in the 25M model (block 3; torch ops elsewhere): caught and named where they are?")
    cases: list[tuple[str, str, str | None]] = [(p.format(k=3), kernel, bug) for p, kernel, bug in plants]
    if args.plants:
        cases.append(("every layer", "all kernels", None))
    for path, kernel, bug in cases:
        if bug is None:
            model = zt.transformer("25M", kernels=True)
        else:
            model = zt.plant(zt.transformer("25M"), path, kernel, bug)
        x, y = zt.batch(model)
        t, report = timed(lambda m=model, x=x, y=y: check_module(m, zt.loss, x, y), 1)
        bad = [r for r in report.rows if r.verdict not in ("ideal", "ok")]
        if bug is None:
            right = report.ok
            where = "no false alarm" if right else f"FALSE ALARM: {[r.name for r in bad][:4]}"
        else:
            named = [r for r in bad if r.module == path]
            right = bool(named) and all(r.module == path or r.name == "end-to-end" for r in bad)
            where = report.failures[0].describe()[:110] if report.failures else "MISSED"
        label = f"{kernel}/{bug}" if bug else kernel
        print(f"  {path:<22} {label:<28} {report.verdict:<10} {t:6.1f}s {'ok ' if right else '(!)'} {where}")


class _DetachedResidual(nn.Module):
    """x + mlp(x) with the branch's gradient cut by a stray .detach(): autograd and jvp agree, and are wrong."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.tanh(self.fc(x)).detach() * self.fc.weight.sum()


def forward_mode_ad() -> None:
    """Could torch.func.jvp be the exact second opinion on a directional derivative?  Measured on two bugs."""
    print("\nforward-mode AD (torch.func.jvp) as a second opinion on grad . d:")
    for kernels, what in ((False, "torch's own fused attention"), (True, "custom Functions (hand-written kernels)")):
        _try_jvp(zt.transformer("0.4M", d=32, layers=1, heads=2, context=8, kernels=kernels), what)
    _detach_bug()


def _try_jvp(model: nn.Module, what: str) -> None:
    x, y = zt.batch(model)
    m64 = copy.deepcopy(model).double()
    params = {n: p.detach() for n, p in m64.named_parameters()}
    tangent = {n: torch.randn_like(p) for n, p in params.items()}
    try:
        torch.func.jvp(lambda p: zt.loss(functional_call(m64, p, (x,)), y), (params,), (tangent,))
        print(f"  a transformer with {what}: jvp runs")
    except (RuntimeError, NotImplementedError) as e:
        print(f"  a transformer with {what}: jvp fails ({str(e).splitlines()[0][:100]})")


def _detach_bug() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(_DetachedResidual(6), nn.Linear(6, 3)).double()
    xs, ys = torch.randn(4, 6, dtype=torch.float64), torch.arange(4) % 3
    ps = {n: p.detach() for n, p in net.named_parameters()}
    ds = {n: torch.randn_like(p) for n, p in ps.items()}

    def f(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(functional_call(net, p, (xs,)), ys)

    _, jvp = torch.func.jvp(f, (ps,), (ds,))
    grads = torch.func.grad(f)(ps)
    backward = sum(float((grads[n] * ds[n]).sum()) for n in ps)
    h = 1e-6
    shifted = [f({n: ps[n] + s * h * ds[n] for n in ps}) for s in (1, -1)]
    numerical = float(shifted[0] - shifted[1]) / (2 * h)
    print(
        f"  a stray .detach(): backward {backward:.6f}, jvp {float(jvp):.6f}, centered difference {numerical:.6f} "
        "(jvp follows the same graph as the backward)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--exact-budget", type=float, default=30.0, help="seconds an exact run may take in full")
    parser.add_argument("--landed-budget", type=float, default=60.0, help="seconds a whole-model run may take in full")
    parser.add_argument("--sizes", default="0.4M,3M,25M", help="transformer sizes, comma-separated")
    parser.add_argument("--big", action="store_true", help="also GPT-2 small's shape (124M parameters)")
    parser.add_argument("--plants", action="store_true", help="every planted bug of the zoo in the 25M model")
    parser.add_argument("--skip-mlp", action="store_true")
    parser.add_argument("--skip-transformers", action="store_true")
    parser.add_argument("--skip-speed", action="store_true", help="transformers: only the planted bugs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.skip_transformers:
        transformers(args)
        forward_mode_ad()
    if not args.skip_mlp:
        mlps(args)


def mlps(args: argparse.Namespace) -> None:
    """The landed MLP comparison (check_module's default: the whole-model method, tensors x parameters < 1e7)."""
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
