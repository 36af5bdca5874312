"""Finding: the one record every check in babysit reports (gradcheck, sanity, diagnose, search).

A finding reads like a TA's margin note: a stable ``code`` (``gradient_mismatch``, ``regularization_dominates``,
``lr_too_high``, ...; docs/lecture.md says which lecture item each belongs to), a ``severity``, one
sentence a person understands, the raw numbers behind it and what to try next.

Example:
    >>> f = Finding("lr_too_high", "warning", "loss rose from 2.30 to 9.1", {"step": 40}, "lower lr 3-10x")
    >>> f.severity
    'warning'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["SEVERITIES", "Finding", "Severity"]

Severity = Literal["info", "warning", "error"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "error")


@dataclass(frozen=True)
class Finding:
    """One observation with its evidence and a suggestion.

    Args:
        code: Stable snake_case name, e.g. ``"gradient_mismatch"``; codes keep their meaning.
        severity: ``"info"``, ``"warning"`` or ``"error"`` (an error makes a CLI exit with 1).
        message: One sentence with the numbers, e.g. "fc2.weight[3, 7]: analytic 0.0213, ...".
        evidence: The raw numbers behind the message (JSON-friendly values).
        suggestion: What to try, kept apart from the observation.
        fix: Config changes as dotted keys (``{"optimizer.lr": 0.02, "model.init": "he"}``) that should cure
            it, or None: no config change helps (a code-level fault) or none was derived yet. Diagnosis rules
            leave it None; ``babysit.repair.remedies`` fills it in from the code, evidence and config.
    """

    code: str
    severity: Severity
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    suggestion: str = ""
    fix: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got severity={self.severity!r}")
        if not self.code or not self.code.replace("_", "").isalnum() or self.code.lower() != self.code:
            raise ValueError(f"code must be a snake_case name such as 'lr_too_high', got code={self.code!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (evidence copied)."""
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "evidence": dict(self.evidence),
            "suggestion": self.suggestion,
            "fix": None if self.fix is None else dict(self.fix),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """Read back :meth:`to_dict`'s record; older records without ``fix`` (or with ``advice``) load too."""
        fix = data.get("fix")
        return cls(str(data["code"]), data["severity"], str(data.get("message", "")),
                   dict(data.get("evidence") or {}), str(data.get("suggestion") or data.get("advice") or ""),
                   None if fix is None else dict(fix))

    def __str__(self) -> str:
        tail = f" -> {self.suggestion}" if self.suggestion else ""
        return f"[{self.severity}] {self.code}: {self.message}{tail}"
