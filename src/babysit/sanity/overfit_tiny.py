"""S3: a model that cannot overfit ~20 examples (reg 0) to ~zero loss and 100% accuracy has a bug.

A copy of the model is trained full-batch with Adam on a class-balanced tiny subset, without
regularization, for at most ``STEPS`` steps (a second or two on the digits MLP), stopping as soon as the
subset is fitted. Passing does not prove generalisation; failing points at the model, the loss or the
data pipeline (dead units, a softmax before the loss, labels that do not match the inputs, ...).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from babysit.data import tiny_subset
from babysit.findings import Finding
from babysit.sanity._inputs import device_of
from babysit.sanity._report import SanityCheck

EXAMPLES = 20
STEPS = 300
LR = 1e-2  # Adam: fits a tiny subset quickly whatever the scale of the gradients
CHECK_EVERY = 25
ZERO_LOSS = 0.02  # "~zero": below 2% of the subset's loss at initialisation


LossFn = Callable[[Tensor, Tensor], Tensor]


def _evaluate(model: nn.Module, loss_fn: LossFn, X: Tensor, y: Tensor) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        scores = model(X)
        result = float(loss_fn(scores, y)), float((scores.argmax(dim=-1) == y).float().mean())
    model.train()
    return result


def check_overfit_tiny(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], X: Tensor, y: Tensor,
                       *, examples: int = EXAMPLES, steps: int = STEPS, seed: int = 0) -> SanityCheck:
    """Train a copy on ``examples`` examples; pass at 100% accuracy and a loss below 2% of its start."""
    Xs, ys = tiny_subset((X, y), n=min(examples, len(y)), seed=seed)  # sequences: one class per position
    work = copy.deepcopy(model)
    dev = device_of(work)
    Xs, ys = Xs.to(dev), ys.to(dev)
    start, _ = _evaluate(work, loss_fn, Xs, ys)
    target = ZERO_LOSS * start
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        opt = torch.optim.Adam(work.parameters(), lr=LR)
        work.train()
        done, loss, acc = 0, start, 0.0
        for step in range(1, steps + 1):
            opt.zero_grad(set_to_none=True)
            loss_fn(work(Xs), ys).backward()
            opt.step()
            done = step
            if step % CHECK_EVERY == 0 or step == steps:
                loss, acc = _evaluate(work, loss_fn, Xs, ys)
                if acc == 1.0 and loss <= target:
                    break
    details = {"examples": len(ys), "steps": done, "initial_loss": start, "target_loss": target}
    observed = {"loss": loss, "accuracy": acc, "steps": done}
    expected = {"loss": f"<= {target:.3g}", "accuracy": 1.0}
    if acc == 1.0 and loss <= target:
        return SanityCheck("overfit_tiny", True, expected, observed,
                           f"{len(ys)} examples fitted in {done} steps: loss {start:.3f} -> {loss:.2e}, accuracy 100%",
                           details=details)
    message = (f"could not overfit {len(ys)} examples (reg 0, Adam lr {LR:g}, {done} steps): loss {start:.3f} -> "
               f"{loss:.3g}, accuracy {acc:.0%}")
    finding = Finding("cannot_overfit_small_subset", "error", message, {**details, **observed},
                      "something blocks learning: check the loss takes raw scores, the labels match the inputs, "
                      "the ReLUs are not dead and gradients reach every layer (babysit gradcheck)")
    return SanityCheck("overfit_tiny", False, expected, observed, message, finding, details)
