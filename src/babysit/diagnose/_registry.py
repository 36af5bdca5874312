"""The rule registry: ``@rule(code)`` puts a pure function ``History -> list[Finding]`` under its code.

A rule returns the findings it sees (usually none or one) and never raises on missing data: a rule that
needs per-layer statistics the History does not hold simply returns ``[]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from babysit.findings import Finding
from babysit.history import History

RuleFn = Callable[[History], list[Finding]]


@dataclass(frozen=True)
class Rule:
    """A registered rule: the code it reports, the lecture item it implements, and the function."""

    code: str
    lecture: str
    fn: RuleFn

    def __call__(self, history: History) -> list[Finding]:
        return self.fn(history)


RULES: dict[str, Rule] = {}


def rule(code: str, lecture: str = "") -> Callable[[RuleFn], RuleFn]:
    """Register ``fn`` as the rule for ``code`` (one rule per code, one place per rule)."""

    def register(fn: RuleFn) -> RuleFn:
        if code in RULES:
            raise ValueError(f"a rule for {code!r} is already registered ({RULES[code].fn.__name__})")
        RULES[code] = Rule(code, lecture, fn)
        return fn

    return register
