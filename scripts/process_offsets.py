"""How the rows of one implementation move from one process to the next, over many processes that
ran the same code (the per-process CSVs of A/B jobs, or A/A sweeps).

    python scripts/process_offsets.py results/nvidia-h200/ab/gate-check-1059efc/*/runs/*.csv [--impl copy]

For each key (mode, timer, shape) of `--impl`: the spread between processes (sd of log p50; 0.01 is
about 1%) and the Spearman correlation, over processes, of the key's p50 with the process's host
slowness (the median over its `event` rows of log(host_us / that key's median host_us): the host's
own issue time of each call, higher when the host ran slow). Then, for the smallest shape, the
Spearman correlations between its keys: keys that move together share an offset of the process.
The default impl, `copy`, is the same code in every process of an A/B job, planted or not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # a maintainer command run as a file from anywhere: the harness is beside it
    sys.path.insert(0, str(ROOT))

from reports.results import read_results_csv  # noqa: E402

KEY = ["mode", "timer", "shape"]


def load(paths: list[Path], impl: str) -> pd.DataFrame:
    """The ok rows of `impl`, one `process` per file."""
    results = [path for path in paths if not path.name.endswith(".samples.csv")]
    frames = [read_results_csv(path).assign(process=str(path)) for path in results]
    rows = pd.concat(frames, ignore_index=True)
    return rows[(rows.impl == impl) & (rows.status == "ok")]


def offsets(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """log(p50 / the key's median over processes), a column per key; and each process's host slowness."""
    p50 = rows.pivot_table(index="process", columns=KEY, values="p50_ms")
    host = rows[rows.timer == "event"].pivot_table(index="process", columns=KEY, values="host_us")
    return np.log(p50 / p50.median()), np.log(host / host.median()).median(axis=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csvs", type=Path, nargs="+", help="one results CSV per process")
    parser.add_argument("--impl", default="copy")
    args = parser.parse_args(argv)
    rows = load(args.csvs, args.impl)
    if rows.process.nunique() < 3:
        print(f"need at least 3 processes with ok rows of {args.impl}", file=sys.stderr)
        return 1
    moved, slowness = offsets(rows)
    print(f"{args.impl}: {len(moved)} processes; host slowness sd {slowness.std():.3f}\n")
    table = pd.DataFrame({
        "spread_sd": moved.std(),
        "spearman_with_host_slowness": moved.corrwith(slowness, method="spearman"),
    })  # fmt: skip
    print(table.round(3).to_string())
    smallest = min(set(rows["shape"]), key=lambda shape: int(np.prod([int(s) for s in shape.split("x")])))
    print(f"\nSpearman between the keys of {smallest}, over processes:")
    print(moved.xs(smallest, axis=1, level="shape").corr(method="spearman").round(2).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
