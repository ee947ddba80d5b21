"""Does the copy (roofline) line of a throughput figure ever drop from one size to the next larger?

For every dtype of a results folder (read as `make report` reads it), every sweep the report
draws, every mode and both GPU timers, the ratio of copy's GB/s at a size to its GB/s at the next
smaller size; prints the worst step of each (sweep, timer), marks the timer the throughput figures
use with `*`, and flags a drop of more than `--tolerance` (5%).

    python scripts/copy_line_steps.py results/nvidia-h200 [--tolerance 0.05]

Exits 1 when a step of a throughput figure's timer drops by more than the tolerance.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # a maintainer command run as a file from anywhere: the harness is beside it
    sys.path.insert(0, str(ROOT))

from reports.results import load_gpu_results  # noqa: E402
from reports.sweeps import ROOFLINE_IMPL, find_sweeps, is_ok, sweep_timer  # noqa: E402

GPU_TIMERS = ("event", "cuda_graph")


def worst_step(rows, timer: str) -> tuple[float, str]:
    """The smallest ratio GB/s(next larger size) / GB/s(size) of the copy line over every mode."""
    worst = (float("inf"), "no two sizes")
    for mode in sorted(set(rows["mode"])):
        copy = rows[(rows.impl == ROOFLINE_IMPL) & (rows["mode"] == mode) & (rows.timer == timer) & is_ok(rows)]
        sizes, gbps = copy.x.to_numpy(), copy.gbps.to_numpy()  # sweep.rows sorts by size
        for i in range(len(sizes) - 1):
            step = gbps[i + 1] / gbps[i]
            if step < worst[0]:
                worst = (step, f"{mode} {sizes[i]} -> {sizes[i + 1]}: {gbps[i]:.0f} -> {gbps[i + 1]:.0f} GB/s")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a results folder: results/<gpu>")
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args(argv)
    failed = False
    frame = load_gpu_results(args.folder)
    for dtype in sorted(set(frame.dtype)):
        micro = frame[(frame.workload == "micro") & (frame.dtype == dtype)]
        for sweep in find_sweeps(micro):
            rows = sweep.rows(micro)
            figure_timer = sweep_timer(rows)
            for timer in GPU_TIMERS:
                step, where = worst_step(rows, timer)
                drop = step < 1 - args.tolerance
                failed |= drop and timer == figure_timer
                mark = "*" if timer == figure_timer else " "
                flag = f"  <- drops more than {args.tolerance:.0%}" if drop else ""
                print(f"{dtype} {sweep.slug} {timer}{mark} worst step {step:.3f} ({where}){flag}")
    print("* the timer of the throughput figures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
