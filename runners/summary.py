"""The short table printed at the end of a run: per (dtype, mode, impl), over the points run, for
the run's first timer (event on a GPU; every row of every timer is in the CSV).

Columns: the largest point's p50 (ms), GB/s and % of copy; the speedup over `eager` (eager's p50
over the impl's p50, point by point) as a geometric mean over the points and at its worst point.
"""

from __future__ import annotations

import math

import pandas as pd

from runners.rows import ResultRow


def _speedups(group: pd.DataFrame, eager: pd.Series) -> pd.Series:
    p50 = group.set_index(["shape", "dim", "p"])["p50_ms"]
    return (eager.reindex(p50.index) / p50).dropna()


def summary_frame(rows: list[ResultRow]) -> pd.DataFrame:
    frame = pd.DataFrame([row.csv_fields() for row in rows])
    if frame.empty:
        return frame
    ok = frame[(frame.status == "ok") & (frame.timer == frame.timer.iloc[0])]
    lines = []
    for (dtype, timer, mode), group in ok.groupby(["dtype", "timer", "mode"], sort=False):
        eager = group[group.impl == "eager"].set_index(["shape", "dim", "p"])["p50_ms"]
        for impl, rows_of_impl in group.groupby("impl", sort=False):
            largest = rows_of_impl.loc[rows_of_impl.numel.idxmax()]
            speedups = _speedups(rows_of_impl, eager)
            worst = speedups.idxmin() if len(speedups) else None
            lines.append(
                {
                    "dtype": dtype,
                    "timer": timer,
                    "mode": mode,
                    "impl": impl,
                    "points": len(rows_of_impl),
                    "largest": largest["shape"],
                    "p50_ms": largest["p50_ms"],
                    "GB/s": largest["gbps"],
                    "%copy": largest["pct_of_copy"],
                    "x_eager_geomean": math.exp(speedups.map(math.log).mean()) if len(speedups) else math.nan,
                    "x_eager_worst": speedups.min() if len(speedups) else math.nan,
                    "worst_at": worst[0] if worst is not None else "",
                }
            )
    return pd.DataFrame(lines)


def summary_text(rows: list[ResultRow], max_errors: int = 10) -> str:
    if not rows:
        return "no rows measured in this run (all keys already present: overwrite=true re-measures)"
    counts = pd.Series([row.status for row in rows]).value_counts()
    parts = [
        "rows this run: " + ", ".join(f"{n} {status}" for status, n in counts.items()),
        summary_frame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"),
    ]
    failures = [row for row in rows if row.status in ("error", "oom")]
    if failures:
        parts.append(f"failures ({len(failures)}, first {min(len(failures), max_errors)}):")
        parts += [
            f"  {r.dtype} {r.shape} dim={r.dim} {r.impl} {r.mode} {r.timer}: {r.status}: {r.check} {r.error}"
            for r in failures[:max_errors]
        ]
    return "\n".join(parts)
