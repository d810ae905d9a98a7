"""The two statistics a comparison needs, in plain Python (no scipy at run time).

- `wilson_interval`: the 95% interval of a success rate k/n. Wilson rather than the textbook
  normal ("Wald") interval because ours are small samples with rates near 0 or 1, where Wald
  gives impossible bounds (below 0, above 1) and far too narrow intervals.
- `mcnemar_exact`: is the change real? On commits run in both campaigns only the discordant pairs
  carry information: b fixed (fail -> success) and c regressed (success -> fail). Under "no change"
  each discordant pair is a fair coin, so the exact two-sided p-value is a binomial test of b of b+c
  at 1/2 (the chi-square version is wrong at the small counts we have).

- `newcombe_interval`: the 95% interval of a difference of two independent rates (Newcombe's hybrid score
  method, built from the two Wilson intervals), for the fix rate against a control arm's flip rate.

- `cluster_bootstrap_differences`: 95% percentile intervals of paired differences (success per commit, pass@1
  per attempt) from a bootstrap that resamples commits, so a commit's attempts stay together; numpy only.
- `holm_adjust`: Holm's step-down adjustment of p-values for several pairs tested at once.

All are checked against scipy / statsmodels in tests/test_compare_stats.py (and test_compare_many.py).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import NamedTuple

import numpy as np


class Interval(NamedTuple):
    low: float
    high: float


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for successes/trials; (nan, nan) when there are no trials."""
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return Interval(math.nan, math.nan)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / trials + z2n / (4 * trials)) / (1 + z2n)
    # At k=0 (k=n) the lower (upper) bound is exactly 0 (1); the formula gets there only up to rounding.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Interval(low, high)


def mcnemar_exact(fixed: int, regressed: int) -> float:
    """Exact two-sided McNemar p-value from the discordant pairs (1.0 when there are none).

    p = min(1, 2 * P[X <= min(b, c)]) with X ~ Binomial(b + c, 1/2), summed in exact integers so
    that thousands of pairs neither underflow nor lose precision.
    """
    if fixed < 0 or regressed < 0:
        raise ValueError("discordant pair counts cannot be negative")
    n = fixed + regressed
    if n == 0:
        return 1.0
    k = min(fixed, regressed)
    term, tail = 1, 1  # C(n, 0)
    for i in range(k):
        term = term * (n - i) // (i + 1)
        tail += term
    return min(1.0, 2 * tail / 2**n)  # int / int is correctly rounded even for huge ints


def newcombe_interval(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> Interval:
    """Interval of k1/n1 - k2/n2 for independent samples (Newcombe 1998, method 10); (nan, nan) if n is 0."""
    if n1 == 0 or n2 == 0:
        return Interval(math.nan, math.nan)
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, confidence)
    l2, u2 = wilson_interval(k2, n2, confidence)
    diff = p1 - p2
    return Interval(diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
                    diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def cluster_bootstrap_differences(per_commit: np.ndarray, attempts: np.ndarray, *, resamples: int = 2000,
                                  seed: int = 0, confidence: float = 0.95) -> tuple[Interval, Interval]:
    """Percentile intervals of mean(a) - mean(b) and of pass@1(a) - pass@1(b), resampling commits.

    `per_commit` is 2 x n (a commit's success in campaign a and b, 0/1); `attempts` is 4 x n (successful
    attempts in a, in b, finished attempts in a, in b). Each resample draws n commits with replacement and
    takes all of their attempts, the clustering a per-attempt rate needs. (nan, nan) for no commits, or for
    pass@1 when a resample has no finished attempt on one side.
    """
    n = per_commit.shape[1]
    if n == 0:
        return Interval(math.nan, math.nan), Interval(math.nan, math.nan)
    rng = np.random.default_rng(seed)
    values = np.vstack([per_commit, attempts]).T.astype("float64")  # n x 6
    sums = []
    chunk = max(1, min(resamples, 2_000_000 // n))
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(rows, n))
        # how often each commit was drawn in each resample; the sums are then one matrix product
        weights = np.bincount((np.arange(rows)[:, None] * n + idx).ravel(), minlength=rows * n).reshape(rows, n)
        sums.append(weights @ values)
    totals = np.concatenate(sums)  # resamples x 6
    with np.errstate(invalid="ignore", divide="ignore"):
        pass_diffs = totals[:, 2] / totals[:, 4] - totals[:, 3] / totals[:, 5]
    return _percentile((totals[:, 0] - totals[:, 1]) / n, confidence), _percentile(pass_diffs, confidence)


def _percentile(values: np.ndarray, confidence: float) -> Interval:
    if np.isnan(values).any():
        return Interval(math.nan, math.nan)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high))


def holm_adjust(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order (nan stays nan and is not counted)."""
    known = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running, m = 0.0, len(known)
    for rank, (p, i) in enumerate(known):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
