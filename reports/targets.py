"""The project's performance targets read off one GPU's result rows: per dtype, how many sweep
points meet each target and the figure that decides it. The targets are the ones the op was built
against (docs/perf-notes.md, "Targets"): never slower than what users pick today, at copy speed
on large tensors, and at most 12 us of host time per call.

    python -m reports.targets [GPU_DIR]      (default results/nvidia-h200; prints the table)

`make report` puts the same table in each GPU's summary.md and in the README. The targets, over the
micro-benchmark rows whose status is ok (docs/perf-notes.md says why each miss is missed):

1. seeded at >= 95% of copy (`pct_of_copy`, event timer) at sizes >= 64 MiB, mask shared along
   dim 1, fwd, bwd and fwd_bwd;
2. seeded p50 <= the best p50 of eager, compile and native, fwd and fwd_bwd, every point of every
   preset: in the event timer (the GPU time of an eager call) and as a graph replay (`cuda_graph`);
3. `cuda_graph`: eager p50 / seeded p50 >= 1.5 for T <= 64 (dim 1), per mode;
4. the `host` timer's forward on the smallest tensor (dim 1): <= 12 us. Absolute host time moves
   with the host CPU's clock (by up to 36% between two sweeps on one H200 machine: perf-notes 21),
   so the row is context; the row beside it reads the host ratio (runners/host_ratio.py), which
   does not: seeded's forward ratio below eager's;
5. element-wise (dim ()): seeded >= 90% of copy, and faster than `F.dropout` (the native row),
   fwd and fwd_bwd, in both timers;
6. peak memory of fwd_bwd: seeded <= every baseline, every point (event rows).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reports import markdown
from reports.results import DTYPES, load_gpu_results
from reports.sweeps import parse_shape

BASELINES = ("eager", "compile", "native")
ITEMSIZE = {"fp16": 2, "bf16": 2, "fp32": 4, "fp64": 8}
LARGE_BYTES = 64 * 2**20
HOST_TARGET_US = 12.0
GRAPH_SPEEDUP = 1.5
SMALL_T = 64


@dataclass(frozen=True)
class Count:
    """How many points of one dtype meet a target, of how many, and the deciding figure."""

    met: int
    total: int
    detail: str = ""

    def __str__(self) -> str:
        if self.total == 0:
            return "–"
        return f"{self.met}/{self.total}" + (f" ({self.detail})" if self.detail else "")


def _pivot(rows: pd.DataFrame, value: str) -> pd.DataFrame:
    """(shape, dim, mode) x impl."""
    return rows.pivot_table(index=["shape", "dim", "mode"], columns="impl", values=value, aggfunc="first")


def _where(key: tuple) -> str:
    shape, dim, mode = key
    return f"{shape} {dim} {mode}"


def _seq_length(shape: str) -> int:
    """T of a (B, T, D) shape written BxTxD."""
    return parse_shape(shape)[1]


def _numel(shape: str) -> int:
    return math.prod(parse_shape(shape))


def large_tensors(rows: pd.DataFrame, dtype: str) -> Count:
    event = rows[(rows.timer == "event") & (rows.dim == "(1,)") & (rows.impl == "seeded")]
    large = event["shape"].map(_numel) * ITEMSIZE[dtype] >= LARGE_BYTES
    pct = event[large].set_index(["shape", "dim", "mode"]).pct_of_copy
    if pct.empty:
        return Count(0, 0)
    return Count(int((pct >= 95).sum()), len(pct), f"min {pct.min():.1f}% at {_where(pct.idxmin())}")


def never_slower(rows: pd.DataFrame, timer: str) -> Count:
    p50 = _pivot(rows[(rows.timer == timer) & rows["mode"].isin(["fwd", "fwd_bwd"])], "p50_ms")
    present = [b for b in BASELINES if b in p50]
    if "seeded" not in p50 or not present:
        return Count(0, 0)
    ratio = (p50.seeded / p50[present].min(axis=1)).dropna()
    if ratio.empty:
        return Count(0, 0)
    return Count(int((ratio <= 1).sum()), len(ratio), f"worst {ratio.max():.2f}x at {_where(ratio.idxmax())}")


def graph_speedup(rows: pd.DataFrame, mode: str) -> Count:
    graph = rows[(rows.timer == "cuda_graph") & (rows.dim == "(1,)") & (rows["mode"] == mode)]
    graph = graph[graph["shape"].map(_seq_length) <= SMALL_T]
    p50 = _pivot(graph, "p50_ms")
    if not {"seeded", "eager"} <= set(p50):
        return Count(0, 0)
    speedup = (p50.eager / p50.seeded).dropna()
    if speedup.empty:
        return Count(0, 0)
    return Count(int((speedup >= GRAPH_SPEEDUP).sum()), len(speedup), f"{speedup.min():.2f}-{speedup.max():.2f}x")


def _smallest_host_forward(rows: pd.DataFrame) -> pd.DataFrame:
    """The host timer's forward rows (dim 1) at the smallest tensor, indexed by impl: target 4's."""
    host = rows[(rows.timer == "host") & (rows["mode"] == "fwd") & (rows.dim == "(1,)")]
    numel = host["shape"].map(_numel)
    return host[numel == numel.min()].set_index("impl")


def host_cost(rows: pd.DataFrame) -> Count:
    smallest = _smallest_host_forward(rows).p50_ms * 1e3
    if "seeded" not in smallest:
        return Count(0, 0)
    eager = f", eager {smallest['eager']:.1f} µs" if "eager" in smallest else ""
    return Count(int(smallest["seeded"] <= HOST_TARGET_US), 1, f"{smallest['seeded']:.1f} µs{eager}")


def host_ratio_vs_eager(rows: pd.DataFrame) -> Count:
    """Target 4 on the host figure that does not move with the CPU's clock: on the smallest tensor,
    seeded's forward host ratio (its host time over copy's call, timed in the same process) below
    eager's. Rows from before the ratio was measured count as not measured."""
    if "host_ratio" not in rows:
        return Count(0, 0)
    ratio = pd.to_numeric(_smallest_host_forward(rows).host_ratio, errors="coerce")
    if not (ratio.get("seeded", math.nan) > 0 and ratio.get("eager", math.nan) > 0):
        return Count(0, 0)
    seeded, eager = ratio["seeded"], ratio["eager"]
    return Count(int(seeded < eager), 1, f"{seeded:.2f}x copy's call, eager {eager:.2f}x")


