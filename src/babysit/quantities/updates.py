"""The update the optimizer took, against the weights it changed (lecture B4: "about 1e-3 is healthy").

``ratio = ||W_after - W_before|| / ||W_before||`` around ``optimizer.step()``: the step Adam, momentum and
weight decay actually took, not ``lr * ||dW||``. It is the one quantity that needs the weights copied
before the step, so the Monitor makes that copy only when ``update_ratio`` is recorded. The weight norm
before the step comes with it (``weight/<param>/norm``: the initialisation check reads its first value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from babysit.quantities._base import Measurement
from babysit.quantities._families import PerName, PerParameter, Update, UpdateQuantity


class UpdateRatio(PerParameter, UpdateQuantity):
    """Update norm / weight norm of every trainable parameter, and the weight norm itself."""

    name: ClassVar[str] = "update_ratio"
    keys: ClassVar[dict[str, str]] = {"ratio": "ratio/{target}", "weight_norm": "weight/{target}/norm"}

    def measure(self, source: Update) -> Measurement | None:
        if not source.names:
            return None
        steps = torch._foreach_norm(torch._foreach_sub(source.after, source.before))
        weights = torch._foreach_norm(source.before)
        return Measurement((), torch.stack([*steps, *weights]), PerName(source.names))

    def reduce(self, scalars: Sequence[float], vector: Sequence[float], context: Any) -> dict[str, float]:
        update, weight = vector
        return {"weight_norm": weight, "ratio": update / weight if weight > 0 else math.nan}
