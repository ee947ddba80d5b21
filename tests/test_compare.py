"""reports/compare.py and reports/stats.py on fixture CSVs (tests/fixtures/compare/generate.py)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from reports import compare, comparison, stored_results
from reports.stats import shift_significance, smallest_mann_whitney_p
from runners import rows
from runners.rows import round_medians

FIXTURES = Path(__file__).parent / "fixtures" / "compare"
REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET = {"impl": "seeded", "mode": "fwd", "shape": "64x256x768"}  # the key the fixtures change


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch):
    # CI sets GITHUB_STEP_SUMMARY: tests must not write into the real job summary
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def fixture(name: str) -> Path:
    return FIXTURES / f"{name}.csv"


def run_main(capsys, tmp_path, baseline, candidate, *args):
    """(exit status, markdown written, stderr) of one comparison."""
    markdown = tmp_path / "out.compare.md"
    status = compare.main([f"baseline={baseline}", f"candidate={candidate}", f"markdown={markdown}", *args])
    _, err = capsys.readouterr()
    return status, markdown.read_text() if markdown.exists() else "", err


def table_rows(markdown: str) -> list[dict]:
    """The rows of the first markdown table, as dicts by header."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines[2:]]


def row_for(markdown: str, impl: str, mode: str, shape: str) -> dict:
    found = [r for r in table_rows(markdown) if (r["impl"], r["mode"], r["shape"]) == (impl, mode, shape)]
    assert len(found) == 1, markdown
    return found[0]


def variant(tmp_path, name: str, source: str = "baseline", edit=None, edit_samples=None, samples=True) -> Path:
    """Copy fixture `source` to tmp_path/name.csv (+ samples), editing its frames on the way."""
    frame = pd.read_csv(fixture(source), dtype=str, keep_default_na=False)
    path = tmp_path / f"{name}.csv"
    (edit(frame) if edit else frame).to_csv(path, index=False)
    if samples:
        sample_frame = pd.read_csv(FIXTURES / f"{source}.samples.csv", dtype=str, keep_default_na=False)
        sample_frame = edit_samples(sample_frame) if edit_samples else sample_frame
        sample_frame.to_csv(tmp_path / f"{name}.samples.csv", index=False)
    return path


def at(frame: pd.DataFrame, impl: str, mode: str, shape: str) -> pd.Series:
    return (frame["impl"] == impl) & (frame["mode"] == mode) & (frame["shape"] == shape)


def scaled(tmp_path, name: str, impl: str, mode: str, shape: str, factor: float) -> Path:
    """The baseline with one key's times (percentiles and samples) multiplied by `factor`."""

    def edit(frame):
        for column in (*stored_results.TIMING_COLUMNS, *stored_results.INTERVAL_COLUMNS):
            frame.loc[at(frame, impl, mode, shape), column] = [
                str(float(v) * factor) for v in frame[column][at(frame, impl, mode, shape)]
            ]
        return frame

    def edit_samples(frame):
        where = at(frame, impl, mode, shape)
        frame.loc[where, "samples_ms"] = [
            " ".join(str(float(s) * factor) for s in t.split()) for t in frame["samples_ms"][where]
        ]
        return frame

    return variant(tmp_path, name, edit=edit, edit_samples=edit_samples)


# --- the contract ------------------------------------------------------------------------------


def test_columns_match_the_csv_contract():
    assert set(stored_results.REQUIRED_COLUMNS) <= set(rows.COLUMNS)
    assert set(stored_results.INTERVAL_COLUMNS) <= set(rows.COLUMNS)


# --- the verdicts that matter most ------------------------------------------------------------


def test_seeded_30pct_slower_with_tight_samples_is_regressed_and_exits_1(capsys, tmp_path):
    status, markdown, _ = run_main(capsys, tmp_path, fixture("baseline"), fixture("seeded_slower"))
    assert status == 1
    target = row_for(markdown, **TARGET)
    assert math.isclose(float(target["ratio"]), 1.3, abs_tol=0.005)
    assert target["verdict"] == "regressed"
    assert target["gate"] == "FAIL"
    assert "Mann-Whitney" in markdown and "**FAIL**" in markdown
    assert "MWU p=0.004 over rounds (n=5/5)" in target["evidence"]  # 5 round medians a side: 1/252
    others = [r for r in table_rows(markdown) if (r["impl"], r["mode"], r["shape"]) != tuple(TARGET.values())]
    assert {r["verdict"] for r in others} == {"unchanged"}


