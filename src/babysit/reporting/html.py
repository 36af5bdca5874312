"""The report as one self-contained HTML file: Jinja2 with autoescaping, figures inline as SVG, CSS inline.

Names from user models and configs reach the page only through the template's autoescaping (and the
figures, which are images), so a layer called ``<script>`` is shown, never run. The file fetches
nothing: it opens from disk, offline, and can be mailed as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jinja2

from babysit._io import write_text_atomic
from babysit.errors import ConfigError
from babysit.history import History
from babysit.reporting import _style
from babysit.reporting._page import FigureSpec, build_page

log = logging.getLogger("babysit")

REPORT_FILE = "report.html"  # also babysit.reporting.REPORT_FILE
REFRESH_SECONDS = 15  # a running run's page reloads itself this often
WIDE_INCHES = 8.0  # a figure wider than this takes the page's whole width, a narrower one half

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("babysit.reporting", "templates"),
    autoescape=True,  # every {{ value }} is escaped: markup in names cannot get into the page
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def draw(spec: FigureSpec) -> dict[str, Any] | None:
    """Draw one figure into a data URI; None when it has no data. A figure that fails is reported on the
    page instead of failing the whole report."""
    try:
        fig = spec.draw()
        if fig is None:
            return None
        uri, error, wide = _style.svg_data_uri(fig), None, fig.get_figwidth() > WIDE_INCHES
    except Exception as exc:  # one broken figure must not cost the rest of the report
        log.warning("report: figure %r could not be drawn: %s: %s", spec.id, type(exc).__name__, exc)
        uri, error, wide = None, f"{type(exc).__name__}: {exc}", False
    return {"id": spec.id, "title": spec.title, "lecture": spec.lecture, "caption": spec.caption,
            "wide": wide, "uri": uri, "error": error}


def render_html(history: History, folder: Path | None = None) -> str:
    """The report page of ``history`` as an HTML string (``folder``: the run folder, for weights and config)."""
    from babysit import __version__

    page = build_page(history, folder if folder is not None else history.run_dir)
    drawn = [(spec.group, d) for spec in page.pop("figures") if (d := draw(spec)) is not None]
    return _env.get_template("report.html").render(
        **page,
        training_figures=[d for group, d in drawn if group != "search"],
        search_figures=[d for group, d in drawn if group == "search"],
        live=history.status == "running",
        refresh_s=REFRESH_SECONDS,
        monitored=bool(history.series),
        version=__version__,
    )


def write_report(history: History, folder: str | Path | None = None, *, output: str | Path | None = None) -> Path:
    """Render ``history`` and write ``report.html`` atomically (readers never see half a page)."""
    base = Path(folder) if folder is not None else history.run_dir
    if output is None and base is None:
        raise ConfigError("this History has no run_dir; pass a folder or output= to choose where the report goes.")
    path = Path(output) if output is not None else base / REPORT_FILE  # type: ignore[operator]
    write_text_atomic(path, render_html(history, base))
    return path
