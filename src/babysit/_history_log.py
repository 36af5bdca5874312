"""How a :class:`~babysit.history.History` goes into its run log and comes back (``History.save`` / ``load``).

A save appends only what changed since the last one: new epochs, new step points (or all of them after a
merge of the bounded step columns), new monitor points per series (or the whole series after the monitor
thinned it), new histogram snapshots, and the small records (meta, layers, sections, findings, status)
when they changed; then a ``commit`` record with the counts it reaches and the step bucket being filled.
Replaying the records in order rebuilds exactly the History that was saved.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babysit._runlog import RunLog
from babysit._steps import COLUMNS

if TYPE_CHECKING:
    from babysit.history import History

SMALL = ("meta", "layers", "sections", "findings")


@dataclass
class Cursor:
    """What the run log already holds of a History, so the next save appends only the rest."""

    folder: Path
    epochs: int = 0
    points: int = 0
    merges: int = 0
    series: dict[str, tuple[int, Any]] = field(default_factory=dict)  # key -> (length, last step)
    histograms: dict[str, tuple[int, Any]] = field(default_factory=dict)
    small: dict[str, str] = field(default_factory=dict)  # record name -> its JSON text when last written


def commit(history: History, folder: Path) -> int:
    """Append what ``history`` holds beyond ``folder``'s log, then a commit; the log's size after it."""
    return write_pending(folder, *pending(history, folder))


def pending(history: History, folder: Path) -> tuple[list[dict[str, Any]], bool]:
    """The records that bring ``folder``'s log up to ``history`` (ending with a commit), and whether they replace
    the log rather than extend it. They are copies: a background writer can write them while training goes on
    and changes the History."""
    known = history._cursor is not None and history._cursor.folder == folder
    cursor = history._cursor if known else Cursor(folder)
    records: list[dict[str, Any]] = []
    for name in SMALL:
        text = json.dumps(getattr(history, name), sort_keys=True, default=str)
        if cursor.small.get(name) != text:
            records.append({"t": name, name: copy.deepcopy(getattr(history, name))})
            cursor.small[name] = text
    status = json.dumps([history.status, history.stop_reason])
    if cursor.small.get("status") != status:
        records.append({"t": "status", "status": history.status, "stop_reason": history.stop_reason})
        cursor.small["status"] = status
    if len(history.epochs) > cursor.epochs:
        records.append({"t": "epochs", "epochs": [dict(e) for e in history.epochs[cursor.epochs :]]})
    cursor.epochs = len(history.epochs)
    steps = history._steps
    if steps.merges != cursor.merges or len(steps.columns["step"]) < cursor.points:
        records.append({"t": "steps_all", "stride": steps.stride, **{n: list(steps.columns[n]) for n in COLUMNS}})
    elif len(steps.columns["step"]) > cursor.points:
        new = {n: steps.columns[n][cursor.points :] for n in COLUMNS}
        for extreme in ("loss_min", "loss_max"):  # a point of one step: its extremes are its loss (read back so)
            if new[extreme] == new["loss"]:
                del new[extreme]
        records.append({"t": "steps", **new})
    cursor.points, cursor.merges = len(steps.columns["step"]), steps.merges
    records += _new_points("series", history.series, cursor.series, lambda column: (column["step"], column))
    records += _new_points("histograms", history.histograms, cursor.histograms,
                           lambda snaps: ([s.get("step") for s in snaps], snaps))
    records.append({"t": "commit", "epochs": len(history.epochs), "num_steps": steps.num_steps, **steps.state()})
    history._cursor = cursor
    return records, not known and RunLog(folder).exists()  # a History not read from that log replaces it


def write_pending(folder: Path, records: list[dict[str, Any]], replace: bool) -> int:
    """Write what :func:`pending` gave (appended and fsynced); the log's size after it."""
    log = RunLog(folder)
    return log.rewrite(records) if replace else log.append(records)


def _new_points(kind: str, table: dict[str, Any], seen: dict[str, tuple[int, Any]], view: Any) -> list[dict]:
    """Records of what each series (or histogram key) gained; a whole one again when it was thinned."""
    added: dict[str, Any] = {}
    replaced: dict[str, Any] = {}
    for key, value in table.items():
        steps, _ = view(value)
        length, last = seen.get(key, (0, None))
        if length and (len(steps) < length or steps[length - 1] != last):
            replaced[key] = _tail(value, 0)  # thinned since the last save: store it whole (a copy)
        elif len(steps) > length:
            added[key] = _tail(value, length)
        seen[key] = (len(steps), steps[-1] if steps else None)
    out = []
    if added:
        out.append({"t": kind, "add": added})
    if replaced:
        out.append({"t": kind, "replace": replaced})
    return out


def _tail(value: Any, start: int) -> Any:
    if isinstance(value, dict):  # a series: {"step": [...], "value": [...]}
        return {k: v[start:] for k, v in value.items()}
    return value[start:]


def replay(history: History, folder: Path, upto: int | None = None) -> None:
    """Fill an empty ``history`` from ``folder``'s run log (up to byte ``upto``); later saves append to it."""
    steps = history._steps
    cursor = Cursor(folder)
    for record in RunLog(folder).records(upto):
        kind = record.get("t")
        if kind in SMALL:
            setattr(history, kind, record[kind])
            cursor.small[kind] = json.dumps(record[kind], sort_keys=True, default=str)
        elif kind == "status":
            history.status, history.stop_reason = record["status"], record.get("stop_reason")
            cursor.small["status"] = json.dumps([history.status, history.stop_reason])
        elif kind == "epochs":
            history.epochs.extend(record["epochs"])
        elif kind == "steps":
            steps.add_points(record)
        elif kind == "steps_all":
            steps.replace(record, int(record["stride"]))
        elif kind in ("series", "histograms"):
            _apply(getattr(history, kind), record)
        elif kind == "commit":
            steps.load_state(record)
    cursor.epochs, cursor.points, cursor.merges = len(history.epochs), len(steps.columns["step"]), steps.merges
    cursor.series = {k: (len(v["step"]), v["step"][-1] if v["step"] else None) for k, v in history.series.items()}
    cursor.histograms = {k: (len(v), v[-1].get("step") if v else None) for k, v in history.histograms.items()}
    history._cursor = cursor


def _apply(table: dict[str, Any], record: dict[str, Any]) -> None:
    for key, value in record.get("replace", {}).items():
        table[key] = value
    for key, value in record.get("add", {}).items():
        if key not in table:
            table[key] = value
        elif isinstance(value, dict):
            for column, values in value.items():
                table[key].setdefault(column, []).extend(values)
        else:
            table[key].extend(value)