def test_3pct_change_is_unchanged_and_exits_0(capsys, tmp_path):
    status, markdown, _ = run_main(capsys, tmp_path, fixture("baseline"), fixture("seeded_3pct"))
    assert status == 0
    target = row_for(markdown, **TARGET)
    assert math.isclose(float(target["ratio"]), 1.03, abs_tol=0.005)
    assert target["verdict"] == "unchanged"


def test_30pct_change_with_wildly_spread_samples_is_noisy_not_regressed(capsys, tmp_path):
    status, markdown, _ = run_main(capsys, tmp_path, fixture("baseline"), fixture("seeded_noisy"))
    assert status == 0
    target = row_for(markdown, **TARGET)
    assert math.isclose(float(target["ratio"]), 1.3, abs_tol=0.005)
    assert target["verdict"] == "noisy"
    assert "**PASS**" in markdown


def test_identical_files_exit_0_all_unchanged(capsys, tmp_path):
    status, markdown, _ = run_main(capsys, tmp_path, fixture("baseline"), fixture("baseline"))
    assert status == 0
    verdicts = [r["verdict"] for r in table_rows(markdown)]
    assert verdicts == ["unchanged"] * len(pd.read_csv(fixture("baseline")))


def test_gpu_mismatch_exits_2_naming_both_gpus(capsys, tmp_path):
    status, markdown, err = run_main(capsys, tmp_path, fixture("baseline"), fixture("gpu_mismatch"))
    assert status == 2
    assert "different GPU models" in err
    assert "NVIDIA H200" in err and "NVIDIA A100-SXM4-80GB" in err
    assert "allow_cross_gpu=true" in err
    assert markdown == ""  # refused: no file written, even where one was asked for


def test_missing_column_exits_2_naming_it(capsys, tmp_path):
    status, _, err = run_main(capsys, tmp_path, fixture("baseline"), fixture("missing_column"))
    assert status == 2
    assert "lacks column(s): p50_ms" in err
    assert "missing_column.csv" in err


# --- matching and refusing ---------------------------------------------------------------------


def test_allow_cross_gpu_compares_different_gpus_and_says_so(capsys, tmp_path):
    status, markdown, _ = run_main(
        capsys, tmp_path, fixture("baseline"), fixture("gpu_mismatch"), "allow_cross_gpu=true"
    )
    assert status == 0
    assert "different GPU models compared (allow_cross_gpu=true)" in markdown


def with_fp16_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.assign(dtype="fp16")], ignore_index=True)


@pytest.mark.parametrize("allow", [None, "allow_cross_dtype=true", "allow_cross_gpu=true"])
def test_different_dtypes_are_refused_unless_allowed(capsys, tmp_path, allow):
    candidate = variant(tmp_path, "more_dtypes", edit=with_fp16_rows, edit_samples=with_fp16_rows)
    status, markdown, err = run_main(capsys, tmp_path, fixture("baseline"), candidate, *([allow] if allow else []))
    if allow is None:
        assert status == 2
        assert "different dtypes: baseline has fp32; candidate has fp16, fp32" in err
    else:
        assert status == 0
        assert "### Only in the candidate (5)" in markdown
        assert "different dtypes compared" in markdown


def test_keys_on_one_side_are_listed(capsys, tmp_path):
    def drop_one_add_one(frame):
        frame = frame[~at(frame, "copy", "fwd", "64x256x768")]
        extra = frame[at(frame, "seeded", "fwd", "64x16x768")].assign(shape="64x4096x768")
        return pd.concat([frame, extra], ignore_index=True)

    candidate = variant(tmp_path, "reshaped", edit=drop_one_add_one, edit_samples=drop_one_add_one)
    status, markdown, _ = run_main(capsys, tmp_path, fixture("baseline"), candidate)
    assert status == 0
    only_baseline = markdown.split("### Only in the baseline (1)")[1].split("###")[0]
    only_candidate = markdown.split("### Only in the candidate (1)")[1]
    assert "| copy | fwd | 64x256x768 |" in only_baseline
    assert "| seeded | fwd | 64x4096x768 |" in only_candidate


