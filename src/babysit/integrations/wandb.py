"""``WandbLogger``: a ``fit`` callback that keeps a babysat run in Weights & Biases (online or offline).

Per epoch (never per step: the training step stays free of host work) it logs what the History gained:
``epoch/train_loss``, ``epoch/val_acc``, ``epoch/lr``, ... against ``epoch``, and against ``step`` the
per-step loss and learning rate (``step/loss``, ``step/lr``) and every per-layer series the Monitor read
out (``ratio/fc1.weight``, ``grad/fc1.weight/norm``, ``act/act1/std``, ...). The run's settings are its
config. At the end: the findings as a table (``babysit/findings``), in the summary
(``babysit/finding/<code> = <severity>``, ``babysit/status``, ``best_val_acc``) and as tags
(``babysit:<code>``), an artifact ``babysit-<run id>`` with ``findings.json``, ``findings.md`` and the run
folder's ``report.html`` and ``config.toml``, and the exit code (0 completed or stopped, 130 interrupted,
1 diverged or failed). A resumed run continues the same W&B run.

Needs ``pip install 'babysit[trackers]'`` (or ``pip install wandb``). ``WANDB_MODE=offline`` (or
``mode="offline"``) writes the run to disk only; ``wandb sync`` uploads it later.

Example:
    >>> from babysit.integrations.wandb import WandbLogger
    >>> tracker = WandbLogger(project="digits", mode="offline")  # doctest: +SKIP
    >>> h = babysit.fit(model, data, run_dir="runs/mine", callbacks=[tracker])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babysit.callbacks._base import Callback
from babysit.history import History
from babysit.integrations._tracking import (
    NewPoints,
    finding_severities,
    findings_markdown,
    hyperparameters,
    import_tracker,
    is_main_process,
    run_files,
)

if TYPE_CHECKING:
    from babysit.train.run import Run

__all__ = ["EXIT_CODES", "WandbLogger"]
log = logging.getLogger("babysit")

EXIT_CODES = {"completed": 0, "stopped": 0, "interrupted": 130, "diverged": 1, "failed": 1}
FINDING_COLUMNS = ["code", "severity", "message", "suggestion"]


class WandbLogger(Callback):
    """Log a run's numbers, settings, findings and report to Weights & Biases.

    Args:
        project: the W&B project.
        entity: the W&B team or user; None: your default.
        name: the W&B run's name; None: the run folder's name.
        mode: ``online``, ``offline`` or ``disabled``; None: ``WANDB_MODE``, else online.
        dir: where W&B keeps its local files; None: the run folder (``<run_dir>/wandb``), else ``WANDB_DIR``.
        tags: extra tags of the W&B run (``babysit`` is always one).
        **init_kwargs: further arguments of ``wandb.init`` (``group``, ``notes``, ``settings``, ...).

    Attributes:
        run: the ``wandb`` run, once it is started (at the first epoch's end), until it finishes.
        run_id: its id.

    Raises:
        ConfigError: wandb is not installed (the message says how to install it).
    """

    order = 96  # after the report's final page (90) and TensorBoard (95): the final page goes with the run

    def __init__(self, project: str = "babysit", *, entity: str | None = None, name: str | None = None,
                 mode: str | None = None, dir: str | Path | None = None, tags: tuple[str, ...] | list[str] = (),
                 **init_kwargs: Any) -> None:
        self._wandb = import_tracker("wandb")
        self.project, self.entity, self.name, self.mode = project, entity, name, mode
        self.dir = None if dir is None else Path(dir)
        self.tags = ["babysit", *tags]
        self.init_kwargs = init_kwargs
        self.run: Any = None
        self.run_id: str | None = None
        self._points = NewPoints()
        self._defined: set[str] = set()  # key prefixes whose x axis is declared

    # --- hooks ------------------------------------------------------------------------------------------------
    def on_fit_start(self, run: Run) -> None:
        self.run_id, self._points = None, NewPoints()  # a new fit, a new W&B run (a resume gives its id back)

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        if not is_main_process():
            return
        try:
            self._send(run.history)
        except Exception as exc:  # a tracker hiccup never stops training
            log.warning("WandbLogger: epoch %s not logged: %s: %s", record.get("epoch"), type(exc).__name__, exc)

    def on_fit_end(self, run: Run, status: str) -> None:
        if not is_main_process():
            return
        try:
            self._send(run.history)
            self._send_findings(run.history, status)
        except Exception as exc:  # the run folder keeps everything; training is over either way
            log.warning("WandbLogger: the end of the run was not logged: %s: %s", type(exc).__name__, exc)
        finally:
            finishing, self.run = self.run, None
            if finishing is not None:
                finishing.finish(exit_code=EXIT_CODES.get(status, 1))

    def state_dict(self) -> dict[str, Any]:
        return {} if self.run_id is None else {"run_id": self.run_id, "points": self._points.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id")
        self._points.load_state_dict(state.get("points", {}))

    # --- logging ----------------------------------------------------------------------------------------------
    def _open(self, history: History) -> Any:
        """The W&B run: started on first use (with the config), or the one a resumed run was writing."""
        if self.run is not None:
            return self.run
        folder = self.dir or history.run_dir
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
        resume = {} if self.run_id is None else {"id": self.run_id, "resume": "allow"}
        name = self.name or (history.run_dir.name if history.run_dir is not None else None)
        self.run = self._wandb.init(
            project=self.project, entity=self.entity, name=name, mode=self.mode,
            dir=None if folder is None else str(folder), config=hyperparameters(history.meta), tags=self.tags,
            reinit="create_new", **resume, **self.init_kwargs,
        )
        if self.run_id is None or self.run.id != self.run_id:
            self._points = NewPoints()  # a new W&B run gets everything
        self.run_id, self._defined = self.run.id, set()
        self.run.define_metric("epoch")
        self.run.define_metric("epoch/*", step_metric="epoch")
        self.run.define_metric("step")
        return self.run

    def _send(self, history: History) -> None:
        """Log the step points, then the epochs, recorded since the last call (one ``log`` per step or epoch)."""
        run = self._open(history)
        for step, values in self._points.new_steps(history).items():
            for prefix in {key.split("/", 1)[0] for key in values} - self._defined:
                run.define_metric(f"{prefix}/*", step_metric="step")
                self._defined.add(prefix)
            run.log({"step": step, **values})
        for epoch, numbers in self._points.new_epochs(history):
            run.log({"epoch": epoch, **{f"epoch/{k}": v for k, v in numbers.items()}})

    def _send_findings(self, history: History, status: str) -> None:
        """The findings as a table, in the summary and as tags; an artifact with them and the report."""
        run, findings = self.run, list(history.findings)
        table = self._wandb.Table(columns=FINDING_COLUMNS,
                                  data=[[str(f.get(c) or "") for c in FINDING_COLUMNS] for f in findings])
        run.log({"babysit/findings": table})
        severities = finding_severities(findings)
        summary: dict[str, Any] = {f"babysit/finding/{code}": severity for code, severity in severities.items()}
        summary.update({"babysit/status": status, "babysit/num_findings": len(findings)})
        if history.stop_reason:
            summary["babysit/stop_reason"] = history.stop_reason
        if history.best_val_acc is not None:
            summary["best_val_acc"] = history.best_val_acc
        run.summary.update(summary)
        run.tags = tuple(dict.fromkeys([*run.tags, *(f"babysit:{code}" for code in severities)]))
        artifact = self._wandb.Artifact(f"babysit-{run.id}", type="babysit-run",
                                        metadata={"status": status, "findings": severities})
        with tempfile.TemporaryDirectory() as tmp:  # added files are copied: the folder may go at once
            (Path(tmp) / "findings.json").write_text(json.dumps(findings, indent=2, default=str), encoding="utf-8")
            (Path(tmp) / "findings.md").write_text(findings_markdown(findings, status), encoding="utf-8")
            for path in [Path(tmp) / "findings.json", Path(tmp) / "findings.md", *run_files(history)]:
                artifact.add_file(str(path), name=path.name)
            run.log_artifact(artifact)

    def __repr__(self) -> str:
        return f"WandbLogger(project={self.project!r}, mode={self.mode!r})"
