"""How far repeated sweeps of the same code agree (A/A): for each pair of results files, the share of
keys whose p50 times lie within a tolerance of each other, over all rows, per timer and per `bound`.

    python scripts/aa_agreement.py results/nvidia-h200/aa/fp32-run*.csv [--tolerance 0.05] [--worst 10]

With `--pool K`, each side of a pair is K files pooled into one sweep as `passes=K` pools its
passes (runners/passes.py: every round of every file), over every two disjoint groups of K files:
how far two sweeps in K passes would have agreed.

With `--first-rounds K`, each file's p50 is recomputed from its first K rounds only (from its
samples file): how far fewer rounds per process would have agreed.

Only keys that are `ok` in both files of a pair count. Agreement of a key is |b / a - 1| <= tolerance,
a the first file's p50 and b the second's; for a host-timer key whose rows both hold a `host_ratio`
(the host figure the reports and the gate read), a and b are those ratios. Prints one table per
pair, the pairs' summary last; exits 1 when a file has no key in common with another.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # a maintainer command run as a file from anywhere: the harness is beside it
    sys.path.insert(0, str(ROOT))

from runners.passes import pool_files  # noqa: E402
from runners.results_io import read_results, samples_path_for  # noqa: E402
from runners.rows import KEY_COLUMNS, round_medians  # noqa: E402


def paired(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """The keys ok in both, with p50_a, p50_b, the relative difference `change` and both `bound`s.
    A host-timer key whose rows both hold a `host_ratio` is judged on it, as the reports and the gate
    judge it (runners/host_ratio.py); `judged_on` says which figure each key's change is of."""
    columns = [*KEY_COLUMNS, "p50_ms", "bound", "status"]
    ratio = ["host_ratio"] if "host_ratio" in first and "host_ratio" in second else []
    both = first[columns + ratio].merge(second[columns + ratio], on=list(KEY_COLUMNS), suffixes=("_a", "_b"))
    both = both[(both.status_a == "ok") & (both.status_b == "ok")].copy()
    both["change"] = (both.p50_ms_b / both.p50_ms_a - 1).abs()
    both["judged_on"] = "p50_ms"
    if ratio:
        a, b = (pd.to_numeric(both[f"host_ratio_{side}"], errors="coerce") for side in "ab")
        on_ratio = (both.timer == "host") & (a > 0) & (b > 0)
        both.loc[on_ratio, "change"] = (b[on_ratio] / a[on_ratio] - 1).abs()
        both.loc[on_ratio, "judged_on"] = "host_ratio"
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
    parser.add_argument("--pool", type=int, default=1, help="pool K files into each side (as passes=K would)")
    parser.add_argument("--first-rounds", type=int, default=0, help="judge each file by its first K rounds only")
    args = parser.parse_args(argv)
    if len(args.files) < 2:
        parser.error("give at least two results files")
    if not 0 < args.tolerance < 1:
        parser.error(f"--tolerance must lie in (0, 1), got {args.tolerance}")
    with tempfile.TemporaryDirectory() as folder:
        if args.pool > 1 and args.first_rounds:
            parser.error("--pool and --first-rounds are two different questions: give one")
        if args.pool > 1:
            sides = pooled_sides(args.files, args.pool, Path(folder))
        else:
            sides = single_sides(args.files, args.first_rounds)
        return report(sides, args.tolerance, args.worst)


def first_rounds(path: Path, count: int) -> pd.DataFrame:
    """The results of `path` with each p50 the median of its first `count` round medians."""
    frame = read_results(path)
    samples = read_results(samples_path_for(path)).set_index(list(KEY_COLUMNS))
    def p50(row) -> float:
        key = tuple(row[c] for c in KEY_COLUMNS)
        if row.status != "ok" or key not in samples.index:
            return row.p50_ms
        fields = samples.loc[key]
        times = [float(v) for v in fields.samples_ms.split()]
        rounds = [int(v) for v in fields.sample_rounds.split()]
        return statistics.median(round_medians(times, rounds)[:count])
    return frame.assign(p50_ms=frame.apply(p50, axis=1))


def single_sides(files: list[Path], rounds: int = 0) -> list[tuple[str, pd.DataFrame, str, pd.DataFrame]]:
    runs = {path: first_rounds(path, rounds) if rounds else read_results(path) for path in files}
    return [(str(a), runs[a], str(b), runs[b]) for a, b in itertools.combinations(files, 2)]


def pooled_sides(files: list[Path], k: int, folder: Path) -> list[tuple[str, pd.DataFrame, str, pd.DataFrame]]:
    """Every two disjoint groups of k files, each group pooled into one results file under `folder`."""
    groups = list(itertools.combinations(files, k))
    pooled = {}
    for index, group in enumerate(groups):
        target = folder / f"pool-{index}.csv"
        pool_files(list(group), target)
        pooled[group] = ("+".join(path.stem for path in group), read_results(target))
    return [(*pooled[a], *pooled[b]) for a, b in itertools.combinations(groups, 2) if not set(a) & set(b)]


def report(sides: list[tuple[str, pd.DataFrame, str, pd.DataFrame]], tolerance: float, worst_count: int) -> int:
    """Print each pair's agreement table and worst keys, then the summary; 1 when a pair shares no key."""
    if not sides:
        print("no two disjoint groups of files to compare (--pool K needs at least 2K files)", file=sys.stderr)
        return 1
    summary = []
    for a, first, b, second in sides:
        both = paired(first, second)
        if both.empty:
            print(f"{a} and {b}: no key ok in both", file=sys.stderr)
            return 1
        table = agreement(both, tolerance)
        print(f"\n{a} vs {b} (within {tolerance:.0%})")
        print(table.to_string(index=False, formatters={"share": "{:.1%}".format, "worst": "{:.1%}".format}))
        worst = both.nlargest(worst_count, "change")
        print(worst[[*KEY_COLUMNS, "p50_ms_a", "p50_ms_b", "change", "judged_on", "bound_a"]].to_string(index=False))
        overall = table.iloc[0]
        summary.append({"a": Path(a).name, "b": Path(b).name, "within": overall.within, "of": overall.of,
                        "share": overall.share, "worst": overall.worst})
    print(f"\nsummary (within {tolerance:.0%})")
    print(pd.DataFrame(summary).to_string(index=False, formatters={"share": "{:.1%}".format,
                                                                     "worst": "{:.1%}".format}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
