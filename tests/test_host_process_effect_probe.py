"""scripts/host_process_effect_probe.py: its conditions' environments, the figures of its report,
and the whole probe on CPU (tiny settings), so a GPU session does not find it broken."""

from __future__ import annotations

import csv
import shutil
import statistics
import sys

import pytest
from conftest import load_script

probe = load_script("host_process_effect_probe")


def test_each_condition_fixes_what_it_names_and_no_more(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "7")  # the parent's own setting never reaches a child
    command, env = probe.child_command("random", ["x.py"])
    assert command == [sys.executable, "x.py"] and "PYTHONHASHSEED" not in env
    command, env = probe.child_command("hashseed", ["x.py"])
    assert command == [sys.executable, "x.py"] and env["PYTHONHASHSEED"] == "0"
    if shutil.which("setarch"):
        command, env = probe.child_command("layout", ["x.py"])
        assert command[-2:] == [sys.executable, "x.py"] and "-R" in command and env["PYTHONHASHSEED"] == "0"
    with pytest.raises(ValueError, match="unknown condition"):
        probe.child_command("pinned", [])


def test_pairs_agree_within_five_percent_by_the_larger_over_the_smaller():
    assert probe.pairs_within([1.0, 1.04, 1.2]) == pytest.approx(1 / 3)  # only 1.0 and 1.04
    assert probe.pairs_within([2.0, 2.0]) == 1.0


def test_a_process_offset_shows_as_process_medians_varying_beyond_what_their_rounds_predict():
    # Two processes whose rounds barely vary, one at 1.0 and one at 1.2: the medians' variation
    # (0.141 / 1.1) is far above the standard error the rounds give (1.25 x 0.01 / sqrt(3)).
    rows = [dict(condition="random", process=p, impl="compile", mode="fwd", round=r, host_ratio=level * v)
            for p, level in ((0, 1.0), (1, 1.2)) for r, v in enumerate((0.99, 1.0, 1.01))]
    (summary,) = probe.summarise(rows)
    assert summary["cv_of_processes"] == pytest.approx(statistics.stdev([1.0, 1.2]) / 1.1)
    assert summary["cv_expected"] < 0.01 and summary["pairs_within_5pct"] == 0.0


def test_the_probe_runs_on_cpu_with_a_row_per_round_and_key(tmp_path, monkeypatch):
    out = tmp_path / "effect.csv"
    monkeypatch.setattr(sys, "argv", ["probe", str(out), "--processes", "1", "--rounds", "2", "--reps", "2",
                                      "--conditions", "random,hashseed", "--impls", "seeded",
                                      "--modes", "fwd", "--device", "cpu"])  # fmt: skip
    probe.main()
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["condition"], r["round"]) for r in rows] == [("random", "0"), ("random", "1"),
                                                            ("hashseed", "0"), ("hashseed", "1")]  # fmt: skip
    assert all(float(r["host_ratio"]) > 0 for r in rows)
