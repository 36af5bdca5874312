"""Findings in the shapes other frameworks' loggers take (numbers per code, Markdown text); no framework imported."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from babysit.findings import Finding

SEVERITY_LEVELS = {"info": 1, "warning": 2, "error": 3}  # the number a logger gets for a finding's severity


def findings_metrics(findings: list[Finding]) -> dict[str, float]:
    """``babysit/findings`` (the count) and ``babysit/finding/<code>`` = the highest severity of that code (1-3)."""
    metrics: dict[str, float] = {"babysit/findings": float(len(findings))}
    for finding in findings:
        key = f"babysit/finding/{finding.code}"
        metrics[key] = max(metrics.get(key, 0.0), float(SEVERITY_LEVELS[finding.severity]))
    return metrics


def findings_text(findings: list[Finding]) -> str:
    """The findings as Markdown lines (TensorBoard renders a text entry as Markdown)."""
    if not findings:
        return "babysit: no findings."
    lines = []
    for f in findings:
        tail = f" -> {f.suggestion}" if f.suggestion else ""
        lines.append(f"- **{f.severity}** `{f.code}`: {f.message}{tail}")
    return "\n".join(lines)


def metric_number(metrics: Mapping[str, Any], key: str | None) -> float | None:
    """A framework's logged metric as a finite float (a tensor or a float), or None when absent or not finite."""
    value = metrics.get(key) if key else None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
