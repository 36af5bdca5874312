"""Scripted histories: a :class:`History` written by hand, for testing diagnosis rules without training.

``make_history`` takes per-epoch lists (``train_loss``, ``val_acc``, ...) and per-layer series, and fills
in what a real run would hold (steps, an MLP's layer and parameter records, the Monitor's section), so a
rule test is one line of arrange, one call, one assert.

Example:
    >>> h = make_history(train_loss=[2.3, 2.1, 5.0, 80.0, float("inf")])
    >>> [f.code for f in h.diagnose(rules=["loss_diverged"])]
    ['loss_diverged']
    >>> h = make_history(series={"act/act1/dead": [0.9, 0.95, 0.97]})
    >>> [f.code for f in h.diagnose(rules=["dead_units"])]
    ['dead_units']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from babysit.history import History

__all__ = ["make_history", "mlp_layers"]


def mlp_layers(hidden: int = 2, activation: str = "relu", width: int = 64, inputs: int = 64,
               classes: int = 10) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(layers, parameters)`` records of an MLP ``fc1, act1, ..., fc<hidden+1>`` as the Monitor writes them."""
    layers: list[dict[str, Any]] = []
    params: list[dict[str, Any]] = []
    fan_in = inputs
    for i in range(1, hidden + 2):
        out = width if i <= hidden else classes
        layers.append({"name": f"fc{i}", "type": "Linear", "kind": "weighted",
                       "activation": activation if i <= hidden else None, "params": [f"fc{i}.weight", f"fc{i}.bias"]})
        params.append({"name": f"fc{i}.weight", "shape": [out, fan_in], "numel": out * fan_in, "fan_in": fan_in,
                       "requires_grad": True, "in_optimizer": True})
        params.append({"name": f"fc{i}.bias", "shape": [out], "numel": out, "fan_in": None,
                       "requires_grad": True, "in_optimizer": True})
        if i <= hidden:
            kind = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}.get(activation, activation.title())
            layers.append({"name": f"act{i}", "type": kind, "kind": "activation", "activation": activation,
                           "params": []})
        fan_in = out
    for depth, layer in enumerate(layers):
        layer["depth"] = depth
    return layers, params


def _series(values: Sequence[float] | Mapping[str, Sequence[float]], every: int) -> dict[str, list[float]]:
    if isinstance(values, Mapping):
        return {"step": list(values["step"]), "value": list(values["value"])}
    return {"step": [1 + i * every for i in range(len(values))], "value": list(values)}


def make_history(
    *,
    train_loss: Sequence[float] | None = None,
    val_loss: Sequence[float] | None = None,
    train_acc: Sequence[float] | None = None,
    val_acc: Sequence[float] | None = None,
    data_loss: Sequence[float] | None = None,
    reg_loss: Sequence[float] | None = None,
    step_loss: Sequence[float] | None = None,
    lr: float = 0.01,
    reg: float = 0.0,
    steps_per_epoch: int = 10,
    series: Mapping[str, Sequence[float] | Mapping[str, Sequence[float]]] | None = None,
    every: int = 5,
    layers: list[dict[str, Any]] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    num_classes: int | None = 10,
    loss: str = "softmax",
    batch_size: int = 64,
    status: str | None = None,
    sections: Mapping[str, Any] | None = None,
) -> History:
    """Build a History as a run would have recorded it.

    Args:
        train_loss, val_loss, train_acc, val_acc, data_loss, reg_loss: per-epoch values (the longest list
            sets the number of epochs; ``data_loss`` defaults to ``train_loss - reg_loss``).
        step_loss: per-step losses; default: each epoch's train loss repeated ``steps_per_epoch`` times.
        lr, reg, batch_size, loss: the run's settings (meta).
        series: per-layer series, as values at steps ``1, 1 + every, ...`` or ``{"step": [...], "value": [...]}``.
        layers, parameters: the Monitor's records (default: those of ``mlp_layers()``).
        num_classes: the model's output width (the Monitor's ``num_outputs``); None leaves it unknown.
        status: ``completed`` by default, ``diverged`` when a loss is not finite.
        sections: extra sections (e.g. ``{"monitor": {"nonfinite": {...}}}`` merged into the Monitor's).
    """
    columns = {"train_loss": train_loss, "val_loss": val_loss, "train_acc": train_acc, "val_acc": val_acc,
               "data_loss": data_loss, "reg_loss": reg_loss}
    n = max((len(c) for c in columns.values() if c is not None), default=0)
    epochs = []
    for i in range(n):
        record = {k: (list(c)[i] if c is not None and i < len(c) else None) for k, c in columns.items()}
        if record["data_loss"] is None and record["train_loss"] is not None:
            record["data_loss"] = record["train_loss"] - (record["reg_loss"] or 0.0)
        if record["reg_loss"] is None and record["train_loss"] is not None:
            record["reg_loss"] = 0.0
        epochs.append({"epoch": i + 1, **record, "lr": lr, "steps": steps_per_epoch})
    if step_loss is None:
        step_loss = [e["train_loss"] for e in epochs for _ in range(steps_per_epoch) if e["train_loss"] is not None]
    count = len(step_loss)
    steps = {"step": list(range(1, count + 1)), "epoch": [(i + 1) / steps_per_epoch for i in range(count)],
             "loss": [float(x) for x in step_loss], "lr": [lr] * count}
    default_layers, default_params = mlp_layers()
    monitor: dict[str, Any] = {"every": every, "parameters": parameters if parameters is not None else default_params}
    if num_classes is not None:
        monitor["num_outputs"] = num_classes
    history = History(
        epochs=epochs, steps=steps, layers=layers if layers is not None else default_layers,
        series={k: _series(v, every) for k, v in (series or {}).items()},
        meta={"loss": loss, "lr": lr, "reg": reg, "batch_size": batch_size, "steps_per_epoch": steps_per_epoch},
        sections={"monitor": monitor},
    )
    for key, value in (sections or {}).items():
        if key == "monitor":
            monitor.update(value)
        else:
            history.sections[key] = value
    finite = all(isinstance(x, float) and x == x and abs(x) != float("inf") for x in steps["loss"])
    history.status = status or ("completed" if finite else "diverged")
    return history
