"""relative_error and the lecture's verdict bands (L-G2, L-G3)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from babysit.gradcheck import relative_error
from babysit.gradcheck._relative_error import verdict, worst

finite = st.floats(min_value=-1e30, max_value=1e30, allow_nan=False)


@given(finite, finite)
def test_relative_error_is_symmetric_and_bounded(a: float, n: float) -> None:
    # |a - n| / max(|a|, |n|) does not care which side is analytic, and never exceeds 2
    assert relative_error(a, n) == relative_error(n, a)
    assert 0.0 <= relative_error(a, n) <= 2.0


@given(finite, finite)
def test_relative_error_is_zero_iff_equal(a: float, n: float) -> None:
    # zero exactly when the two numbers agree (both-zero included)
    assert (relative_error(a, n) == 0.0) == (a == n)


def test_relative_error_uses_max_not_sum() -> None:
    # the seed's |a| + |n| would give 1/3 here; max gives 1/2 (documented: at most 2x apart)
    assert relative_error(2.0, 1.0) == pytest.approx(0.5)
    assert relative_error(0.0, 0.0) == 0.0
    assert math.isnan(relative_error(math.nan, 1.0))


@pytest.mark.parametrize(
    ("rel", "kink", "noise", "expected"),
    [
        (1e-8, False, False, "ideal"),
        (1e-7, False, False, "ideal"),
        (1e-6, False, False, "suspicious"),  # smooth: 1e-6 is already too high
        (5e-5, False, False, "suspicious"),  # smooth: < 1e-4 is only fine with kinks
        (5e-5, True, False, "ok"),  # kinks: < 1e-4 is fine
        (5e-4, True, False, "suspicious"),
        (1e-2, False, False, "suspicious"),
        (2e-2, True, False, "wrong"),
        (0.5, False, False, "wrong"),
        (1e-5, False, True, "ok"),  # below the resolution of the numerical estimate
        (math.nan, False, False, "wrong"),
    ],
)
def test_verdict_bands(rel: float, kink: bool, noise: bool, expected: str) -> None:
    # the bands of L-G3, with the kink allowance and the resolution allowance
    assert verdict(rel, kink=kink, within_noise=noise) == expected


def test_worst_orders_verdicts() -> None:
    # a report is as bad as its worst row
    assert worst(["ideal", "wrong", "ok"]) == "wrong"
    assert worst([]) == "ideal"
