"""The outputs of a function on tensors, as one flat vector (what the projection weights multiply)."""

from __future__ import annotations

from typing import Any

import torch

from ._errors import GradcheckError

__all__ = ["flat_outputs"]


def flat_outputs(out: Any) -> torch.Tensor:
    """Concatenate every floating tensor in ``out`` (a tensor, or nested tuples/lists) into one vector."""
    parts: list[torch.Tensor] = []

    def walk(o: Any) -> None:
        if isinstance(o, torch.Tensor):
            if o.is_floating_point():
                parts.append(o.reshape(-1))
        elif isinstance(o, (tuple, list)):
            for item in o:
                walk(item)
        elif isinstance(o, dict):
            for item in o.values():
                walk(item)

    walk(out)
    if not parts:
        raise GradcheckError(
            f"the function returned no floating tensor (got {type(out).__name__}); "
            "return the tensor(s) whose gradient you want checked."
        )
    dtype = torch.float64 if any(p.dtype == torch.float64 for p in parts) else parts[0].dtype
    return torch.cat([p.to(dtype) for p in parts])
