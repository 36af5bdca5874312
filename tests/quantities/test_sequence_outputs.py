"""Quantities on a sequence model's output ``(N, T, V)``: a row is the last dimension, as for ``(N, C)``."""

from __future__ import annotations

import torch

from babysit.quantities import OutputRange


def _rowsum_err(outputs: torch.Tensor) -> float:
    m = OutputRange().measure(outputs)
    return OutputRange().reduce([float(x) for x in m.scalars], [], m.context)["rowsum_err"]


def test_output_range_reads_rows_of_a_language_models_scores() -> None:
    scores = torch.randn(2, 7, 11, generator=torch.Generator().manual_seed(0))
    # probabilities over the vocabulary at every position sum to 1; raw scores do not
    assert _rowsum_err(torch.softmax(scores, dim=-1)) < 1e-6
    assert _rowsum_err(scores) > 0.1
    # a classifier's (N, C) output is read as before
    assert _rowsum_err(torch.softmax(scores[:, 0], dim=-1)) < 1e-6
