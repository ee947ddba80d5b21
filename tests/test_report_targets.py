"""reports/targets.py on hand-made rows: each target counts the points it should, ties and
rows that are not ok handled as documented, and the table leaves out targets without data."""

import math

import pandas as pd

from reports import targets


def row(impl, mode, timer, shape, dim="(1,)", p50=1.0, pct=math.nan, mem=math.nan, dtype="fp16", status="ok",
        workload="micro"):
    return {"workload": workload, "impl": impl, "mode": mode, "timer": timer, "dtype": dtype, "shape": shape,
            "dim": dim, "p": 0.5, "p50_ms": p50, "pct_of_copy": pct, "peak_mem_delta_bytes": mem, "status": status}


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_large_tensors_counts_only_sizes_from_64_mib_shared_along_dim_1():
    rows = frame([
        row("seeded", "fwd", "event", "64x1024x768", pct=96.0),  # 96 MiB of fp16
        row("seeded", "bwd", "event", "64x1024x768", pct=90.0),
        row("seeded", "fwd", "event", "64x1x768", pct=10.0),  # small: not counted
        row("seeded", "fwd", "event", "64x1024x768", dim="()", pct=50.0),  # element-wise: not counted
        row("seeded", "fwd", "cuda_graph", "64x1024x768", pct=10.0),  # other timer: not counted
        row("seeded", "fwd", "event", "64x512x768", pct=20.0),  # 48 MiB of fp16, 192 MiB of fp64
    ])
    count = targets.large_tensors(rows, "fp16")
    assert (count.met, count.total) == (1, 2)
    assert count.detail == "min 90.0% at 64x1024x768 (1,) bwd"
    as_fp64 = targets.large_tensors(rows, "fp64")
    assert (as_fp64.met, as_fp64.total) == (1, 3)


def test_never_slower_takes_the_best_baseline_and_counts_a_tie_as_met():
    rows = frame([
        row("seeded", "fwd", "event", "64x1x768", p50=1.0),
        row("eager", "fwd", "event", "64x1x768", p50=2.0),
        row("compile", "fwd", "event", "64x1x768", p50=1.5),
        row("native", "fwd", "event", "64x1x768", p50=0.8),  # the best baseline: seeded loses
        row("seeded", "fwd_bwd", "event", "64x1x768", p50=1.0),
        row("eager", "fwd_bwd", "event", "64x1x768", p50=1.0),  # a tie
        row("seeded", "bwd", "event", "64x1x768", p50=9.0),  # bwd is not part of this target
        row("eager", "bwd", "event", "64x1x768", p50=1.0),
    ])
    count = targets.never_slower(rows, "event")
    assert (count.met, count.total) == (1, 2)
    assert count.detail == "worst 1.25x at 64x1x768 (1,) fwd"
    assert targets.never_slower(rows, "cuda_graph").total == 0


def test_graph_speedup_looks_at_t_up_to_64_only():
    rows = frame([
        row("seeded", "fwd", "cuda_graph", "64x1x768", p50=1.5),
        row("eager", "fwd", "cuda_graph", "64x1x768", p50=3.0),  # 2.0x
        row("seeded", "fwd", "cuda_graph", "64x64x768", p50=1.0),
        row("eager", "fwd", "cuda_graph", "64x64x768", p50=1.2),  # 1.2x: missed
        row("seeded", "fwd", "cuda_graph", "64x128x768", p50=1.0),  # T > 64: not counted
        row("eager", "fwd", "cuda_graph", "64x128x768", p50=1.0),
    ])
    count = targets.graph_speedup(rows, "fwd")
    assert (count.met, count.total, count.detail) == (1, 2, "1.20-2.00x")
    assert targets.graph_speedup(rows, "bwd").total == 0


def test_host_cost_reads_the_smallest_tensor():
    rows = frame([
        row("seeded", "fwd", "host", "64x1x768", p50=0.011),
        row("eager", "fwd", "host", "64x1x768", p50=0.030),
        row("seeded", "fwd", "host", "64x2x768", p50=0.5),  # a larger tensor: not the target's
    ])
    count = targets.host_cost(rows)
    assert (count.met, count.total) == (1, 1)
    assert count.detail == "11.0 µs, eager 30.0 µs"


def test_the_host_ratio_target_compares_seeded_with_eager_on_the_smallest_tensor():
    rows = frame([
        dict(row("seeded", "fwd", "host", "64x1x768", p50=0.020), host_ratio=0.88),
        dict(row("eager", "fwd", "host", "64x1x768", p50=0.035), host_ratio=1.83),
        dict(row("seeded", "fwd", "host", "64x2x768", p50=0.5), host_ratio=9.0),  # a larger tensor: not the target's
    ])
    count = targets.host_ratio_vs_eager(rows)
    assert (count.met, count.total, count.detail) == (1, 1, "0.88x copy's call, eager 1.83x")
    rows.loc[0, "host_ratio"] = 1.9
    assert targets.host_ratio_vs_eager(rows).met == 0
    rows.loc[1, "host_ratio"] = math.nan  # eager's rows from before the ratio: not measured
    assert targets.host_ratio_vs_eager(rows).total == 0
    assert targets.host_ratio_vs_eager(rows.drop(columns="host_ratio")).total == 0


def test_elementwise_targets_compare_with_copy_and_with_f_dropout():
    rows = frame([
        row("seeded", "fwd", "event", "64x16x768", dim="()", p50=1.0, pct=95.0),
        row("native", "fwd", "event", "64x16x768", dim="()", p50=0.5),
        row("seeded", "fwd_bwd", "event", "64x16x768", dim="()", p50=1.0, pct=80.0),
        row("native", "fwd_bwd", "event", "64x16x768", dim="()", p50=2.0),
    ])
    copy = targets.elementwise_copy(rows, "event")
    assert (copy.met, copy.total, copy.detail) == (1, 2, "min 80.0% at 64x16x768 () fwd_bwd")
    versus = targets.elementwise_vs_dropout(rows, "event")
    assert (versus.met, versus.total, versus.detail) == (1, 2, "worst 2.00x at 64x16x768 () fwd")


def test_peak_memory_fails_a_point_where_any_baseline_uses_less():
    rows = frame([
        row("seeded", "fwd_bwd", "event", "64x1x768", mem=100.0),
        row("eager", "fwd_bwd", "event", "64x1x768", mem=200.0),
        row("native", "fwd_bwd", "event", "64x1x768", mem=50.0),
        row("seeded", "fwd_bwd", "event", "64x2x768", mem=100.0),
        row("eager", "fwd_bwd", "event", "64x2x768", mem=100.0),
    ])
    count = targets.peak_memory(rows)
    assert (count.met, count.total) == (1, 2)


def test_table_skips_rows_not_ok_and_targets_without_data():
    rows = frame([
        row("seeded", "fwd", "event", "64x1024x768", pct=97.0),
        row("seeded", "bwd", "event", "64x1024x768", pct=10.0, status="error"),  # not ok: left out
        row("seeded", "fwd", "event", "64x1024x768", pct=10.0, workload="model"),  # not a micro row
        row("seeded", "fwd", "event", "64x1024x768", pct=99.0, dtype="fp32"),
    ])
    table = targets.targets_table(rows)
    lines = table.splitlines()
    assert lines[0] == "| target | fp16 | fp32 |"
    assert "| 1. ≥ 95% of copy, ≥ 64 MiB (event) | 1/1 (min 97.0% at 64x1024x768 (1,) fwd) |" in table
    assert len(lines) == 3  # header, rule, the one target with data
    assert targets.targets_table(rows[rows.workload == "nothing"]) == ""
