"""``fit((X, y))`` without validation data says so before training, with the fix; it never goes silently without."""

from __future__ import annotations

import logging

import pytest
import torch

import babysit
from babysit.callbacks.diagnosis import NO_VALIDATION


def _data(n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 4, generator=g), torch.arange(n) % 3


def _model() -> torch.nn.Module:
    return babysit.models.build("mlp", input_shape=(4,), num_classes=3, hidden=[8], seed=0)


def _warned(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.getMessage() == NO_VALIDATION]


def test_fit_without_validation_data_warns_with_the_fix(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="babysit"):
        h = babysit.fit(_model(), _data(), epochs=2, monitor=False)
    assert len(_warned(caplog)) == 1  # once, before training
    assert all(e["val_acc"] is None for e in h.epochs)  # what the warning announced
    assert "val_data=" in NO_VALIDATION and "from_arrays" in NO_VALIDATION


@pytest.mark.parametrize("how", ["val_data", "from_arrays"])
def test_fit_with_validation_data_does_not_warn(how: str, caplog: pytest.LogCaptureFixture) -> None:
    X, y = _data()
    with caplog.at_level(logging.WARNING, logger="babysit"):
        if how == "val_data":
            h = babysit.fit(_model(), (X[:45], y[:45]), (X[45:], y[45:]), epochs=2, monitor=False)
        else:  # the fix the warning names: a held-out, stratified validation split
            h = babysit.fit(_model(), babysit.data.from_arrays(X, y), epochs=2, monitor=False)
    assert _warned(caplog) == []
    assert all(e["val_acc"] is not None for e in h.epochs)
