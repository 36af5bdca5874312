"""The doctor's page, ``doctor.html``: what was wrong, what was changed, before and after side by side, every run.

Like the run report it is one self-contained file (Jinja2 with autoescaping, figures inline as SVG).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import tomli_w
from matplotlib.figure import Figure

from babysit._io import write_text_atomic
from babysit.reporting import _style as S

__all__ = ["DOCTOR_PAGE", "before_after_figure", "write_doctor_report"]

DOCTOR_PAGE = "doctor.html"
_STATUS = {"repaired": ("repaired", "good"), "nothing_to_repair": ("nothing to repair", "good"),
           "improved": ("improved, problems remain", "warn"), "code_level": ("only the code can fix it", "bad"),
           "not_repaired": ("not repaired", "bad"), "interrupted": ("interrupted", "warn")}
_env = jinja2.Environment(loader=jinja2.PackageLoader("babysit.reporting", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def before_after_figure(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> Figure | None:
    """Loss (training with its L2 term, validation without) and validation accuracy per epoch, the config as
    given against the repaired one."""
    if not before.get("epoch") and not after.get("epoch"):
        return None
    with S.style():
        fig = S.new_figure(S.WIDE)
        loss_ax, acc_ax = fig.subplots(1, 2)
        for curves, label, colour in ((before, "as given", S.START), (after, "repaired", S.TRAIN)):
            epochs = curves.get("epoch") or []
            loss_ax.plot(epochs, _nums(curves.get("train_loss")), color=colour, marker="o", markersize=3,
                         label=f"{label}, train")
            loss_ax.plot(epochs, _nums(curves.get("val_loss")), color=colour, linestyle="--", label=f"{label}, val")
            acc_ax.plot(epochs, _nums(curves.get("val_acc")), color=colour, marker="o", markersize=3, label=label)
        if not before.get("epoch"):  # a run that diverged in its first epoch has no epoch to draw
            acc_ax.text(0.5, 0.06, "as given: diverged before its first epoch ended", transform=acc_ax.transAxes,
                        ha="center", color=S.BAD)
        loss_ax.set_yscale("log")
        loss_ax.set_title("loss (log scale)")
        acc_ax.set_title("validation accuracy")
        for ax in (loss_ax, acc_ax):
            ax.set_xlabel("epoch")
            ax.legend(loc="best")
    return fig


def _nums(values: Any) -> list[float]:
    return [float("nan") if v is None else float(v) for v in values or []]


def write_doctor_report(result: Any) -> Path:
    """Write ``doctor.html`` into the doctor's folder and return its path."""
    from babysit import __version__
    from babysit.repair.remedies import describe_fix
    from babysit.reporting._page import duration

    folder = Path(result.folder)
    before, after = result.before, result.after
    figure = None
    if before is not None and after is not None and after is not before:
        fig = before_after_figure(before.curves, after.curves)
        figure = None if fig is None else S.svg_data_uri(fig)
    text, cls = _STATUS.get(result.status, (result.status, "warn"))
    html = _env.get_template("doctor.html").render(
        title=str(result.original.get("name", folder.name)), status_text=text, status_cls=cls, epochs=result.epochs,
        seconds=duration(result.seconds), gradcheck=result.checks.get("gradcheck"),
        sanity="not run" if "sanity_ok" not in result.checks else "pass" if result.checks["sanity_ok"] else "failed",
        wrong=_wrong(result, describe_fix), figure=figure, lr_figures=_lr_figures(folder), note=result.note,
        changes=[{**c, "fix": describe_fix(c["fix"])} for c in result.changes],
        attempts=[_row(a, folder) for a in result.attempts], remaining=result.remaining,
        fixed_text=tomli_w.dumps({k: v for k, v in result.fixed.items() if k != "redacted"}), version=__version__)
    path = folder / DOCTOR_PAGE
    write_text_atomic(path, html)
    return path


def _wrong(result: Any, describe: Any) -> list[dict[str, Any]]:
    code_level = {c["code"]: c for c in result.code_level}
    fixes = {c["code"]: describe(c["fix"]) for c in result.changes}
    out = []
    for f in result.findings:
        out.append({"code": f["code"], "severity": f.get("severity", "warning"), "message": f.get("message", ""),
                    "instruction": code_level.get(f["code"], {}).get("instruction", ""),
                    "fix": fixes.get(f["code"], "")})
    return out


def _row(a: Any, folder: Path) -> dict[str, Any]:
    mark = "" if a.fix is None else "kept" if a.kept else "reverted"
    run_dir = Path(a.run_dir)
    return {"index": a.index, "label": a.label, "code": a.code, "status": a.status,
            "acc": "–" if a.best_val_acc is None else f"{a.best_val_acc:.1%}", "codes": ", ".join(a.loud_codes()),
            "mark": mark, "cls": "good" if a.kept else "warn", "verdict": a.verdict,
            "folder": run_dir.name if run_dir.parent == folder else str(run_dir)}


def _lr_figures(folder: Path) -> list[dict[str, str]]:
    from babysit.reporting.lr_find_figure import lr_find_figure
    from babysit.train.lr_find import LR_FIND_FILE

    out = []
    for path in sorted(folder.glob(f"lr_find-*/{LR_FIND_FILE}")):
        data = json.loads(path.read_text(encoding="utf-8"))
        fig = lr_find_figure(data)
        if fig is not None:
            out.append({"uri": S.svg_data_uri(fig), "reason": str(data.get("reason", ""))})
    return out
