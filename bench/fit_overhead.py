"""Benchmark: babysit.fit(monitor=False) against a hand-written PyTorch loop doing the same work.

Same model init, data, update rule (Nesterov momentum), L2 term, seed, batches, and the same per-epoch
numbers (train loss and running accuracy, validation loss and accuracy). Runs are alternated
(hand, fit, hand, fit, ...) so drift in machine speed hits both; the median of the per-pair ratios is
printed. Budgets: ratio <= 1.02 with monitor=False; <= 1.05 with a run folder (fit(run_dir=...) with its
defaults: the run log and a checkpoint, fsynced, written on a background thread, at epoch ends within a 1 %
time budget and at the end; a fresh folder each run), less the report page drawn once the run has ended
(options={"report": False}: about a second of drawing, not a cost of training).

    .venv/bin/python bench/fit_overhead.py            # digits MLP and a small CNN on the CPU
    .venv/bin/python bench/fit_overhead.py --device cuda
    .venv/bin/python bench/fit_overhead.py --models mlp --hidden 256 256 --threads 1   # a wider MLP, one thread
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import babysit
from babysit import data, models


def hand_loop(model, bundle, *, epochs, batch_size, lr, reg, seed, device):
    """What a careful practitioner writes by hand: no per-step sync, metrics read once per epoch."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model.to(device)
    X, y = bundle.X_train.to(device), bundle.y_train.to(device)
    Xv, yv = bundle.X_val.to(device), bundle.y_val.to(device)
    weights = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    records = []
    for _ in range(epochs):
        model.train()
        losses, regs, correct = [], [], []
        order = torch.randperm(len(X), generator=gen).to(device)
        for start in range(0, len(X), batch_size):
            idx = order[start : start + batch_size]
            xb, yb = X[idx], y[idx]
            scores = model(xb)
            loss = F.cross_entropy(scores, yb)
            reg_loss = 0.5 * reg * sum(w.pow(2).sum() for w in weights)
            opt.zero_grad(set_to_none=True)
            (loss + reg_loss).backward()
            opt.step()
            losses.append(loss.detach())
            regs.append(reg_loss.detach())
            correct.append((scores.detach().argmax(1) == yb).sum())
        model.eval()
        with torch.no_grad():
            sv = model(Xv)
            val_loss, val_acc = F.cross_entropy(sv, yv).item(), (sv.argmax(1) == yv).float().mean().item()
        records.append(
            (
                torch.stack(losses).mean().item() + torch.stack(regs).mean().item(),
                torch.stack(correct).sum().item() / len(X),
                val_loss,
                val_acc,
            )
        )
    return records


def run_fit(model, bundle, *, epochs, batch_size, lr, reg, seed, device, monitor, run_dir=None, options=None):
    return babysit.fit(
        model,
        bundle,
        optimizer="nesterov",
        lr=lr,
        reg=reg,
        epochs=epochs,
        batch_size=batch_size,
        monitor=monitor,
        device=device,
        seed=seed,
        run_dir=run_dir,
        options=options,
    )


def run_fit_with_folder(model, bundle, *, run_dir, **settings):
    return run_fit(model, bundle, monitor=False, run_dir=run_dir, options={"report": False}, **settings)


def measure(kind: str, *, repeats: int, epochs: int, device: str, hidden: list[int]) -> dict[str, float]:
    bundle = data.load("digits", seed=0)
    settings = dict(epochs=epochs, batch_size=64, lr=0.05, reg=1e-4, seed=0, device=device)
    build = dict(
        input_shape=bundle.input_shape,
        num_classes=bundle.num_classes,
        seed=0,
        **({"hidden": hidden} if kind == "mlp" else {}),
    )

    def timed(fn, **kw):
        model = models.build(kind, **build)
        with tempfile.TemporaryDirectory() as folder:  # made and removed outside the timed part
            if fn is run_fit_with_folder:
                kw["run_dir"] = Path(folder) / "run"
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn(model, bundle, **settings, **kw)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - t0
        os.sync()  # the folder's removal reaches the disk here, not in the next run's first fsync
        return elapsed

    for _ in range(3):  # warm-up: allocator, thread pool, kernels, lazy imports
        timed(hand_loop)
        timed(run_fit, monitor=False)
        timed(run_fit_with_folder)
    hand, fit_off, fit_folder = [], [], []
    for _ in range(repeats):
        hand.append(timed(hand_loop))
        fit_off.append(timed(run_fit, monitor=False))
        fit_folder.append(timed(run_fit_with_folder))
    return {"hand_s": statistics.median(hand), "fit_s": statistics.median(fit_off),
            "ratio": statistics.median(f / h for f, h in zip(fit_off, hand)),
            "folder_s": statistics.median(fit_folder),
            "folder_ratio": statistics.median(f / h for f, h in zip(fit_folder, hand))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=15)  # this VM drifts +-3 % run to run
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 64], help="the MLP's hidden widths")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    name = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)"
    )
    print(
        f"fit overhead on {name}, torch {torch.__version__}, {args.repeats} alternated pairs, {args.epochs} epochs each"
    )
    print(f"{'model':<12} {'hand loop (s)':>14} {'fit monitor=False (s)':>22} {'ratio':>7} "
          f"{'+ run folder (s)':>17} {'ratio':>7}")
    for kind in args.models:
        r = measure(kind, repeats=args.repeats, epochs=args.epochs, device=args.device, hidden=args.hidden)
        label = "mlp " + "-".join(map(str, args.hidden)) if kind == "mlp" else kind
        print(f"{label:<12} {r['hand_s']:>14.3f} {r['fit_s']:>22.3f} {r['ratio']:>7.3f} {r['folder_s']:>17.3f} "
              f"{r['folder_ratio']:>7.3f}")


if __name__ == "__main__":
    main()
