"""Findings from gradient-check rows: gradient_mismatch (L-G3) and gradient_tiny (L-G6)."""

from __future__ import annotations

from babysit.findings import Finding

from ._check import hint
from ._report import GradRow

__all__ = ["row_findings"]


def _label(row: GradRow) -> str:
    return f"{row.name} ({row.part} loss)" if row.part else row.name


def _suggestion(row: GradRow) -> str:
    if row.name == "end-to-end":
        return (
            "The whole chain disagrees with the loss; where no module's own row fails, look for code between "
            "modules (a .detach(), a custom Function or a hook in a forward)"
        )
    if row.name.endswith(":module"):
        return f"Look in {row.module}'s own forward, between its submodules (a .detach(), a custom Function, a hook)"
    if row.module:
        return f"Check the backward pass of {row.module}, which produces {row.name}'s gradient"
    return f"Check the backward pass that produces {row.name}'s gradient"


def row_findings(rows: list[GradRow], batch: int | None = None) -> list[Finding]:
    """One ``gradient_mismatch`` per suspicious/wrong row, one ``gradient_tiny`` per tiny row."""
    out: list[Finding] = []
    for row in rows:
        w = row.worst
        if w is not None and row.verdict in ("suspicious", "wrong"):
            why = hint(w.ratio, batch)
            out.append(
                Finding(
                    "gradient_mismatch",
                    "error" if row.verdict == "wrong" else "warning",
                    f"{_label(row)} gradient is {row.verdict}: {w.describe(batch)}",
                    {
                        "name": row.name,
                        "part": row.part,
                        "where": w.where,
                        "analytic": w.analytic,
                        "numerical": w.numerical,
                        "ratio": w.ratio if abs(w.ratio) != float("inf") else None,
                        "rel_error": w.rel_error,
                        "h": w.h,
                        "checked": row.checked,
                        "module": row.module,
                    },
                    _suggestion(row) + (f" ({why})" if why else "") + ".",
                )
            )
    for row in rows:
        if row.tiny and row.verdict in ("ideal", "ok"):
            tiny = [c for c in row.checks if c.tiny]
            res = max((c.resolution for c in tiny), default=0.0)
            out.append(
                Finding(
                    "gradient_tiny",
                    "warning",
                    f"{_label(row)} has gradients of about {row.grad_abs_max:.1e}, at or below what a "
                    f"numerical check resolves ({res:.1e}); {len(tiny)} of {row.checked} checks could not "
                    "tell them apart",
                    {
                        "name": row.name,
                        "part": row.part,
                        "grad_abs_max": row.grad_abs_max,
                        "resolution": res,
                        "tiny_checks": len(tiny),
                    },
                    "Gradients of 1e-10 or less are either truly zero (e.g. a bias right before "
                    "batch-norm) or scaled away (a loss divided by the batch size twice?); scale the loss up "
                    "by a constant and check again (L-G6).",
                )
            )
    return out
