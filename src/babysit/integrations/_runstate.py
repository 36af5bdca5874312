"""What both framework callbacks share about a run's record: the History carried in a framework's checkpoint,
the refusal to overwrite a run folder that already holds a run, the end of a run (closed Monitor, findings,
status, the folder written) and findings logged where Python's default logging shows them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from babysit._io import from_json_text, json_text
from babysit.errors import ConfigError
from babysit.findings import Finding
from babysit.history import History, holds_history
from babysit.monitors import Monitor
from babysit.monitors.monitor import check_settings as check_monitor_settings

log = logging.getLogger("babysit")
STATE_VERSION = 1
SHOWN = ("warning", "error")  # severities logged at WARNING: Python's default logging shows them


def check_settings(who: str, every: int, settings: dict[str, Any]) -> None:
    """Check the Monitor settings when the callback is built (a typo would otherwise fail when training starts):
    a throwaway Monitor on an empty module takes them, with the same checks and messages."""
    from torch import nn

    check_monitor_settings(settings, given=("model", "optimizer", "every", "watch_eval", "history"), who=who)
    Monitor(nn.Module(), every=every, watch_eval=False, **settings).close()


def history_state(history: History) -> dict[str, Any]:
    """The History as a checkpoint entry: JSON text (any checkpoint loader reads a str, NaN survives)."""
    return {"version": STATE_VERSION, "history": json_text(history.to_dict())}


def history_of_state(state: Any, source: str) -> History | None:
    """The History a :func:`history_state` entry holds, or None for an empty entry."""
    if not isinstance(state, dict) or "history" not in state:
        return None
    return History.from_dict(from_json_text(str(state["history"])), source=source)


def refuse_run_dir(run_dir: Path | None, who: str, resume: str) -> None:
    """Raise when ``run_dir`` already holds a run's History: saving would replace it."""
    if run_dir is not None and holds_history(run_dir):
        raise ConfigError(
            f"{who}: run_dir {str(run_dir)!r} already holds a run's history.jsonl, and babysit never overwrites "
            f"it. To continue that run, {resume}; for a new run, pass another run_dir (or delete the folder)."
        )


def note_resumed(run_dir: Path | None, history: History) -> None:
    """Say so when the run folder went on past the checkpoint: its later part is replaced by the resumed run."""
    if run_dir is None or not holds_history(run_dir):
        return
    try:
        on_disk = History.load(run_dir)
    except Exception:  # a damaged log is replaced by the checkpoint's record either way
        on_disk = None
    if on_disk is None or on_disk.num_steps > history.num_steps:
        log.warning("babysit: %s went on past this checkpoint (step %d); its record after that step is replaced by "
                    "the resumed run's", run_dir, history.num_steps)


def log_findings(findings: list[Finding]) -> None:
    """Warnings and errors at WARNING (shown by Python's default logging), info findings at INFO."""
    for finding in findings:
        (log.warning if finding.severity in SHOWN else log.info)("babysit: %s", finding)


def end_run(monitor: Monitor, status: str, run_dir: Path | None, *, stop_reason: str | None = None,
            save: bool = True) -> list[Finding]:
    """Close the Monitor (its hooks off), diagnose, set the status and save the History into ``run_dir``.

    After a failure the diagnosis may itself fail on a half-recorded step: the History is saved all the same."""
    findings: list[Finding] = []
    try:
        findings = monitor.diagnose()
    except Exception as exc:  # the record is worth more than its diagnosis
        if status == "completed":
            raise
        log.warning("babysit: the diagnosis of the %s run failed (%s: %s); the record is saved as it is",
                    status, type(exc).__name__, exc)
    finally:
        monitor.close()
    history = monitor.history
    history.status, history.stop_reason = status, stop_reason
    history.findings = [f.to_dict() for f in findings]
    if save and run_dir is not None:
        history.save(run_dir)
    return findings


def failure_status(exc: BaseException | None) -> tuple[str, str]:
    """The status and stop reason of a run ended by ``exc`` (as ``fit`` words them)."""
    if exc is None:
        return "interrupted", "training ended before its end event (an exception or Ctrl-C)"
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return "interrupted", "interrupted by Ctrl-C or SIGTERM"
    return "failed", f"{type(exc).__name__}: {exc}"


def open_epoch_losses(history: History) -> list[float]:
    """The losses of the steps recorded after the last closed epoch: a checkpoint taken mid-epoch holds them
    (their epoch column is still empty), and the resumed run's record of that epoch must count them."""
    epochs, losses = history.steps["epoch"], history.steps["loss"]
    n = 0
    while n < len(epochs) and epochs[-1 - n] is None:
        n += 1
    return [float(x) for x in losses[len(losses) - n:]]


def count_carried(record: dict[str, Any], carried: list[float], *, losses_from_steps: bool = True) -> None:
    """Make the first epoch closed after a mid-epoch resume count the steps recorded before the checkpoint."""
    if not carried:
        return
    new = int(record.get("steps") or 0)
    if losses_from_steps and isinstance(record.get("train_loss"), (int, float)):
        mean = (record["train_loss"] * new + sum(carried)) / (new + len(carried))
        record["train_loss"] = record["data_loss"] = mean
    record["steps"] = new + len(carried)


def close_carried_epoch(monitor: Monitor, carried: list[float]) -> None:
    """Close the epoch a checkpoint taken at its last step left open (its end came after the checkpoint): with the
    mean of its recorded losses; its validation numbers came after the checkpoint too and are not known."""
    mean = sum(carried) / len(carried) if carried else None
    monitor.end_epoch(train_loss=mean, steps=len(carried))
