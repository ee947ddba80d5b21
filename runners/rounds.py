"""Rounds: the unit of repetition of a sweep point, and the statistics a row reports over them.

A point is measured in R rounds. In each round every implementation of the point is timed once
(each of its modes and timers, `reps` samples each), in an order shuffled afresh for every round,
so no implementation is always measured first, after a compilation, or on a warmer card. A round
is one observation: samples taken back to back inside it are not independent of each other (the
GPU's clocks, the allocator and the host drift together), so statistics are computed over round
medians, never over the samples as if each were a draw of its own.

A row's figures:
- `p50_ms`: the median of the R round medians.
- `ci_lo_ms`, `ci_hi_ms`: the lowest and highest round median. For R independent rounds this
  interval holds the median of the round-median distribution with probability 1 - 2 ** (1 - R)
  (93.8% for R = 5, 98.4% for R = 7): each round median falls below it with probability 1/2, and
  the interval misses only when all R fall on one side. It speaks of this process; another process
  on the same GPU may sit elsewhere (docs/harness.md says by how much).
- `p20_ms`, `p80_ms`: percentiles of all samples pooled: the spread of single calls.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def interval_coverage(rounds: int) -> float:
    """Probability that [lowest, highest] of `rounds` round medians holds their distribution's median."""
    return 1.0 - 2.0 ** (1 - rounds) if rounds >= 1 else 0.0


def round_order(names: Sequence[str], shuffle_seed: int, point_index: int, round_index: int) -> list[str]:
    """The implementations of one round in their shuffled order: a function of the run's seed, the
    point and the round, so a run can be replayed in the same order."""
    order = list(names)
    random.Random(f"{shuffle_seed}/{point_index}/{round_index}").shuffle(order)
    return order


@dataclass(frozen=True)
class RoundSummary:
    """A row's timing figures from its samples grouped by round."""

    p20_ms: float
    p50_ms: float
    p80_ms: float
    ci_lo_ms: float
    ci_hi_ms: float
    rounds: int
    n_samples: int
    samples_ms: list[float]
    sample_rounds: list[int]

    @classmethod
    def from_rounds(cls, samples_by_round: Sequence[Sequence[float]]) -> RoundSummary:
        """`samples_by_round[r]`: the samples (ms) of round r; rounds without samples do not count."""
        kept = [list(map(float, samples)) for samples in samples_by_round if len(samples)]
        if not kept:
            raise ValueError("no samples in any round")
        medians = [statistics.median(samples) for samples in kept]
        pooled = [s for samples in kept for s in samples]
        p20, p80 = (float(v) for v in np.percentile(np.asarray(pooled), [20, 80]))
        rounds_of_samples = [r for r, samples in enumerate(kept) for _ in samples]
        return cls(
            p20_ms=p20, p50_ms=float(statistics.median(medians)), p80_ms=p80,
            ci_lo_ms=min(medians), ci_hi_ms=max(medians), rounds=len(kept), n_samples=len(pooled),
            samples_ms=pooled, sample_rounds=rounds_of_samples,
        )  # fmt: skip


def median_or_nan(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(statistics.median(finite)) if finite else math.nan


def bound_of(timer: str, p50_ms: float, host_us: float) -> str:
    """What sets the pace of back-to-back calls: the host when it needs longer to issue a call than
    the GPU needs to run it (event rows); cuda_graph rows are GPU time, host rows host time."""
    if timer == "event":
        if not (math.isfinite(host_us) and math.isfinite(p50_ms)):
            return ""
        return "host" if host_us > p50_ms * 1e3 else "gpu"
    return {"cuda_graph": "gpu", "host": "host"}.get(timer, "")
