"""``MLflowLogger``: a ``fit`` callback that keeps a babysat run in MLflow, for teams whose runs live there.

Per epoch (never per step: the training step stays free of host work) it sends what the History gained:
``epoch/train_loss``, ``epoch/val_acc``, ``epoch/lr``, ... (x = the epoch), the per-step loss and learning
rate (``step/loss``, ``step/lr``) and every per-layer series the Monitor read out (``ratio/fc1.weight``,
``grad/fc1.weight/norm``, ``act/act1/std``, ``act/act1/dead``, ...; x = the step). The run's settings go in
as params (``optimizer.name``, ``lr``, ``reg``, ``config.train.epochs``, ...). At the end: the findings as
the artifacts ``findings.json`` and ``findings.md`` and as tags ``babysit.finding.<code> = <severity>``,
the run folder's ``report.html`` and ``config.toml`` as artifacts, and the run's status (completed and
stopped: FINISHED, diverged and failed: FAILED, interrupted: KILLED). A resumed run continues the same
MLflow run. Only MLflow's public client (``mlflow.MlflowClient``) is used; no global active run is touched.

Needs ``pip install 'babysit[trackers]'`` (or ``pip install mlflow``).

Example:
    >>> from babysit.integrations.mlflow import MLflowLogger
    >>> tracker = MLflowLogger("http://127.0.0.1:5000", experiment="digits")  # doctest: +SKIP
    >>> h = babysit.fit(model, data, run_dir="runs/mine", callbacks=[tracker])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babysit._redact import redact_url
from babysit.callbacks._base import Callback
from babysit.errors import ConfigError
from babysit.history import History
from babysit.integrations._tracking import (
    NewPoints,
    finding_severities,
    findings_markdown,
    flatten,
    hyperparameters,
    import_tracker,
    is_main_process,
    run_files,
)

if TYPE_CHECKING:
    from babysit.train.run import Run

__all__ = ["STATUS", "MLflowLogger"]
log = logging.getLogger("babysit")

STATUS = {"completed": "FINISHED", "stopped": "FINISHED", "diverged": "FAILED", "failed": "FAILED",
          "interrupted": "KILLED"}
# MLflow's limits per log_batch call and per value (mlflow.utils.validation)
_METRICS_PER_BATCH, _PARAMS_PER_BATCH, _MAX_VALUE = 1000, 100, 6000


class MLflowLogger(Callback):
    """Send a run's numbers, settings, findings and report to an MLflow tracking server or store.

    Args:
        tracking_uri: ``http://host:5000``, ``sqlite:///mlflow.db``, ``file:./mlruns``, ...; None: MLflow's
            own default (``MLFLOW_TRACKING_URI``, else its local store).
        experiment: the MLflow experiment, created when missing.
        run_name: the MLflow run's name; None: the run folder's name.
        tags: extra tags of the MLflow run.

    Attributes:
        run_id: the MLflow run's id, once it is created (at the first epoch's end).

    Raises:
        ConfigError: mlflow is not installed (the message says how to install it); at the start of ``fit``, the
            tracking URI cannot be opened.
    """

    order = 96  # after the report's final page (90) and TensorBoard (95): the final page goes with the run

    def __init__(self, tracking_uri: str | None = None, experiment: str = "babysit", run_name: str | None = None,
                 *, tags: Mapping[str, str] | None = None) -> None:
        self._mlflow = import_tracker("mlflow")
        self.tracking_uri, self.experiment, self.run_name = tracking_uri, experiment, run_name
        self.tags = dict(tags or {})
        self.run_id: str | None = None
        self._client: Any = None
        self._experiment_id: str | None = None
        self._live = False  # the MLflow run is open in this process
        self._points = NewPoints()

    # --- hooks ------------------------------------------------------------------------------------------------
    def on_fit_start(self, run: Run) -> None:
        self.run_id, self._client, self._live, self._points = None, None, False, NewPoints()  # a new fit, a new run
        if not is_main_process():
            return
        where = redact_url(self.tracking_uri or self._mlflow.get_tracking_uri())
        try:  # fail before training, not after it
            client = self._mlflow.MlflowClient(self.tracking_uri)
            found = client.get_experiment_by_name(self.experiment)
            self._experiment_id = found.experiment_id if found else client.create_experiment(self.experiment)
        except Exception as exc:
            raise ConfigError(f"MLflowLogger: cannot open the MLflow tracking URI {where!r}: {type(exc).__name__}: "
                              f"{redact_url(str(exc))[:600]} Check the URI (and that the server runs).") from None
        self._client = client

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        if self._client is None:
            return
        try:
            self._send(run.history)
        except Exception as exc:  # a tracker hiccup never stops training; the next epoch sends again
            log.warning("MLflowLogger: epoch %s not sent: %s: %s", record.get("epoch"), type(exc).__name__, exc)

    def on_fit_end(self, run: Run, status: str) -> None:
        if self._client is None:
            return
        history = run.history
        try:
            self._send(history)
            self._send_findings(history, status)
            for path in run_files(history):
                self._client.log_artifact(self.run_id, str(path))
            self._client.set_terminated(self.run_id, STATUS.get(status, "FAILED"))
        except Exception as exc:  # the run folder keeps everything; training is over either way
            log.warning("MLflowLogger: the end of the run was not sent: %s: %s", type(exc).__name__, exc)
        self._live = False

    def state_dict(self) -> dict[str, Any]:
        return {} if self.run_id is None else {"run_id": self.run_id, "points": self._points.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id")
        self._points.load_state_dict(state.get("points", {}))

    # --- sending ----------------------------------------------------------------------------------------------
    def _open(self, history: History) -> str:
        """The MLflow run: created (with the params) on first use, or the one a resumed run was writing."""
        if self._live and self.run_id is not None:
            return self.run_id
        if self.run_id is not None and self._exists(self.run_id):
            self._client.update_run(self.run_id, status="RUNNING")  # resumed: its params are there already
        else:
            name = self.run_name or (history.run_dir.name if history.run_dir is not None else None)
            folder = "" if history.run_dir is None else str(Path(history.run_dir).resolve())
            tags = {"babysit.run_dir": folder, **self.tags}
            self.run_id = self._client.create_run(self._experiment_id, run_name=name, tags=tags).info.run_id
            self._points = NewPoints()  # a new MLflow run gets everything
            self._log_params(hyperparameters(history.meta))
        self._live = True
        return self.run_id

    def _exists(self, run_id: str) -> bool:
        try:
            return self._client.get_run(run_id) is not None
        except Exception:  # another tracking URI, or the run was deleted: start a new one
            return False

    def _log_params(self, params: dict[str, Any]) -> None:
        Param = self._mlflow.entities.Param
        items = [Param(_key(k), str(v)[:_MAX_VALUE]) for k, v in flatten(params).items()]
        for i in range(0, len(items), _PARAMS_PER_BATCH):
            self._client.log_batch(self.run_id, params=items[i : i + _PARAMS_PER_BATCH])

    def _send(self, history: History) -> None:
        """Send the epochs and the step points recorded since the last call (one log_batch per 1,000 values);
        when sending fails, they stay new for the next call."""
        run_id = self._open(history)
        before = self._points.state_dict()
        Metric, now = self._mlflow.entities.Metric, int(time.time() * 1000)
        metrics = [Metric(f"epoch/{k}", v, now, epoch) for epoch, numbers in self._points.new_epochs(history)
                   for k, v in numbers.items()]
        metrics += [Metric(_key(k), v, now, step) for step, values in self._points.new_steps(history).items()
                    for k, v in values.items()]
        try:
            for i in range(0, len(metrics), _METRICS_PER_BATCH):
                self._client.log_batch(run_id, metrics=metrics[i : i + _METRICS_PER_BATCH])
        except Exception:
            self._points.load_state_dict(before)
            raise

    def _send_findings(self, history: History, status: str) -> None:
        """The findings as two artifacts and as tags; the status and the best validation accuracy."""
        findings = list(history.findings)
        self._client.log_dict(self.run_id, findings, "findings.json")
        self._client.log_text(self.run_id, findings_markdown(findings, status), "findings.md")
        RunTag = self._mlflow.entities.RunTag
        tags = [RunTag(_key(f"babysit.finding.{code}"), severity)
                for code, severity in finding_severities(findings).items()]
        tags += [RunTag("babysit.findings", str(len(findings))), RunTag("babysit.status", status)]
        if history.stop_reason:
            tags.append(RunTag("babysit.stop_reason", history.stop_reason[:_MAX_VALUE]))
        metrics = []
        if history.best_epoch is not None:
            best = history.best_epoch
            metrics.append(self._mlflow.entities.Metric("best_val_acc", float(best["val_acc"]),
                                                        int(time.time() * 1000), int(best["epoch"])))
        for i in range(0, len(tags), _PARAMS_PER_BATCH):
            self._client.log_batch(self.run_id, tags=tags[i : i + _PARAMS_PER_BATCH],
                                   metrics=metrics if i == 0 else [])

    def __repr__(self) -> str:
        return f"MLflowLogger({redact_url(self.tracking_uri)!r}, experiment={self.experiment!r})"


def _key(name: str) -> str:
    """A metric, param or tag name MLflow accepts (letters, digits and ``_ - . / : space``)."""
    return re.sub(r"[^\w\-./: ]", "_", name)
