"""The judging half of babysitting: pure rules from a :class:`History` to :class:`Finding` records.

One rule per finding code (``RULES``), one module per family (loss, accuracy, ratios, distributions,
set-up), every threshold in :mod:`babysit.diagnose.thresholds` with its source. Rules read only the
History, so they work the same on a live run, a run folder from disk, or a scripted history in a test.

Example:
    >>> from babysit.testing.histories import make_history
    >>> h = make_history(train_loss=[2.3, 2.1, 5.0, 80.0, float("inf")])
    >>> [f.code for f in diagnose(h, rules=["loss_diverged"])]
    ['loss_diverged']
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from babysit._names import unknown_name
from babysit.diagnose import accuracy_rules, distribution_rules, loss_rules, ratio_rules, setup_rules, thresholds
from babysit.diagnose._registry import RULES, Rule, rule
from babysit.errors import ConfigError
from babysit.findings import Finding
from babysit.history import History

__all__ = ["RULES", "Rule", "diagnose", "rule", "thresholds"]
_ = (accuracy_rules, distribution_rules, loss_rules, ratio_rules, setup_rules)  # importing them registers the rules
log = logging.getLogger("babysit")
_ORDER = {"error": 0, "warning": 1, "info": 2}


def diagnose(history: History, rules: Iterable[str] | None = None) -> list[Finding]:
    """Run the rules on ``history`` and return their findings, errors first.

    Args:
        history: a run's History (``babysit.fit``'s, ``Monitor.history``, ``History.load(run_dir)``).
        rules: finding codes of the rules to run (default: all of ``RULES``).

    Returns:
        The findings, sorted by severity (error, warning, info) and then by rule order.

    Raises:
        ConfigError: a name in ``rules`` is not a rule's code.
    """
    names = list(RULES) if rules is None else list(rules)
    for name in names:
        if name not in RULES:
            raise ConfigError(unknown_name("diagnosis rule", name, RULES))
    findings: list[Finding] = []
    for name in names:
        try:
            findings.extend(RULES[name](history))
        except Exception:  # a rule must never take the run's results down with it
            log.exception("diagnosis rule %s failed on this history; its finding is missing", name)
    if rules is None and history.epochs and not any(k.startswith(("act/", "ratio/")) for k in history.series):
        findings.append(Finding(
            "layer_statistics_missing", "info",
            "no per-layer statistics were recorded (monitor off), so only the loss and accuracy curves were judged",
            {}, "train with monitor=True (the default) to have every layer babysat"))
    return sorted(findings, key=lambda f: _ORDER[f.severity])
