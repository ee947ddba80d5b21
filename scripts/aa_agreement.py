"""How far repeated sweeps of the same code agree (A/A): for each pair of results files, the share of
keys whose p50 times lie within a tolerance of each other, over all rows, per timer and per `bound`.

    python scripts/aa_agreement.py results/nvidia-h200/aa/fp32-run*.csv [--tolerance 0.05] [--worst 10]

Only keys that are `ok` in both files of a pair count. Agreement of a key is |b / a - 1| <= tolerance,
a the first file's p50 and b the second's. Prints one table per pair, the pairs' summary last; exits
1 when a file has no key in common with another.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # a maintainer command run as a file from anywhere: the harness is beside it
    sys.path.insert(0, str(ROOT))

from runners.results_io import read_results  # noqa: E402
from runners.rows import KEY_COLUMNS  # noqa: E402


def paired(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """The keys ok in both, with p50_a, p50_b, the relative difference `change` and both `bound`s."""
    columns = [*KEY_COLUMNS, "p50_ms", "bound", "status"]
    both = first[columns].merge(second[columns], on=list(KEY_COLUMNS), suffixes=("_a", "_b"))
    both = both[(both.status_a == "ok") & (both.status_b == "ok")].copy()
    both["change"] = (both.p50_ms_b / both.p50_ms_a - 1).abs()
    return both


def agreement(both: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Rows within tolerance, of how many, per group: all, each timer, each bound (of the first file)."""
    within = both.change <= tolerance
    groups = {"all": pd.Series(True, index=both.index)}
    groups |= {f"timer {t}": both.timer == t for t in sorted(set(both.timer))}
    groups |= {f"bound {b}": both.bound_a == b for b in sorted(set(both.bound_a)) if b}
    return pd.DataFrame(
        [{"rows": name, "within": int((within & mask).sum()), "of": int(mask.sum()),
          "share": (within & mask).sum() / max(int(mask.sum()), 1), "worst": both.change[mask].max()}
         for name, mask in groups.items()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="two or more results CSVs of the same sweep")
    parser.add_argument("--tolerance", type=float, default=0.05, help="relative difference that counts as agreeing")
    parser.add_argument("--worst", type=int, default=10, help="list this many of each pair's worst keys")
    args = parser.parse_args(argv)
    if len(args.files) < 2:
        parser.error("give at least two results files")
    if not 0 < args.tolerance < 1:
        parser.error(f"--tolerance must lie in (0, 1), got {args.tolerance}")
    runs = {path: read_results(path) for path in args.files}
    summary = []
    for a, b in itertools.combinations(args.files, 2):
        both = paired(runs[a], runs[b])
        if both.empty:
            print(f"{a} and {b}: no key ok in both", file=sys.stderr)
            return 1
        table = agreement(both, args.tolerance)
        print(f"\n{a} vs {b} (within {args.tolerance:.0%})")
        print(table.to_string(index=False, formatters={"share": "{:.1%}".format, "worst": "{:.1%}".format}))
        worst = both.nlargest(args.worst, "change")
        print(worst[[*KEY_COLUMNS, "p50_ms_a", "p50_ms_b", "change", "bound_a"]].to_string(index=False))
        overall = table.iloc[0]
        summary.append({"a": a.name, "b": b.name, "within": overall.within, "of": overall.of,
                        "share": overall.share, "worst": overall.worst})
    print(f"\nsummary (within {args.tolerance:.0%})")
    print(pd.DataFrame(summary).to_string(index=False, formatters={"share": "{:.1%}".format,
                                                                     "worst": "{:.1%}".format}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
