"""What every experiment tracker callback sends, computed from the History alone (no tracker imported).

The MLflow and Weights & Biases callbacks (and TensorBoard's hyperparameters) share these pieces: the
hyperparameters of a run, a cursor over the History that hands out only what is new since the last epoch,
the findings as JSON, Markdown and a code -> severity table, the files of the run folder worth keeping,
and the import of an optional package with an error that names its install command.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babysit.errors import ConfigError
from babysit.findings import SEVERITIES
from babysit.history import History

__all__ = ["EPOCH_KEYS", "NewPoints", "finding_severities", "findings_markdown", "flatten", "hyperparameters",
           "import_tracker", "is_main_process", "run_files"]

EPOCH_KEYS = ("train_loss", "val_loss", "data_loss", "reg_loss", "train_acc", "val_acc", "val_acc_ema", "lr",
              "momentum")
# facts of history.meta that describe the machine or the moment, not a setting of the run
_NOT_SETTINGS = ("model_repr", "started_at", "train_acc_method", "device_name")
_DATA_FACTS = ("name", "num_classes", "train", "val", "test", "normalization")
_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
RUN_FILES = ("report.html", "config.toml")  # inside the run folder, kept with the tracker's run when present


def import_tracker(package: str) -> Any:
    """Import ``package`` (``mlflow``, ``wandb``) or raise a ConfigError naming the install command."""
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise ConfigError(
            f"this callback needs the {package} package ({exc}). Install it with "
            f"pip install 'babysit[trackers]' (or pip install {package})."
        ) from None


def is_main_process() -> bool:
    """False on the processes of a DistributedDataParallel run other than rank 0 (they would log twice)."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def hyperparameters(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a run from ``history.meta`` (nested): fit's arguments, the model, the data, the versions
    and, for a run from a TOML file, the whole config (already redacted)."""
    params: dict[str, Any] = {}
    for key, value in meta.items():
        if key in _NOT_SETTINGS or value is None:
            continue
        if key == "data" and isinstance(value, Mapping):
            value = {k: value[k] for k in _DATA_FACTS if value.get(k) is not None}
        if key == "config" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k != "redacted"}
        params[key] = value
    return params


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """Nested settings as ``{"optimizer.name": "sgd", ...}``; lists become their text, None is left out."""
    flat: dict[str, str | int | float | bool] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (str, int, float, bool)):
            flat[name] = value
        elif value is not None:
            flat[name] = str(value)
    return flat


class NewPoints:
    """A cursor over a History: each call hands out only the epochs and step points not handed out before.

    Points are remembered by step number, not by position, since the Monitor thins a long series (every other
    point dropped) and the step columns merge buckets: positions move, step numbers do not.
    """

    def __init__(self) -> None:
        self.epochs = 0  # epochs handed out
        self.last_step: dict[str, int] = {}  # per series (and "step/loss", "step/lr"): the last step handed out

    def new_epochs(self, history: History) -> list[tuple[int, dict[str, float]]]:
        """``(epoch, {"train_loss": ..., ...})`` for every epoch since the last call (finite numbers only)."""
        out = []
        for record in history.epochs[self.epochs:]:
            numbers = {k: float(record[k]) for k in EPOCH_KEYS if _finite(record.get(k))}
            out.append((int(record["epoch"]), numbers))
        self.epochs = len(history.epochs)
        return out

    def new_steps(self, history: History) -> dict[int, dict[str, float]]:
        """``{step: {key: value}}`` of the per-step loss and learning rate (``step/loss``, ``step/lr``) and every
        monitor series (``act/fc1/std``, ``ratio/fc1.weight``, ...) recorded since the last call, by step."""
        by_step: dict[int, dict[str, float]] = {}
        columns = history.steps
        for name in ("loss", "lr"):
            self._take(f"step/{name}", columns.get("step", []), columns.get(name, []), by_step)
        for key, series in history.series.items():
            self._take(key, series.get("step", []), series.get("value", []), by_step)
        return dict(sorted(by_step.items()))

    def _take(self, key: str, steps: list[Any], values: list[Any], into: dict[int, dict[str, float]]) -> None:
        last = self.last_step.get(key, -1)  # a point at step 0 (before the first update) counts too
        for step, value in zip(steps, values):
            if step > last and _finite(value):
                into.setdefault(int(step), {})[key] = float(value)
                self.last_step[key] = int(step)

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "last_step": dict(self.last_step)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epochs = int(state.get("epochs", 0))
        self.last_step = {str(k): int(v) for k, v in dict(state.get("last_step", {})).items()}


def finding_severities(findings: list[dict[str, Any]]) -> dict[str, str]:
    """``{code: severity}``, the highest severity of each code (``info`` < ``warning`` < ``error``)."""
    out: dict[str, str] = {}
    for f in findings:
        code, severity = str(f.get("code")), str(f.get("severity"))
        if _RANK.get(severity, 0) >= _RANK.get(out.get(code, "info"), 0):
            out[code] = severity
    return out


def findings_markdown(findings: list[dict[str, Any]], status: str) -> str:
    """The findings of a run as a Markdown page (code, severity, what was seen, what to try)."""
    lines = [f"# babysit findings ({status})", ""]
    if not findings:
        lines.append("No findings: nothing looks wrong.")
    for f in findings:
        lines.append(f"- **{f.get('severity')}** `{f.get('code')}`: {f.get('message')}")
        if f.get("suggestion"):
            lines.append(f"  - try: {f['suggestion']}")
    return "\n".join(lines) + "\n"


def run_files(history: History) -> list[Path]:
    """The files of the run folder a tracker keeps with its run (the report, the config), those that exist."""
    if history.run_dir is None:
        return []
    return [Path(history.run_dir) / name for name in RUN_FILES if (Path(history.run_dir) / name).is_file()]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
