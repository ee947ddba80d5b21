"""The host figure that does not move with the host CPU's speed: a call's wall time over a fixed
reference call's, both timed in the same process in short alternating bursts.

Why: the `host` timer's absolute time per call (back-to-back calls of a tiny tensor) follows the
host CPU's speed, which on the H200's machines moved 1.6-1.7x between processes and machines and
can swing within seconds: the same code read 23.2 and 14.3 µs per call in two sweeps. The seeded
op's time over copy's, measured in the same process, moved only 2.5% between those sweeps (0.86
against 0.84): both calls do the same kind of host work (a Python call, dispatch, an allocation, a
kernel launch, an autograd node), so a slower or faster CPU scales both alike. Reports and the
gates judge host keys on this ratio; the absolute microseconds stay in the CSV as context.

The reference is the op family's roofline call in the same mode on the same tensors
(`runners.sweep.host_reference`): for the standalone op `copy`'s (runners/implementations.py: an
autograd.Function around `torch.mul(x, 1, out=...)`, forward and backward), ATen elementwise
kernel launches through autograd, code that no change to the op touches. For copy's own row the
ratio is about 1 (copy against itself), which shows the figure's noise floor.

The timer (runners/timers.py `time_host`) alternates bursts of `calls_per_rep` calls of the
implementation and of the reference, `reps` pairs of bursts, in the order ABBA... (`burst_order`:
neither call always runs first), and one synchronize closes each burst. A pair of bursts gives one
ratio (implementation's time per call / reference's); a round's figure is the median of its pairs'
ratios (`runners.rounds.median_or_nan`: NaN ones skipped), and a row's `host_ratio` the median of
its rounds' figures, with the lowest and highest round's figure as `host_ratio_lo`,
`host_ratio_hi` (`RatioSummary`): the interval of runners/rounds.py, for the ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from runners.rounds import median_or_nan


def burst_order(pairs: int) -> list[bool]:
    """For each pair of bursts, whether the implementation's burst runs first: ABBA ABBA..., so each
    runs first in half the pairs (the first burst after a synchronize or a switch may differ)."""
    return [index % 2 == 0 for index in range(pairs)]


def pair_ratios(impl_ms: Sequence[float], ref_ms: Sequence[float]) -> list[float]:
    """Implementation / reference time per call of each pair of bursts; NaN where either is not a
    positive finite time."""
    if len(impl_ms) != len(ref_ms):
        raise ValueError(f"{len(impl_ms)} bursts of the implementation but {len(ref_ms)} of the reference")
    return [a / b if usable(a) and usable(b) else math.nan for a, b in zip(impl_ms, ref_ms, strict=True)]


def usable(value: float) -> bool:
    return math.isfinite(value) and value > 0


@dataclass(frozen=True)
class RatioSummary:
    """A row's host ratio from its rounds' figures: the median, the lowest and the highest."""

    ratio: float
    low: float
    high: float

    @classmethod
    def from_rounds(cls, round_ratios: Sequence[float]) -> RatioSummary:
        """`round_ratios`: each round's median ratio; rounds without one (NaN) do not count."""
        finite = [r for r in round_ratios if math.isfinite(r)]
        if not finite:
            return cls(math.nan, math.nan, math.nan)
        return cls(median_or_nan(finite), min(finite), max(finite))
