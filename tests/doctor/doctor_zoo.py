"""The doctor's zoo: sick configs a config change cures, code-level faults, and healthy configs.

Real data only: the digits (8x8 images) and two scikit-learn tables, breast cancer and wine, written to CSV
files and read through the config's CSV source. Every sick entry names its healthy twin: the config a
person would have written, against which a repair is measured (best validation accuracy within 2 points).
``bench/doctor.py`` runs the whole zoo over three seeds; ``tests/doctor`` a representative few.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from babysit import data, models
from babysit.config import RunConfig, config_from_dict
from babysit.repair import doctor
from babysit.repair.attempt import Sources, run_attempt

DIGITS: dict[str, Any] = {"data": {"source": "digits"}, "model": {"hidden": [128, 64]},
                          "optimizer": {"name": "nesterov", "lr": 0.05}, "train": {"epochs": 10}}
CANCER: dict[str, Any] = {"data": {"source": "{csv}/breast_cancer.csv", "label": "label"}, "model": {"hidden": [64]},
                          "optimizer": {"name": "nesterov", "lr": 0.01}, "train": {"epochs": 12, "batch_size": 32}}
WINE: dict[str, Any] = {"data": {"source": "{csv}/wine.csv", "label": "label", "val_fraction": 0.3},
                        "model": {"hidden": [64]}, "optimizer": {"name": "nesterov", "lr": 0.01},
                        "train": {"epochs": 20, "batch_size": 16}}


@dataclass(frozen=True)
class Entry:
    """One zoo entry: a base config, the sick changes, the healthy twin's changes, and who builds the model.

    ``kind``: ``config`` (a config change cures it), ``code`` (only code can: ``fix`` None, nothing repaired)
    or ``healthy`` (left unchanged).
    """

    name: str
    kind: str
    base: dict[str, Any]
    sick: dict[str, Any] = field(default_factory=dict)
    healthy: dict[str, Any] = field(default_factory=dict)
    model: Callable[[RunConfig], nn.Module] | None = None
    data: Callable[[RunConfig], data.DataBundle] | None = None
    expected: tuple[str, ...] = ()  # codes the doctor should name (any of them)

    def config(self, seed: int, csv_dir: Path, which: str = "sick") -> dict[str, Any]:
        """The entry's config dict (``which``: ``sick`` or ``healthy``) for one seed."""
        raw = _merge(copy.deepcopy(self.base), self.sick if which == "sick" else self.healthy)
        raw["data"]["source"] = raw["data"]["source"].format(csv=csv_dir)
        return {**raw, "name": f"{self.name}-s{seed}", "seed": seed, "device": "cpu"}


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for key, value in changes.items():
        section, _, leaf = key.partition(".")
        base.setdefault(section, {})[leaf] = value
    return base


def write_tables(folder: Path) -> Path:
    """Write scikit-learn's breast cancer and wine tables as CSV files (features, then ``label``)."""
    from sklearn.datasets import load_breast_cancer, load_wine

    folder.mkdir(parents=True, exist_ok=True)
    for name, loader in (("breast_cancer", load_breast_cancer), ("wine", load_wine)):
        X, y = loader(return_X_y=True)
        header = ",".join([*(f"f{i}" for i in range(X.shape[1])), "label"])
        rows = np.column_stack([X, y])
        np.savetxt(folder / f"{name}.csv", rows, delimiter=",", header=header, comments="",
                   fmt=["%.6g"] * X.shape[1] + ["%d"])
    return folder


# --- code-level faults: models and data only code can fix ------------------------------------------------------
def _config_model(cfg: RunConfig) -> nn.Module:
    bundle = data.load(cfg.data.source, **cfg.data_options())
    return models.build(cfg.model.kind, input_shape=bundle.input_shape, num_classes=bundle.num_classes,
                        seed=cfg.seed, **cfg.model_options())


def softmax_model(cfg: RunConfig) -> nn.Module:
    """A classifier that ends in a softmax although the loss applies its own."""
    return nn.Sequential(_config_model(cfg), nn.Softmax(dim=1))


def frozen_first_layer(cfg: RunConfig) -> nn.Module:
    """The first layer's weights frozen by mistake (requires_grad left off)."""
    model = _config_model(cfg)
    model.fc1.requires_grad_(False)
    return model


