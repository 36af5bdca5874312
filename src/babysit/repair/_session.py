"""``doctor``: diagnose, apply the best-supported config fix, rerun, verify; repeated within a budget.

The lecture's process as a loop: check the gradients and sanity first (lecture G, S), then a short babysat
run and its diagnosis (B). A code-level fault stops there with its instruction: no config change may hide it.
Otherwise the fix of the first finding in ``remedies.PRIORITY`` is applied and a short run repeated; the fix is
kept only when its finding is gone and validation accuracy rose by more than the split's noise
(``verify.judge``), else reverted and the next fix tried. Every attempt is its own run folder.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from babysit import losses
from babysit.config import RunConfig, config_from_dict, load_config
from babysit.errors import ConfigError
from babysit.findings import Finding
from babysit.repair import remedies
from babysit.repair._plan import candidates
from babysit.repair.attempt import Attempt, DataSource, ModelSource, Sources, run_attempt
from babysit.repair.result import DoctorResult, claim_folder
from babysit.repair.verify import LOUD, judge

__all__ = ["doctor"]

log = logging.getLogger("babysit")
Progress = Callable[[str, dict[str, Any]], None]


def doctor(
    config: RunConfig | str | Path | dict[str, Any],
    *,
    model: ModelSource = None,
    data: DataSource = None,
    epochs: int = 8,
    rounds: int = 5,
    budget_s: float = 600.0,
    out_dir: str | Path | None = None,
    checks: bool = True,
    on_progress: Progress | None = None,
) -> DoctorResult:
    """Diagnose a training set-up, try config fixes one at a time, keep only those that verifiably help.

    Args:
        config: a RunConfig, a TOML path or a config dict (the ``[data] [model] [train] [optimizer]`` tables).
        model: None (built from ``[model]``), a function ``cfg -> nn.Module`` (it sees every fix), or an
            ``nn.Module`` (copied per attempt; fixes under ``model.*`` then become instructions).
        data: None (loaded from ``[data]``), a function ``cfg -> DataBundle``, or a DataBundle.
        epochs: epochs of every short run (at most the config's own).
        rounds: the most fixes tried.
        budget_s: wall-clock seconds for everything; no attempt starts that would likely end past it.
        out_dir: the doctor's folder (default ``<runs_dir>/<name>-doctor``, a free ``-N`` when taken).
        checks: run the gradient check and the sanity checks first.
        on_progress: called as ``on_progress(event, details)`` (the CLI prints them).

    Returns:
        A :class:`DoctorResult`: ``status`` (``nothing_to_repair``, ``repaired``, ``improved``, ``code_level``,
        ``not_repaired``, ``interrupted``), the attempts, the repaired config, what was wrong and changed.
    """
    cfg = _as_config(config)
    emit = on_progress or (lambda event, details: log.info("doctor: %s %s", event, details))
    started = time.perf_counter()
    sources = Sources(model, data)
    folder = claim_folder(Path(out_dir) if out_dir is not None else cfg.run_dir.with_name(f"{cfg.name}-doctor"))
    short = max(1, min(int(epochs), cfg.train.epochs))
    result = DoctorResult(folder=str(folder), original=cfg.saved_dict(), fixed=cfg.saved_dict(), epochs=short)
    try:
        if checks:
            result.checks = _checks(cfg, sources, emit)
        _treat(cfg, sources, result, folder, short, rounds, budget_s, started, emit)
    except KeyboardInterrupt:
        result.status = "interrupted"
        raise
    finally:
        result.seconds = time.perf_counter() - started
        result.save()
    return result


def _as_config(config: RunConfig | str | Path | dict[str, Any]) -> RunConfig:
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, dict):
        return config_from_dict(dict(config))
    if isinstance(config, (str, Path)):
        return load_config(config)
    raise ConfigError(f"doctor needs a RunConfig, a TOML path or a config dict, got {type(config).__name__}.")


def _treat(cfg: RunConfig, sources: Sources, result: DoctorResult, folder: Path, epochs: int, rounds: int,
           budget_s: float, started: float, emit: Progress) -> None:
    """The baseline run, then fixes one at a time while findings with a config fix remain."""
    emit("attempt", {"index": 0, "label": "as given"})
    current = run_attempt(cfg, folder / "00-baseline", index=0, label="as given", epochs=epochs, sources=sources)
    current.kept = True
    result.attempts.append(current)
    emit("done", {"attempt": current})
    cache: dict[str, Any] = {}
    tried: set[str] = set()
    code_level = _code_level(cfg, sources, current, result.checks)
    result.code_level = code_level
    if code_level:
        result.status = "code_level"
        result.remaining = [f for f in current.findings if f.get("severity") in LOUD]
        return
    if not current.loud_codes():
        result.status = "nothing_to_repair"
        return
    while len(result.attempts) <= rounds:
        if time.perf_counter() - started + 1.5 * current.seconds > budget_s:
            result.note = f"stopped: the budget of {budget_s:.0f} s would be spent before another run ended"
            break
        candidate = _next_fix(cfg, current, sources, tried, cache, folder, emit)
        if candidate is None:
            break
        code, fix, reason = candidate
        index = len(result.attempts)
        label = remedies.describe_fix(fix)
        emit("attempt", {"index": index, "label": label, "code": code})
        trial_cfg = remedies.apply_fix(cfg, fix)
        attempt = run_attempt(trial_cfg, folder / f"{index:02d}-{_slug(code)}", index=index, label=label,
                              epochs=epochs, sources=sources, fix=fix, code=code, reason=reason)
        verdict = judge(code, current.best_val_acc, attempt.best_val_acc, attempt.n_val, attempt.loud_codes())
        attempt.kept, attempt.verdict = verdict.kept, verdict.why
        result.attempts.append(attempt)
        emit("done", {"attempt": attempt})
        if verdict.kept:
            cfg, current = trial_cfg, attempt
            result.fixed = cfg.saved_dict()
            result.changes.append({"code": code, "fix": fix, "reason": reason, "verdict": verdict.why})
            tried = set()
            if not current.loud_codes():
                break
    result.remaining = [f for f in current.findings if f.get("severity") in LOUD]
    result.status = ("repaired" if not result.remaining else "improved") if result.changes else \
        "not_repaired"


def _next_fix(cfg: RunConfig, current: Attempt, sources: Sources, tried: set[str], cache: dict[str, Any],
              folder: Path, emit: Progress) -> tuple[str, dict[str, Any], str] | None:
    """The best-supported fix not yet tried (``_plan.candidates``), skipping those that change nothing or cannot
    reach the run (a model or data the caller built)."""
    for code, fix, reason in candidates(cfg, current, lambda c: _range_test(c, sources, cache, folder, emit)):
        key = remedies.describe_fix(fix)
        if key in tried or _unreachable(fix, sources) or _no_change(cfg, fix):
            continue
        tried.add(key)
        return code, fix, reason
    return None


def _range_test(cfg: RunConfig, sources: Sources, cache: dict[str, Any], folder: Path, emit: Progress) -> Any:
    """The range test of this config (once per config), saved beside the attempts; None when it failed."""
    key = str(sorted(cfg.model_dump(exclude_none=True).items(), key=str))
    if key not in cache:
        from babysit.train.lr_find import lr_find

        emit("lr_find", {})
        bundle = sources.bundle(cfg)
        try:
            found = lr_find(sources.model_for(cfg, bundle), bundle, optimizer=cfg.optimizer_spec(),
                            loss_fn=cfg.train.loss, reg=cfg.train.reg, batch_size=cfg.train.batch_size,
                            device=cfg.device, seed=cfg.seed)
        except Exception as exc:  # the remedies' own steps are still there to try
            log.warning("doctor: the learning-rate range test failed (%s: %s)", type(exc).__name__, exc)
            found = None
        else:
            found.save(folder / f"lr_find-{len(cache)}")
            emit("lr_found", {"result": found})
        cache[key] = found
    return cache[key]


def _unreachable(fix: dict[str, Any], sources: Sources) -> bool:
    return any(sources.fixed(key.split(".")[0]) for key in fix)


def _no_change(cfg: RunConfig, fix: dict[str, Any]) -> bool:
    raw = cfg.model_dump()
    for key, value in fix.items():
        node: Any = raw
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node != value:
            return False
    return True


def _code_level(cfg: RunConfig, sources: Sources, baseline: Attempt, checks: dict[str, Any]) -> list[dict[str, Any]]:
    """Faults only code can fix: from the checks and the baseline run's diagnosis, each with its instruction."""
    found = [*checks.get("findings", []), *baseline.findings]
    out, seen = [], set()
    for raw in found:
        f = Finding.from_dict(raw)
        if f.severity not in LOUD or f.code in seen:
            continue
        remedy = remedies.remedy_for(f, cfg)
        if remedy is None:
            continue
        if remedy.code_level or (remedy.fixes and all(_unreachable(fix, sources) for fix in remedy.fixes)):
            # a module or bundle the caller built is not described by the config: the rule's own advice holds
            instruction = remedy.instruction or f"change it in your code: {f.suggestion or remedy.reason}"
            seen.add(f.code)
            out.append({"code": f.code, "severity": f.severity, "message": f.message, "instruction": instruction,
                        "fix": None})
    return out


def _checks(cfg: RunConfig, sources: Sources, emit: Progress) -> dict[str, Any]:
    """The gradient check (3 examples) and the sanity checks of the config's fresh model (lecture G, S)."""
    from babysit import gradcheck, sanity

    emit("checks", {})
    bundle = sources.bundle(cfg)
    loss_fn = losses.resolve(cfg.train.loss)
    X, y = bundle.X_train[:3], bundle.y_train[:3]
    grad = gradcheck.check_module(sources.model_for(cfg, bundle), loss_fn, X, y, samples=8)
    checked = sanity.run(sources.model_for(cfg, bundle), cfg.train.loss, bundle, num_classes=bundle.num_classes,
                         regularization=cfg.train.reg or None)
    findings = [f.to_dict() for f in (*grad.findings, *checked.findings)]
    result = {"gradcheck": grad.verdict, "gradcheck_max_rel_error": _finite(grad.max_rel_error),
              "sanity_ok": checked.ok, "sanity": [{"name": c.name, "passed": c.passed, "message": c.message}
                                                  for c in checked.checks], "findings": findings}
    emit("checked", result)
    return result


def _finite(x: float) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def _slug(code: str) -> str:
    return code.replace("_", "-")
