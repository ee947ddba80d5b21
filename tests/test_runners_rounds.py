"""Rounds: the statistics a row reports over them, the shuffled order, and what sets the pace."""

import math
import random

import pytest

from runners.rounds import RoundSummary, bound_of, interval_coverage, round_order
from runners.rows import round_medians


def test_a_row_reports_the_median_of_round_medians_and_their_range():
    rounds = [[1.0, 2.0, 9.0], [3.0, 3.0, 3.0], [2.0, 2.5, 100.0], [5.0], [0.5, 1.5]]
    summary = RoundSummary.from_rounds(rounds)
    medians = [2.0, 3.0, 2.5, 5.0, 1.0]
    assert summary.p50_ms == 2.5  # the median of the round medians (the pooled samples' median is 2.75)
    assert (summary.ci_lo_ms, summary.ci_hi_ms) == (min(medians), max(medians))
    assert summary.rounds == 5 and summary.n_samples == 12
    assert summary.sample_rounds == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 4, 4]
    assert summary.samples_ms == [s for r in rounds for s in r]
    assert summary.p20_ms <= summary.p50_ms <= summary.p80_ms


def test_one_slow_round_moves_the_pooled_median_but_not_the_median_of_rounds():
    # four rounds near 1 ms, one whole round at 10 ms (a clock dip): pooled, 1/5 of the samples
    # are slow; over rounds, one observation of five is
    rounds = [[1.0] * 10, [1.1] * 10, [0.9] * 10, [1.05] * 10, [10.0] * 30]
    summary = RoundSummary.from_rounds(rounds)
    assert summary.p50_ms == 1.05
    assert summary.ci_hi_ms == 10.0  # the interval shows the odd round


def test_rounds_without_samples_do_not_count_and_no_samples_is_an_error():
    assert RoundSummary.from_rounds([[1.0], [], [3.0]]).rounds == 2
    with pytest.raises(ValueError, match="no samples"):
        RoundSummary.from_rounds([[], []])


def test_round_medians_group_samples_by_round_and_check_lengths():
    assert round_medians([1, 2, 3, 10, 20], [0, 0, 0, 1, 1]) == [2, 15]
    assert round_medians([5, 1], [1, 0]) == [1, 5]  # in round order
    with pytest.raises(ValueError, match="round numbers"):
        round_medians([1, 2], [0])


def test_interval_coverage_is_one_minus_two_to_the_one_minus_r():
    assert interval_coverage(5) == pytest.approx(0.9375)
    assert interval_coverage(7) == pytest.approx(1 - 1 / 64)
    assert interval_coverage(1) == 0.0


def test_interval_coverage_holds_by_simulation():
    """The stated coverage of [min, max] of R round medians, checked on a skewed distribution."""
    rng = random.Random(7)
    true_median = math.log(2)  # median of an exponential with rate 1
    trials, covered = 4000, 0
    for _ in range(trials):
        medians = [rng.expovariate(1.0) for _ in range(5)]
        covered += min(medians) <= true_median <= max(medians)
    assert abs(covered / trials - interval_coverage(5)) < 0.02  # binomial sd ~0.004


def test_round_order_is_a_seeded_permutation_that_changes_between_rounds():
    names = ["copy", "seeded", "eager", "compile", "native", "per_element_rng"]
    first = round_order(names, 0, 3, 0)
    assert sorted(first) == sorted(names)
    assert first == round_order(names, 0, 3, 0)  # replayable
    orders = {tuple(round_order(names, 0, 3, r)) for r in range(10)}
    assert len(orders) > 5  # shuffled afresh per round
    assert round_order(names, 1, 3, 0) != first or round_order(names, 1, 3, 1) != round_order(names, 0, 3, 1)


def test_bound_says_what_sets_the_pace_of_back_to_back_calls():
    assert bound_of("event", p50_ms=0.004, host_us=11.0) == "host"  # 4 us of GPU work, 11 us to issue
    assert bound_of("event", p50_ms=0.100, host_us=11.0) == "gpu"
    assert bound_of("event", p50_ms=0.1, host_us=math.nan) == ""
    assert bound_of("cuda_graph", p50_ms=0.004, host_us=math.nan) == "gpu"
    assert bound_of("host", p50_ms=0.02, host_us=math.nan) == "host"
    assert bound_of("cpu", p50_ms=0.02, host_us=math.nan) == ""