def test_rows_not_ok_are_listed_with_status_not_judged(capsys, tmp_path):
    def fail_one(frame):
        where = at(frame, "seeded", "fwd", "64x16x768")
        frame.loc[where, "status"] = "error"
        frame.loc[where, "error"] = "RuntimeError: boom | again"
        return frame

    candidate = variant(tmp_path, "failed", edit=fail_one)
    status, markdown, _ = run_main(capsys, tmp_path, fixture("baseline"), candidate)
    assert status == 1  # ok in the baseline, error in the candidate: a gated key broke
    assert "| seeded | fwd | 64x16x768 |" not in markdown.split("### Not judged")[0]
    assert "| seeded | fwd | 64x16x768 | ok | error | broken: error RuntimeError: boom \\| again | FAIL |" in markdown

    status, markdown, _ = run_main(capsys, tmp_path, candidate, fixture("baseline"))
    assert status == 0  # not ok in the baseline: listed, not judged, not a failure
    assert "| seeded | fwd | 64x16x768 | error | ok | RuntimeError: boom \\| again | pass |" in markdown


def test_superseded_rows_of_a_key_give_way_to_the_last(capsys, tmp_path):
    """A run cut short leaves appended rows uncompacted: the last row of a key counts."""
    def stale_first(frame):
        stale = frame[at(frame, **TARGET)].assign(p50_ms="9.9")
        return pd.concat([stale, frame], ignore_index=True)

    candidate = variant(tmp_path, "appended", edit=stale_first, samples=False)
    status, markdown, _ = run_main(capsys, tmp_path, fixture("baseline"), candidate)
    assert status == 0 and row_for(markdown, **TARGET)["verdict"] == "unchanged"
    assert "1 superseded row(s) left out" in markdown


def test_no_common_keys_exits_2(capsys, tmp_path):
    candidate = variant(tmp_path, "other_p", edit=lambda f: f.assign(p="0.1"), edit_samples=lambda f: f.assign(p="0.1"))
    markdown = tmp_path / "x.md"
    status = compare.main([f"baseline={fixture('baseline')}", f"candidate={candidate}", f"markdown={markdown}"])
    out, err = capsys.readouterr()
    assert status == 2
    assert "no common keys" in err
    assert "### Only in the baseline (5)" in out and "### Only in the candidate (5)" in out
    assert not markdown.exists()  # refused: no file, even where one was asked for


def test_missing_file_exits_2(capsys, tmp_path):
    status, _, err = run_main(capsys, tmp_path, tmp_path / "absent.csv", fixture("baseline"))
    assert status == 2
    assert "baseline file not found" in err


def test_gate_that_would_check_nothing_exits_2(capsys, tmp_path):
    status, _, err = run_main(capsys, tmp_path, fixture("baseline"), fixture("baseline"), "gate_impls=[seeded_v2]")
    assert status == 2
    assert "gate would check nothing" in err


# --- verdicts and the gate ---------------------------------------------------------------------


def test_regression_of_an_ungated_impl_is_reported_not_failed(capsys, tmp_path):
    candidate = scaled(tmp_path, "eager_slower", "eager", "fwd", "64x256x768", 1.5)
    status, markdown, _ = run_main(capsys, tmp_path, fixture("baseline"), candidate)
    assert status == 0
    eager = row_for(markdown, "eager", "fwd", "64x256x768")
    assert (eager["verdict"], eager["gate"]) == ("regressed", "not gated")
    assert "not a regression the gate judges" in markdown

    status, _, _ = run_main(capsys, tmp_path, fixture("baseline"), candidate, "gate_impls=[seeded,eager]")
    assert status == 1


def test_faster_with_tight_samples_is_improved(capsys, tmp_path):
    candidate = scaled(tmp_path, "seeded_faster", **TARGET, factor=0.7)
    status, markdown, _ = run_main(capsys, tmp_path, fixture("baseline"), candidate)
    assert status == 0
    assert row_for(markdown, **TARGET)["verdict"] == "improved"


def test_per_impl_threshold_overrides_the_default(capsys, tmp_path):
    status, markdown, _ = run_main(
        capsys, tmp_path, fixture("baseline"), fixture("seeded_slower"), "thresholds.seeded=0.5"
    )
    assert status == 0
    assert row_for(markdown, **TARGET)["verdict"] == "unchanged"


