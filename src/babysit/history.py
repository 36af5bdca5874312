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

The keys belong to the quantities that write them (:mod:`babysit.quantities`), so code that reads them
asks by quantity instead of spelling a key::

    h.series_of("update_ratio", target="fc1.weight")     # Series(steps=[1, 101, ...], values=[...])
    h.series_of("activation_moments", "std", "act1")
    h.targets("dead_fraction")                           # ["act1", "act2"]
    h.recorded_quantities()                              # ["activation_moments", "dead_fraction", ...]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from babysit._io import read_json_object, write_json_atomic
from babysit._runlog import LOG_FILE, RunLog
from babysit._steps import COLUMNS, StepColumns
from babysit.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from babysit.quantities import Quantity, QuantityLike

HISTORY_FILE = "history.json"  # the single-file form: old run folders, and `babysit export`
STEP_KEYS = COLUMNS
STATUSES = ("running", "completed", "interrupted", "diverged", "stopped")


def holds_history(folder: str | Path) -> bool:
    """Whether ``folder`` holds a saved History (its run log, or a ``history.json`` from before)."""
    return RunLog(Path(folder)).exists() or (Path(folder) / HISTORY_FILE).is_file()


class Series(NamedTuple):
    """One recorded series: the sampled steps and the value at each (empty lists when it was not recorded)."""

    steps: list[int]
    values: list[float]


