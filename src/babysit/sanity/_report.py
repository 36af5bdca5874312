"""The records sanity checks return: one ``SanityCheck`` per lecture item, gathered in a ``SanityReport``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from babysit.findings import Finding


@dataclass(frozen=True)
class SanityCheck:
    """One check before training.

    Attributes:
        name: ``initial_loss`` (S1), ``regularization_increases_loss`` (S2) or ``overfit_tiny`` (S3).
        passed: True or False; None when the check could not apply (e.g. a custom loss has no expected value).
        expected: what a correct set-up gives (a number, or a description).
        observed: what this set-up gave.
        message: one sentence with the numbers.
        finding: the Finding when it failed, else None.
        details: further numbers (e.g. the loss at every regularization strength).
    """

    name: str
    passed: bool | None
    expected: Any
    observed: Any
    message: str
    finding: Finding | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "passed": self.passed, "expected": self.expected, "observed": self.observed,
            "message": self.message, "finding": None if self.finding is None else self.finding.to_dict(),
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class SanityReport:
    """The checks of :func:`babysit.sanity.run`, in lecture order; ``ok`` when none failed."""

    checks: list[SanityCheck]

    @property
    def ok(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    @property
    def findings(self) -> list[Finding]:
        return [c.finding for c in self.checks if c.finding is not None]

    def __getitem__(self, name: str) -> SanityCheck:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no sanity check {name!r}; checks: {[c.name for c in self.checks]}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``History.sections["sanity"]``."""
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}

    def __str__(self) -> str:
        marks = {True: "pass", False: "FAIL", None: "skip"}
        lines = [f"sanity checks: {'ok' if self.ok else 'FAILED'}"]
        lines += [f"  [{marks[c.passed]}] {c.name}: {c.message}" for c in self.checks]
        return "\n".join(lines)
