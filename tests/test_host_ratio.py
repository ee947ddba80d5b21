"""The host figure that does not move with the CPU's speed (runners/host_ratio.py): its arithmetic,
the bursts the host timer takes, and the columns a sweep fills from it. On CPU: the host timer
times CPU calls here (no GPU to synchronize)."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from runners import sweep, timers
from runners.host_ratio import RatioSummary, burst_order, pair_ratios
from runners.implementations import copy_forward
from runners.modes import ModeCall, make_inputs
from runners.plan import Point
from runners.results_io import ResultsFile
from runners.rounds import median_or_nan
from runners.rows import COLUMNS, ResultRow

NAN = math.nan
ROOT = Path(__file__).resolve().parents[1]


def test_bursts_alternate_abba_so_each_call_runs_first_in_half_the_pairs():
    assert burst_order(4) == [True, False, True, False]
    assert burst_order(1) == [True]
    assert sum(burst_order(10)) == 5


def test_pair_ratios_divide_pair_by_pair_and_mark_unusable_pairs_nan():
    assert pair_ratios([2.0, 3.0], [1.0, 2.0]) == [2.0, 1.5]
    ratios = pair_ratios([2.0, NAN, 1.0, 4.0], [1.0, 1.0, 0.0, math.inf])
    assert ratios[0] == 2.0 and all(math.isnan(r) for r in ratios[1:])
    with pytest.raises(ValueError, match="2 bursts of the implementation but 1"):
        pair_ratios([1.0, 2.0], [1.0])


def test_the_median_ratio_skips_nan_and_is_nan_without_any_ratio():
    assert median_or_nan([1.0, NAN, 3.0, 2.0]) == 2.0
    assert median_or_nan([0.9, 1.1]) == pytest.approx(1.0)
    assert math.isnan(median_or_nan([NAN, NAN])) and math.isnan(median_or_nan([]))


def test_a_rows_ratio_is_the_median_of_its_rounds_with_the_lowest_and_highest():
    summary = RatioSummary.from_rounds([0.86, NAN, 0.80, 0.90])
    assert (summary.ratio, summary.low, summary.high) == (0.86, 0.80, 0.90)
    empty = RatioSummary.from_rounds([NAN])
    assert all(math.isnan(v) for v in (empty.ratio, empty.low, empty.high))


def spinning_call(log: list, name: str, work: int) -> ModeCall:
    """A call that does a fixed amount of work (about `work` microseconds on a 2-core CPU machine): a
    fixed loop, not a wait for the clock, so that two calls keep their ratio however fast the CPU
    runs or however busy it is (a clock-timed spin measured 6.5x for 3x on a GPU machine whose CPU
    was shared with 8 test processes)."""

    def call():
        log.append(name)
        for _ in range(40 * work):
            pass

    return ModeCall(call=call, reset=lambda: None)


def test_the_host_timer_alternates_bursts_of_the_call_and_the_reference():
    log: list[str] = []
    timing = timers.measure("host", lambda: spinning_call(log, "call", 1), dict(warmup=2, reps=4, calls_per_rep=3),
                            make_reference=lambda: spinning_call(log, "ref", 1))  # fmt: skip
    assert log[:4] == ["call", "call", "ref", "ref"]  # warm-up of each
    bursts = ["".join(log[i : i + 3]) for i in range(4, len(log), 3)]
    assert bursts == ["callcallcall", "refrefref", "refrefref", "callcallcall"] * 2  # ABBA
    assert len(timing.samples_ms) == 4 and math.isfinite(timing.host_ratio) and timing.host_ratio > 0


def test_the_host_ratio_tells_a_call_three_times_as_long_as_its_reference():
    log: list[str] = []
    timing = timers.measure("host", lambda: spinning_call(log, "call", 300), dict(warmup=1, reps=6, calls_per_rep=5),
                            make_reference=lambda: spinning_call(log, "ref", 100))  # fmt: skip
    assert 2.0 < timing.host_ratio < 4.5
    assert 0.03 < statistics.median(timing.samples_ms) < 5.0  # the samples stay absolute: about 0.3 ms a call


def test_without_a_reference_the_host_timer_has_no_ratio():
    timing = timers.measure("host", lambda: spinning_call([], "call", 1), dict(warmup=0, reps=2, calls_per_rep=2))
    assert len(timing.samples_ms) == 2 and math.isnan(timing.host_ratio)


def test_the_reference_is_no_setting_of_the_config():
    with pytest.raises(ValueError, match="unknown setting"):
        timers.check_settings("host", dict(warmup=1, reps=1, make_reference=None))


def test_a_sweeps_host_row_gets_the_ratio_to_copys_call_and_other_rows_none():
    inputs = make_inputs((4, 1, 8), torch.float32, torch.device("cpu"))
    settings = sweep.SweepSettings(impls=["copy"], modes=["fwd_bwd"], timers=["host"], device=torch.device("cpu"),
                                   timer_settings={"host": dict(warmup=1, reps=4, calls_per_rep=5)})  # fmt: skip
    prepared = sweep.Prepared(copy_forward(), "pass", NAN, "")
    reference = copy_forward()  # the family's roofline: the sweep passes it in
    rounds = [sweep.time_once(prepared, inputs, "fwd_bwd", "host", settings, reference=reference) for _ in range(3)]
    fields = sweep.measured_fields(sweep.Measurement(rounds), "host")
    assert 0.5 < fields["host_ratio"] < 2.0  # copy against itself
    assert fields["host_ratio_lo"] <= fields["host_ratio"] <= fields["host_ratio_hi"]
    cpu_rows = sweep.measured_fields(sweep.Measurement([timers.Timing([1.0])]), "cpu")
    assert math.isnan(cpu_rows["host_ratio"])


def test_the_ratio_columns_are_in_the_csv_contract_and_nan_by_default():
    assert {"host_ratio", "host_ratio_lo", "host_ratio_hi"} <= set(COLUMNS)
    assert math.isnan(ResultRow().host_ratio)


def test_a_results_file_written_before_the_ratio_columns_is_read_and_resumed(tmp_path):
    from runners.results_io import ResultsFile, read_results, row_fields

    older = [c for c in COLUMNS if not c.startswith("host_ratio")]
    path = tmp_path / "fp32.csv"
    fields = row_fields(ResultRow(impl="seeded", mode="fwd", timer="host", dtype="fp32", shape="64x1x768",
                                  dim="(1,)", p=0.5, p50_ms=0.016, p20_ms=0.015, p80_ms=0.017))  # fmt: skip
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([older, [fields[c] for c in older]])
    assert "host_ratio" not in read_results(path).columns  # read as it is
    writer = ResultsFile(path)
    writer.write(ResultRow(impl="copy", mode="fwd", timer="host", dtype="fp32", shape="64x1x768", dim="(1,)", p=0.5,
                           p50_ms=0.019, p20_ms=0.018, p80_ms=0.02, host_ratio=1.0))  # fmt: skip
    frame = read_results(path).set_index("impl")
    assert frame.loc["copy", "host_ratio"] == 1.0 and math.isnan(frame.loc["seeded", "host_ratio"])


def point_settings(**overrides) -> sweep.SweepSettings:
    base = dict(impls=["copy", "seeded"], modes=["fwd"], timers=["event", "host"], device=torch.device("cpu"),
                host_max_numel=64, rounds=3, host_rounds=7)  # fmt: skip
    return sweep.SweepSettings(**{**base, **overrides})


def test_a_point_the_host_timer_runs_at_takes_host_rounds_and_other_points_rounds():
    tiny, large = Point("fp32", (4, 1, 16), (1,), 0.5), Point("fp32", (4, 2, 16), (1,), 0.5)
    settings = point_settings()
    assert (sweep.rounds_at(tiny, settings), sweep.rounds_at(large, settings)) == (7, 3)
    assert sweep.rounds_at(tiny, point_settings(host_rounds=2)) == 3  # never fewer than timer.rounds
    assert sweep.rounds_at(tiny, point_settings(timers=["event"])) == 3  # no host timer: no host point
    # the progress bar's total: 2 impls x 1 mode x (event, host) x 7 rounds + 2 x 1 x event x 3 rounds
    assert sweep.count_timings([tiny, large], settings) == 2 * 2 * 7 + 2 * 1 * 3


class Progress:
    """What run_point asks of its progress bar, counting."""

    n = 0

    def update(self, count: int) -> None:
        self.n += count

    def set_description(self, text: str, refresh: bool = True) -> None:
        pass


def test_a_sweep_measures_its_host_point_in_host_rounds(tmp_path):
    settings = point_settings(timers=["host"], timer_settings={"host": dict(warmup=1, reps=2, calls_per_rep=2)},
                              rounds=2, host_rounds=5)  # fmt: skip
    writer = ResultsFile(tmp_path / "host.csv")
    progress = Progress()
    rows = sweep.run_point(Point("fp32", (4, 1, 16), (1,), 0.5), settings, writer, {}, progress)
    assert progress.n == 2 * 5  # 2 impls x host x 5 rounds
    assert {(row.impl, row.timer, row.rounds, row.status) for row in rows} == {("copy", "host", 5, "ok"),
                                                                          ("seeded", "host", 5, "ok")}  # fmt: skip
    assert all(row.host_ratio_lo <= row.host_ratio <= row.host_ratio_hi for row in rows)


def compose_bench(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="bench", overrides=list(overrides))


@pytest.mark.parametrize("value", ["0", "two", "true"])
def test_host_rounds_must_be_a_whole_number_of_at_least_one(value):
    with pytest.raises(ValueError, match="timer.host_rounds"):
        sweep.settings_of(compose_bench(f"timer.host_rounds={value}"), torch.device("cpu"))


def test_the_default_sweep_takes_more_rounds_at_host_points_and_a_config_without_the_setting_its_rounds():
    default = sweep.settings_of(compose_bench(), torch.device("cpu"))
    assert default.host_rounds > default.rounds
    without = sweep.settings_of(compose_bench("timer.rounds=4", "~timer.host_rounds"), torch.device("cpu"))
    assert without.host_rounds == 4