@pytest.mark.parametrize(
    ("candidate", "verdict", "status"), [("seeded_slower", "regressed", 1), ("seeded_noisy", "noisy", 0)]
)
@pytest.mark.parametrize("interval", ["rounds", "p20-p80"])
def test_without_samples_the_intervals_decide(capsys, tmp_path, candidate, verdict, status, interval):
    def older(frame):  # a CSV from before rounds: no interval of round medians
        return frame.drop(columns=list(stored_results.INTERVAL_COLUMNS)) if interval == "p20-p80" else frame

    baseline = variant(tmp_path, "baseline_no_samples", edit=older, samples=False)
    cand = variant(tmp_path, f"{candidate}_no_samples", source=candidate, edit=older, samples=False)
    got_status, markdown, _ = run_main(capsys, tmp_path, baseline, cand)
    assert got_status == status
    target = row_for(markdown, **TARGET)
    assert target["verdict"] == verdict
    assert interval in target["evidence"]
    assert "no samples file beside the baseline" in markdown


def test_samples_without_rounds_are_not_a_test_of_their_own(capsys, tmp_path):
    """Old samples files (no rounds): 25 samples of one process are not 25 observations."""
    def no_rounds(frame):
        return frame.drop(columns=["sample_rounds"])

    baseline = variant(tmp_path, "base_old", edit_samples=no_rounds)
    cand = variant(tmp_path, "cand_old", source="seeded_slower", edit_samples=no_rounds)
    status, markdown, _ = run_main(capsys, tmp_path, baseline, cand)
    target = row_for(markdown, **TARGET)
    assert status == 1 and "Mann-Whitney p" not in target["evidence"] and "rounds apart" in target["evidence"]
    assert "records no rounds" in markdown


def test_change_exactly_at_the_threshold_is_unchanged():
    verdict, _ = comparison.verdict_for(1.1, 0.1, [], [], (1.0, 1.0), (2.0, 2.0), 0.01, "p20-p80")
    assert verdict == "unchanged"
    verdict, _ = comparison.verdict_for(1.1001, 0.1, [], [], (1.0, 1.0), (2.0, 2.0), 0.01, "p20-p80")
    assert verdict == "regressed"


# --- stats ---------------------------------------------------------------------------------------


def test_round_medians_group_the_samples_of_each_round():
    assert round_medians([1, 2, 3, 10, 20], [0, 0, 0, 1, 1]) == [2, 15]
    with pytest.raises(ValueError, match="round numbers"):
        round_medians([1, 2], [0])


def test_too_few_samples_for_alpha_fall_back_to_ranges():
    assert smallest_mann_whitney_p(3, 3) > 0.01  # 1/20: Mann-Whitney can never say yes
    shift = shift_significance("slower", [1.0, 1.0, 1.0], [2.0, 2.0, 2.0], (1.0, 1.1), (1.5, 2.0), alpha=0.01)
    assert (shift.significant, shift.method) == (True, "p20-p80")


def test_ranges_follow_the_direction():
    overlap = shift_significance("faster", [], [], (1.0, 1.2), (0.9, 1.05), alpha=0.01)
    apart = shift_significance("faster", [], [], (1.0, 1.2), (0.8, 0.95), alpha=0.01)
    assert (overlap.significant, apart.significant) == (False, True)


def test_no_samples_and_no_ranges_is_not_significant():
    shift = shift_significance("slower", [], [], (math.nan, math.nan), (2.0, 2.0), alpha=0.01)
    assert (shift.significant, shift.method) == (False, "none")


# --- command line ------------------------------------------------------------------------------


def test_markdown_is_written_only_where_asked_and_appends_to_step_summary(capsys, tmp_path, monkeypatch):
    candidate = variant(tmp_path, "candidate", source="seeded_slower")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    before = sorted(tmp_path.iterdir())
    status = compare.main([f"baseline={fixture('baseline')}", f"candidate={candidate}"])
    out = capsys.readouterr().out
    assert status == 1 and "**FAIL**" in out
    assert sorted(tmp_path.iterdir()) == before  # printed only: nothing beside the candidate
    markdown = tmp_path / "o.md"
    status = compare.main([f"baseline={fixture('baseline')}", f"candidate={candidate}", f"markdown={markdown}"])
    assert status == 1
    written = markdown.read_text()
    assert written == capsys.readouterr().out
    appended = summary.read_text()
    assert appended.startswith("earlier step\n## Performance comparison") and "**FAIL**" in appended
    assert "2 ungated key(s) unchanged, not listed here." in appended  # the job summary: gated and changed


