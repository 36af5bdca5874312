"""The gradient zoo: every planted bug caught, no false alarm on kinks or dropout (issue acceptance)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from babysit.gradcheck import check_function
from babysit.testing import gradzoo

CASES = gradzoo.cases()
BUGGY = [c for c in CASES if c.buggy]
CORRECT = [c for c in CASES if not c.buggy]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # torch.autograd.gradcheck's many tiny ops crawl when 2 threads share 2 busy cores
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_zoo_has_the_promised_size() -> None:
    # >= 15 planted bugs and >= 10 correct functions on kinks or with dropout
    assert len(BUGGY) >= 15
    assert sum(c.category != "smooth" for c in CORRECT) >= 10
    assert len({c.name for c in CASES}) == len(CASES)


def test_zoo_has_transformer_kernels() -> None:
    # bugs in the code transformers are written with, some on a small fraction of the coordinates or near
    # the tolerance, and their correct versions (one on a kink)
    kinds = {c.category.split(":")[0] for c in BUGGY}
    assert {"attention", "normalisation", "indexing", "convolution", "linear"} <= kinds
    assert any("near the tolerance" in c.category for c in BUGGY)
    assert sum(c.category.startswith("transformer:") for c in CORRECT) >= 6
    assert any(c.name == "top1_router_ties" and c.category.startswith("kink") for c in CORRECT)


@pytest.mark.parametrize("case", BUGGY, ids=lambda c: c.name)
def test_zoo_every_bug_is_caught(case: gradzoo.ZooCase) -> None:
    report = check_function(case.fn, *case.inputs())
    # a bug is never "ok": the report says suspicious (the 1% one) or wrong, with a localised failure
    assert not report.ok, str(report)
    assert report.failures and report.failures[0].is_coordinate
    assert any(f.code == "gradient_mismatch" for f in report.findings)


@pytest.mark.parametrize("case", CORRECT, ids=lambda c: c.name)
def test_zoo_no_false_alarm(case: gradzoo.ZooCase) -> None:
    report = check_function(case.fn, *case.inputs())
    # kinks, ties, dropout and summation order are not bugs
    assert report.ok, str(report)


@pytest.mark.parametrize("seed", [1, 2])
def test_zoo_verdicts_do_not_depend_on_the_seed(seed: int) -> None:
    # other projections, directions and dropout masks give the same verdicts
    wrong = [c.name for c in CASES if check_function(c.fn, *c.inputs(), seed=seed).ok == c.buggy]
    assert wrong == []


def test_zoo_kinks_are_reported_as_kinks() -> None:
    # a crossed relu kink is counted in the row, not turned into an error
    case = next(c for c in CORRECT if c.name == "relu_near_kink")
    row = check_function(case.fn, *case.inputs()).rows[0]
    assert row.kinks > 0 and row.verdict in ("ideal", "ok")


def test_zoo_one_column_bug_is_localised() -> None:
    # the failure names an entry of column 2 and the factor
    case = next(c for c in BUGGY if c.name == "linear_one_column")
    report = check_function(case.fn, *case.inputs())
    worst = report.failures[0]
    assert worst.name == "input[1]" and worst.where.endswith(", 2]")
    assert worst.ratio == pytest.approx(2.0, rel=1e-6)
    assert "factor of 2" in worst.describe()


def test_zoo_tiny_gradient_bug_is_caught_where_torch_gradcheck_is_blind() -> None:
    # gradients ~1e-7 off by 2x: below torch's atol=1e-5, a plain relative error catches it
    case = next(c for c in BUGGY if c.name == "tiny_factor")
    assert torch.autograd.gradcheck(case.fn, case.inputs(), raise_exception=False)
    report = check_function(case.fn, *case.inputs())
    assert report.verdict == "wrong"
    assert report.failures[0].ratio == pytest.approx(2.0, rel=1e-6)


def test_zoo_dropout_is_checked_not_switched_off() -> None:
    # torch's gradcheck draws a new mask per evaluation and fails; a fixed seed checks dropout
    case = next(c for c in CORRECT if c.name == "dropout_tanh")
    assert not torch.autograd.gradcheck(case.fn, case.inputs(), raise_exception=False)
    assert check_function(case.fn, *case.inputs()).verdict == "ideal"
