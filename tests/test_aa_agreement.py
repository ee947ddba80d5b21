"""scripts/aa_agreement.py: how far repeated sweeps agree, on the compare fixtures (tests/fixtures/compare)."""

import shutil
import statistics
from pathlib import Path

import pandas as pd
import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "compare"
aa = load_script("aa_agreement")


def copy_of_baseline(tmp_path: Path, name: str, factors: dict[tuple[str, str, str], float] | None = None) -> Path:
    """The fixture baseline as `name`.csv, the p50 of each (impl, mode, shape) in `factors` scaled."""
    frame = pd.read_csv(FIXTURES / "baseline.csv", dtype=str, keep_default_na=False)
    for (impl, mode, shape), factor in (factors or {}).items():
        where = (frame.impl == impl) & (frame["mode"] == mode) & (frame["shape"] == shape)
        assert where.any(), (impl, mode, shape)
        frame.loc[where, "p50_ms"] = [str(float(v) * factor) for v in frame.p50_ms[where]]
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    shutil.copy(FIXTURES / "baseline.samples.csv", tmp_path / f"{name}.samples.csv")
    return path


def test_counts_the_keys_within_the_tolerance(tmp_path, capsys):
    a = copy_of_baseline(tmp_path, "a")
    b = copy_of_baseline(tmp_path, "b", {("seeded", "fwd", "64x256x768"): 1.10, ("copy", "fwd", "64x256x768"): 1.03})
    both = aa.paired(aa.read_results(a), aa.read_results(b))
    keys = len(both)
    moved = both.change > 0.05
    target = (both.impl == "seeded") & (both["mode"] == "fwd") & (both["shape"] == "64x256x768")
    assert target.any() and moved.equals(target)
    table = aa.agreement(both, 0.05)
    overall = table[table.rows == "all"].iloc[0]
    assert (overall.within, overall.of) == (keys - moved.sum(), keys)
    assert overall.worst == pytest.approx(0.10)
    assert aa.main([str(a), str(b), "--worst", "2"]) == 0
    summary = capsys.readouterr().out.split("summary")[-1]
    assert "a.csv" in summary and "b.csv" in summary and f"{(keys - moved.sum()) / keys:.1%}" in summary


def test_a_wider_tolerance_takes_in_the_moved_key(tmp_path):
    a = copy_of_baseline(tmp_path, "a")
    b = copy_of_baseline(tmp_path, "b", {("seeded", "fwd", "64x256x768"): 1.10})
    both = aa.paired(aa.read_results(a), aa.read_results(b))
    assert aa.agreement(both, 0.15).iloc[0].share == 1.0


def test_files_without_a_common_ok_key_exit_1(tmp_path):
    a = copy_of_baseline(tmp_path, "a")
    frame = pd.read_csv(a, dtype=str, keep_default_na=False)
    frame["status"] = "error"
    frame.to_csv(tmp_path / "broken.csv", index=False)
    shutil.copy(FIXTURES / "baseline.samples.csv", tmp_path / "broken.samples.csv")
    assert aa.main([str(a), str(tmp_path / "broken.csv")]) == 1


@pytest.mark.parametrize("argv", [["one.csv"], ["a.csv", "b.csv", "--tolerance", "1.5"]])
def test_bad_arguments_are_refused(argv):
    with pytest.raises(SystemExit) as refused:
        aa.main(argv)
    assert refused.value.code == 2


def test_pool_compares_every_two_disjoint_groups_of_pooled_files(tmp_path, capsys):
    files = [copy_of_baseline(tmp_path, name) for name in "abcd"]
    assert aa.main([*map(str, files), "--pool", "2", "--worst", "0"]) == 0
    summary = capsys.readouterr().out.split("summary")[-1].strip().splitlines()[2:]  # after its title and header
    assert len(summary) == 3  # ab|cd, ac|bd, ad|bc
    assert all("100.0%" in line for line in summary) and any(line.split()[:2] == ["a+b", "c+d"] for line in summary)


def test_pool_without_two_disjoint_groups_exits_1(tmp_path):
    files = [copy_of_baseline(tmp_path, name) for name in "abc"]
    assert aa.main([*map(str, files), "--pool", "2"]) == 1


def test_first_rounds_judges_each_file_by_its_first_rounds_only(tmp_path):
    a = copy_of_baseline(tmp_path, "a")
    frame = aa.first_rounds(a, 1)
    samples = pd.read_csv(FIXTURES / "baseline.samples.csv", dtype=str, keep_default_na=False)
    row = samples.iloc[0]
    times = [float(v) for v in row.samples_ms.split()]
    rounds = [int(v) for v in row.sample_rounds.split()]
    first = [t for t, r in zip(times, rounds, strict=True) if r == min(rounds)]
    key = (frame.impl == row.impl) & (frame["mode"] == row["mode"]) & (frame["shape"] == row["shape"])
    assert frame[key].p50_ms.iloc[0] == pytest.approx(statistics.median(first))
    assert aa.main([str(a), str(copy_of_baseline(tmp_path, "b")), "--first-rounds", "1"]) == 0


def test_a_host_key_is_judged_on_its_host_ratio_when_both_rows_hold_one(tmp_path):
    # The host timer's absolute time follows the CPU's speed; its ratio to copy's call does not.
    frame = pd.read_csv(FIXTURES / "baseline.csv", dtype=str, keep_default_na=False).iloc[[0]].copy()
    frame["timer"], frame["host_ratio"] = "host", "0.85"
    paths = {}
    for name, p50, ratio in (("a", "0.020", "0.850"), ("b", "0.026", "0.860")):  # p50 +30%, ratio +1.2%
        frame["p50_ms"], frame["host_ratio"] = p50, ratio
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    both = aa.paired(aa.read_results(paths["a"]), aa.read_results(paths["b"]))
    assert list(both.judged_on) == ["host_ratio"] and both.change.iloc[0] == pytest.approx(0.86 / 0.85 - 1)
    without = aa.paired(aa.read_results(paths["a"]).drop(columns="host_ratio"), aa.read_results(paths["b"]))
    assert list(without.judged_on) == ["p50_ms"] and without.change.iloc[0] == pytest.approx(0.3)
