"""The rule registry: ``@rule(code, needs=...)`` puts a pure function ``History -> list[Finding]`` under its code.

A rule returns the findings it sees (usually none or one) and never raises on missing data. It declares the
Monitor quantities (:mod:`babysit.quantities`) it reads: ``needs`` are those it cannot judge without (when
one was not recorded, :func:`babysit.diagnose.run_rules` reports the rule as *skipped, needs X* instead of
running it and staying silent), ``uses`` those it reads when they are there to say more (a cause, a number).
A rule that reads only the loss and accuracy curves declares neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from babysit.findings import Finding
from babysit.history import History
from babysit.quantities import QuantityLike, name_of

RuleFn = Callable[[History], list[Finding]]


@dataclass(frozen=True)
class Rule:
    """A registered rule: the code it reports, the lecture item it implements, the function, and the quantities
    it needs (it is skipped without them) and uses (when recorded)."""

    code: str
    lecture: str
    fn: RuleFn
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()

    def __call__(self, history: History) -> list[Finding]:
        return self.fn(history)

    def missing(self, recorded: Iterable[str]) -> list[str]:
        """The quantities this rule needs that are not among ``recorded`` (empty: it can run)."""
        have = set(recorded)
        return [name for name in self.needs if name not in have]


RULES: dict[str, Rule] = {}


def rule(code: str, lecture: str = "", *, needs: Iterable[QuantityLike] = (),
         uses: Iterable[QuantityLike] = ()) -> Callable[[RuleFn], RuleFn]:
    """Register ``fn`` as the rule for ``code`` (one rule per code, one place per rule).

    Args:
        code: the finding code it reports.
        lecture: the lecture item it implements (``"B5"``).
        needs: the quantities it cannot judge without (names, classes or instances; built-in names are
            checked here, so a misspelt one fails at import).
        uses: the quantities it reads when they were recorded, to name a cause or add a number.
    """
    need_names = tuple(name_of(q) for q in needs)
    use_names = tuple(name_of(q) for q in uses)

    def register(fn: RuleFn) -> RuleFn:
        if code in RULES:
            raise ValueError(f"a rule for {code!r} is already registered ({RULES[code].fn.__name__})")
        RULES[code] = Rule(code, lecture, fn, need_names, use_names)
        return fn

    return register
