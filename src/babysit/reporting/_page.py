"""Everything the page shows, gathered from a History and its run folder as plain values (no HTML here).

``build_page`` returns a dict for the template: summary tiles and facts, findings as cards, the gradient
check and sanity tables, the figures (as functions not yet drawn), the search and the config. Every part
is optional: a part whose data is missing is left out, so the report never fails because a stage did
not run.

The search section reads ``history.sections["search"]`` (or ``search.json`` in a search folder); the
least it needs is ``trials``; ``babysit.search``'s own ``search.json`` (numbered stages, ``scale`` in the
space, Finding warnings, per-trial ``run_dir``) is read as it is::

    {"trials": [{"number": 0, "params": {"lr": 0.01, "reg": 1e-4}, "value": 0.93,
                 "state": "complete",                 # complete | pruned | diverged | failed | ...
                 "stage": "coarse",                   # or a stage number, named from "stages" below
                 "train_loss": [2.1, 1.4, ...],       # optional: per-epoch loss for the overlay, else read
                 "run_dir": "trials/000",             #   from <run_dir>/history.json (relative to the folder)
                 "curve": [0.61, 0.83, ...]}, ...],   # optional: per-epoch validation accuracy (fallback)
     "warnings": ["lr: best value 0.9 at the upper edge ...", or a Finding dict, ...],
     "space": {"lr": {"low": 1e-6, "high": 1.0, "log": true | "scale": "log"}, ...},  # optional: range edges
     "stages": [{"index": 1, "epochs": 1}, ...],       # optional: names numbered stages
     "metric": "validation accuracy", "strategy": "coarse_to_fine",  # optional
     "search_dir": "../demo-search"}  # optional: where run_dir is relative to, when a run's History holds this
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babysit._io import read_json
from babysit.history import History
from babysit.reporting import figures

log = logging.getLogger("babysit")

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
VERDICT_CLASS = {"ideal": "good", "ok": "good", "pass": "good", "suspicious": "warn", "wrong": "bad", "fail": "bad"}
# Finding code -> lecture item (docs/lecture.md); a finding may also carry its own "lecture".
LECTURE = {
    "gradient_mismatch": "G", "gradient_tiny": "G6", "initial_loss_unexpected": "S1",
    "regularization_not_increasing_loss": "S2", "cannot_overfit_small_subset": "S3", "loss_diverged": "B2",
    "lr_too_high": "B2", "lr_too_low": "B2", "loss_noisy": "B2", "overfitting": "B3", "underfitting": "B3",
    "train_val_mismatch": "B3", "no_learning": "B2 B3", "softmax_before_loss": "S1", "inputs_not_normalized": "B5",
    "gradient_accumulation": "B4", "update_ratio_too_high": "B4", "update_ratio_too_low": "B4",
    "vanishing_activations": "B5", "exploding_activations": "B5", "saturated_activations": "B5",
    "dead_units": "B5", "vanishing_gradients": "B5", "exploding_gradients": "B5", "frozen_parameters": "B4",
    "regularization_dominates": "G8", "eval_nondeterministic": "G9", "best_at_range_edge": "H4",
}


@dataclass(frozen=True)
class FigureSpec:
    """A figure of the page: where it goes, what it shows, and how to draw it (called at render time)."""

    id: str
    group: str
    title: str
    lecture: str
    caption: str
    draw: Callable[[], Any]


def build_page(history: History, folder: Path | None) -> dict[str, Any]:
    """The template's values for one run (``folder`` supplies the checkpoint and config.toml)."""
    search = history.sections.get("search") if isinstance(history.sections.get("search"), Mapping) else None
    if search is not None:
        search = with_loss_curves(search, folder)
    return {
        "title": _run_name(history, folder),
        "status": history.status,
        "stop_reason": history.stop_reason,
        "generated": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
        "subtitle": _subtitle(history),
        "tiles": summary_tiles(history) or search_tiles(search),
        "facts": summary_facts(history),
        "findings": gather_findings(history),
        "skipped_rules": skipped_rules(history),
        "gradcheck": [_gradcheck(r) for r in _as_list(history.sections.get("gradcheck"))],
        "sanity": _sanity(history.sections.get("sanity")),
        "figures": figure_specs(history, folder, search),
        "layers": [_layer_row(layer) for layer in history.layers if isinstance(layer, Mapping)],
        "search": _search(search),
        "config_text": _config_text(history, folder),
        "model_repr": history.meta.get("model_repr"),
        "has_training": bool(history.epochs or history.steps.get("step")),
    }


