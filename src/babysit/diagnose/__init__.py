"""The judging half of babysitting: pure rules from a :class:`History` to :class:`Finding` records.

One rule per finding code (``RULES``), one module per family (loss, accuracy, ratios, distributions,
set-up), every threshold in :mod:`babysit.diagnose.thresholds` with its source. Rules read only the
History, so they work the same on a live run, a run folder from disk, or a scripted history in a test.

Each rule declares the Monitor quantities it needs (``Rule.needs``); :func:`run_rules` runs the rules
whose quantities were recorded and reports the others as skipped with what they need, so a quantity left
out (``fit(monitor={"skip": ["dead_fraction"]})``) switches its rules off visibly, never silently.

Example:
    >>> from babysit.testing.histories import make_history
    >>> h = make_history(train_loss=[2.3, 2.1, 5.0, 80.0, float("inf")])
    >>> [f.code for f in diagnose(h, rules=["loss_diverged"])]
    ['loss_diverged']
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from babysit._names import unknown_name
from babysit.diagnose import accuracy_rules, distribution_rules, loss_rules, ratio_rules, setup_rules, thresholds
from babysit.diagnose._registry import RULES, Rule, rule
from babysit.errors import ConfigError
from babysit.findings import Finding
from babysit.history import History
from babysit.quantities import ActivationMoments, DeadFraction, Saturation, UpdateRatio

__all__ = ["RULES", "Diagnosis", "Rule", "diagnose", "rule", "run_rules", "skipped_rules", "thresholds"]
_ = (accuracy_rules, distribution_rules, loss_rules, ratio_rules, setup_rules)  # importing them registers the rules
log = logging.getLogger("babysit")
_ORDER = {"error": 0, "warning": 1, "info": 2}
# per-layer statistics: without any of these only the loss and accuracy curves can be judged
_LAYER_STATISTICS = ((ActivationMoments, None), (DeadFraction, None), (Saturation, None), (UpdateRatio, "ratio"))


@dataclass(frozen=True)
class Diagnosis:
    """What :func:`run_rules` found, and what it could not judge.

    Attributes:
        findings: the findings, errors first (what :func:`diagnose` returns).
        skipped: ``{rule code: [quantity names it needs that were not recorded]}``, in rule order.
        recorded: the quantities the History holds (``History.recorded_quantities()``).
    """

    findings: list[Finding]
    skipped: dict[str, list[str]] = field(default_factory=dict)
    recorded: list[str] = field(default_factory=list)


def run_rules(history: History, rules: Iterable[str] | None = None) -> Diagnosis:
    """Run the rules on ``history``: those whose quantities were recorded, reporting the others as skipped.

    Args:
        history: a run's History (``babysit.fit``'s, ``Monitor.history``, ``History.load(run_dir)``).
        rules: finding codes of the rules to run (default: all of ``RULES``).

    Returns:
        A :class:`Diagnosis`: the findings sorted by severity (error, warning, info) and then by rule order,
        and the rules skipped with the quantities each needs.

    Raises:
        ConfigError: a name in ``rules`` is not a rule's code.
    """
    names = _checked(rules)
    recorded = history.recorded_quantities()
    findings: list[Finding] = []
    skipped: dict[str, list[str]] = {}
    for name in names:
        missing = RULES[name].missing(recorded)
        if missing:
            skipped[name] = missing
            continue
        try:
            findings.extend(RULES[name](history))
        except Exception:  # a rule must never take the run's results down with it
            log.exception("diagnosis rule %s failed on this history; its finding is missing", name)
    if rules is None and history.epochs and not any(history.targets(q, stat) for q, stat in _LAYER_STATISTICS):
        findings.append(Finding(
            "layer_statistics_missing", "info",
            "no per-layer statistics were recorded (monitor off), so only the loss and accuracy curves were judged",
            {}, "train with monitor=True (the default) to have every layer babysat"))
    return Diagnosis(sorted(findings, key=lambda f: _ORDER[f.severity]), skipped, recorded)


def diagnose(history: History, rules: Iterable[str] | None = None) -> list[Finding]:
    """Run the rules on ``history`` and return their findings, errors first.

    Args:
        history: a run's History (``babysit.fit``'s, ``Monitor.history``, ``History.load(run_dir)``).
        rules: finding codes of the rules to run (default: all of ``RULES``).

    Returns:
        The findings, sorted by severity (error, warning, info) and then by rule order. Rules whose quantities
        were not recorded are left out; :func:`run_rules` says which.

    Raises:
        ConfigError: a name in ``rules`` is not a rule's code.
    """
    return run_rules(history, rules).findings


def skipped_rules(history: History, rules: Iterable[str] | None = None) -> dict[str, list[str]]:
    """``{rule code: [missing quantity names]}`` of the rules :func:`run_rules` would skip (runs no rule)."""
    recorded = history.recorded_quantities()
    return {name: missing for name in _checked(rules) if (missing := RULES[name].missing(recorded))}


def _checked(rules: Iterable[str] | None) -> list[str]:
    names = list(RULES) if rules is None else list(rules)
    for name in names:
        if name not in RULES:
            raise ConfigError(unknown_name("diagnosis rule", name, RULES))
    return names