class AlwaysDropout(nn.Module):
    """A custom layer that forgets ``self.training``: dropout on even in evaluation mode."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, p=0.3, training=True)


def hardcoded_dropout(cfg: RunConfig) -> nn.Module:
    m = _config_model(cfg)
    return nn.Sequential(m.flatten, m.fc1, m.act1, AlwaysDropout(), m.fc2, m.act2, m.fc3)


def shuffled_labels(cfg: RunConfig) -> data.DataBundle:
    """The training labels shuffled against their inputs (a broken data pipeline)."""
    b = data.load(cfg.data.source, **cfg.data_options())
    perm = torch.randperm(len(b.y_train), generator=torch.Generator().manual_seed(cfg.seed + 1))
    return data.DataBundle(X_train=b.X_train, y_train=b.y_train[perm], X_val=b.X_val, y_val=b.y_val,
                           num_classes=b.num_classes, name=f"{b.name}-shuffled")


# --- the zoo -----------------------------------------------------------------------------------------------------
SICK: list[Entry] = [
    Entry("digits_lr_far_too_high", "config", DIGITS, {"optimizer.lr": 5.0}, expected=("loss_diverged",)),
    Entry("digits_lr_too_high_adam", "config", DIGITS, {"optimizer.name": "adam", "optimizer.lr": 0.1},
          {"optimizer.name": "adam", "optimizer.lr": 1e-3}, expected=("lr_too_high", "update_ratio_too_high")),
    Entry("digits_lr_far_too_low", "config", DIGITS, {"optimizer.lr": 1e-5},
          expected=("lr_too_low", "update_ratio_too_low")),
    Entry("digits_tiny_init_deep_tanh", "config", DIGITS,
          {"model.hidden": [64] * 6, "model.activation": "tanh", "model.init": "normal", "model.init_std": 0.01},
          {"model.hidden": [64] * 6, "model.activation": "tanh", "model.init": "xavier"},
          expected=("vanishing_activations", "vanishing_gradients")),
    Entry("digits_huge_init_deep_relu", "config", DIGITS,
          {"model.hidden": [64] * 5, "model.init": "normal", "model.init_std": 1.0, "optimizer.lr": 0.01},
          {"model.hidden": [64] * 5, "optimizer.lr": 0.01}, expected=("exploding_activations", "loss_diverged")),
    Entry("digits_huge_init_saturated_tanh", "config", DIGITS,
          {"model.activation": "tanh", "model.init": "normal", "model.init_std": 2.0, "optimizer.lr": 0.02},
          {"model.activation": "tanh", "model.init": "xavier", "optimizer.lr": 0.02},
          expected=("saturated_activations",)),
    Entry("digits_reg_far_too_strong", "config", DIGITS, {"train.reg": 1.0}, expected=("regularization_dominates",)),
    Entry("digits_raw_inputs", "config", DIGITS, {"data.normalize": "none"}, expected=("inputs_not_normalized",)),
    Entry("digits_small_batch_high_rate", "config", DIGITS, {"train.batch_size": 4, "optimizer.lr": 0.5},
          expected=("loss_diverged", "lr_too_high")),
    Entry("digits_dying_relu", "config", DIGITS, {"model.bias_init": -5.0}, expected=("dead_units",)),
    Entry("digits_deep_sigmoid", "config", DIGITS,
          {"model.hidden": [64] * 8, "model.activation": "sigmoid", "model.init": "xavier", "optimizer.name": "sgd"},
          {"model.hidden": [64] * 8, "optimizer.name": "sgd"}, expected=("vanishing_gradients", "no_learning")),
    Entry("cancer_lr_far_too_high", "config", CANCER, {"optimizer.lr": 20.0}, expected=("loss_diverged",)),
    Entry("cancer_raw_inputs", "config", CANCER, {"data.normalize": "none"}, expected=("inputs_not_normalized",)),
    Entry("cancer_reg_far_too_strong", "config", CANCER, {"train.reg": 3.0}, expected=("regularization_dominates",)),
    Entry("cancer_lr_far_too_low", "config", CANCER, {"optimizer.lr": 1e-6},
          expected=("lr_too_low", "update_ratio_too_low")),
    Entry("cancer_tiny_init_deep_tanh", "config", CANCER,
          {"model.hidden": [32] * 6, "model.activation": "tanh", "model.init": "normal", "model.init_std": 0.01},
          {"model.hidden": [32] * 6, "model.activation": "tanh", "model.init": "xavier"},
          expected=("vanishing_activations", "vanishing_gradients", "no_learning")),
    Entry("wine_raw_inputs", "config", WINE, {"data.normalize": "none"}, expected=("inputs_not_normalized",)),
    Entry("wine_lr_far_too_high", "config", WINE, {"optimizer.lr": 20.0}, expected=("loss_diverged",)),
]
CODE: list[Entry] = [
    Entry("digits_softmax_before_loss", "code", DIGITS, model=softmax_model, expected=("softmax_before_loss",)),
    Entry("digits_frozen_first_layer", "code", DIGITS, model=frozen_first_layer, expected=("frozen_parameters",)),
    Entry("digits_dropout_at_eval", "code", DIGITS, model=hardcoded_dropout, expected=("eval_nondeterministic",)),
    Entry("digits_shuffled_labels", "code", DIGITS, data=shuffled_labels, expected=("no_learning",)),
    Entry("cancer_softmax_before_loss", "code", CANCER, model=softmax_model, expected=("softmax_before_loss",)),
]
HEALTHY: list[Entry] = [
    Entry("digits_nesterov", "healthy", DIGITS),
    Entry("digits_adam", "healthy", DIGITS, {"optimizer.name": "adam", "optimizer.lr": 1e-3}),
    Entry("digits_tanh_xavier", "healthy", DIGITS, {"model.activation": "tanh", "model.init": "xavier",
                                                    "optimizer.name": "momentum", "optimizer.lr": 0.02}),
    Entry("cancer_nesterov", "healthy", CANCER),
    Entry("wine_nesterov", "healthy", WINE),
]
ZOO: list[Entry] = [*SICK, *CODE, *HEALTHY]
BY_NAME: dict[str, Entry] = {e.name: e for e in ZOO}


# --- judging an outcome (the bench and the tests) ------------------------------------------------------------
TOLERANCE = 0.02  # a repair's best validation accuracy within 2 points of the healthy twin's


def full_accuracy(raw: dict[str, Any], folder: Path) -> float | None:
    """Best validation accuracy of a config trained for its own number of epochs."""
    cfg = config_from_dict(raw)
    return run_attempt(cfg, folder, index=0, label="full", epochs=cfg.train.epochs, sources=Sources()).best_val_acc


def run_entry(entry: Entry, seed: int, csv_dir: Path, work: Path) -> dict[str, Any]:
    """Doctor one entry for one seed and judge the outcome."""
    given = entry.config(seed, csv_dir)
    given["runs_dir"] = str(work)
    started = time.perf_counter()
    result = doctor(config_from_dict(given), model=entry.model, data=entry.data, budget_s=600)
    seconds = time.perf_counter() - started
    changed = result.fixed != result.original
    row: dict[str, Any] = {"entry": entry.name, "kind": entry.kind, "seed": seed, "status": result.status,
                           "seconds": round(seconds, 1), "changes": [c["fix"] for c in result.changes],
                           "named": sorted({f["code"] for f in result.findings})}
    if entry.kind == "config":
        fixed = {k: v for k, v in result.fixed.items() if k != "redacted"}
        healthy = entry.config(seed, csv_dir, "healthy") | {"runs_dir": str(work)}
        row["repaired_acc"] = full_accuracy(fixed, work / f"{entry.name}-{seed}-repaired")
        row["healthy_acc"] = full_accuracy(healthy, work / f"{entry.name}-{seed}-healthy")
        row["ok"] = changed and (row["repaired_acc"] or 0) >= (row["healthy_acc"] or 0) - TOLERANCE
    elif entry.kind == "code":
        named = {c["code"] for c in result.code_level if c.get("fix") is None}
        row["code_level"] = sorted(named)
        row["ok"] = not changed and result.status == "code_level" and bool(named & set(entry.expected))
    else:
        row["ok"] = not changed
    return row