# --- summary -----------------------------------------------------------------------------------------------------
def _run_name(history: History, folder: Path | None) -> str:
    config = history.meta.get("config") or {}
    name = config.get("name") if isinstance(config, Mapping) else None
    return str(name or (folder.name if folder is not None else "babysit run"))


def _subtitle(history: History) -> str:
    m = history.meta
    parts = [str(m["model"]) if m.get("model") else None, _spec_name(m.get("optimizer")),
             _spec_name(m.get("schedule")), (m.get("data") or {}).get("name")]
    return " · ".join(p for p in parts if p)


def _spec_name(spec: Any) -> str | None:
    if isinstance(spec, Mapping):
        return str(spec.get("name")) if spec.get("name") else None
    return None if spec is None else str(spec)


def pct(x: Any) -> str:
    return f"{100 * x:.1f}%" if _num(x) else "–"


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def summary_tiles(history: History) -> list[dict[str, str]]:
    """The big numbers on top: final accuracies, best epoch, final loss, time, device."""
    last, best = history.last, history.best_epoch
    planned = history.meta.get("epochs")
    tiles = []
    if last is not None:
        tiles.append({"label": "validation accuracy", "value": pct(last.get("val_acc")),
                      "note": f"after epoch {last['epoch']}"})
        tiles.append({"label": "training accuracy", "value": pct(last.get("train_acc")),
                      "note": _gap_note(last)})
        if best is not None:
            tiles.append({"label": "best epoch", "value": str(best["epoch"]),
                          "note": f"validation {pct(best['val_acc'])}"})
        tiles.append(_loss_tile(last))
        seconds = sum(e.get("seconds") or 0.0 for e in history.epochs)
        done = f"{len(history.epochs)} of {planned} epochs" if planned else f"{len(history.epochs)} epochs"
        tiles.append({"label": "time", "value": duration(seconds), "note": done})
    device = history.meta.get("device")
    if device:
        tiles.append({"label": "device", "value": str(device), "note": str(history.meta.get("device_name", ""))})
    return tiles


def _loss_tile(last: Mapping[str, Any]) -> dict[str, str]:
    """The final training loss next to the validation loss: the data loss when an L2 term is added, since
    the validation loss has none."""
    val = f"validation {_fmt(last.get('val_loss'), '.3f')}"
    data, total = last.get("data_loss"), last.get("train_loss")
    if _num(data) and _num(total) and total - data > 1e-12:
        return {"label": "final data loss", "value": _fmt(data, ".3f"), "note": f"{val} · with L2 {total:.3f}"}
    return {"label": "final loss", "value": _fmt(total, ".3f"), "note": val}


def _gap_note(last: Mapping[str, Any]) -> str:
    train, val = last.get("train_acc"), last.get("val_acc")
    return f"gap {100 * (train - val):+.1f} pts" if _num(train) and _num(val) else ""


def _fmt(x: Any, spec: str) -> str:
    return format(x, spec) if _num(x) else "–"


