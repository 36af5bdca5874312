"""The facts of a run that the report and a later reader need: what was trained, how, and where."""

from __future__ import annotations

import datetime as _dt
import platform
from typing import Any

import torch
from torch import nn

TRAIN_ACC_METHOD = (
    "running accuracy over the epoch's mini-batches, from the scores the training step already computed "
    "(training mode: dropout on, weights changing during the epoch); validation accuracy is measured "
    "after the epoch in evaluation mode"
)


def describe_spec(spec: Any) -> Any:
    """A JSON-ready description of an optimizer / schedule spec (a name, a dict, or a built object)."""
    if spec is None or isinstance(spec, (str, int, float, bool)):
        return spec
    if isinstance(spec, dict):
        return {k: describe_spec(v) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [describe_spec(v) for v in spec]
    if isinstance(spec, torch.optim.Optimizer):
        return {"name": type(spec).__name__, **{k: describe_spec(v) for k, v in spec.defaults.items()}}
    return repr(spec)


def run_meta(model: nn.Module, device: torch.device, **settings: Any) -> dict[str, Any]:
    """Collect the meta block of a History."""
    from babysit import __version__

    return {
        "model": type(model).__name__,
        "model_repr": repr(model),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine() or "cpu",
        "versions": {"babysit": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "train_acc_method": TRAIN_ACC_METHOD,
        **{k: describe_spec(v) for k, v in settings.items()},
    }
