"""Benchmark: babysit doctor on its zoo of sick, code-level and healthy configs, over several seeds.

A sick entry counts as repaired when the doctor's config reaches, trained for the config's full epochs, a
best validation accuracy within 2 points of its healthy twin's (trained the same way). A code-level entry
counts when its fault is named with ``fix`` None and no config change is kept; a healthy entry when its config
comes back unchanged. Prints one line per entry and seed (outcome, accuracies, wall time) and the summary.

    .venv/bin/python bench/doctor.py                      # the whole zoo, seeds 0 1 2 (long on 2 cores)
    .venv/bin/python bench/doctor.py --seeds 0 --only digits_lr_far_too_high
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "doctor"))

from doctor_zoo import ZOO, run_entry, write_tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="*", default=None, help="entry names (default: the whole zoo)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--jsonl", type=Path, default=None, help="also append every row to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # tiny models: one thread each; two fight on a busy 2-core machine
    entries = [e for e in ZOO if args.only is None or e.name in args.only]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        csv_dir = write_tables(Path(tmp) / "csv")
        for entry in entries:
            for seed in args.seeds:
                row = run_entry(entry, seed, csv_dir, Path(tmp) / "runs")
                rows.append(row)
                print(_line(row), flush=True)
                if args.jsonl is not None:
                    with args.jsonl.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")
    _summary(rows)


def _line(row: dict[str, Any]) -> str:
    accs = ""
    if row["kind"] == "config":
        accs = f" repaired {_pct(row['repaired_acc'])} vs healthy {_pct(row['healthy_acc'])}"
    mark = "ok  " if row["ok"] else "FAIL"
    return (f"{mark} {row['entry']:<34} seed {row['seed']} {row['kind']:<7} {row['status']:<17} "
            f"{row['seconds']:6.1f} s{accs} {row['changes'] or ''}")


def _pct(x: float | None) -> str:
    return "  –  " if x is None else f"{100 * x:5.1f}%"


def _summary(rows: list[dict[str, Any]]) -> None:
    print("\nsummary")
    for kind, what in (("config", "repaired"), ("code", "named, nothing repaired"), ("healthy", "unchanged")):
        picked = [r for r in rows if r["kind"] == kind]
        if picked:
            ok = sum(r["ok"] for r in picked)
            wall = sum(r["seconds"] for r in picked) / len(picked)
            print(f"  {kind:<8} {ok}/{len(picked)} {what} ({100 * ok / len(picked):.0f}%), doctor wall time "
                  f"{wall:.0f} s on average, {max(r['seconds'] for r in picked):.0f} s at most")


if __name__ == "__main__":
    main()
