"""S2: raising the regularization strength raises the loss.

The total loss ``data + R(strength)`` is evaluated at strengths 0, s, 10s, 100s, 1000s on the same
examples in evaluation mode (no dropout noise); it must never fall and must end above where it began. A
term that ignores its strength, is never added, has the wrong sign or covers no parameter fails.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from babysit.findings import Finding
from babysit.sanity._inputs import Regularization, device_of, regularization_term
from babysit.sanity._report import SanityCheck

EXAMPLES = 256


@torch.no_grad()
def check_regularization(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], X: Tensor, y: Tensor,
                         regularization: Regularization = None) -> SanityCheck:
    """Evaluate the loss at increasing regularization strengths; it must increase."""
    term, strengths = regularization_term(regularization)
    work = copy.deepcopy(model).eval()
    dev = device_of(work)
    data = float(loss_fn(work(X[:EXAMPLES].to(dev)), y[:EXAMPLES].to(dev)))
    totals = [data + float(term(work, s)) for s in strengths]
    rising = all(b >= a for a, b in zip(totals, totals[1:])) and totals[-1] > totals[0]
    listing = ", ".join(f"{s:g}: {t:.4g}" for s, t in zip(strengths, totals))
    details = {"strengths": list(strengths), "losses": totals}
    if rising:
        return SanityCheck("regularization_increases_loss", True, "increasing", totals,
                           f"the loss rises with the regularization strength ({listing})", details=details)
    message = f"raising the regularization strength did not raise the loss (strength: loss = {listing})"
    finding = Finding("regularization_not_increasing_loss", "error", message, details,
                      "check that the regularization term is added to the loss, scales with its strength, is "
                      "non-negative and covers the model's weights")
    return SanityCheck("regularization_increases_loss", False, "increasing", totals, message, finding, details)
