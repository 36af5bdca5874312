r"""Benchmark: babysitting's cost. fit(monitor=True) and fit(monitor=False) against a hand-written PyTorch loop.

The hand loop is bench/fit_overhead.py's (same init, data, Nesterov momentum, L2 term, seed, batches and
per-epoch numbers). Runs are alternated (hand, fit off, fit on, hand, ...) so drift in machine speed hits
all three; the median of the per-round ratios is printed, and the ratio of the fastest runs (less
sensitive to other processes on a shared machine). Budgets: monitor=False within 1.02x
of the hand loop, monitor=True within 1.03x.

    .venv/bin/python bench/monitor_overhead.py                    # digits MLP and small CNN on the CPU, and
                                                                  # single steps of the ResNet and transformer
    .venv/bin/python bench/monitor_overhead.py --device cuda      # prints the card's name
    .venv/bin/python bench/monitor_overhead.py --every 10 25 50   # the cost of other sampling intervals
    .venv/bin/python bench/monitor_overhead.py --compile          # what torch.compile compiles, monitor off/on
    .venv/bin/python bench/monitor_overhead.py --compile --device cuda --precision bf16 \
        --models --families resnet transformer                    # the GPU rows: bf16, ResNet and transformer
    .venv/bin/python bench/monitor_overhead.py --models mlp --families --hidden 256 256 --threads 1
                                                                  # a wider MLP on one thread
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

import babysit
from babysit import data, models
from babysit.monitors import DEFAULT_EVERY

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_overhead import hand_loop  # the same hand-written loop as the fit benchmark

MLP_HIDDEN = [128, 64]  # the digits MLP's hidden widths (--hidden)


def run_fit(model, bundle, *, epochs, batch_size, lr, reg, seed, device, monitor):
    return babysit.fit(model, bundle, optimizer="nesterov", lr=lr, reg=reg, epochs=epochs, batch_size=batch_size,
                       monitor=monitor, device=device, seed=seed)


def measure(kind: str, *, repeats: int, epochs: int, device: str, everies: list[int]) -> dict[str, list[float]]:
    bundle = data.load("digits", seed=0)
    settings = dict(epochs=epochs, batch_size=64, lr=0.05, reg=1e-4, seed=0, device=device)
    build = dict(input_shape=bundle.input_shape, num_classes=bundle.num_classes, seed=0,
                 **({"hidden": MLP_HIDDEN} if kind == "mlp" else {}))
    variants = {"off": False, **{f"every={n}": {"every": n} for n in everies}}

    def timed(fn, **kw) -> float:
        model = models.build(kind, **build)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn(model, bundle, **settings, **kw)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    for _ in range(2):  # warm-up: allocator, thread pool, kernels, lazy imports
        timed(hand_loop)
        for monitor in variants.values():
            timed(run_fit, monitor=monitor)
    times: dict[str, list[float]] = {"hand": [], **{name: [] for name in variants}}
    for _ in range(repeats):
        times["hand"].append(timed(hand_loop))
        for name, monitor in variants.items():
            times[name].append(timed(run_fit, monitor=monitor))
    return times


def step_costs(kind: str, *, device: str, steps: int = 1020, every: int = DEFAULT_EVERY) -> dict[str, float]:
    """The monitor's cost from single steps, interleaved step by step (robust to a noisy machine).

    Four copies of the model train side by side on the same batches: without a monitor, with a Monitor that
    never samples (what most steps cost), with one that samples every step (what a sampled step costs), and
    with the default one (sampling every ``every`` steps, its epoch-end readout timed too). Predicted ratio:
    (``every - 1`` unsampled steps + one sampled step) over ``every`` plain steps, plus the default monitor's
    mean epoch-end readout spread over the epoch's steps. Interleaved ratio: the default copy's total time
    (steps and readouts) over the plain copy's, with steps slower than 5x their median (machine hiccups)
    capped at 5x the median in both.
    """
    import torch.nn.functional as F

    bundle, build = workload(kind)
    X, y = bundle.X_train.to(device), bundle.y_train.to(device)
    copies = {}
    for name, monitor_every in (("plain", None), ("unsampled", 10**9), ("sampled", 1), ("default", every)):
        model = models.build(kind, **build).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        monitor = None if monitor_every is None else babysit.Monitor(model, opt, every=monitor_every)
        copies[name] = (model, opt, monitor, [])
    epoch_end: list[float] = []
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(X), generator=gen).to(device)
    per_epoch = (len(X) + 63) // 64
    for step in range(steps):
        start = (step % per_epoch) * 64
        xb, yb = X[order[start : start + 64]], y[order[start : start + 64]]
        names = list(copies)
        for name in names[step % 4 :] + names[: step % 4]:  # rotate: no copy always follows the same one
            model, opt, monitor, times = copies[name]
            t0 = _now(device)
            loss = F.cross_entropy(model(xb).flatten(0, -2), yb.flatten())  # (N, T, V) scores: per token
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if monitor is not None:
                monitor.step()
            times.append(_now(device) - t0)
        if (step + 1) % per_epoch == 0:
            for name, (_, _, monitor, _) in copies.items():
                if name in ("sampled", "unsampled"):
                    monitor.flush()  # keep their buffers small; not timed
            t0 = _now(device)
            copies["default"][2].end_epoch(train_acc=None, val_acc=None)
            epoch_end.append(_now(device) - t0)
    warm = per_epoch * 2
    med = {name: statistics.median(c[3][warm:]) for name, c in copies.items()}
    end = statistics.fmean(epoch_end[2:])
    for _, _, monitor, _ in copies.values():
        if monitor is not None:
            monitor.close()
    predicted = ((every - 1) * med["unsampled"] + med["sampled"]) / (every * med["plain"]) + \
        end / (per_epoch * med["plain"])

    def capped_total(name: str) -> float:
        return sum(min(t, 5 * med[name]) for t in copies[name][3][warm:])

    interleaved = (capped_total("default") + sum(epoch_end[2:])) / capped_total("plain")
    return {"plain_ms": 1e3 * med["plain"], "unsampled_ms": 1e3 * med["unsampled"], "sampled_ms": 1e3 * med["sampled"],
            "epoch_end_ms": 1e3 * end, "predicted": predicted, "interleaved": interleaved}


def compile_counts(kind: str, *, device: str, epochs: int, precision: str) -> dict[str, dict[str, int]]:
    """Frames torch.compile compiled and graphs it made in a ``fit(compile=True)`` run of ``kind``, without the
    monitor and with it, each from a reset compiler: whatever the second adds is a recompilation the monitor
    causes (the target is none; training and evaluation mode each compile once either way)."""
    from torch._dynamo.utils import counters

    bundle, build = workload(kind)
    counts = {}
    for name, monitor in (("off", False), ("on", True)):
        torch._dynamo.reset()
        counters.clear()
        babysit.fit(models.build(kind, **build), bundle, epochs=epochs, batch_size=64, monitor=monitor, device=device,
                    seed=0, options={"compile": True, "precision": precision})
        counts[name] = {"frames": counters["frames"]["ok"], "graphs": counters["stats"]["unique_graphs"]}
    return counts


# the field-test families beyond digits: a ResNet-style CNN on 32x32 images and a character transformer LM
FAMILIES = {
    "resnet": (lambda: data.load("shapes32", seed=0), {"width": 8}),
    "transformer": (lambda: data.load("pysource", max_chars=60_000, block_size=64, seed=0),
                    {"n_layer": 2, "d_model": 64, "n_head": 4}),
}


def workload(kind: str) -> tuple[data.DataBundle, dict]:
    """The data and the build arguments of ``kind``: digits for the lecture's MLP and CNN, else its family's."""
    if kind in FAMILIES:
        load, args = FAMILIES[kind]
        bundle = load()
    else:
        bundle, args = data.load("digits", seed=0), ({"hidden": MLP_HIDDEN} if kind == "mlp" else {})
    return bundle, dict(input_shape=bundle.input_shape, num_classes=bundle.num_classes, seed=0, **args)


def _now(device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--models", nargs="*", default=["mlp", "cnn"],
                        help="whole-run rows (digits): mlp, cnn")
    parser.add_argument("--families", nargs="*", default=["resnet", "transformer"],
                        help="single-step rows only: the ResNet on shapes32, the transformer on pysource "
                             "(none: --families alone)")
    parser.add_argument("--every", nargs="+", type=int, default=[DEFAULT_EVERY],
                        help=f"sampling intervals to time (default: the default, {DEFAULT_EVERY})")
    parser.add_argument("--compile", action="store_true",
                        help="instead of timing: count what torch.compile compiles in fit, monitor off and on")
    parser.add_argument("--precision", default="fp32", help="with --compile: fp32, fp16 or bf16")
    parser.add_argument("--hidden", type=int, nargs="+", default=MLP_HIDDEN, help="the MLP's hidden widths")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args()
    MLP_HIDDEN[:] = args.hidden
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.compile:
        print_compile_counts(args)
        return
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        f"cpu ({torch.get_num_threads()} threads)"
    print(f"monitor overhead on {name}, torch {torch.__version__}, {args.repeats} alternated rounds, "
          f"{args.epochs} epochs of digits each (17 steps/epoch, batch 64), mlp hidden {MLP_HIDDEN}")
    print(f"\nsingle steps, interleaved step by step, 1,020 steps each (default monitor: every={DEFAULT_EVERY}):")
    print(f"{'model':<6} {'plain ms':>9} {'unsampled ms':>13} {'sampled ms':>11} {'epoch end ms':>13} "
          f"{'predicted ratio':>16} {'interleaved ratio':>18}")
    for kind in [*args.models, *args.families]:
        c = step_costs(kind, device=args.device)
        print(f"{kind:<6} {c['plain_ms']:>9.3f} {c['unsampled_ms']:>13.3f} {c['sampled_ms']:>11.3f} "
              f"{c['epoch_end_ms']:>13.3f} {c['predicted']:>16.3f} {c['interleaved']:>18.3f}")
    print("\nwhole runs, alternated:")
    print(f"{'model':<6} {'variant':<22} {'median s':>9} {'median ratio to hand':>21} {'to fit off':>11} "
          f"{'min-time ratio to hand':>23}")
    for kind in args.models:
        times = measure(kind, repeats=args.repeats, epochs=args.epochs, device=args.device, everies=args.every)
        for variant, values in times.items():
            label = "hand loop" if variant == "hand" else ("fit monitor=False" if variant == "off"
                                                           else f"fit monitor {variant}")
            to_hand = statistics.median(v / h for v, h in zip(values, times["hand"]))
            to_off = statistics.median(v / o for v, o in zip(values, times["off"]))
            best = min(values) / min(times["hand"])
            print(f"{kind:<6} {label:<22} {statistics.median(values):>9.3f} {to_hand:>21.3f} {to_off:>11.3f} "
                  f"{best:>23.3f}")


def print_compile_counts(args: argparse.Namespace) -> None:
    epochs = 2
    print(f"torch.compile in fit on {args.device}, {args.precision}, torch {torch.__version__}, {epochs} epochs each:")
    print(f"{'model':<12} {'frames off':>11} {'frames on':>10} {'graphs off':>11} {'graphs on':>10} "
          f"{'recompilations the monitor causes':>34}")
    for kind in [*args.models, *args.families]:
        c = compile_counts(kind, device=args.device, epochs=epochs, precision=args.precision)
        extra = c["on"]["frames"] - c["off"]["frames"]  # each compilation is one frame compiled
        print(f"{kind:<12} {c['off']['frames']:>11} {c['on']['frames']:>10} {c['off']['graphs']:>11} "
              f"{c['on']['graphs']:>10} {extra:>34}")


if __name__ == "__main__":
    main()
