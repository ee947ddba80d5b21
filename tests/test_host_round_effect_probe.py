"""scripts/host_round_effect_probe.py: the agreement of two halves of its rounds, the figure its
report gives, and the whole probe on CPU (tiny settings), so a GPU session does not find it broken."""

from __future__ import annotations

import csv
import math
import sys

import pytest
from conftest import load_script

probe = load_script("host_round_effect_probe")


def test_halves_agree_when_every_split_of_the_rounds_has_medians_within_the_tolerance():
    steady = [[1.0, 1.02], [0.99, 1.01], [1.0, 1.0], [1.01, 0.98]]
    # Splits {0,1}|{2,3} and {0,3}|{1,2}: medians 1.005 and 1.0; {0,2}|{1,3}: 1.0 and 1.0.
    assert probe.halves_agreement(steady) == (1.0, pytest.approx(1 - 1 / 1.005))


def test_one_round_far_off_splits_the_halves_apart_only_where_its_half_is_moved():
    # Rounds 0-3 at 1.0, rounds 4 and 5 at 1.3: of the 10 splits into 3 + 3, the 4 that put both
    # high rounds in one half give that half a median of 1.3 against the other's 1.0.
    by_round = [[1.0]] * 4 + [[1.3]] * 2
    share, worst = probe.halves_agreement(by_round)
    assert share == pytest.approx(6 / 10) and worst == pytest.approx(0.3)


def test_the_probe_runs_on_cpu_and_writes_a_row_per_sub_round(tmp_path, monkeypatch):
    out = tmp_path / "effect.csv"
    monkeypatch.setattr(sys, "argv", ["probe", str(out), "--rounds", "2", "--subrounds", "2", "--reps", "2",
                                      "--impls", "seeded", "--modes", "fwd", "--device", "cpu"])  # fmt: skip
    probe.main()
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2  # rounds x sub-rounds x (same, fresh)
    assert {row["kind"] for row in rows} == {"same", "fresh"} and all(float(row["host_ratio"]) > 0 for row in rows)
    times = [float(row["t_s"]) for row in rows]
    assert times == sorted(times)


def test_figures_that_hold_for_a_while_correlate_at_short_lags_and_not_at_long_ones():
    # Two levels, each held for 3 s, sampled every 0.25 s over 12 s: pairs under 0.5 s apart share
    # their level, pairs 3 s apart (the next block) never do.
    times = [0.25 * i for i in range(48)]
    values = [1.0 if (t // 3) % 2 == 0 else 1.2 for t in times]
    under_half_second, _, two_to_eight, *_ = probe.correlation_by_lag(times, values)
    assert under_half_second > 0.6 and two_to_eight < 0
    assert all(math.isnan(r) for r in probe.correlation_by_lag(times, [1.0] * 48))
