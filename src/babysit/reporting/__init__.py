"""The report: the lecture's plots and the findings of a run on one self-contained HTML page.

``report(run_dir)`` reads the run folder (``history.jsonl``, ``config.toml``, ``checkpoints/last.pt``) and
writes ``report.html`` beside them. During training, ``LiveReport`` (an epoch callback of ``fit``)
refreshes the page within a small time budget, and ``TensorBoardLogger`` writes the same numbers as
TensorBoard event files. Compute is kept apart from drawing: ``figures`` holds one pure function per
figure (History in, matplotlib Figure out), ``html`` only lays them out.

Example:
    >>> import babysit
    >>> h = babysit.fit(model, data, run_dir="runs/mine",  # doctest: +SKIP
    ...                 callbacks=[babysit.reporting.LiveReport()])
    >>> babysit.report("runs/mine")  # doctest: +SKIP
    PosixPath('runs/mine/report.html')
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from babysit._io import read_json_object
from babysit.history import History, holds_history
from babysit.reporting.live import LiveReport
from babysit.reporting.tensorboard import TensorBoardLogger

__all__ = ["REPORT_FILE", "SEARCH_FILE", "LiveReport", "TensorBoardLogger", "figures", "render_html", "report",
           "write_report"]

REPORT_FILE = "report.html"
SEARCH_FILE = "search.json"  # a search folder without a history: its record alone makes the report
# matplotlib and jinja2 load on first use, so `import babysit` stays quick
_LAZY = {"figures": ("babysit.reporting.figures", None), "render_html": ("babysit.reporting.html", "render_html"),
         "write_report": ("babysit.reporting.html", "write_report")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        return module if attr is None else getattr(module, attr)
    raise AttributeError(f"module 'babysit.reporting' has no attribute {name!r}")


def report(run_dir: str | Path) -> Path:
    """Write ``report.html`` into a run folder and return its path.

    Args:
        run_dir: a run folder written by ``fit`` / ``babysit train`` (it holds ``history.jsonl``), or a search
            folder holding ``search.json`` (the dict described in ``babysit.reporting._page``).

    Returns:
        The path of the report, ``<run_dir>/report.html``.

    Raises:
        CheckpointError: the folder holds neither a history nor ``search.json``.
    """
    folder = Path(run_dir)
    search_file = folder / SEARCH_FILE
    search = None
    if search_file.is_file():
        search = read_json_object(search_file, what="search record", fix="run the search again to rewrite it")
    if not holds_history(folder) and search is not None:
        # a search folder: the page says what search.json says (an interrupted search is not "completed")
        status = {"done": "completed"}.get(str(search.get("status")), str(search.get("status", "running")))
        history = History(status=status, run_dir=folder)
    else:
        history = History.load(folder)  # a clear CheckpointError when the folder is not a run
    if "search" not in history.sections and search is not None:
        history.sections["search"] = search
    from babysit._extras import needs

    with needs("report", "babysit.report"):
        from babysit.reporting.html import write_report
    return write_report(history, folder)