@dataclass
class History:
    """Per-epoch records, per-step losses and the facts of one training run.

    Attributes:
        epochs: one dict per finished epoch with at least ``epoch, train_loss, val_loss, train_acc,
            val_acc, data_loss, reg_loss, lr`` (``val_*`` are None without validation data).
        steps: columns of per-step values: ``step`` (1-based), ``epoch`` (fractional: 0.5 = half of the
            first epoch seen), ``loss`` (data + regularization), ``lr``, and ``loss_min``/``loss_max``. Every
            step while there are at most 4,096; beyond that a point stands for a bucket of 2, 4, ... steps
            (its last step's values and the bucket's lowest and highest loss), so memory stays bounded.
            ``num_steps`` is the number of steps; add steps with :meth:`add_steps`.
        meta: how the run was made (model, optimizer, schedule, device, versions, seed, ...).
        status: ``running``, ``completed``, ``interrupted``, ``diverged`` or ``stopped`` (by a callback).
        stop_reason: why a run ended early, in words.
        layers: the layers the monitor watched, in forward order, with their type and depth.
        series: per-layer and per-parameter statistics at the monitor's sampling steps (keys above).
        histograms: fixed-bin histograms of activations and gradients at a few sampling steps.
        findings: the diagnosis saved with the run (``Finding.to_dict()`` records).
        sections: results added by other stages, keyed by stage name.
        run_dir: the folder it is saved in, or None for an in-memory run.
        checkpoint: with the ``KeepFinalState`` callback, the training state at the end of the run, in memory:
            ``fit(..., resume=history)`` continues from it. Never written to disk.

    On disk a History is a run log, ``<run_dir>/history.jsonl`` (:meth:`save` appends what changed since
    the last save); a folder from before holds ``history.json``, which :meth:`load` reads as well.
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
    _steps: StepColumns = field(default_factory=StepColumns, init=False, repr=False, compare=False)
    _cursor: Any = field(default=None, init=False, repr=False, compare=False)  # what the run log holds
    # targets() per (quantity, stat), with the keys they were parsed from: rules ask for them again and again
    _targets: dict[tuple[str, str | None], tuple[tuple[str, ...], list[str]]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        given, self.steps = self.steps, self._steps.columns
        if given.get("step"):
            self.add_steps(given["step"], given.get("epoch") or [None] * len(given["step"]), given["loss"],
                           given.get("lr") or [None] * len(given["step"]))

    @property
    def num_steps(self) -> int:
        """How many steps the run took (``steps`` may keep fewer points: see the class docstring)."""
        return self._steps.num_steps

    def add_steps(self, steps: list[int], epochs: list[Any], losses: list[float], lrs: list[Any]) -> None:
        """Record consecutive steps (numbered from ``num_steps + 1``): their epoch, loss and learning rate."""
        self._steps.extend(steps, epochs, losses, lrs)

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

    # --- typed access to the Monitor's quantities ------------------------------------------------------------
    def series_of(self, quantity: QuantityLike, stat: str | None = None, target: str | None = None) -> Series:
        """One recorded series of ``quantity`` (a name such as ``"update_ratio"``, a class or an instance).

        Args:
            stat: which of its stats (default: the first, e.g. ``"ratio"`` of ``update_ratio``).
            target: the layer or parameter name; None for a model-wide quantity (``input_moments``).

        Returns:
            ``Series(steps, values)``, empty when it was not recorded.

        Raises:
            ConfigError: an unknown quantity name, or a histogram quantity (read those with :meth:`snapshots_of`).
            ValueError: an unknown stat, a missing or superfluous target.
        """
        q = _quantity(quantity)
        if q.store != "series":
            raise ConfigError(f"{q.name} is recorded as histograms; read it with snapshots_of()")
        column = self.series.get(q.key(stat, target))
        if not column:
            return Series([], [])
        return Series(list(column.get("step", [])), list(column.get("value", [])))

    def snapshots_of(self, quantity: QuantityLike, target: str | None = None) -> list[dict[str, Any]]:
        """The histogram snapshots (``{"step", "edges", "counts"}``) of a histogram quantity for ``target``."""
        q = _quantity(quantity)
        if q.store != "histograms":
            raise ConfigError(f"{q.name} is recorded as series; read it with series_of()")
        return list(self.histograms.get(q.key(None, target), []))

    def targets(self, quantity: QuantityLike, stat: str | None = None) -> list[str]:
        """The layers or parameters ``quantity`` (``stat`` of it, when given) was recorded for, in recording
        order; ``[]`` for a model-wide quantity."""
        q = _quantity(quantity)
        if stat is not None:
            q.key(stat, None if q.scope == "model" else "x")  # an unknown stat raises here
        keys = tuple(self.series if q.store == "series" else self.histograms)
        known = self._targets.get((q.name, stat))
        if known is not None and known[0] == keys:
            return list(known[1])
        found: dict[str, None] = {}
        for key in keys:
            parsed = q.parse(key)
            if parsed is not None and parsed[1] is not None and (stat is None or parsed[0] == stat):
                found[parsed[1]] = None
        self._targets[(q.name, stat)] = (keys, list(found))
        return list(found)

    def recorded_quantities(self) -> list[str]:
        """Names of the quantities the Monitor recorded in this run.

        The Monitor lists them in ``sections["monitor"]["quantities"]``. A history from before that list has
        a monitor section (the Monitor ran: every default quantity was recorded) or none (nothing was). A
        quantity whose keys are in ``series`` or ``histograms`` counts too (a history written by hand).
        """
        from babysit.quantities import DEFAULT, QUANTITIES

        section = self.sections.get("monitor")
        listed = section.get("quantities") if isinstance(section, dict) else None
        if isinstance(listed, list):
            names = [str(n) for n in listed]
        else:
            names = list(DEFAULT) if isinstance(section, dict) else []
        seen = set(names)
        for name, q in QUANTITIES.items():
            if name not in seen and any(q.parse(key) for key in (self.series if q.store == "series"
                                                                 else self.histograms)):
                names.append(name)
                seen.add(name)
        return names

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
        self._steps.truncate(num_steps)
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
            "steps_state": self._steps.state(),
            "layers": self.layers,
            "series": self.series,
            "histograms": self.histograms,
            "findings": self.findings,
            "sections": self.sections,
        }

    def save(self, run_dir: str | Path | None = None) -> Path:
        """Append what changed since the last save to ``<run_dir>/history.jsonl`` (default: the run's own folder)
        and commit it; the log's path. Costs what is new, not the whole run."""
        self.commit(run_dir)
        return Path(self.run_dir) / LOG_FILE  # type: ignore[arg-type]

    def commit(self, run_dir: str | Path | None = None) -> int:
        """:meth:`save`, returning the byte offset the run log's commit ends at (what a checkpoint stores)."""
        from babysit._history_log import commit

        folder = Path(run_dir) if run_dir is not None else self.run_dir
        if folder is None:
            raise CheckpointError("this History has no run_dir; pass save(run_dir=...) to choose a folder.")
        self.run_dir = folder
        return commit(self, folder)

    def export(self, path: str | Path) -> Path:
        """Write the whole history as one JSON file (the single-file form some tools want)."""
        path = Path(path)
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def load(cls, run_dir: str | Path, *, upto: int | None = None) -> History:
        """Read the history saved in ``run_dir`` (its run log up to byte ``upto``; or an older ``history.json``)."""
        from babysit._history_log import replay

        folder = Path(run_dir)
        if RunLog(folder).exists():
            history = cls(run_dir=folder)
            replay(history, folder, upto)
            return history
        path = folder / HISTORY_FILE
        if not path.is_file():
            hint = (
                " It does not exist." if not folder.exists() else f" Found: {sorted(p.name for p in folder.iterdir())}."
            )
            raise CheckpointError(f"no {LOG_FILE} (or {HISTORY_FILE}) in run folder {str(folder)!r}.{hint}")
        data = read_json_object(path, what="history", fix="train the run again")
        return cls.from_dict(data, run_dir=folder, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], run_dir: Path | None = None, *, source: str = "the history record"
                  ) -> History:
        """The History of a :meth:`to_dict` record (the lists are copied, so the record stays as it was).

        A record whose parts have the wrong types (edited by hand, written by another tool) raises
        CheckpointError naming ``source`` and the part, rather than failing later inside a rule or the report.
        """
        _check_record(data, source)
        raw = data.get("steps", {}) or {}
        history = cls(
            epochs=list(data.get("epochs", [])),
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
        state = data.get("steps_state")
        if state is None:  # a history.json from before bounded steps: every step, as given
            n = len(raw.get("step", []))
            history.add_steps(*(list(raw.get(k) or [None] * n) for k in ("step", "epoch", "loss", "lr")))
        else:
            history._steps.replace({k: list(v) for k, v in raw.items()}, int(state["stride"]))
            history._steps.load_state(state)
        return history


_RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "status": (str,), "stop_reason": (str, type(None)), "epochs": (list,), "meta": (dict,), "layers": (list,),
    "series": (dict,), "histograms": (dict,), "findings": (list,), "sections": (dict,), "steps": (dict, type(None)),
    "steps_state": (dict, type(None)),
}


def _check_record(data: Any, source: str) -> None:
    def refuse(what: str) -> CheckpointError:
        return CheckpointError(f"{source} is not a history babysit wrote: {what}. Was it edited by hand or written "
                               "by another tool? Train the run again.")

    if not isinstance(data, dict):
        raise refuse(f"it holds a JSON {type(data).__name__}, not an object")
    wrong = []  # every wrong part at once, so one look at the file shows them all
    for key, types in _RECORD_TYPES.items():
        if key in data and not isinstance(data[key], types):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            wrong.append(f"{key!r} is {data[key]!r}, not a {expected}")
    if wrong:
        raise refuse("; ".join(wrong))
    bad = next((e for e in data.get("epochs", []) if not isinstance(e, dict)), None)
    if bad is not None:
        raise refuse(f"an entry of 'epochs' is {bad!r}, not an object")


def _quantity(spec: QuantityLike) -> Quantity:
    return _registry()(spec)


@functools.cache
def _registry() -> Callable[[QuantityLike], Quantity]:
    from babysit.quantities import get  # lazy: the quantities bring torch, a History alone does not need it

    return get


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
