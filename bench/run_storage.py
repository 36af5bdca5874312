"""Benchmark: a long monitored run's folder stays small and cheap to save, however long the run.

A tiny model (2 -> 16 -> 3 MLP on the spiral data, batch 1) trains for 1,000,000 steps (1,000 epochs of 1,000
steps) with the monitor on and a run folder, saving after every epoch. Printed, against the budgets:

- the time of the last commit (run log + checkpoint) against the first: <= 2x (saving appends what is new;
  rewriting one history.json grew with the square of the run's length);
- memory growth of the process from the first epoch to the last: <= 200 MB;
- the run folder's size: <= 200 MB;
- opening its History again (History.load): <= 2 s.

    .venv/bin/python bench/run_storage.py                  # 1,000,000 steps (several minutes)
    .venv/bin/python bench/run_storage.py --steps 100000   # a quicker look
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import babysit
from babysit import data, models
from babysit.history import History
from babysit.train import run_folder


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class CommitTimer(babysit.Callback):
    """Times every commit of the run folder (run log, then checkpoint: the work of one save, done on the
    folder's writer thread) and the process's memory at every epoch's end."""

    order = 99

    def __init__(self) -> None:
        self.times: list[float] = []
        self.rss: list[float] = []

    def on_fit_start(self, run) -> None:
        real = run_folder._commit

        def timed(*args, **kwargs):
            started = time.perf_counter()
            out = real(*args, **kwargs)
            self.times.append(time.perf_counter() - started)
            return out

        run_folder._commit = timed  # the saves look it up when they run

    def on_epoch_end(self, run, record) -> None:
        self.rss.append(rss_mb())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--steps-per-epoch", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    spiral = data.load("spiral", seed=0)
    n = args.steps_per_epoch
    X, y = torch.as_tensor(spiral.X_train[:n]), torch.as_tensor(spiral.y_train[:n])
    reps = -(-n // len(X))
    X, y = X.repeat(reps, 1)[:n], y.repeat(reps)[:n]
    epochs = args.steps // n
    model = models.build("mlp", input_shape=spiral.input_shape, num_classes=spiral.num_classes, hidden=[16], seed=0)
    timer = CommitTimer()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "long"
        started = time.perf_counter()
        h = babysit.fit(model, (X, y), (torch.as_tensor(spiral.X_val), torch.as_tensor(spiral.y_val)),
                        optimizer="sgd", lr=0.01, epochs=epochs, batch_size=1, run_dir=folder, callbacks=[timer],
                        # a save at every epoch's end (not within the 1 % time budget), and no report page
                        options={"report": False, "checkpoint_every_epochs": 1})
        train_s = time.perf_counter() - started
        # the run log's commit is what grows with the run; the checkpoint costs the same every epoch
        first, last = statistics.median(timer.times[:5]), statistics.median(timer.times[-5:])
        size_mb = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20
        t0 = time.perf_counter()
        loaded = History.load(folder)
        load_s = time.perf_counter() - t0
    growth = timer.rss[-1] - timer.rss[0]
    print(f"run storage: {h.num_steps:,} steps ({epochs} epochs of {n}), monitor every "
          f"{h.sections['monitor']['every']}, trained in {train_s:.0f} s, torch {torch.__version__}")
    print(f"{'measure':<34} {'value':>12} {'budget':>10}")
    print(f"{'commit, last / first (median of 5)':<34} {last / first:>11.2f}x {'<= 2x':>10}")
    print(f"{'  first, last commit (ms)':<34} {1e3 * first:>6.1f} {1e3 * last:>5.1f} {'':>10}")
    print(f"{'memory growth (MB)':<34} {growth:>12.1f} {'<= 200':>10}")
    print(f"{'run folder (MB)':<34} {size_mb:>12.1f} {'<= 200':>10}")
    print(f"{'History.load (s)':<34} {load_s:>12.2f} {'<= 2':>10}")
    print(f"kept step points {len(loaded.steps['step'])} of {loaded.num_steps:,} steps; "
          f"epochs {len(loaded.epochs)}; series points {sum(len(s['step']) for s in loaded.series.values()):,}")


if __name__ == "__main__":
    main()