def search_tiles(search: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The big numbers of a search folder, which has no training of its own."""
    if search is None:
        return []
    from babysit.reporting._compute import trials

    found = trials(search)
    scored = [t for t in found if not math.isnan(t.value)]
    tiles = [{"label": "trials", "value": str(len(found)),
              "note": ", ".join(f"{n} {s}" for s, n in _counts(t.state for t in found).items())}]
    if scored:
        best = max(scored, key=lambda t: t.value)
        tiles.insert(0, {"label": f"best {search.get('metric', 'validation accuracy')}", "value": pct(best.value),
                         "note": f"trial {best.number}" + (f" · {best.stage}" if best.stage else "")})
    if search.get("strategy"):
        tiles.append({"label": "strategy", "value": str(search["strategy"]).replace("_", " "),
                      "note": f"{len(search.get('stages') or [])} stages" if search.get("stages") else ""})
    return tiles


def _counts(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def summary_facts(history: History) -> list[tuple[str, str]]:
    """How the run was made, as (label, text) pairs."""
    m = history.meta
    facts: list[tuple[str, str]] = []
    if m.get("model"):
        params = f" · {m['num_parameters']:,} parameters" if _num(m.get("num_parameters")) else ""
        facts.append(("model", f"{m['model']}{params}"))
    data = m.get("data")
    if isinstance(data, Mapping):
        facts.append(("data", f"{data.get('name', '?')} · train {data.get('train', '?')} · val "
                      f"{data.get('val', '?')} · test {data.get('test', '?')} · {data.get('num_classes', '?')} "
                      f"classes · {data.get('normalization', '')}"))
    for key in ("optimizer", "schedule", "momentum_annealing"):
        if m.get(key):
            facts.append((key.replace("_", " "), _describe(m[key])))
    for key, label in (("lr", "initial learning rate"), ("reg", "L2 strength (reg)"), ("batch_size", "batch size"),
                       ("loss", "loss"), ("seed", "seed"), ("precision", "precision")):
        if m.get(key) is not None:
            facts.append((label, _describe(m[key])))
    if m.get("device"):
        facts.append(("device", f"{m['device']} ({m.get('device_name', '')})"))
    versions = m.get("versions")
    if isinstance(versions, Mapping):
        facts.append(("versions", " · ".join(f"{k} {v}" for k, v in versions.items())))
    if m.get("started_at"):
        facts.append(("started", str(m["started_at"])))
    if history.stop_reason:
        facts.append(("stopped", history.stop_reason))
    return facts


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):  # unset switches (None, False, 0) are left out: they are the defaults
        name = value.get("name")
        rest = ", ".join(f"{k}={_describe(v)}" for k, v in value.items()
                         if k != "name" and v is not None and v is not False and not (_num(v) and v == 0))
        return f"{name} ({rest})" if name and rest else str(name or rest)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# --- findings and checks -----------------------------------------------------------------------------------------
def gather_findings(history: History) -> list[dict[str, Any]]:
    """Every finding of the run and of the other stages, errors first, without duplicates."""
    sources: list[tuple[str, Any]] = [("training", f) for f in history.findings]
    for stage in ("sanity", "gradcheck", "search"):
        for section in _as_list(history.sections.get(stage)):
            extra = list(section.get("findings", [])) if isinstance(section, Mapping) else []
            if stage == "sanity" and isinstance(section, Mapping):  # each check carries its own finding
                checks = [c for c in section.get("checks", []) if isinstance(c, Mapping)]
                extra += [c["finding"] for c in checks if c.get("finding")]
            if stage == "search" and isinstance(section, Mapping):
                extra = [*extra, *(_warning(w) for w in section.get("warnings", []))]
            sources += [(stage, f) for f in extra]
    cards, seen = [], set()
    for source, raw in sources:
        card = _card(raw, source)
        if card is not None and (card["code"], card["message"]) not in seen:
            seen.add((card["code"], card["message"]))
            cards.append(card)
    return sorted(cards, key=lambda c: SEVERITY_ORDER.get(c["severity"], 3))


def skipped_rules(history: History) -> list[dict[str, Any]]:
    """The diagnosis rules that cannot judge this run, each with the quantities it needs that were not recorded
    (``fit(monitor={"skip": [...]})``, ``monitor=False``); nothing for a history without training."""
    if not history.epochs:
        return []
    from babysit.diagnose import skipped_rules as skipped

    try:
        return [{"code": code, "needs": needs} for code, needs in skipped(history).items()]
    except Exception as exc:  # a note must not cost the report
        log.warning("report: the skipped rules could not be listed: %s: %s", type(exc).__name__, exc)
        return []


def _card(raw: Any, source: str) -> dict[str, Any] | None:
    if hasattr(raw, "to_dict"):
        raw = raw.to_dict()
    if not isinstance(raw, Mapping):
        return None
    code = str(raw.get("code", "note"))
    severity = str(raw.get("severity", "info")).lower()
    evidence = raw.get("evidence") if isinstance(raw.get("evidence"), Mapping) else {}
    return {
        "code": code,
        "severity": severity if severity in SEVERITY_ORDER else "info",
        "message": str(raw.get("message", "")),
        "suggestion": str(raw.get("suggestion") or raw.get("advice") or ""),
        "lecture": str(raw.get("lecture") or LECTURE.get(code, "")),
        "evidence": [(str(k), _evidence_value(v)) for k, v in evidence.items()][:8],
        "source": source,
    }


def _warning(raw: Any) -> Any:
    """A search warning as a finding: Finding dicts as they are, plain strings as a warning card."""
    return raw if isinstance(raw, Mapping) else {"code": "search_warning", "severity": "warning", "message": str(raw)}


def _evidence_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        text = ", ".join(_evidence_value(v) for v in value[:6])
        return f"[{text}{', …' if len(value) > 6 else ''}]"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _as_list(section: Any) -> list[Any]:
    if section is None:
        return []
    return list(section) if isinstance(section, (list, tuple)) else [section]


def _gradcheck(report: Any) -> dict[str, Any]:
    report = report if isinstance(report, Mapping) else {}
    rows = []
    for r in report.get("rows", []):
        verdict = str(r.get("verdict", ""))
        rows.append({
            "name": str(r.get("name", "")), "part": "reg" if r.get("part") == "regularization" else r.get("part", ""),
            "shape": "×".join(str(s) for s in r.get("shape", [])) or "scalar", "checked": r.get("checked", ""),
            "max_rel_error": _fmt(r.get("max_rel_error"), ".1e"), "kinks": r.get("kinks", 0),
            "grad_abs_max": _fmt(r.get("grad_abs_max"), ".1e"),
            "verdict": verdict + (" · tiny" if r.get("tiny") else ""),
            "cls": VERDICT_CLASS.get(verdict, "warn"), "worst": r.get("worst") or "",
            "seconds": _fmt(r.get("seconds"), ".2f") if r.get("seconds") is not None else "",
            "module": str(r.get("module") or ""),
        })
    meta = report.get("meta") or {}
    verdict = str(report.get("verdict", ""))
    return {
        "verdict": verdict, "cls": VERDICT_CLASS.get(verdict, "warn"), "rows": rows,
        "max_rel_error": _fmt(report.get("max_rel_error"), ".1e"),
        "failures": [str(f) for f in report.get("failures", [])[:8]],
        "timed": any(r["seconds"] for r in rows),  # per-tensor timings: big models checked where each tensor sits
        "meta": ", ".join(f"{k} {_describe(meta[k])}" for k in ("method", "layer", "dtype", "h", "evaluations",
                                                                 "seconds", "warmup_steps")
                          if meta.get(k) is not None),
    }


def _sanity(section: Any) -> dict[str, Any] | None:
    if not isinstance(section, Mapping) or not section.get("checks"):
        return None
    checks = []
    for c in section["checks"]:
        if not isinstance(c, Mapping):
            continue
        passed = c.get("passed")
        checks.append({
            "name": str(c.get("name", "")), "expected": _evidence_value(c.get("expected", "")),
            "observed": _evidence_value(c.get("observed", "")), "message": str(c.get("message", "")),
            "verdict": "pass" if passed else "fail" if passed is not None else "skipped",
            "cls": "good" if passed else "bad" if passed is not None else "warn",
            "lecture": str(c.get("lecture", "")),
        })
    ok = section.get("ok", all(c["verdict"] == "pass" for c in checks))
    return {"ok": bool(ok), "checks": checks}


def _layer_row(layer: Mapping[str, Any]) -> dict[str, str]:
    extra = {k: v for k, v in layer.items() if k not in ("name", "type", "depth") and v not in (None, [], "")}
    return {"name": str(layer.get("name", "")), "type": str(layer.get("type", "")),
            "depth": str(layer.get("depth", "")),
            "details": ", ".join(f"{k} {_evidence_value(v)}" for k, v in list(extra.items())[:4])}


# --- figures -------------------------------------------------------------------------------------------------------
def figure_specs(history: History, folder: Path | None, search: Mapping[str, Any] | None) -> list[FigureSpec]:
    """The figures in the lecture's order (a spec whose ``draw`` returns None is left out)."""
    h = history
    specs = [
        FigureSpec("loss", "loss", "Loss against epochs", "B1 · B2",
                   "A low learning rate gives a slow, almost linear decrease; a high one drops fast and stalls at "
                   "a worse loss; a very high one explodes. The per-step wiggle grows as the batch shrinks. The "
                   "log scale shows the late part and compares runs.", lambda: figures.loss_curves(h)),
        FigureSpec("accuracy", "accuracy", "Training vs validation accuracy", "B3",
                   "A large gap means overfitting: more regularization, more dropout, more data. Validation "
                   "tracking a low training accuracy means too little capacity.", lambda: figures.accuracy_gap(h)),
        FigureSpec("update-ratio", "ratios", "Update-to-weight ratio", "B4",
                   "norm(actual update) / norm(W) for every parameter tensor. About 1e-3 is healthy (green band); "
                   "much lower: the learning rate is too low; much higher: too high.",
                   lambda: figures.update_ratios(h)),
        FigureSpec("activations", "distributions", "Activation distributions", "B5",
                   "They should look alike from layer to layer. Collapsing towards 0 layer after layer means the "
                   "weights are too small; tanh units should spread over [-1, 1], not sit at 0 or at ±1; ReLU "
                   "units stuck at 0 are dead.", lambda: figures.activation_histograms(h)),
        FigureSpec("gradients", "distributions", "Gradient distributions", "B5",
                   "Gradients that narrow or widen layer after layer vanish or explode on their way back.",
                   lambda: figures.gradient_histograms(h)),
        FigureSpec("depth", "distributions", "Spread through depth", "B5",
                   "The standard deviation of activations and gradients per layer should stay of one order "
                   "through the depth, at initialisation and at the end.", lambda: figures.std_by_depth(h)),
        FigureSpec("filters", "filters", "First-layer weights", "B6",
                   "Smooth, clean and diverse filters mean training goes well; noisy ones point to too little "
                   "training, a bad learning rate or too little regularization.",
                   lambda: _filters_figure(h, folder)),
        FigureSpec("loss-parts", "loss parts", "Data loss and regularization loss", "G8",
                   "The regularization term should not swamp the data loss; when it does, the model mostly "
                   "learns to shrink its weights.", lambda: figures.loss_parts(h)),
        FigureSpec("lr", "schedule", "Learning-rate schedule", "A1–A3",
                   "The rate the update rule used at every step: constant, step, exponential or 1/t decay "
                   "(and the momentum when it is annealed).", lambda: figures.lr_schedule(h)),
    ]
    if folder is not None and (Path(folder) / "lr_find.json").is_file():  # babysit lr-find wrote it here
        specs.append(FigureSpec("lr-find", "lr find", "Learning-rate range test", "B2",
                                "The loss while the rate rose exponentially on a copy of the model: flat where the "
                                "rate is too low, falling fast where it is good, stalling where it is high and "
                                "exploding where it is far too high. The suggestion stays below the explosion.",
                                lambda: _lr_find_figure(folder)))
    if search is not None:
        specs += [
            FigureSpec("search-loss", "search", "Loss curves by learning rate", "B2 · H5",
                       "Each trial's training loss per epoch, coloured by its learning rate (log scale); a trial "
                       "that a later stage continued is drawn once, over all its epochs, and a one-epoch trial is a "
                       "dot. Other hyperparameters vary too, so read the colours as a trend: too low a rate leaves "
                       "the loss high, a good one drops it fast, far too high explodes (dashed, along the top). "
                       "Without loss curves, the validation accuracy per epoch is drawn instead.",
                       lambda: figures.loss_by_learning_rate(search)),
            FigureSpec("search-scatter", "search", "Validation accuracy against each hyperparameter", "H2 – H5",
                       "Scale-like hyperparameters on log axes; coarse and fine stages apart. A best value at the "
                       "edge of its range (dotted lines) means the range should be widened.",
                       lambda: figures.search_scatter(search)),
            FigureSpec("search-importance", "search", "Which hyperparameters mattered", "H2 · H5",
                       "Each hyperparameter's share of the variation in validation accuracy (Optuna's fANOVA), on "
                       "the stage with the most trials (one range per parameter; a diverged trial counts at the "
                       "stage's worst accuracy). Give the top one the finest range next time; one near zero can be "
                       "fixed at its best value.",
                       lambda: figures.search_importance(search)),
            FigureSpec("search-contour", "search", "Accuracy over the two that mattered most", "H4 · H5",
                       "Validation accuracy interpolated between the trials of that stage (dots; the best starred). "
                       "A good region cut off by the plot's edge means the range should move that way.",
                       lambda: figures.search_contour(search)),
        ]
    return specs


def _lr_find_figure(folder: Path | None) -> Any:
    from babysit.reporting.lr_find_figure import lr_find_figure

    return None if folder is None else lr_find_figure(read_json(Path(folder) / "lr_find.json"))


def _filters_figure(history: History, folder: Path | None) -> Any:
    found = first_layer_weights(folder, history)
    if found is None:
        return None
    name, weights = found
    shape = (history.meta.get("data") or {}).get("input_shape")
    return figures.first_layer_filters(weights, shape, name=name)


def first_layer_weights(folder: Path | None, history: History | None = None) -> tuple[str, Any] | None:
    """(layer name, weights as a NumPy array) of the first weight matrix or conv kernel in the run's last
    checkpoint (a search trial keeps only its best), or None (no checkpoint, or no such layer). The History
    holds no weights; the checkpoint does."""
    if folder is None:
        return None
    path = next((p for p in (folder / "checkpoints" / f"{w}.pt" for w in ("last", "best")) if p.is_file()), None)
    if path is None:
        return None
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)["model"]
    except Exception as exc:  # a checkpoint being replaced, or damaged: the figure is left out
        log.debug("report: no first-layer weights from %s: %s", path, exc)
        return None
    for key, tensor in state.items():
        if key.endswith("weight") and getattr(tensor, "ndim", 0) in (2, 4):
            return key.removesuffix(".weight") or key, tensor.detach().float().numpy()
    return None


