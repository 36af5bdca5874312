"""GradReport: one row per checked input or parameter, a verdict, findings, a readable table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from babysit.findings import Finding

from ._check import Check
from ._relative_error import TINY, VERDICTS, worst

__all__ = ["GradReport", "GradRow", "make_row"]


@dataclass(frozen=True)
class GradRow:
    """The checks of one tensor, summarised.

    Attributes:
        name: Input or parameter name (``"fc2.bias"``, ``"input[0]"``).
        part: ``"data"`` or ``"regularization"`` for check_module (L-G8), ``""`` otherwise.
        shape: The tensor's shape.
        checked: How many checks ran (directions + coordinates).
        max_rel_error: The largest relative error among them.
        kinks: How many of them met a kink (L-G4).
        verdict: The worst verdict of its checks.
        grad_abs_max: Raw magnitude: the largest |analytic derivative| in the tensor (L-G6).
        tiny: Some derivative was below 1e-10 or below the check's resolution.
        checks: Every check, in the order they ran.
        seconds: Wall time of this row's checks (in place: with its share of the directions it shares with
            the other tensors of its module; the recording pass and setting up a module not included).
        module: Where it was evaluated: ``""`` the whole model (or function), else the path of the module
            it was checked in, in place (``"blocks.3.mlp.fc1"``).
    """

    name: str
    part: str
    shape: tuple[int, ...]
    checked: int
    max_rel_error: float
    kinks: int
    verdict: str
    grad_abs_max: float
    tiny: bool
    checks: tuple[Check, ...] = ()
    seconds: float = 0.0
    module: str = ""

    @property
    def worst(self) -> Check | None:
        """The check behind the verdict (coordinates preferred: they say where)."""
        if not self.checks:
            return None
        return max(self.checks, key=lambda c: (VERDICTS.index(c.verdict), c.is_coordinate, _finite(c.rel_error)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict, checks included."""
        worst_check = self.worst
        return {
            "name": self.name,
            "part": self.part,
            "shape": list(self.shape),
            "checked": self.checked,
            "max_rel_error": _json(self.max_rel_error),
            "kinks": self.kinks,
            "verdict": self.verdict,
            "grad_abs_max": _json(self.grad_abs_max),
            "tiny": self.tiny,
            "worst": worst_check.describe() if worst_check else None,
            "seconds": round(self.seconds, 4),
            "module": self.module,
            "checks": [c.to_dict() for c in self.checks],
        }


def _depth(module: str) -> int:
    return module.count(".") + 1 if module else 0


def _finite(x: float) -> float:
    return 3.0 if math.isnan(x) else x


def _json(x: float) -> float | None:
    return x if math.isfinite(x) else None


def make_row(
    name: str,
    part: str,
    shape: tuple[int, ...],
    checks: list[Check],
    analytic: torch.Tensor,
    *,
    seconds: float = 0.0,
    module: str = "",
) -> GradRow:
    """Summarise the checks of one tensor (``analytic``: its whole analytic gradient, for magnitudes)."""
    grad_abs_max = float(analytic.abs().max()) if analytic.numel() else 0.0
    # Checks below their resolution (tiny) say nothing about the relative error: flagged, not counted.
    rels = [_finite(c.rel_error) for c in checks if not c.tiny] or [_finite(c.rel_error) for c in checks]
    # A row is tiny when its gradients are (L-G6), not when one coordinate happens to be ~0.
    tiny = 0.0 < grad_abs_max < TINY or 2 * sum(c.tiny for c in checks) > max(1, len(checks))
    return GradRow(
        name,
        part,
        tuple(shape),
        len(checks),
        max(rels, default=0.0),
        sum(c.kink for c in checks),
        worst([c.verdict for c in checks]),
        grad_abs_max,
        tiny,
        tuple(checks),
        seconds,
        module,
    )


