"""Is a change in run time real, or could the samples have produced it by chance?

Two tests, chosen by what the data holds:

- Raw samples on both sides: a one-sided Mann-Whitney U test in the direction of the change
  (candidate slower: H1 "candidate times are stochastically greater"; faster: "... less").
  The change is significant when its p-value is below `alpha`. It needs no normality, and timing
  samples are skewed and often bimodal.
- Too few samples for the test to ever reach `alpha` (its smallest p-value is
  1 / C(n_base + n_cand, n_base)), or none at all: the p20-p80 ranges of the two sides must not
  overlap (candidate p20 above baseline p80 when slower; candidate p80 below baseline p20 when
  faster).
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
    method: str  # "mann-whitney", "p20-p80" or "none"
    detail: str


def smallest_mann_whitney_p(n_base: int, n_cand: int) -> float:
    # the one-sided exact test's floor: one ordering out of C(n_base + n_cand, n_base)
    return 1.0 / math.comb(n_base + n_cand, n_base)


def mann_whitney_p(base_samples, cand_samples, direction: str) -> float:
    alternative = "greater" if direction == "slower" else "less"
    return float(mannwhitneyu(cand_samples, base_samples, alternative=alternative).pvalue)


def ranges_apart(base_p20: float, base_p80: float, cand_p20: float, cand_p80: float, direction: str) -> bool:
    if direction == "slower":
        return cand_p20 > base_p80
    return cand_p80 < base_p20


def shift_significance(
    direction: str,
    base_samples,
    cand_samples,
    base_range: tuple[float, float],
    cand_range: tuple[float, float],
    alpha: float,
) -> ShiftTest:
    """Test whether the candidate is `direction` ("slower" or "faster") than the baseline.

    `*_samples`: raw times (any length, possibly empty); `*_range`: (p20, p80) from the CSV, used
    when the samples cannot decide at level `alpha`.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    base_samples = np.asarray(base_samples, dtype=float)
    cand_samples = np.asarray(cand_samples, dtype=float)
    n_base, n_cand = len(base_samples), len(cand_samples)
    if n_base and n_cand and smallest_mann_whitney_p(n_base, n_cand) < alpha:
        p_value = mann_whitney_p(base_samples, cand_samples, direction)
        return ShiftTest(p_value < alpha, "mann-whitney", f"MWU p={p_value:.2g} (n={n_base}/{n_cand})")

    why = "no samples" if not (n_base and n_cand) else f"n={n_base}/{n_cand} too few"
    if not all(math.isfinite(v) for v in (*base_range, *cand_range)):
        return ShiftTest(False, "none", f"{why}, no p20-p80")
    apart = ranges_apart(*base_range, *cand_range, direction)
    return ShiftTest(apart, "p20-p80", f"{why}; p20-p80 {'apart' if apart else 'overlap'}")
