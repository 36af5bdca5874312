"""Benchmark: the Python work of fit's loop, counted exactly, against the hand loop of bench/fit_overhead.py.

Timing fit against a hand loop on a shared 2-core machine drifts by +-2 % from run to run, as much as the
overhead being looked for. Executed bytecodes do not drift: ``sys.settrace`` with opcode events counts every
one a run executes, the same on every run. This prints the count of one 20-epoch digits run of each, their
ratio, and the functions where fit executes the most beyond the hand loop (or the monitor beyond fit
without it), so a change to the hot path can be judged before it is timed.

    .venv/bin/python bench/fit_opcodes.py                 # fit(monitor=False) against the hand loop
    .venv/bin/python bench/fit_opcodes.py --monitor       # fit(monitor=True) against fit(monitor=False)
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from babysit import data, models

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_overhead import hand_loop, run_fit  # the same two loops as the timing benchmark


def count_opcodes(fn: Callable[[], Any]) -> collections.Counter[str]:
    """Bytecodes ``fn()`` executes, by function (``file:function``)."""
    counts: collections.Counter[str] = collections.Counter()

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            counts[f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}"] += 1
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        return local

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--monitor", action="store_true", help="fit with the monitor against fit without it")
    parser.add_argument("--top", type=int, default=15, help="functions to list")
    args = parser.parse_args()
    bundle = data.load("digits", seed=0)
    settings = dict(epochs=args.epochs, batch_size=64, lr=0.05, reg=1e-4, seed=0, device="cpu")
    build = dict(input_shape=bundle.input_shape, num_classes=bundle.num_classes, seed=0, hidden=[128, 64])
    runs = {
        "hand loop": lambda model: hand_loop(model, bundle, **settings),
        "fit monitor=False": lambda model: run_fit(model, bundle, monitor=False, **settings),
        "fit monitor=True": lambda model: run_fit(model, bundle, monitor=True, **settings),
    }
    base, other = ("fit monitor=False", "fit monitor=True") if args.monitor else ("hand loop", "fit monitor=False")
    for name in (base, other):  # warm-up: lazy imports and first-call paths are not what a run costs
        runs[name](models.build("mlp", **build))
    counts = {name: count_opcodes(lambda name=name: runs[name](models.build("mlp", **build))) for name in (base, other)}
    totals = {name: sum(c.values()) for name, c in counts.items()}
    print(f"Python bytecodes executed by one {args.epochs}-epoch digits MLP run (batch 64, {sys.version.split()[0]})")
    print(f"{base:<20} {totals[base]:>12,}")
    print(f"{other:<20} {totals[other]:>12,}  ratio {totals[other] / totals[base]:.3f}  "
          f"(+{totals[other] - totals[base]:,})")
    extra = counts[other].copy()
    extra.subtract(counts[base])
    print(f"\nwhere {other} executes the most beyond {base}:")
    for function, n in extra.most_common(args.top):
        print(f"{n:>10,}  {function}")


if __name__ == "__main__":
    main()
