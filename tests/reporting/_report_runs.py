"""Real short digits runs for the report tests, with every section of the page filled.

``monitored_run`` trains a real model on the digits with ``babysit.fit`` and its ``Monitor``, which fills
the History's per-layer fields (``layers``, ``series``, ``histograms``). ``add_sections`` adds findings, a
real gradient check, the real sanity checks and a real learning-rate sweep as the search section;
``hpsearch_folder`` writes a search folder in ``babysit.search``'s ``search.json`` schema.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

import babysit
import babysit.gradcheck
from babysit.history import History

EVERY = 3  # sample every 3rd step (digits: about 23 steps per epoch)


def digits_mlp(hidden: tuple[int, ...] = (32, 16), activation: str = "relu") -> nn.Module:
    return babysit.models.build("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=list(hidden),
                                activation=activation, seed=0)


def monitored_run(
    run_dir: Path, model: nn.Module | None = None, *, epochs: int = 4, lr: float = 0.05, reg: float = 1e-3,
    callbacks: tuple[Any, ...] = (), **fit_kwargs: Any,
) -> History:
    """A real digits run saved in ``run_dir``, babysat by ``babysit.Monitor`` (sampling often enough for a
    short run to have several points and histogram snapshots per layer)."""
    data = babysit.data.load("digits", seed=0)
    model = model if model is not None else digits_mlp()
    history = babysit.fit(model, data, epochs=epochs, lr=lr, reg=reg, optimizer="momentum", run_dir=run_dir,
                          callbacks=list(callbacks), monitor={"every": EVERY, "histograms_every": 8},
                          **fit_kwargs)
    assert history.series and history.histograms and history.layers, "the Monitor recorded nothing"
    history.meta["data"] = data.summary()
    history.save()
    return history


# --- the other stages' sections --------------------------------------------------------------------------------
FINDINGS = [
    {"code": "overfitting", "severity": "warning",
     "message": "train accuracy 99.6% is 3.9 points above validation accuracy 95.7% at epoch 4",
     "evidence": {"epoch": 4, "train_acc": 0.996, "val_acc": 0.957}, "suggestion": "raise reg 3-10x or add dropout"},
    {"code": "update_ratio_too_low", "severity": "info",
     "message": "fc3.bias moves by 2e-05 of its norm per step", "evidence": {"param": "fc3.bias", "ratio": 2e-05},
     "suggestion": "fine for a bias; for weights raise the learning rate"},
]


def add_sections(history: History, *, search: bool = True) -> History:
    """Fill findings, a real gradient check, a sanity record and (optionally) a real lr sweep; save."""
    history.findings = [dict(f) for f in FINDINGS]
    model = digits_mlp(hidden=(8,))
    X = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 3, 7])
    report = babysit.gradcheck.check_module(model, babysit.losses.resolve("softmax"), X, y, samples=4)
    history.sections["gradcheck"] = report.to_dict()
    history.sections["sanity"] = _sanity(model)
    if search:
        history.sections["search"] = lr_sweep()
    if history.run_dir is not None:
        history.save()
    return history


def _sanity(model: nn.Module) -> dict[str, Any]:
    """The real sanity checks when ``babysit.sanity`` exists, else a record in its ``to_dict`` shape."""
    try:
        from babysit import sanity
    except ImportError:
        sanity = None
    if sanity is not None:
        return sanity.run(model, "softmax", babysit.data.load("digits", seed=0)).to_dict()
    return {
        "ok": False,
        "checks": [
            {"name": "initial_loss", "passed": True, "expected": math.log(10), "observed": 2.3127,
             "message": "loss at initialisation is close to ln(10) for 10 classes"},
            {"name": "regularization_raises_loss", "passed": True, "expected": "> 2.3127", "observed": 2.5391,
             "message": "raising reg from 0 to 1 raised the loss"},
            {"name": "overfit_tiny", "passed": False, "expected": "train acc 1.0", "observed": 0.85,
             "message": "20 examples could not be overfitted in 200 steps",
             "finding": {"code": "cannot_overfit_small_subset", "severity": "error",
                         "message": "20 examples could not be overfitted", "evidence": {"train_acc": 0.85},
                         "suggestion": "look for a bug before training on everything"}},
        ],
    }


def lr_sweep(lrs: tuple[float, ...] = (1e-3, 1e-2, 5e-2, 0.2, 1.0, 3.0), epochs: int = 3) -> dict[str, Any]:
    """A real (tiny) learning-rate sweep on the digits, as the search section's documented dict."""
    data = babysit.data.load("digits", seed=0)
    trials = []
    for i, lr in enumerate(lrs):
        h = babysit.fit(digits_mlp(hidden=(16,)), data, epochs=epochs, lr=lr, monitor=False)
        value = h.best_val_acc
        trials.append({"number": i, "params": {"lr": lr, "reg": 10 ** -(i % 3 + 3)},
                       "value": value, "state": "complete" if h.status == "completed" else "fail",
                       "stage": "coarse" if i < 4 else "fine", "train_loss": h.per_epoch("train_loss")})
    return {"trials": trials, "strategy": "coarse_to_fine", "metric": "validation accuracy",
            "space": {"lr": {"low": 1e-3, "high": 3.0, "log": True}, "reg": {"low": 1e-5, "high": 1e-3, "log": True}},
            "warnings": ["lr: the best value 1.0 is near the upper edge 3.0 of its range; widen the range"]}


def hpsearch_folder(folder: Path, lrs: tuple[float, ...] = (1e-3, 3e-2, 0.3, 1.0, 30.0)) -> dict[str, Any]:
    """A search folder as ``babysit.search`` leaves it (``search.json`` in its schema: numbered stages,
    per-trial folders with their own ``history.json``, validation curves, Finding warnings), from real fits."""
    data = babysit.data.load("digits", seed=0)
    trials = []
    for i, lr in enumerate(lrs):
        run = f"trials/{i:03d}"
        h = babysit.fit(digits_mlp(hidden=(16,)), data, epochs=2, lr=lr, run_dir=folder / run,
                        monitor=False)
        state = "diverged" if h.status == "diverged" else "complete"
        trials.append({"number": i, "params": {"optimizer.lr": lr, "model.hidden": 16 * (1 + i % 2)},
                       "value": h.best_val_acc, "state": state, "stage": 1 if i < 3 else 2, "epochs": len(h.epochs),
                       "curve": h.per_epoch("val_acc"), "run_dir": run})
    search = {
        "format": 1, "strategy": "coarse_to_fine", "status": "done",
        "space": {"optimizer.lr": {"kind": "loguniform", "low": 1e-3, "high": 30.0, "scale": "log"},
                  "model.hidden": {"kind": "logint", "low": 16, "high": 32, "scale": "log"}},
        "stages": [{"index": 1, "epochs": 1}, {"index": 2, "epochs": 2}],
        "trials": trials,
        "warnings": [{"code": "best_at_range_edge", "severity": "warning",
                      "message": "optimizer.lr: the best value sits at the upper edge of its range",
                      "evidence": {"param": "optimizer.lr"}, "suggestion": "widen the range upwards"}],
    }
    (folder / "search.json").write_text(json.dumps(search), encoding="utf-8")
    return search
