"""S1: the loss at initialisation, with regularization off, is ``ln C`` (softmax) or ``C - 1`` (SVM).

Small random weights give diffuse scores, so every class gets probability ~1/C and the softmax loss is
``-ln(1/C) = ln C`` (2.302 for 10 classes); the hinge loss of near-equal scores is ``(C - 1) * margin``.
Fan-in-scaled inits (He) spread the first scores to std ~1.4, which lifts the loss to ~1.3x these
values; beyond ``TOLERANCE`` (1.5x or 0.5x) the scores are not diffuse: the last layer starts too large,
or the loss is wrong (summed instead of averaged, applied to probabilities, ...).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from babysit.findings import Finding
from babysit.sanity._inputs import device_of
from babysit.sanity._report import SanityCheck

TOLERANCE = 0.5  # pass when |observed - expected| <= 0.5 * expected
EXAMPLES = 512  # examples the loss is averaged over


def expected_loss(kind: str, num_classes: int) -> float | None:
    if kind == "softmax":
        return math.log(num_classes)
    if kind == "svm":
        return float(num_classes - 1)
    return None


@torch.no_grad()
def check_initial_loss(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], X: Tensor, y: Tensor,
                       *, num_classes: int, kind: str) -> SanityCheck:
    """Compare the data loss of the untrained model on up to 512 examples with its expected value."""
    work = copy.deepcopy(model)  # training mode as in the first step, without touching the user's BN statistics
    work.train()
    dev = device_of(work)
    observed = float(loss_fn(work(X[:EXAMPLES].to(dev)), y[:EXAMPLES].to(dev)))
    expected = expected_loss(kind, num_classes)
    if expected is None:
        return SanityCheck("initial_loss", None, None, observed,
                           f"loss at initialisation {observed:.3f}; a custom loss has no known starting value "
                           "(softmax: ln C, SVM: C - 1)")
    formula = f"ln {num_classes}" if kind == "softmax" else f"{num_classes} - 1"
    off = abs(observed - expected) / expected
    if math.isfinite(observed) and off <= TOLERANCE:
        message = f"loss at initialisation {observed:.3f}, expected {formula} = {expected:.3f} ({off:.0%} off)"
        return SanityCheck("initial_loss", True, expected, observed, message)
    message = (f"loss at initialisation is {observed:.3f} but {kind} with {num_classes} classes and reg 0 should "
               f"start near {formula} = {expected:.3f} ({off:.0%} off)")
    suggestion = ("the first scores are not diffuse: initialise the last layer smaller (e.g. std 0.01, bias 0) "
                  "and check that the loss averages over the batch and takes raw scores")
    finding = Finding("initial_loss_unexpected", "warning", message,
                      {"observed": observed, "expected": expected, "num_classes": num_classes, "loss": kind},
                      suggestion)
    return SanityCheck("initial_loss", False, expected, observed, message, finding)
