"""Sweep grouping, speedups and the column contract of the report stage."""

import math

import pandas as pd
import pytest

from reports import readme
from reports.results import REQUIRED_COLUMNS, find_gpu_dirs
from reports.sweeps import extreme, find_sweeps, format_size, parse_dim, speedups
from runners.rows import COLUMNS


def micro(shapes: list[str], dim: str, timer: str = "event") -> pd.DataFrame:
    return pd.DataFrame({"shape": shapes, "dim": dim, "p": 0.5, "timer": timer})


def test_required_columns_are_the_csv_contract():
    assert set(REQUIRED_COLUMNS) <= set(COLUMNS), set(REQUIRED_COLUMNS) - set(COLUMNS)


def test_default_preset_sweeps_the_sequence_length():
    (sweep,) = find_sweeps(micro(["64x16x768", "64x256x768", "64x4096x768"], "(1,)"))
    assert (sweep.axis, sweep.pattern, sweep.symbol, sweep.slug) == (1, "64xTx768", "T", "64xTx768_d1_p0.5")
    assert sweep.size("64x256x768") == 256


def test_host_rows_do_not_shape_the_sweep():
    rows = pd.concat([micro(["64x16x768", "64x256x768"], "(1,)"), micro(["1x1x768"], "(1,)", "host")])
    (sweep,) = find_sweeps(rows)
    assert sweep.shapes == {"64x16x768", "64x256x768"}


def test_two_presets_of_one_dim_are_two_sweeps():
    rows = micro(["64x16x768", "64x256x768", "8x16x4096", "8x256x4096"], "(1,)")
    assert [sweep.pattern for sweep in find_sweeps(rows)] == ["64xTx768", "8xTx4096"]


def test_shared_dim_sweeps_come_before_elementwise_ones():
    rows = pd.concat([micro(["64x1x768", "64x16x768"], "()"), micro(["8x64x8x8", "32x64x16x16"], "(2, 3)"),
                      micro(["64x1x768", "64x16x768"], "(1,)")])
    assert [sweep.title for sweep in find_sweeps(rows)] == [
        "64xTx768, dim (1,), p 0.5", "Nx64xNxN, dim (2, 3), p 0.5", "64xNx768, element-wise, p 0.5"]


def test_format_size():
    assert [format_size(v) for v in (1, 768, 8192, 16384, 33554432, 3e9)] == ["1", "768", "8192", "16.4k",
                                                                              "33.6M", "3G"]


def test_elementwise_and_4d_shapes():
    elementwise = find_sweeps(micro(["1024x1024", "4096x1024", "16384x1024"], "()"))
    assert [(s.pattern, s.slug) for s in elementwise] == [("Nx1024", "Nx1024_elementwise_p0.5")]
    (spatial,) = find_sweeps(micro(["32x64x8x8", "32x64x16x16", "32x64x32x32"], "(-2, -1)"))
    # H and W grow together: no single axis is the sweep, so x is numel
    assert (spatial.axis, spatial.pattern, spatial.slug) == (None, "32x64xNxN", "32x64xNxN_d2-3_p0.5")
    assert spatial.size("32x64x16x16") == 32 * 64 * 16 * 16
    assert parse_dim("(-2, -1)", 4) == (2, 3)
    assert parse_dim("1", 3) == (1,)


def test_speedup_is_baseline_over_seeded_with_gaps_for_failures():
    rows = pd.DataFrame({
        "impl": ["seeded"] * 3 + ["eager"] * 3, "mode": "fwd", "timer": "event", "x": [16, 64, 256] * 2,
        "p50_ms": [1.0, 2.0, 4.0, 2.0, 3.0, math.nan], "status": ["ok"] * 5 + ["oom"],
    })
    speedup = speedups(rows, "eager", "fwd", "event")
    assert speedup.x.tolist() == [16, 64, 256]
    assert speedup.speedup.tolist()[:2] == [2.0, 1.5] and math.isnan(speedup.speedup.iloc[2])
    assert extreme(speedup, worst=True) == (1.5, 64)
    assert extreme(speedup, worst=False) == (2.0, 16)


def test_gpu_folders_skip_smoke_and_ci_unless_named(tmp_path):
    for name in ("nvidia-h200", "cpu-smoke", "ci", "empty"):
        (tmp_path / name).mkdir()
    for name in ("nvidia-h200", "cpu-smoke", "ci"):
        (tmp_path / name / "fp16.csv").write_text("")
    assert find_gpu_dirs([tmp_path]) == [tmp_path / "nvidia-h200"]
    assert find_gpu_dirs([tmp_path / "cpu-smoke"]) == [tmp_path / "cpu-smoke"]


def test_splice_needs_both_markers_in_order():
    assert readme.splice(f"a\n{readme.BEGIN}\nx\n{readme.END}\nb", "new") == f"a\n{readme.BEGIN}\nnew\n{readme.END}\nb"
    for broken in (f"{readme.BEGIN} only", f"{readme.END}\n{readme.BEGIN}", "none"):
        with pytest.raises(ValueError, match="needs exactly one"):
            readme.splice(broken, "new")
