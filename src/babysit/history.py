"""History: everything a training run recorded; the one record later stages read.

Diagnosis, the report and the search read a ``History`` and never touch a model, so they work the same
on a run that just finished and on a run folder loaded from disk.

On disk (``<run_dir>/history.json``)::

    {"status": "completed", "stop_reason": null, "meta": {...},
     "epochs": [{"epoch": 1, "train_loss": ..., "val_acc": ..., "lr": ...}, ...],
     "steps": {"step": [...], "epoch": [...], "loss": [...], "lr": [...]},
     "layers": [{"name": "fc1", "type": "Linear", "depth": 0, ...}, ...],   # what the monitor watched
     "series": {"act/act1/std": {"step": [...], "value": [...]}, "ratio/fc1.weight": {...}, ...},
     "histograms": {"act/act1": [{"step": 1, "edges": [...], "counts": [...]}, ...], ...},
     "findings": [{"code": ..., "severity": ..., "message": ..., "evidence": {...}, "suggestion": ...}],
     "sections": {"gradcheck": {...}, "sanity": {...}, "search": {...}}}   # other stages' results

Series keys follow one scheme (STYLE.md): ``act/<layer>/<stat>`` (mean, std, dead, saturated),
``grad/<param>/<stat>`` (norm, std), ``weight/<param>/norm`` and ``ratio/<param>`` (update/weight ratio,
lecture B4); ``<layer>`` and ``<param>`` are names from ``model.named_modules()`` /
``model.named_parameters()``. Each series holds values at the monitor's sampling steps only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babysit._io import read_json, write_json_atomic
from babysit.errors import CheckpointError

HISTORY_FILE = "history.json"
STEP_KEYS = ("step", "epoch", "loss", "lr")
STATUSES = ("running", "completed", "interrupted", "diverged", "stopped")


@dataclass
class History:
    """Per-epoch records, per-step losses and the facts of one training run.

    Attributes:
        epochs: one dict per finished epoch with at least ``epoch, train_loss, val_loss, train_acc,
            val_acc, data_loss, reg_loss, lr`` (``val_*`` are None without validation data).
        steps: columns of per-step values: ``step`` (1-based), ``epoch`` (fractional: 0.5 = half of the
            first epoch seen), ``loss`` (data + regularization) and ``lr``.
        meta: how the run was made (model, optimizer, schedule, device, versions, seed, ...).
        status: ``running``, ``completed``, ``interrupted``, ``diverged`` or ``stopped`` (by a callback).
        stop_reason: why a run ended early, in words.
        layers: the layers the monitor watched, in forward order, with their type and depth.
        series: per-layer and per-parameter statistics at the monitor's sampling steps (keys above).
        histograms: fixed-bin histograms of activations and gradients at a few sampling steps.
        findings: the diagnosis saved with the run (``Finding.to_dict()`` records).
        sections: results added by other stages, keyed by stage name.
        run_dir: the folder it is saved in, or None for an in-memory run.
        checkpoint: with ``fit(..., keep_checkpoint=True)``, the training state after the last finished epoch
            (what ``checkpoints/last.pt`` holds), in memory: ``fit(..., resume=history)`` continues from it.
            Never written to ``history.json``.
    """

    epochs: list[dict[str, Any]] = field(default_factory=list)
    steps: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in STEP_KEYS})
    meta: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    stop_reason: str | None = None
    layers: list[dict[str, Any]] = field(default_factory=list)
    series: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    histograms: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    checkpoint: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    # --- reading -------------------------------------------------------------------------------------
    @property
    def best_epoch(self) -> dict[str, Any] | None:
        """The epoch record with the highest validation accuracy (the earliest on ties), or None."""
        scored = [e for e in self.epochs if _finite(e.get("val_acc"))]
        return max(scored, key=lambda e: e["val_acc"]) if scored else None

    @property
    def best_val_acc(self) -> float | None:
        """The highest validation accuracy of any epoch, or None without validation data."""
        best = self.best_epoch
        return None if best is None else float(best["val_acc"])

    @property
    def last(self) -> dict[str, Any] | None:
        """The last finished epoch's record."""
        return self.epochs[-1] if self.epochs else None

    def per_epoch(self, key: str) -> list[Any]:
        """One per-epoch quantity as a list, e.g. ``h.per_epoch("val_acc")``."""
        return [e.get(key) for e in self.epochs]

    def diagnose(self, rules: list[str] | None = None) -> list[Any]:
        """Judge this run: the :class:`~babysit.findings.Finding` records of :func:`babysit.diagnose.diagnose`."""
        from babysit.diagnose import diagnose  # lazy: diagnosis reads histories, not the other way round

        return diagnose(self, rules=rules)

    def __repr__(self) -> str:
        best = self.best_val_acc
        best_text = "n/a" if best is None else f"{best:.4f}"
        return f"History(epochs={len(self.epochs)}, status={self.status!r}, best_val_acc={best_text})"

    # --- writing -------------------------------------------------------------------------------------
    def truncate(self, num_epochs: int, num_steps: int) -> None:
        """Forget everything after ``num_epochs`` epochs and ``num_steps`` steps (used on resume)."""
        del self.epochs[num_epochs:]
        for column in self.steps.values():
            del column[num_steps:]
        for series in self.series.values():
            keep = sum(1 for step in series["step"] if step <= num_steps)
            for column in series.values():
                del column[keep:]
        for key, snapshots in self.histograms.items():
            self.histograms[key] = [h for h in snapshots if h["step"] <= num_steps]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the whole history."""
        return {
            "status": self.status,
            "stop_reason": self.stop_reason,
            "meta": self.meta,
            "epochs": self.epochs,
            "steps": self.steps,
            "layers": self.layers,
            "series": self.series,
            "histograms": self.histograms,
            "findings": self.findings,
            "sections": self.sections,
        }

    def save(self, run_dir: str | Path | None = None) -> Path:
        """Write ``history.json`` atomically into ``run_dir`` (default: the run's own folder)."""
        folder = Path(run_dir) if run_dir is not None else self.run_dir
        if folder is None:
            raise ValueError("this History has no run_dir; pass save(run_dir=...) to choose a folder.")
        self.run_dir = folder
        path = folder / HISTORY_FILE
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def load(cls, run_dir: str | Path) -> History:
        """Read the history saved in ``run_dir``."""
        folder = Path(run_dir)
        path = folder / HISTORY_FILE
        if not path.is_file():
            hint = (
                " It does not exist." if not folder.exists() else f" Found: {sorted(p.name for p in folder.iterdir())}."
            )
            raise CheckpointError(f"no {HISTORY_FILE} in run folder {str(folder)!r}.{hint}")
        return cls.from_dict(read_json(path), run_dir=folder)

    @classmethod
    def from_dict(cls, data: dict[str, Any], run_dir: Path | None = None) -> History:
        """The History of a :meth:`to_dict` record (the lists are copied, so the record stays as it was)."""
        steps = {k: list(data.get("steps", {}).get(k, [])) for k in STEP_KEYS}
        return cls(
            epochs=list(data.get("epochs", [])),
            steps=steps,
            meta=dict(data.get("meta", {})),
            status=data.get("status", "running"),
            stop_reason=data.get("stop_reason"),
            layers=list(data.get("layers", [])),
            series=dict(data.get("series", {})),
            histograms=dict(data.get("histograms", {})),
            findings=list(data.get("findings", [])),
            sections=dict(data.get("sections", {})),
            run_dir=run_dir,
        )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