def test_help_states_the_test_and_the_exit_codes(capsys):
    assert compare.main(["--help"]) == 0
    out = capsys.readouterr().out
    for phrase in (
        "one-sided Mann-Whitney U",
        "alpha: 0.01",
        "threshold: 0.1",
        "allow_cross_gpu",
        "Exit status",
    ):
        assert phrase in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["baseline=a.csv"], "candidate=PATH is required"),
        (["--baseline", "a.csv"], "arguments are key=value"),
        (["basline=a.csv", "candidate=b.csv"], "basline"),
        (["baseline=a.csv", "candidate=b.csv", "alpha=2"], "alpha must lie in (0, 1)"),
    ],
)
def test_bad_arguments_exit_2(capsys, argv, message):
    assert compare.main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_refused_comparison_writes_no_file(capsys, tmp_path):
    """A missing candidate in a results folder: refused, and no `<candidate>.compare.md` appears."""
    folder = tmp_path / "results"
    folder.mkdir()
    status = compare.main([f"baseline={fixture('baseline')}", f"candidate={folder / 'nope.csv'}"])
    assert status == 2 and "candidate file not found" in capsys.readouterr().err
    assert list(folder.iterdir()) == []


def test_the_command_line_exit_status_tells_regression_from_unusable_input(tmp_path):
    """What a CI script tests (make's own status is 2 for either): 1 regressed, 2 unusable."""
    command = [sys.executable, "-m", "reports.compare", f"baseline={fixture('baseline')}"]
    regressed = subprocess.run([*command, f"candidate={fixture('seeded_slower')}"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=120)  # fmt: skip
    assert regressed.returncode == 1, regressed.stderr
    assert "regressed" in regressed.stdout
    unusable = subprocess.run([*command, f"candidate={tmp_path / 'nope.csv'}"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    assert unusable.returncode == 2, unusable.stderr
    assert list(tmp_path.iterdir()) == []



def test_make_compare_passes_its_files_and_fails_with_makes_own_status_2():
    """Through make a regression ends with make's status 2 (GNU make's rule for any failed recipe, as
    `make help` says), the comparison's own 1 on make's last line; the command-line test above has 2."""
    done = subprocess.run(["make", "-s", "--no-print-directory", "compare", f"PY={sys.executable}",
                           f"BASELINE={fixture('baseline')}", f"CANDIDATE={fixture('seeded_slower')}"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "**FAIL**" in done.stdout, done.stderr
    assert done.stderr.rstrip().endswith("Error 1"), done.stderr


def two_timer_files(tmp_path, timer_p50s: dict[str, tuple[float, float]],
                    host_ratios: tuple[float, float] | None = None) -> list[Path]:
    """Baseline and candidate of one seeded key timed by each timer: {timer: (base p50, cand p50)};
    host rows with `host_ratios` (base, cand) and a range of round ratios 1% either side, or without
    the ratio columns at all (a file written before they existed)."""
    base = pd.read_csv(FIXTURES / "baseline.csv")
    row = base[base["impl"] == "seeded"].head(1)
    paths = []
    for side in (0, 1):
        frame = pd.concat([row.assign(timer=timer) for timer in timer_p50s])
        frame["p50_ms"] = [p50s[side] for p50s in timer_p50s.values()]
        frame["p20_ms"], frame["p80_ms"] = frame["p50_ms"] * 0.99, frame["p50_ms"] * 1.01
        frame["ci_lo_ms"], frame["ci_hi_ms"] = frame["p50_ms"] * 0.995, frame["p50_ms"] * 1.005
        if host_ratios is not None:
            host = (frame["timer"] == "host").map({True: host_ratios[side], False: math.nan})
            frame["host_ratio"], frame["host_ratio_lo"], frame["host_ratio_hi"] = host, host * 0.99, host * 1.01
        path = tmp_path / f"{('base', 'cand')[side]}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


def test_host_keys_are_judged_on_the_ratio_to_the_reference_not_on_absolute_host_time(tmp_path):
    """Host time 1.5x slower with the same ratio to copy's call: the CPU was slower, the op was not."""
    paths = two_timer_files(tmp_path, {"host": (0.02, 0.03), "event": (0.3, 0.3)}, host_ratios=(0.85, 0.85))
    args = [f"baseline={paths[0]}", f"candidate={paths[1]}", f"markdown={tmp_path / 'out.md'}"]
    assert compare.main(args) == 0
    assert "host ratio: baseline 0.850, candidate 0.850" in (tmp_path / "out.md").read_text()
    paths = two_timer_files(tmp_path, {"host": (0.02, 0.02), "cuda_graph": (0.3, 0.45)}, host_ratios=(0.85, 0.85))
    assert compare.main(args) == 1  # GPU time is judged as before
    assert compare.main([*args, "gate_timers=[event,host]"]) == 0  # the cuda_graph row is then not gated


def test_event_keys_are_gated_only_where_the_host_timer_did_not_run(tmp_path):
    """At a host point the event key (GPU time behind a head start, noisy between processes) is
    reported, not gated; the same slowdown at a point without host rows fails the gate."""
    paths = two_timer_files(tmp_path, {"host": (0.02, 0.02), "event": (0.3, 0.45), "cuda_graph": (0.3, 0.3)},
                            host_ratios=(0.85, 0.85))  # fmt: skip
    args = [f"baseline={paths[0]}", f"candidate={paths[1]}", f"markdown={tmp_path / 'out.md'}"]
    assert compare.main(args) == 0
    assert "| event | 0.3 | 0.45 | 1.500 | regressed |" in (tmp_path / "out.md").read_text()
    two_timer_files(tmp_path, {"event": (0.3, 0.45), "cuda_graph": (0.3, 0.3)})
    assert compare.main(args) == 1


def test_a_host_ratio_10_percent_higher_fails_the_gate_naming_the_key(tmp_path, capsys):
    paths = two_timer_files(tmp_path, {"host": (0.02, 0.02), "cuda_graph": (0.3, 0.3)}, host_ratios=(0.85, 0.935))
    status, markdown, _ = run_main(capsys, tmp_path, *paths)
    assert status == 1
    assert "**FAIL**" in markdown and "seeded fwd host" in markdown.splitlines()[2]
    paths = two_timer_files(tmp_path, {"host": (0.02, 0.02), "cuda_graph": (0.3, 0.3)}, host_ratios=(0.85, 0.85))
    assert run_main(capsys, tmp_path, *paths)[0] == 0  # identical: passes
    paths = two_timer_files(tmp_path, {"host": (0.02, 0.02), "cuda_graph": (0.3, 0.3)}, host_ratios=(0.85, 0.935))
    assert run_main(capsys, tmp_path, *paths, "host_threshold=0.15")[0] == 0  # under a wider threshold


def test_the_compiled_ops_host_key_is_reported_not_gated_unless_asked(tmp_path, capsys):
    paths = two_timer_files(tmp_path, {"host": (0.02, 0.02), "cuda_graph": (0.3, 0.3)}, host_ratios=(7.9, 9.6))
    for path in paths:  # the compiled op's rows: its host ratio moved 22% between two A/A processes
        frame = pd.read_csv(path)
        frame.assign(impl="seeded:compile").to_csv(path, index=False)
    status, markdown, _ = run_main(capsys, tmp_path, *paths)
    assert status == 0, markdown
    assert "impl=seeded:compile" in markdown and "| host | 0.02 | 0.02 | 1.215 | regressed |" in markdown
    assert "apart | not gated |" in markdown
    assert "gated: seeded, seeded:compile on event, cuda_graph, host (host: seeded)" in markdown
    assert run_main(capsys, tmp_path, *paths, "host_gate_impls=[seeded,seeded:compile]")[0] == 1


def test_host_keys_of_a_baseline_without_the_ratio_are_listed_not_judged(tmp_path, capsys):
    base, _ = two_timer_files(tmp_path, {"host": (0.02, 0.04), "cuda_graph": (0.3, 0.3)})  # no ratio columns
    (tmp_path / "old.csv").write_text(base.read_text())
    _, cand = two_timer_files(tmp_path, {"host": (0.02, 0.04), "cuda_graph": (0.3, 0.3)}, host_ratios=(0.85, 0.85))
    status, markdown, _ = run_main(capsys, tmp_path, tmp_path / "old.csv", cand)
    assert status == 0  # the cuda_graph key is judged; the host key, 2x in absolute time, is not
    assert "no host_ratio in the baseline (written before the figure existed)" in markdown
    assert "0 regressed" in markdown


# --- a gate that cannot be fooled ----------------------------------------------------------------


def set_at_target(column: str, value: str):
    def edit(frame):
        frame.loc[at(frame, **TARGET), column] = value
        return frame

    return edit


def drop_target(frame):
    return frame[~at(frame, **TARGET)]


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (drop_target, "(missing)"),
        (set_at_target("status", "error"), "broken: error"),
        (set_at_target("status", "oom"), "broken: oom"),
        (set_at_target("status", "skipped"), "broken: skipped"),
        (set_at_target("p50_ms", "nan"), "broken: p50 nan is not a positive finite time"),
        (set_at_target("p50_ms", "inf"), "broken: p50 inf is not a positive finite time"),
        (set_at_target("p50_ms", "-0.5"), "broken: p50 -0.5"),
        (set_at_target("p50_ms", "0"), "broken: p50 0.0"),
    ],
)
def test_a_gated_key_ok_in_the_baseline_but_broken_in_the_candidate_fails_naming_it(capsys, tmp_path, damage, why):
    candidate = variant(tmp_path, "broken", edit=damage, samples=False)
    status, markdown, _ = run_main(capsys, tmp_path, fixture("baseline"), candidate)
    assert status == 1
    headline = markdown.splitlines()[2]
    assert headline.startswith("**FAIL**") and "seeded fwd cuda_graph fp32 64x256x768" in headline
    assert why in markdown


def test_a_sample_that_is_not_finite_makes_the_row_unusable_never_a_pass(capsys, tmp_path):
    def poison(frame):
        where = at(frame, **TARGET)
        frame.loc[where, "samples_ms"] = ["nan " + text.split(" ", 1)[1] for text in frame.samples_ms[where]]
        return frame

    candidate = variant(tmp_path, "poisoned", edit_samples=poison)
    status, markdown, _ = run_main(capsys, tmp_path, fixture("baseline"), candidate)
    assert status == 1 and "broken: a sample that is not a finite number" in markdown
    baseline = variant(tmp_path, "poisoned_base", edit_samples=poison)
    status, markdown, _ = run_main(capsys, tmp_path, baseline, fixture("baseline"))
    assert status == 0 and "a sample that is not a finite number" in markdown  # not judged, listed


def test_markdown_refuses_to_overwrite_either_input(capsys, tmp_path):
    base = variant(tmp_path, "base")
    cand = variant(tmp_path, "cand", source="seeded_slower")
    before = {path: path.read_bytes() for path in tmp_path.iterdir()}
    for target in (base, cand, tmp_path / "base.samples.csv", tmp_path / "cand.samples.csv"):
        status = compare.main([f"baseline={base}", f"candidate={cand}", f"markdown={target}"])
        assert status == 2 and "would overwrite an input" in capsys.readouterr().err
    assert {path: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_the_step_summary_holds_gated_and_changed_keys_and_counts_the_rest(capsys, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    candidate = scaled(tmp_path, "eager_slower", "eager", "fwd", "64x256x768", 1.5)
    status, full, _ = run_main(capsys, tmp_path, fixture("baseline"), candidate)
    text = summary.read_text()
    assert status == 0
    assert "| copy | fwd | 64x256x768 |" in full and "| copy | fwd | 64x256x768 |" not in text
    assert "| eager | fwd | 64x256x768 |" in text  # changed, though not gated
    assert "| seeded | fwd_bwd | 64x256x768 |" in text  # gated
    assert "1 ungated key(s) unchanged, not listed here." in text


# --- inputs that cannot be judged -------------------------------------------------------------


def test_a_samples_file_that_does_not_match_its_csv_is_refused_naming_it(tmp_path, capsys):
    # Every p50 of the candidate doubled, the baseline's samples beside it: judging from those
    # samples would pass a 2x slowdown as noise.
    def doubled(frame):
        for column in (*stored_results.TIMING_COLUMNS, *stored_results.INTERVAL_COLUMNS):
            frame[column] = [str(float(v) * 2) for v in frame[column]]
        return frame

    candidate = variant(tmp_path, "doubled", edit=doubled)
    status, _, err = run_main(capsys, tmp_path, fixture("baseline"), candidate)
    assert status == compare.EXIT_UNUSABLE
    assert f"candidate samples file {tmp_path / 'doubled.samples.csv'} does not match" in err


def test_a_header_only_candidate_is_said_to_have_no_rows(tmp_path, capsys):
    candidate = variant(tmp_path, "empty", edit=lambda frame: frame.iloc[0:0], samples=False)
    status, _, err = run_main(capsys, tmp_path, fixture("baseline"), candidate)
    assert status == compare.EXIT_UNUSABLE
    assert "has no rows" in err and "GPU models" not in err