@dataclass(frozen=True)
class GradReport:
    """The result of a gradient check.

    Attributes:
        rows: One :class:`GradRow` per checked input/parameter (and loss part).
        findings: ``gradient_mismatch``, ``gradient_tiny``, ``regularization_dominates`` ... records.
        meta: How the check ran: ``method`` (``"whole-model"``, ``"in-place"``, ``"centered differences"``
            for functions, ``"reference"``), h, seed, evaluations, seconds, examples, warm-up losses; in
            place also ``layer`` and the seconds of the recording pass and of the end-to-end check; with
            a reference ``dtype`` and ``reference`` (eps and every row's error, baseline and tolerance).
    """

    rows: tuple[GradRow, ...]
    findings: tuple[Finding, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """The worst row verdict: ``ideal``, ``ok``, ``suspicious`` or ``wrong``."""
        return worst([r.verdict for r in self.rows])

    @property
    def ok(self) -> bool:
        """No gradient bug found (every row ``ideal`` or ``ok``)."""
        return self.verdict in ("ideal", "ok")

    @property
    def max_rel_error(self) -> float:
        """The largest relative error over all rows."""
        return max((r.max_rel_error for r in self.rows), default=0.0)

    @property
    def failures(self) -> list[Check]:
        """Every suspicious or wrong check, worst first (coordinates, then the smallest module, first)."""
        bad = [(c, r.module) for r in self.rows for c in r.checks if c.verdict in ("suspicious", "wrong")]
        # checked in place, a check inside a smaller module says more precisely where the bug is
        bad.sort(key=lambda cm: (-VERDICTS.index(cm[0].verdict), not cm[0].is_coordinate, -_depth(cm[1]),
                                 -_finite(cm[0].rel_error)))  # fmt: skip
        return [c for c, _ in bad]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the whole report."""
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "max_rel_error": _json(self.max_rel_error),
            "rows": [r.to_dict() for r in self.rows],
            "findings": [f.to_dict() for f in self.findings],
            "failures": [c.describe(self.meta.get("batch")) for c in self.failures[:20]],
            "meta": dict(self.meta),
        }

    def how(self) -> list[str]:
        """How the check ran, in words: error, evaluations, step or dtype, method, layer, seconds."""
        meta = self.meta
        out = [f"max relative error {self.max_rel_error:.1e}", f"{meta.get('evaluations', '?')} evaluations"]
        method = meta.get("method")
        if method == "reference":
            out.append(f"{meta.get('dtype')} kernel vs float64 reference")
        else:
            out.append(f"h={meta.get('h', 1e-5):.0e}")
            if method:
                out.append(method + (f" (layer {meta['layer']})" if meta.get("layer") else ""))
        if meta.get("seconds") is not None:
            out.append(f"{meta['seconds']:.2f} s")
        return out

    def table(self) -> list[list[str]]:
        """The rows as strings: name, loss part (data/reg), shape, checked, max rel error, kinks, |grad| max,
        verdict."""
        out = []
        for r in self.rows:
            flag = " tiny" if r.tiny else ""
            out.append(
                [
                    r.name,
                    "reg" if r.part == "regularization" else r.part,
                    "x".join(map(str, r.shape)) or "scalar",
                    str(r.checked),
                    f"{r.max_rel_error:.1e}",
                    str(r.kinks),
                    f"{r.grad_abs_max:.1e}",
                    r.verdict + flag,
                ]
            )
        return out

    def __str__(self) -> str:
        head = ["name", "loss", "shape", "checked", "max rel err", "kinks", "|grad| max", "verdict"]
        body = self.table()
        keep = [i for i in range(len(head)) if i != 1 or any(row[1] for row in body)]
        grid = [[head[i] for i in keep]] + [[row[i] for i in keep] for row in body]
        widths = [max(len(line[i]) for line in grid) for i in range(len(keep))]
        lines = [f"gradient check: {self.verdict.upper()} ({', '.join(self.how())})"]
        lines += [
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in grid
        ]
        fails = self.failures
        if fails:
            lines.append("failures:")
            lines += [f"  {c.describe(self.meta.get('batch'))}" for c in fails[:10]]
            if len(fails) > 10:
                lines.append(f"  ... and {len(fails) - 10} more")
        if self.findings:
            lines.append("findings:")
            lines += [f"  {f}" for f in self.findings]
        return "\n".join(lines)

    def __repr__(self) -> str:
        rel, n = self.max_rel_error, len(self.rows)
        return f"GradReport(verdict={self.verdict!r}, max_rel_error={rel:.1e}, rows={n})"
