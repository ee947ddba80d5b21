"""The fused family's targets (dropout + residual add + norm, `op=dropout_add_norm`), read off one
GPU's rows as `reports/targets.py` reads the standalone op's: per dtype, how many sweep points meet
each target and the figure that decides it. Over the ok rows of the RMSNorm workload
(`dropout_add_rmsnorm`, what Liger's fused add-RMSNorm computes), forward + backward (`fwd_bwd`),
the event timer:

1. `fused` at >= 90% of its roofline (`pct_of_copy`: the `copy` row moves the fused op's bytes) at
   sizes >= 64 MiB (x's bytes);
2. `fused` within 5% of Liger's fused add-RMSNorm without any dropout (`liger:no_dropout`): the
   dropout nearly free;
3. `fused` no slower than `torch.compile` of the same block (`compile`), every point; the figure is
   the worst ratio, for the reader to hold against the run's A/A noise (docs/harness.md);
4. `fused` faster than eager (`eager`), every point.

    python -m reports.fused_targets [GPU_DIR]      (default results/nvidia-h200)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from reports import markdown
from reports.results import load_gpu_results
from reports.targets import ITEMSIZE, LARGE_BYTES, Count, _numel, target_lines

WORKLOAD = "dropout_add_rmsnorm"
ROOFLINE_SHARE = 0.90
LIGER_MARGIN = 0.05


def _fwd_bwd_p50(rows: pd.DataFrame) -> pd.DataFrame:
    """(shape, dim) x impl: the event timer's fwd_bwd p50."""
    timed = rows[(rows["mode"] == "fwd_bwd") & (rows.timer == "event")]
    return timed.pivot_table(index=["shape", "dim"], columns="impl", values="p50_ms", aggfunc="first")


def roofline_share(rows: pd.DataFrame, dtype: str) -> Count:
    large = rows[(rows.impl == "fused") & (rows["mode"] == "fwd_bwd") & (rows.timer == "event")
                 & (rows["shape"].map(_numel) * ITEMSIZE[dtype] >= LARGE_BYTES)]  # fmt: skip
    shares = large.pct_of_copy.dropna()
    if shares.empty:
        return Count(0, 0)
    return Count(int((shares >= 100 * ROOFLINE_SHARE).sum()), len(shares), f"min {shares.min():.1f}%")


def ratio_to(rows: pd.DataFrame, baseline: str, bound: float, strict: bool = False) -> Count:
    """Points where fused p50 / baseline p50 <= bound (< bound when strict), with the worst ratio."""
    p50 = _fwd_bwd_p50(rows)
    if not {"fused", baseline} <= set(p50):
        return Count(0, 0)
    ratio = (p50.fused / p50[baseline]).dropna()
    if ratio.empty:
        return Count(0, 0)
    met = ratio < bound if strict else ratio <= bound
    worst = ratio.idxmax()
    return Count(int(met.sum()), len(ratio), f"worst {ratio.max():.3f}x at {worst[0]} {worst[1]}")


TARGETS = (
    (f"1. fwd_bwd ≥ {ROOFLINE_SHARE:.0%} of roofline, ≥ 64 MiB", roofline_share),
    (f"2. within {LIGER_MARGIN:.0%} of Liger add-RMSNorm without dropout",
     lambda rows, _: ratio_to(rows, "liger:no_dropout", 1 + LIGER_MARGIN)),
    ("3. no slower than compile (fused / compile)", lambda rows, _: ratio_to(rows, "compile", 1.0)),
    ("4. faster than eager (fused / eager)", lambda rows, _: ratio_to(rows, "eager", 1.0, strict=True)),
)


def fused_targets_table(frame: pd.DataFrame) -> str:
    """Markdown: one row per target, one column per dtype; "" without the fused family's rows."""
    dtypes, lines = target_lines(frame[(frame.workload == WORKLOAD) & (frame.status == "ok")], TARGETS)
    return markdown.table(["target", *dtypes], lines) if lines else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.fused_targets", description=__doc__.split("\n")[0])
    parser.add_argument("gpu_dir", nargs="?", type=Path, default=Path("results/nvidia-h200"),
                        help="a GPU result folder holding <dtype>.csv (default: results/nvidia-h200)")
    print(fused_targets_table(load_gpu_results(parser.parse_args(argv).gpu_dir)) or "no fused-family rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
