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

from runners import sweep, timers
from runners.host_ratio import RatioSummary, burst_order, pair_ratios
from runners.implementations import copy_forward
from runners.modes import ModeCall, make_inputs
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


# --- a round's host timing in slices spread over the round (timer.host_slices) ----------------------------


WORK = {"a": [("fwd", "event"), ("fwd", "host")], "b": [("fwd", "event"), ("fwd", "cuda_graph"), ("fwd", "host")]}


def test_without_slices_a_round_runs_each_timing_once_in_the_implementations_order():
    assert sweep.round_schedule(["b", "a"], WORK, 1) == [
        ("b", "fwd", "event", 0), ("b", "fwd", "cuda_graph", 0), ("b", "fwd", "host", 0),
        ("a", "fwd", "event", 0), ("a", "fwd", "host", 0),
    ]  # fmt: skip


def test_slices_run_each_host_timing_once_a_stretch_with_the_other_timings_shared_out_between():
    schedule = sweep.round_schedule(["a", "b"], WORK, 3)
    assert schedule == [
        ("a", "fwd", "event", 0), ("a", "fwd", "host", 0), ("b", "fwd", "host", 0),
        ("a", "fwd", "host", 1), ("b", "fwd", "event", 1), ("b", "fwd", "host", 1),
        ("a", "fwd", "host", 2), ("b", "fwd", "cuda_graph", 2), ("b", "fwd", "host", 2),
    ]  # fmt: skip
    others = [task for task in schedule if task[2] != "host"]
    assert sorted(task[:3] for task in others) == sorted((i, m, t) for i in WORK for m, t in WORK[i] if t != "host")


def test_merged_slices_pool_every_pair_of_bursts_not_the_slices_medians():
    slices = [timers.Timing([1.0, 2.0], host_ratio=1.0, pair_ratios=[1.0, 1.0]),
              timers.Timing([3.0, 4.0], host_ratio=3.0, pair_ratios=[2.0, 3.0, NAN])]  # fmt: skip
    merged = timers.merged_slices(slices)
    assert merged.samples_ms == [1.0, 2.0, 3.0, 4.0]
    assert merged.host_ratio == 1.5  # the median of 1, 1, 2, 3 (NaN skipped); the slices' medians' median is 2


def test_the_host_timer_records_each_pairs_ratio():
    log: list[str] = []
    timing = timers.measure("host", lambda: spinning_call(log, "call", 1), dict(warmup=0, reps=4, calls_per_rep=2),
                            make_reference=lambda: spinning_call(log, "ref", 1))  # fmt: skip
    assert len(timing.pair_ratios) == 4 and timing.host_ratio == median_or_nan(timing.pair_ratios)


@pytest.mark.parametrize(("slices", "reps", "message"), [
    (0, 10, "give a whole number >= 1"), ("2", 10, "give a whole number >= 1"), (3, 10, "must divide"),
])  # fmt: skip
def test_host_slices_that_cannot_split_the_reps_evenly_are_refused(slices, reps, message):
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"timer": {"host_slices": slices, "settings": {"host": {"reps": reps}}}})
    with pytest.raises(ValueError, match=f"timer.host_slices.*{message}"):
        sweep.host_slices_of(cfg)


def test_host_slices_default_to_one_and_split_the_defaults_reps():
    from omegaconf import OmegaConf

    assert sweep.host_slices_of(OmegaConf.create({"timer": {}})) == 1
    default = OmegaConf.load(ROOT / "conf" / "timer" / "default.yaml")
    assert default.host_slices == 1
    assert sweep.host_slices_of(OmegaConf.create({"timer": {"host_slices": 5, "settings": default.settings}})) == 5


def test_a_point_measured_in_slices_gives_each_host_row_every_pair_of_its_rounds(tmp_path):
    from tqdm.auto import tqdm

    from runners.plan import Point
    from runners.results_io import ResultsFile

    settings = sweep.SweepSettings(impls=["copy", "seeded"], modes=["fwd"], timers=["cpu", "host"],
                                   device=torch.device("cpu"), rounds=2, host_slices=2,
                                   timer_settings={"cpu": dict(warmup=0, reps=2),
                                                   "host": dict(warmup=1, reps=4, calls_per_rep=2)})  # fmt: skip
    with tqdm(disable=True) as progress:
        rows = sweep.run_point(Point("fp32", (4, 1, 8), (1,), 0.5), settings, ResultsFile(tmp_path / "r.csv"), {},
                               progress)  # fmt: skip
    host = {row.impl: row for row in rows if row.timer == "host"}
    assert set(host) == {"copy", "seeded"} and all(row.status == "ok" for row in rows)
    assert all(row.n_samples == 2 * 4 and row.rounds == 2 for row in host.values())  # 2 rounds x 2 slices x 2 pairs
    assert all(math.isfinite(row.host_ratio) for row in host.values())
    assert all(math.isnan(row.host_ratio) for row in rows if row.timer == "cpu")
