"""Benchmark: the gradient zoo through babysit.gradcheck.check_function and torch.autograd.gradcheck.

The zoo (``babysit.testing.gradzoo``) holds custom autograd.Functions with planted bugs and correct
ones that sit on kinks (relu at exact zeros, max-pool ties, hinge at margin 0, abs, clamp) or use
dropout.  Each tool judges each function; a flagged buggy function is a detection, a flagged
correct one a false alarm.  torch runs in exact mode (every coordinate, atol=1e-5, rtol=1e-3) and in
fast mode, with its defaults, on the same float64 inputs.

    .venv/bin/python bench/gradcheck_zoo_vs_torch.py
    .venv/bin/python bench/gradcheck_zoo_vs_torch.py --seeds 5     # babysit over 5 seeds
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from babysit.gradcheck import check_function
from babysit.testing import gradzoo


def torch_flags(case: gradzoo.ZooCase, fast: bool) -> bool:
    """Whether torch.autograd.gradcheck flags the function (False = it passes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return not torch.autograd.gradcheck(case.fn, case.inputs(), fast_mode=fast, raise_exception=False)
        except Exception:  # a crash counts as a flag: the user sees an error either way
            return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="babysit seeds per function (flag if any flags)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # torch's gradcheck crawls with 2 threads on a busy 2-core machine
    tools = ("babysit", "torch exact", "torch fast")
    counts = {t: {"detected": 0, "false_alarms": 0, "seconds": 0.0} for t in tools}
    cases = gradzoo.cases()
    width = max(len(c.category) + (0 if c.buggy else 9) for c in cases)
    print(f"{'function':<28} {'planted':<{width}} {'babysit':<11} {'torch exact':<12} {'torch fast':<11}")
    for case in cases:
        marks = []
        for tool in tools:
            t = time.perf_counter()
            if tool == "babysit":
                reports = [check_function(case.fn, *case.inputs(), seed=s) for s in range(args.seeds)]
                flagged = any(not r.ok for r in reports)
                label = next((r.verdict for r in reports if not r.ok), reports[0].verdict)
            else:
                flagged = torch_flags(case, fast=tool == "torch fast")
                label = "flagged" if flagged else "pass"
            counts[tool]["seconds"] += time.perf_counter() - t
            if flagged:
                counts[tool]["detected" if case.buggy else "false_alarms"] += 1
            right = flagged == case.buggy
            marks.append(f"{label}{'' if right else ' (!)'}")
        kind = case.category if case.buggy else f"correct, {case.category}"
        print(f"{case.name:<28} {kind:<{width}} {marks[0]:<11} {marks[1]:<12} {marks[2]:<11}")
    n_bug = sum(c.buggy for c in cases)
    n_ok = len(cases) - n_bug
    print(f"\n{'tool':<12} {'bugs detected':>14} {'false alarms':>13} {'seconds':>8}   ((!) = wrong call)")
    for tool in tools:
        c = counts[tool]
        print(f"{tool:<12} {c['detected']:>9d} / {n_bug:<2d} {c['false_alarms']:>8d} / {n_ok:<2d} {c['seconds']:>8.2f}")


if __name__ == "__main__":
    main()
