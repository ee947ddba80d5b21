"""scripts/copy_line_steps.py: does the copy line of a throughput figure drop from one size to the
next larger? On the report fixture (tests/fixtures/report), whose copy line rises in both timers."""

from pathlib import Path

import pandas as pd
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "report" / "fixture-h200" / "fp32.csv"
steps = load_script("copy_line_steps")


def fixture_with_copy_scaled(folder: Path, timer: str | None = None, factor: float = 1.0) -> Path:
    """The fixture's fp32 rows in `folder`; copy's bwd GB/s at its largest T on `timer` times `factor`."""
    frame = pd.read_csv(FIXTURE, keep_default_na=False, na_values=["nan"])
    if timer is not None:
        copy = (frame.impl == "copy") & (frame["mode"] == "bwd") & (frame.timer == timer)
        largest = frame[copy]["shape"].map(lambda shape: int(shape.split("x")[1])).idxmax()
        frame.loc[largest, "gbps"] *= factor
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "fp32.csv", index=False)
    return folder


def test_a_rising_copy_line_passes(tmp_path, capsys):
    folder = fixture_with_copy_scaled(tmp_path / "gpu")
    assert steps.main([str(folder)]) == 0
    out = capsys.readouterr().out
    assert "fp32 64xTx768_d1_p0.5 event* worst step" in out and "drops" not in out


def test_a_drop_on_the_figures_timer_fails_and_names_the_step(tmp_path, capsys):
    folder = fixture_with_copy_scaled(tmp_path / "gpu", "event", 0.9)
    assert steps.main([str(folder)]) == 1
    flagged = [line for line in capsys.readouterr().out.splitlines() if "drops more than 5%" in line]
    assert len(flagged) == 1 and flagged[0].startswith("fp32 64xTx768_d1_p0.5 event*")
    assert "(bwd 1024 -> 4096" in flagged[0]


def test_a_drop_on_the_other_gpu_timer_is_shown_but_does_not_fail(tmp_path, capsys):
    folder = fixture_with_copy_scaled(tmp_path / "gpu", "cuda_graph", 0.9)
    assert steps.main([str(folder)]) == 0
    flagged = [line for line in capsys.readouterr().out.splitlines() if "drops" in line]
    assert len(flagged) == 1 and flagged[0].startswith("fp32 64xTx768_d1_p0.5 cuda_graph ")


def test_a_wider_tolerance_takes_in_the_drop(tmp_path):
    folder = fixture_with_copy_scaled(tmp_path / "gpu", "event", 0.9)
    assert steps.main([str(folder), "--tolerance", "0.2"]) == 0
