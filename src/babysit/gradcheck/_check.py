"""Check: one comparison of an analytic with a numerical derivative, and how it reads."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Check", "format_index", "hint"]


def format_index(flat: int, shape: tuple[int, ...]) -> str:
    """Turn a flat index into ``[3, 7]`` for a tensor of ``shape``."""
    idx = []
    for size in reversed(shape):
        idx.append(flat % size)
        flat //= size
    return "[" + ", ".join(str(i) for i in reversed(idx)) + "]"


def hint(ratio: float, batch: int | None = None) -> str:
    """Name the usual bug behind an analytic/numerical ratio (factor 2, sign, batch-size reduction)."""
    if not math.isfinite(ratio) or ratio == 0.0:
        return "the analytic gradient is missing (0) or the numerical one is 0: a term left out?"
    for target, text in (
        (-1.0, "wrong sign"),
        (2.0, "a factor of 2 too large: a term counted twice?"),
        (0.5, "a factor of 2 too small: a term left out (e.g. of x*x)?"),
    ):
        if abs(ratio - target) < 0.02 * abs(target):
            return text
    if batch and batch > 1:
        for target, text in (
            (batch, "off by the batch size: sum instead of mean?"),
            (1.0 / batch, "off by the batch size: divided by N once too often?"),
        ):
            if abs(ratio - target) < 0.02 * abs(target):
                return text
    return ""


@dataclass(frozen=True)
class Check:
    """One analytic-vs-numerical comparison.

    Attributes:
        name: The input or parameter, e.g. ``"fc2.weight"``.
        where: ``"[3, 7]"`` for a coordinate, ``" along direction 1"`` for a random signed direction.
        analytic: The analytic derivative (for a direction: gradient . d).
        numerical: The centered difference that decided the verdict.
        rel_error: ``|a - n| / max(|a|, |n|)``.
        h: The step that decided the verdict (1e-5 unless a fallback was needed; 0 when compared with a
            reference implementation instead).
        verdict: ``ideal``, ``ok``, ``suspicious`` or ``wrong``.
        resolution: The smallest ``|a - n|`` the numerical estimate could resolve at that ``h``.
        kink: A kink was crossed or sits at the point.
        tiny: The derivative is below 1e-10 or below the resolution (L-G6): flagged, raw values kept.
        note: How the verdict was reached when not by a plain centered difference.
    """

    name: str
    where: str
    analytic: float
    numerical: float
    rel_error: float
    h: float
    verdict: str
    resolution: float = 0.0
    kink: bool = False
    tiny: bool = False
    note: str = ""

    @property
    def is_coordinate(self) -> bool:
        """Whether this check looked at a single coordinate (not a direction)."""
        return self.where.startswith("[")

    @property
    def ratio(self) -> float:
        """analytic / numerical (inf when the numerical derivative is 0)."""
        if self.numerical == 0.0:
            return 1.0 if self.analytic == 0.0 else math.inf
        return self.analytic / self.numerical

    def describe(self, batch: int | None = None) -> str:
        """``fc2.weight[3, 7]: analytic 0.0213, numerical 0.0107, ratio 2.0 (h=1e-05)``."""
        if self.h > 0:
            text = (
                f"{self.name}{self.where}: analytic {self.analytic:.4g}, numerical {self.numerical:.4g}, "
                f"ratio {self.ratio:.3g}, relative error {self.rel_error:.1e} (h={self.h:.0e})"
            )
        else:  # no step: compared with a reference implementation, not a centered difference
            text = (
                f"{self.name}{self.where}: kernel {self.analytic:.4g}, reference {self.numerical:.4g}, "
                f"ratio {self.ratio:.3g}, off by {abs(self.analytic - self.numerical):.2e}"
            )
        extra = [
            n
            for n in (
                self.note,
                "kink" if self.kink and "kink" not in self.note else "",
                "tiny" if self.tiny else "",
            )
            if n
        ]
        if self.verdict in ("suspicious", "wrong"):
            extra.append(hint(self.ratio, batch))
        extra = [e for e in extra if e]
        return text + (f" [{'; '.join(extra)}]" if extra else "")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (non-finite numbers become None)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        out["ratio"] = self.ratio if math.isfinite(self.ratio) else None
        return out
