"""Whether evaluation is deterministic (lecture G9: dropout or batch norm left in training mode).

Two passes over the same examples should give the same output when evaluating. ``eval_disagreement`` is
``max |a - b| / max |a|`` of the two (0 when deterministic), under one of two stats: ``eval_mode`` for two
passes in ``model.eval()`` (a layer that stays random after ``eval()``), ``train_mode`` for an evaluation pass
of your own loop made in training mode with dropout active (a forgotten ``model.eval()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from babysit.quantities._base import Measurement
from babysit.quantities._families import EvaluationQuantity, Passes, first_tensor


class EvalDisagreement(EvaluationQuantity):
    """How much two passes over the same examples differ, relative to the output's scale."""

    name: ClassVar[str] = "eval_disagreement"
    keys: ClassVar[dict[str, str]] = {"eval_mode": "eval/disagreement", "train_mode": "eval/disagreement_train_mode"}

    def measure(self, source: Passes) -> Measurement | None:
        x, y = first_tensor(source.first), first_tensor(source.second)
        if x is None or y is None or x.shape != y.shape:
            return None
        x, y = x.detach().float(), y.detach().float()
        value = (x - y).abs().amax() / x.abs().amax().clamp_min(1e-12)
        return Measurement((value,), None, f"{source.mode}_mode")

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        return {context: scalars[0]}
