"""Ensembles of a search's top models (lecture E1): average their predicted probabilities on the test split.

The search itself only ever looked at the validation split; this is the one place the test split is used,
once, after the search, to report how the top-K models do alone and together.

What it reads is bounded (``_trust``): a member's folder only as ``trials/<name>`` inside the search folder; its
model and data from the search's own config with the member's parameters (checked against the declared space)
when the search passes its objective, else from the ``config.toml`` inside that folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from babysit.hpsearch._errors import SearchError
from babysit.hpsearch._objective import ConfigObjective
from babysit.hpsearch._trust import check_params, trial_folder
from babysit.hpsearch.results import SearchResult, TrialRecord
from babysit.hpsearch.space import space_from_dict

log = logging.getLogger("babysit")


def evaluate_ensemble(
    result: SearchResult, k: int, *, objective: Any = None, space: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Test accuracy of each of the top-``k`` trials and of their averaged softmax probabilities.

    Needs a config search with a folder (each trial saved its best checkpoint there). ``objective`` (the search's
    ConfigObjective) and ``space`` (its declared space): build each member from the search's own config and the
    member's checked parameters instead of the config file in its folder.
    """
    if not isinstance(k, int) or k < 1:
        raise SearchError(f"ensemble needs K >= 1 models, got {k!r}.")
    if result.search_dir is None:
        raise SearchError("an ensemble needs the trials' checkpoints: run the search with a folder (search_dir).")
    members = members_of(result, k)
    if not members:
        raise SearchError("no complete trial with a checkpoint to ensemble (was the objective a config?).")
    if len(members) < k:
        log.warning("only %d complete trials with checkpoints; the ensemble has %d models", len(members), len(members))
    probabilities, rows, y = [], [], None
    for member in members:
        folder = trial_folder(result.search_dir, member.run_dir)
        cfg = None
        if isinstance(objective, ConfigObjective):
            check_params(member.params, None if space is None else space_from_dict(space),
                         what=f"trial {member.number}")
            cfg = objective.trial_config(member.params)
        probs, y = _test_probabilities(folder, cfg)  # type: ignore[arg-type]
        probabilities.append(probs)
        rows.append({
            "number": member.number, "stage": member.stage, "val_acc": member.value, "run_dir": member.run_dir,
            "test_acc": _accuracy(probs, y),
        })
    mean = torch.stack(probabilities).mean(dim=0)
    out = {
        "k": len(members), "split": "test", "n_test": int(y.shape[0]),  # type: ignore[union-attr]
        "test_acc": _accuracy(mean, y),
        "best_member_test_acc": max(r["test_acc"] for r in rows),
        "mean_member_test_acc": sum(r["test_acc"] for r in rows) / len(rows),
        "members": rows,
    }
    log.info("ensemble of %d: test accuracy %.4f (members %.4f on average)", out["k"], out["test_acc"],
             out["mean_member_test_acc"])
    return out


def _test_probabilities(folder: Path, cfg: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    from babysit import models
    from babysit.config import load_config
    from babysit.hpsearch._objective import load_data
    from babysit.train import load_weights

    if cfg is None:
        cfg = load_config(folder / "config.toml")
    bundle = load_data(cfg)
    if bundle.test is None:
        raise SearchError("the data has no test split to evaluate the ensemble on; set data.test_fraction > 0.")
    model = models.build(
        cfg.model.kind, input_shape=bundle.input_shape, num_classes=bundle.num_classes, **cfg.model_options()
    )
    load_weights(folder, model, "best")
    model.eval()
    X, y = bundle.test
    with torch.no_grad():
        probs = torch.softmax(model(X).float(), dim=1)  # (N, C)
    return probs, y


def _accuracy(probs: torch.Tensor, y: torch.Tensor) -> float:
    return float((probs.argmax(dim=1) == y).float().mean())


def members_of(result: SearchResult, k: int) -> list[TrialRecord]:
    """The trials an ensemble of ``k`` would use: the best ``k`` settings, each once. A setting trained in
    two stages (a promoted trial and the shorter one it continued) is the same model twice, no variety."""
    ranked = sorted(result.trials, key=lambda t: (t.value or 0.0, t.last_epoch), reverse=True)
    members: list[TrialRecord] = []
    seen: set[str] = set()
    for t in ranked:
        setting = json.dumps(t.params, sort_keys=True, default=str)
        if t.state == "complete" and t.run_dir is not None and setting not in seen:
            members.append(t)
            seen.add(setting)
    return members[:k]
