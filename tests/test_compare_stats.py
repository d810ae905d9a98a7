"""Wilson interval and exact McNemar, checked against scipy and textbook values."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binomtest

from tracker.analysis.stats import mcnemar_exact, wilson_interval

GRID = [(0, 1), (1, 1), (0, 10), (1, 10), (5, 10), (10, 10), (7, 53), (25, 53), (53, 53), (35, 51), (60, 104),
        (55, 434), (1, 1000), (999, 1000), (10_000, 20_000)]


@pytest.mark.parametrize(("k", "n"), GRID)
def test_wilson_matches_scipy(k: int, n: int) -> None:
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_wilson_textbook_values() -> None:
    # Newcombe (1998), Table I: 0/10 -> 0 to 0.2775; 1/29 -> 0.0061 to 0.1718 (Wilson score, no correction).
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=5e-5)
    assert wilson_interval(1, 29) == pytest.approx((0.0061, 0.1718), abs=5e-5)
    # Other confidence levels pass through to the normal quantile.
    expected = binomtest(8, 20).proportion_ci(confidence_level=0.9, method="wilson")
    assert wilson_interval(8, 20, confidence=0.9) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_wilson_edge_cases() -> None:
    low, high = wilson_interval(0, 0)
    assert math.isnan(low) and math.isnan(high)
    for bad in ((-1, 5), (6, 5), (1, -1)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)


PAIRS = [(0, 0), (1, 0), (0, 1), (1, 1), (5, 0), (12, 2), (2, 12), (7, 7), (8, 7), (30, 1), (53, 0), (100, 80),
         (3, 40), (400, 350)]


@pytest.mark.parametrize(("b", "c"), PAIRS)
def test_mcnemar_matches_scipy_binomtest(b: int, c: int) -> None:
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_textbook_and_extremes() -> None:
    # b=12, c=2: 2 * P[X <= 2 | n=14, 1/2] = 2 * (1 + 14 + 91) / 2**14
    assert mcnemar_exact(12, 2) == pytest.approx(2 * 106 / 2**14)
    assert mcnemar_exact(2, 12) == mcnemar_exact(12, 2)  # symmetric
    assert mcnemar_exact(7, 7) == 1.0  # a tie is no evidence either way
    assert mcnemar_exact(0, 0) == 1.0
    # Thousands of pairs neither underflow to a wrong 0 too early nor lose precision.
    tiny = mcnemar_exact(333, 0)
    assert tiny == pytest.approx(2 / 2**333) and tiny > 0
    assert mcnemar_exact(10_000, 9_900) == pytest.approx(binomtest(9_900, 19_900, 0.5).pvalue, rel=1e-9)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


@pytest.mark.parametrize("k1, n1, k2, n2",
                         [(44, 63, 1, 20), (5, 10, 5, 10), (0, 12, 3, 30), (30, 30, 0, 8), (7, 9, 2, 11)])
def test_newcombe_interval_matches_statsmodels(k1: int, n1: int, k2: int, n2: int) -> None:
    from statsmodels.stats.proportion import confint_proportions_2indep

    from tracker.analysis.stats import newcombe_interval

    low, high = newcombe_interval(k1, n1, k2, n2)
    expected = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
    assert low == pytest.approx(expected[0], abs=1e-9) and high == pytest.approx(expected[1], abs=1e-9)
