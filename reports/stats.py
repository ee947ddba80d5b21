"""Is a change between two stored runs real, or could their observations have produced it by chance?

The observations of a row are its round medians (the samples file's `sample_rounds` groups the
samples): rounds are the unit of repetition of a sweep (runners/rounds.py), while the samples
inside a round are taken back to back and are not independent of each other. Two tests, chosen by
what the data holds:

- Round medians on both sides, enough of them for the test to reach `alpha`: a one-sided
  Mann-Whitney U test in the direction of the change (candidate slower: H1 "candidate round
  medians are stochastically greater"; faster: "... less"), significant when p < `alpha`. Its
  smallest p-value is 1 / C(n_base + n_cand, n_base): 5 rounds a side reach 0.004.
- Otherwise (too few rounds, or no samples file): the two intervals must not overlap in the
  direction of the change: the lowest and highest round median (`ci_lo_ms`, `ci_hi_ms`) where the
  CSV has them, else p20-p80.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu

DIRECTIONS = ("slower", "faster")


@dataclass(frozen=True)
class ShiftTest:
    """The outcome of testing one change: whether it is significant, by which test, and why."""

    significant: bool
    method: str  # "mann-whitney", the interval's name ("rounds" or "p20-p80"), or "none"
    detail: str


def smallest_mann_whitney_p(n_base: int, n_cand: int) -> float:
    # the one-sided exact test's floor: one ordering out of C(n_base + n_cand, n_base)
    return 1.0 / math.comb(n_base + n_cand, n_base)


def mann_whitney_p(base, cand, direction: str) -> float:
    alternative = "greater" if direction == "slower" else "less"
    return float(mannwhitneyu(cand, base, alternative=alternative).pvalue)


def intervals_apart(base: tuple[float, float], cand: tuple[float, float], direction: str) -> bool:
    if direction == "slower":
        return cand[0] > base[1]
    return cand[1] < base[0]


def shift_significance(
    direction: str,
    base_rounds,
    cand_rounds,
    base_interval: tuple[float, float],
    cand_interval: tuple[float, float],
    alpha: float,
    interval_name: str = "p20-p80",
) -> ShiftTest:
    """Test whether the candidate is `direction` ("slower" or "faster") than the baseline.

    `*_rounds`: round medians (any number, possibly none); `*_interval`: (low, high) from the CSV,
    used when the rounds cannot decide at level `alpha`.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    base_rounds = np.asarray(base_rounds, dtype=float)
    cand_rounds = np.asarray(cand_rounds, dtype=float)
    n_base, n_cand = len(base_rounds), len(cand_rounds)
    if n_base and n_cand and smallest_mann_whitney_p(n_base, n_cand) < alpha:
        p_value = mann_whitney_p(base_rounds, cand_rounds, direction)
        return ShiftTest(p_value < alpha, "mann-whitney", f"MWU p={p_value:.2g} over rounds (n={n_base}/{n_cand})")

    why = "no rounds" if not (n_base and n_cand) else f"{n_base}/{n_cand} rounds too few"
    if not all(math.isfinite(v) for v in (*base_interval, *cand_interval)):
        return ShiftTest(False, "none", f"{why}, no interval")
    apart = intervals_apart(base_interval, cand_interval, direction)
    return ShiftTest(apart, interval_name, f"{why}; {interval_name} {'apart' if apart else 'overlap'}")
