"""``babysit demo tabular|images|text``: the lecture's stages on workloads beyond the digits.

- ``tabular``: scikit-learn's wine and breast-cancer tables written as CSV files, read back by the CSV reader,
  an MLP each.
- ``images``: the generated ``shapes32`` images (six shapes, 32x32 colour) and a ResNet with batch norm.
- ``text``: a character-level transformer language model on the standard library's own source.

Each runs the gradient check, the sanity checks, the babysat training with its diagnosis, and the report; the
search is the digits demo's (it would multiply these runs' time).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from babysit.cli._common import console

FAMILIES = ("digits", "tabular", "images", "text")
_BASE: dict[str, Any] = {"seed": 0}


def family_configs(family: str, runs_dir: Path) -> list[dict[str, Any]]:
    """The runs a family's demo trains (one per data set), as config dicts; ``examples/*.toml`` hold the same."""
    if family == "tabular":
        return [_tabular(table, runs_dir) for table in ("wine", "breast_cancer")]
    if family == "images":
        return [{**_BASE, "name": "demo-images", "data": {"source": "shapes32"},
                 "model": {"kind": "resnet", "args": {"width": 8, "depth": 1, "stages": 3, "norm": True, "skip": True}},
                 "train": {"loss": "softmax", "reg": 1e-4, "epochs": 12, "batch_size": 32},
                 "optimizer": {"name": "nesterov", "lr": 0.1, "momentum": 0.9},
                 "schedule": {"name": "cosine", "epochs": 12}}]
    return [{**_BASE, "name": "demo-text", "data": {"source": "pysource", "normalize": "none"},
             "model": {"kind": "transformer", "args": {"n_layer": 2, "d_model": 64, "n_head": 4}},
             "train": {"loss": "softmax", "reg": 0.0, "epochs": 8, "batch_size": 32},
             "optimizer": {"name": "adam", "lr": 3e-3},
             "schedule": {"name": "cosine", "epochs": 8}}]


def _tabular(table: str, runs_dir: Path) -> dict[str, Any]:
    csv_path = runs_dir / "demo-tabular-data" / f"{table}.csv"
    return {**_BASE, "name": f"demo-{table}",
            "data": {"source": str(csv_path), "label": "label", "normalize": "standardize"},
            "model": {"kind": "mlp", "hidden": [64], "init": "xavier"},  # He starts wine at 1.8x ln 3
            "train": {"loss": "softmax", "reg": 1e-3, "epochs": 20, "batch_size": 32},
            "optimizer": {"name": "nesterov", "lr": 0.02, "momentum": 0.9}}


def run_family(family: str, runs_dir: Path, *, epochs: int | None, progress: bool) -> list[Any]:
    """Run every stage of ``family``'s demo; return the Histories of its trainings."""
    from babysit.cli import demo
    from babysit.config import config_from_dict

    histories = []
    for raw in family_configs(family, runs_dir):
        raw = {**raw, "runs_dir": str(runs_dir)}
        if epochs is not None:  # and a cosine schedule over the epochs that run
            raw["train"] = {**raw["train"], "epochs": epochs}
            if "epochs" in raw.get("schedule", {}):
                raw["schedule"] = {**raw["schedule"], "epochs": epochs}
        started = time.perf_counter()
        console.rule(f"[bold]{raw['name']}[/]: {raw['data']['source']} with a {raw['model']['kind']}")
        if family == "tabular":
            _write_table(Path(raw["data"]["source"]))
        cfg = config_from_dict(raw, source=f"demo {family}")
        sections = {"gradcheck": demo._stage_gradcheck(cfg)}
        sections["sanity"] = demo._stage_sanity(cfg)
        if family == "text":
            history, model = _train_sequences(cfg, progress)
            console.print("the trained model continues [bold]'def '[/]:", highlight=False)
            console.print(repr("def " + sample(model, "def ", 120)), highlight=False, markup=False)
        else:
            history = demo._stage_train(cfg, progress)
        report = demo._stage_report(history, sections)
        console.print(f"{raw['name']}: {time.perf_counter() - started:.0f} s, report [bold]{report}[/]")
        histories.append(history)
    return histories


def _write_table(path: Path) -> None:
    from babysit.data.tabular import write_csv

    write_csv(path.stem, path)
    console.print(f"wrote {path} (header row, features, class index in column 'label')", highlight=False)


def _train_sequences(cfg: Any, progress: bool) -> tuple[Any, nn.Module]:
    """Train a language model as ``babysit train`` would, keeping the model to sample from it afterwards."""
    import tomli_w

    from babysit.cli._common import print_run_summary
    from babysit.cli.diagnose import print_findings
    from babysit.reporting import LiveReport
    from babysit.train.from_config import CONFIG_FILE, choose_run_dir, fit_arguments, prepare
    from babysit.train.loop import fit

    console.rule("[bold]4. training[/] (L-U L-A L-B): next character at every position, every layer watched")
    prepared = prepare(cfg)
    folder = choose_run_dir(cfg, resume=False, overwrite=True)
    (folder / CONFIG_FILE).write_text(tomli_w.dumps(cfg.saved_dict()), encoding="utf-8")
    arguments = fit_arguments(cfg)
    arguments["callbacks"] += [LiveReport()]
    options = arguments["options"]
    arguments["options"] = replace(options, progress=progress, meta={**options.meta, "data": prepared.bundle.summary()})
    bundle = prepared.bundle
    history = fit(prepared.model, bundle, run_dir=folder, **arguments)
    print_run_summary(history, console.print)
    print_findings(history.findings)
    return history, prepared.model


@torch.no_grad()
def sample(model: nn.Module, prompt: str, length: int = 200, *, temperature: float = 0.7, seed: int = 0) -> str:
    """Continue ``prompt`` with a pysource language model, drawing each character from its softmax at
    ``temperature`` (seeded; always taking the likeliest character repeats itself: "ath ath ath")."""
    from babysit.data.pysource import decode, encode

    model.eval()
    generator = torch.Generator().manual_seed(seed)
    ids = torch.as_tensor(encode(prompt))[None]  # (1, T)
    block = getattr(model, "block_size", ids.shape[1])
    for _ in range(length):
        scores = model(ids[:, -block:])[:, -1]  # (1, V): the next character's scores
        probs = torch.softmax(scores / temperature, dim=-1)
        ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return decode(ids[0, len(prompt):])
