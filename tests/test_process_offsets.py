"""scripts/process_offsets.py: how rows move between processes, on copies of the report fixture
(tests/fixtures/report) with a planted offset per process."""

from pathlib import Path

import pandas as pd
import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "report" / "fixture-h200" / "fp32.csv"
po = load_script("process_offsets")


def processes(folder: Path, time_factors: list[float], host_factors: list[float]) -> list[Path]:
    """One CSV per process: the fixture with every p50 times its time factor, every host_us times its
    host factor."""
    frame = pd.read_csv(FIXTURE, keep_default_na=False, na_values=["nan"])
    paths = []
    for index, (time_factor, host_factor) in enumerate(zip(time_factors, host_factors, strict=True)):
        copy = frame.copy()
        for column in ("p20_ms", "p50_ms", "p80_ms"):
            copy[column] = copy[column] * time_factor
        copy["host_us"] = copy["host_us"] * host_factor
        paths.append(folder / f"{index}.csv")
        copy.to_csv(paths[-1], index=False)
    return paths


def test_an_offset_that_follows_the_host_shows_as_spread_and_correlation(tmp_path, capsys):
    paths = processes(tmp_path, [1.00, 1.02, 1.04, 1.06], [1.0, 1.5, 2.0, 2.5])
    moved, slowness = po.offsets(po.load(paths, "copy"))
    assert len(moved) == 4 and (moved.std() > 0.02).all()
    assert moved.corrwith(slowness, method="spearman").to_numpy() == pytest.approx(1.0)
    assert po.main([str(path) for path in paths]) == 0
    out = capsys.readouterr().out
    assert "copy: 4 processes" in out and "Spearman between the keys of 64x1x768" in out


def test_identical_processes_have_no_spread(tmp_path):
    paths = processes(tmp_path, [1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    moved, _ = po.offsets(po.load(paths, "copy"))
    assert (moved.abs().to_numpy() < 1e-12).all()


def test_fewer_than_three_processes_exit_1(tmp_path):
    paths = processes(tmp_path, [1.0, 1.1], [1.0, 1.0])
    assert po.main([str(path) for path in paths]) == 1