# --- search and config -------------------------------------------------------------------------------------------
def _search(search: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if search is None:
        return None
    from babysit.reporting._compute import trials

    found = trials(search)
    names = sorted({p for t in found for p in t.params})
    ordered = sorted(found, key=lambda t: (math.isnan(t.value), -t.value if not math.isnan(t.value) else 0))
    rows = [{"number": t.number, "stage": t.stage, "state": t.state, "epochs": t.epochs,
             "value": _fmt(t.value, ".4f"), "params": [_param(t.params.get(n)) for n in names],
             "cls": "good" if t.state == "complete" else "warn" if t.state == "pruned" else "bad"}
            for t in ordered[:50]]
    warnings = len(search.get("warnings") or [])  # shown with the findings on top
    best = ordered[0] if ordered and not math.isnan(ordered[0].value) else None
    return {
        "rows": rows, "names": names, "count": len(found), "more": max(0, len(found) - 50),
        "warnings": warnings, "strategy": str(search.get("strategy", "")),
        "metric": str(search.get("metric", "validation accuracy")),
        "best": None if best is None else {"value": _fmt(best.value, ".4f"), "number": best.number,
                                           "params": ", ".join(f"{k}={_param(v)}" for k, v in best.params.items())},
        "stages": sorted({t.stage for t in found if t.stage}),
    }


MAX_TRIAL_HISTORIES = 40  # trial folders read for the loss overlay (each read costs a JSON parse)


def with_loss_curves(search: Mapping[str, Any], folder: Path | None) -> Mapping[str, Any]:
    """The search with each trial's per-epoch training loss, read from the history in the trial's ``run_dir``
    (relative to the search folder: ``folder``, or ``search_dir`` relative to ``folder`` when a run's History
    carries the search, as the demo's does) when the trial does not carry ``train_loss`` itself."""
    raw = search.get("trials") or []
    if folder is None or not raw or all(not isinstance(t, Mapping) or t.get("train_loss") for t in raw):
        return search
    if search.get("search_dir"):  # an absolute search_dir stays absolute
        folder = Path(folder) / str(search["search_dir"])
    from babysit.errors import BabysitError
    from babysit.history import History, holds_history

    trials, read = [], 0
    for t in raw:
        if isinstance(t, Mapping) and not t.get("train_loss") and t.get("run_dir") and read < MAX_TRIAL_HISTORIES:
            path = Path(folder) / str(t["run_dir"])  # an absolute run_dir stays absolute
            if holds_history(path):
                read += 1
                try:
                    epochs = History.load(path).epochs
                    t = {**t, "train_loss": [e.get("train_loss") for e in epochs]}
                except (OSError, ValueError, BabysitError) as exc:
                    log.debug("report: no curve from %s: %s", path, exc)
        trials.append(t)
    return {**search, "trials": trials}


def _param(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "–" if value is None else str(value)


def _config_text(history: History, folder: Path | None) -> str | None:
    if folder is not None and (folder / "config.toml").is_file():
        return (folder / "config.toml").read_text(encoding="utf-8")
    config = history.meta.get("config")
    if isinstance(config, Mapping) and config:
        try:
            import tomli_w

            return tomli_w.dumps(dict(config))
        except Exception:  # values TOML cannot hold: show them one per line instead
            return "\n".join(f"{k} = {v!r}" for k, v in config.items())
    settings = {k: history.meta[k] for k in ("optimizer", "lr", "reg", "schedule", "epochs", "batch_size", "seed")
                if history.meta.get(k) is not None}
    return "\n".join(f"{k} = {_describe(v)}" for k, v in settings.items()) or None


def group_titles(specs: Sequence[FigureSpec]) -> list[str]:
    return list(dict.fromkeys(s.group for s in specs))