def _elementwise(rows: pd.DataFrame, timer: str) -> pd.DataFrame:
    return rows[(rows.timer == timer) & (rows.dim == "()") & rows["mode"].isin(["fwd", "fwd_bwd"])]


def elementwise_copy(rows: pd.DataFrame, timer: str) -> Count:
    pct = _pivot(_elementwise(rows, timer), "pct_of_copy")
    if "seeded" not in pct:
        return Count(0, 0)
    pct = pct.seeded.dropna()
    return Count(int((pct >= 90).sum()), len(pct), f"min {pct.min():.1f}% at {_where(pct.idxmin())}")


def elementwise_vs_dropout(rows: pd.DataFrame, timer: str) -> Count:
    p50 = _pivot(_elementwise(rows, timer), "p50_ms")
    if not {"seeded", "native"} <= set(p50):
        return Count(0, 0)
    ratio = (p50.seeded / p50.native).dropna()
    return Count(int((ratio < 1).sum()), len(ratio), f"worst {ratio.max():.2f}x at {_where(ratio.idxmax())}")


def peak_memory(rows: pd.DataFrame) -> Count:
    memory = _pivot(rows[(rows["mode"] == "fwd_bwd") & (rows.timer == "event")], "peak_mem_delta_bytes")
    present = [b for b in BASELINES if b in memory]
    if "seeded" not in memory or not present:
        return Count(0, 0)
    memory = memory.dropna(subset=["seeded"])
    over = memory[present].lt(memory.seeded, axis=0).any(axis=1)
    return Count(int((~over).sum()), len(memory))


TARGETS = (
    ("1. ≥ 95% of copy, ≥ 64 MiB (event)", lambda rows, dtype: large_tensors(rows, dtype)),
    ("2. seeded ≤ best baseline, fwd + fwd_bwd (event)", lambda rows, _: never_slower(rows, "event")),
    ("2. the same in GPU time (cuda_graph)", lambda rows, _: never_slower(rows, "cuda_graph")),
    ("3. eager/seeded ≥ 1.5 (cuda_graph), T ≤ 64: fwd", lambda rows, _: graph_speedup(rows, "fwd")),
    ("3. eager/seeded ≥ 1.5 (cuda_graph), T ≤ 64: bwd", lambda rows, _: graph_speedup(rows, "bwd")),
    ("3. eager/seeded ≥ 1.5 (cuda_graph), T ≤ 64: fwd_bwd", lambda rows, _: graph_speedup(rows, "fwd_bwd")),
    ("4. host timer, fwd, smallest tensor ≤ 12 µs (absolute: moves with the CPU)", lambda rows, _: host_cost(rows)),
    ("4. the same, CPU-neutral: host ratio below eager's", lambda rows, _: host_ratio_vs_eager(rows)),
    ("5. element-wise ≥ 90% of copy (event)", lambda rows, _: elementwise_copy(rows, "event")),
    ("5. element-wise ≥ 90% of copy (cuda_graph)", lambda rows, _: elementwise_copy(rows, "cuda_graph")),
    ("5. element-wise faster than F.dropout (event)", lambda rows, _: elementwise_vs_dropout(rows, "event")),
    ("5. element-wise faster than F.dropout (cuda_graph)", lambda rows, _: elementwise_vs_dropout(rows, "cuda_graph")),
    ("6. fwd_bwd peak memory ≤ every baseline", lambda rows, _: peak_memory(rows)),
)


def target_lines(rows: pd.DataFrame, targets) -> tuple[list[str], list[list[str]]]:
    """(the dtypes present, one table line per target that some dtype has points for: its label and
    a `met/total (figure)` cell per dtype), over `rows` (ok rows of one workload); `targets`:
    (label, count(rows of one dtype, dtype) -> Count) pairs. Shared by reports/fused_targets.py."""
    dtypes = [dtype for dtype in DTYPES if dtype in set(rows.dtype)]
    lines = []
    for label, count in targets:
        by_dtype = {dtype: count(rows[rows.dtype == dtype], dtype) for dtype in dtypes}
        if any(found.total for found in by_dtype.values()):
            lines.append([label, *(str(by_dtype[dtype]) for dtype in dtypes)])
    return dtypes, lines


def targets_table(frame: pd.DataFrame) -> str:
    """Markdown: one row per target, one column per dtype, cells `met/total (figure)`, over the ok
    micro-benchmark rows."""
    dtypes, lines = target_lines(frame[(frame.workload == "micro") & (frame.status == "ok")], TARGETS)
    return markdown.table(["target", *dtypes], lines) if dtypes else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.targets", description=__doc__.split("\n")[0])
    parser.add_argument("gpu_dir", nargs="?", type=Path, default=Path("results/nvidia-h200"),
                        help="a GPU result folder holding <dtype>.csv (default: results/nvidia-h200)")
    args = parser.parse_args(argv)
    print(targets_table(load_gpu_results(args.gpu_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
