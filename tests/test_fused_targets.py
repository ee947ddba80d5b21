"""The fused family's targets table (reports/fused_targets.py) on rows made up to meet and miss each."""

from __future__ import annotations

import pandas as pd

from reports import fused_targets


def rows(p50: dict[str, list[float]], pct: list[float]) -> pd.DataFrame:
    shapes = ["32x512x768", "32x512x4096"]  # bf16: 24 MiB and 128 MiB
    records = []
    for impl, times in p50.items():
        for shape, time, share in zip(shapes, times, pct, strict=True):
            records.append(dict(workload="dropout_add_rmsnorm", dtype="bf16", impl=impl, mode="fwd_bwd", timer="event",
                                shape=shape, dim="(1,)", p50_ms=time, status="ok",
                                pct_of_copy=share if impl == "fused" else float("nan")))  # fmt: skip
    return pd.DataFrame(records)


def test_each_target_counts_the_points_that_meet_it_with_the_deciding_figure():
    frame = rows({"fused": [0.10, 1.00], "compile": [0.11, 0.99], "eager": [0.30, 2.00],
                  "liger:no_dropout": [0.098, 0.94]}, pct=[70.0, 91.5])  # fmt: skip
    table = fused_targets.fused_targets_table(frame)
    assert "| 1. fwd_bwd ≥ 90% of roofline, ≥ 64 MiB | 1/1 (min 91.5%) |" in table  # the 24 MiB point is no part
    assert "| 2. within 5% of Liger add-RMSNorm without dropout | 1/2 (worst 1.064x at 32x512x4096 (1,)) |" in table
    assert "| 3. no slower than compile (fused / compile) | 1/2 (worst 1.010x at 32x512x4096 (1,)) |" in table
    assert "| 4. faster than eager (fused / eager) | 2/2 (worst 0.500x at 32x512x4096 (1,)) |" in table


def test_without_the_fused_familys_rows_there_is_no_table_and_a_missing_baseline_is_no_row():
    frame = rows({"fused": [0.1, 1.0], "eager": [0.3, 2.0]}, pct=[95.0, 95.0])
    assert fused_targets.fused_targets_table(frame.assign(workload="micro")) == ""
    table = fused_targets.fused_targets_table(frame)
    assert "Liger" not in table and "compile" not in table and "4. faster than eager" in table
