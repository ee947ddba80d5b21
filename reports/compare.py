"""Compare a candidate results CSV with a baseline: did a change slow the seeded op down?

usage:
  python -m reports.compare baseline=BASE.csv candidate=CAND.csv [key=value ...]
  make compare BASELINE=BASE.csv CANDIDATE=CAND.csv ARGS="key=value ..."

For results measured at different times, perhaps on different machines. (Two versions of the code
on one GPU are compared better by an A/B job: `make bench-ab`, reports/ab.py, which pairs
processes and so sees how far two processes land apart.)

Rows are matched by key (workload, impl, mode, timer, dtype, shape, dim, p); a file written by a
run cut short may hold superseded rows of a key, and the last one counts. For each key ok on both
sides, ratio = candidate p50 / baseline p50 (> 1: slower), and with t = threshold (per impl if set):

  regressed  ratio > 1 + t, and the rounds show the candidate slower
  improved   ratio < 1 / (1 + t), and the rounds show it faster
  noisy      past the threshold either way, but the rounds cannot tell the change from noise
  unchanged  within the threshold

"The rounds show": a one-sided Mann-Whitney U test over the two sides' round medians (the samples
file beside each CSV records each sample's round), in the direction of the change, at p < alpha
(default 0.01). A round is one observation; the samples inside a round are not independent of
each other. Where the rounds are too few for the test to reach alpha, or there is no samples
file, the two intervals (lowest to highest round median, or p20-p80 in older files) must not
overlap instead.

Host timer keys are judged on `host_ratio` (the call's host time over copy's, measured in the same
process: runners/host_ratio.py), not on p50: ratio = candidate host_ratio / baseline host_ratio,
past `host_threshold` (5%) and with the two ranges of round ratios apart. Absolute host time
follows the host CPU's speed (1.6-1.7x between processes on the H200's machines); the ratio moved
2.5% between two sweeps. A host key without the ratio on a side (an older file) is listed, not
judged.

The gate: keys of `gate_impls` (default: seeded, seeded:compile) and `gate_timers` (default: event,
cuda_graph: GPU time; host: host cost), host keys only of `host_gate_impls` (default: seeded),
event keys only at points where the host timer did not run (reports/comparison.py says why). The
compiled op's host cost is mostly torch's compiled-call runtime (guards, the AOTAutograd wrapper):
between two processes of the same code on the H200 its host ratio moved 22% (fwd) and 10%
(fwd_bwd), against 3% and 1% for the eager op, so gated it would be a blind or flaky key; its host
rows are reported, not gated. It fails on a gated key that regressed, and on one that is
broken: ok in the baseline but missing, error, oom or skipped in the candidate, or with a time or
sample that is not a positive finite number. Keys not ok in the baseline are listed, not judged.

Exit status:
  0  no gated key regressed or broke
  1  a gated key regressed, broke or is missing from the candidate (each named)
  2  unusable input: a missing or unreadable file, missing columns, different GPU models or dtypes
     (unless allow_cross_gpu=true / allow_cross_dtype=true), no common keys, no row ok on both
     sides, no gated key at all (the gate would check nothing), or a markdown path that is an input
`make compare` exits 2 on any failure: GNU make's own status for a failed recipe, whatever the
recipe's. A script that must tell 1 from 2 runs `python -m reports.compare` (`.venv/bin/python`)
itself.

The full table is printed. It is written as markdown only when asked (markdown=PATH), and never
when the comparison is refused (exit 2): nothing is written beside the inputs. $GITHUB_STEP_SUMMARY,
when set, gets the gated and the changed keys in full and the rest counted, under GitHub's 1 MiB
limit.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from reports.comparison import VERDICTS, Comparison, GateRule, check_comparable, compare
from reports.markdown import escape, publish, table
from reports.stored_results import StoredResults, UnusableInput, load_results
from runners.results_io import samples_path_for
from runners.rows import KEY_COLUMNS, key_text
from runners.settings_args import help_text, parse_settings, wants_help

EXIT_PASS, EXIT_FAIL, EXIT_UNUSABLE = 0, 1, 2


@dataclass
class CompareConfig:
    """The command line of `python -m reports.compare` (key=value)."""

    baseline: str | None = None  # results CSV of the reference run; samples read from <stem>.samples.csv
    candidate: str | None = None  # results CSV of the run under test, likewise
    markdown: str | None = None  # where the table is written as well; null: printed only
    # A change counts when candidate p50 / baseline p50 is past the threshold (> 1 + t: slower;
    # < 1 / (1 + t): faster) AND the rounds say it is not chance.
    threshold: float = 0.10  # t, a fraction
    thresholds: dict[str, float] = field(default_factory=dict)  # per impl, e.g. {copy: 0.05}
    host_threshold: float = 0.05  # t of host keys, on candidate host_ratio / baseline host_ratio
    alpha: float = 0.01  # level of the one-sided Mann-Whitney U test over round medians
    # Only these impls' rows of these timers fail the gate; the rest is reported.
    gate_impls: list[str] = field(default_factory=lambda: ["seeded", "seeded:compile"])
    gate_timers: list[str] = field(default_factory=lambda: ["event", "cuda_graph", "host"])
    host_gate_impls: list[str] = field(default_factory=lambda: ["seeded"])  # of gate_impls: host keys gated
    # Refuse (exit 2) two GPU models or two dtype sets unless told otherwise; allow_cross_gpu
    # allows both, allow_cross_dtype different dtypes only (the shared ones are compared).
    allow_cross_gpu: bool = False
    allow_cross_dtype: bool = False


def load_config(argv: list[str]) -> CompareConfig:
    """The schema's defaults overridden by key=value arguments; unknown keys and bad values refused."""
    cfg = parse_settings(CompareConfig, argv, UnusableInput)
    for name in ("baseline", "candidate"):
        if not getattr(cfg, name):
            raise UnusableInput(f"{name}=PATH is required (see --help)")
    thresholds = [cfg.threshold, *cfg.thresholds.values(), cfg.host_threshold]
    if not all(t >= 0 for t in thresholds):
        raise UnusableInput(f"thresholds are fractions >= 0, got {thresholds}")
    if not 0.0 < cfg.alpha < 1.0:
        raise UnusableInput(f"alpha must lie in (0, 1), got {cfg.alpha!r}")
    return cfg


def rule_of(cfg: CompareConfig) -> GateRule:
    return GateRule(cfg.threshold, dict(cfg.thresholds), cfg.alpha, tuple(cfg.gate_impls), tuple(cfg.gate_timers),
                    cfg.host_threshold, tuple(cfg.host_gate_impls))  # fmt: skip


def markdown_path(cfg: CompareConfig) -> Path | None:
    """Where the table is written (None: nowhere); never onto one of the inputs or their samples files."""
    if not cfg.markdown:
        return None
    path = Path(cfg.markdown)
    inputs = {Path(p).resolve() for name in ("baseline", "candidate") for p in
              (getattr(cfg, name), samples_path_for(Path(getattr(cfg, name))))}  # fmt: skip
    if path.resolve() in inputs:
        raise UnusableInput(f"markdown={path} would overwrite an input of the comparison")
    return path


# ---- markdown ---------------------------------------------------------------------------------


def provenance(results: StoredResults) -> str:
    frame = results.frame
    parts = [f"{len(frame)} rows", ", ".join(sorted(set(frame["gpu"])))]
    if "git_sha" in frame.columns and len(frame):
        sha = str(frame["git_sha"].iloc[0])[:10] or "?"
        dirty = "git_dirty" in frame.columns and str(frame["git_dirty"].iloc[0]).lower() in ("true", "1")
        parts.append(f"git {sha}{' (dirty)' if dirty else ''}")
    for column in ("torch", "triton"):
        if column in frame.columns:
            parts.append(f"{column} {', '.join(sorted(set(frame[column])))}")
    parts.append("raw samples" if results.samples_path else "no raw samples")
    return f"`{escape(results.path)}`: " + escape("; ".join(parts))


def headline(comparison: Comparison) -> str:
    gated = ", ".join(comparison.rule.gate_impls) or "none"
    failures, missing = comparison.gate_failures, comparison.missing_gated
    if comparison.exit_status() == EXIT_FAIL:
        named = [key_text(row.key) + f" ({getattr(row, 'verdict', 'broken')})" for row in failures]
        named += [key_text(key) + " (missing)" for key in missing]
        return f"**FAIL**: {len(named)} gated key(s) regressed, broke or went missing: {escape('; '.join(named))}."
    reason = comparison.unusable_reason()
    if reason:
        return f"**CANNOT JUDGE**: {escape(reason)}."
    return f"**PASS**: no regression in gated impls ({escape(gated)})."


def constant_key_columns(keys: list[tuple]) -> dict[str, str]:
    """Key columns with one value in every key: stated once above the tables instead of in each row."""
    if not keys:
        return {}
    return {column: keys[0][i] for i, column in enumerate(KEY_COLUMNS) if len({key[i] for key in keys}) == 1}


def render_markdown(base: StoredResults, cand: StoredResults, comparison: Comparison, cfg: CompareConfig,
                    full: bool = True) -> str:
    """The comparison as markdown; `full=False` lists only gated and changed keys and counts the rest."""
    every_key = list(base.rows) + [key for key in cand.rows if key not in base.rows]
    constant = constant_key_columns(every_key)
    shown = [i for i, column in enumerate(KEY_COLUMNS) if column not in constant]
    names = [KEY_COLUMNS[i] for i in shown]

    def key_cells(key: tuple) -> list[str]:
        return [key[i] for i in shown]

    per_impl = "".join(f", {impl} {t:.0%}" for impl, t in cfg.thresholds.items())
    counts = ", ".join(f"{sum(r.verdict == v for r in comparison.judged)} {v}" for v in VERDICTS)
    lines = [f"## Performance comparison: {escape(cand.path.name)} vs {escape(base.path.name)}", "",
             headline(comparison), "",
             f"- baseline {provenance(base)}", f"- candidate {provenance(cand)}",
             f"- rule: ratio = candidate p50 / baseline p50; a change past {cfg.threshold:.0%}{per_impl} counts "
             f"when a one-sided Mann-Whitney U test over the round medians gives p < {cfg.alpha} (with too few "
             "rounds: the intervals apart); otherwise it is `noisy`; host keys: ratio = candidate host_ratio / "
             f"baseline host_ratio past {cfg.host_threshold:.0%}, the ranges of round ratios apart; gated: "
             f"{', '.join(cfg.gate_impls) or 'none'} on {', '.join(cfg.gate_timers)}"
             + (f" (host: {', '.join(cfg.host_gate_impls) or 'none'})" if "host" in cfg.gate_timers else ""),
             f"- judged: {counts}; {len(comparison.not_judged)} not judged; "
             f"{len(comparison.only_in_baseline)} only in the baseline; "
             f"{len(comparison.only_in_candidate)} only in the candidate"]  # fmt: skip
    if constant:
        lines.append("- in every row: " + escape(", ".join(f"{column}={value}" for column, value in constant.items())))
    lines += [f"- note: {escape(note)}" for note in comparison.notes]
    rows = comparison.judged if full else [r for r in comparison.judged if r.gated or r.verdict != "unchanged"]
    if rows:
        header = [*names, "baseline p50 ms", "candidate p50 ms", "ratio", "verdict", "evidence", "gate"]
        lines += ["", table(header, [
            [*key_cells(row.key), f"{row.base_p50:.4g}", f"{row.cand_p50:.4g}", f"{row.ratio:.3f}", row.verdict,
             row.evidence, ("FAIL" if row.fails_gate else "pass") if row.gated else "not gated"]
            for row in rows])]  # fmt: skip
    if len(rows) < len(comparison.judged):
        lines += ["", f"{len(comparison.judged) - len(rows)} ungated key(s) unchanged, not listed here."]
    ungated = [row for row in comparison.judged if row.verdict == "regressed" and not row.gated]
    if ungated:
        impls = ", ".join(sorted({row.key[KEY_COLUMNS.index("impl")] for row in ungated}))
        lines += ["", f"{len(ungated)} regression(s) outside the gate ({escape(impls)}): reported only; a slower "
                      "baseline implementation or host time is not a regression the gate judges."]
    if comparison.not_judged:
        header = [*names, "baseline status", "candidate status", "why", "gate"]
        rows_not = [[*key_cells(r.key), r.base_status, r.cand_status, r.reason,
                     "FAIL" if r.gated and r.broken else ("not gated" if not r.gated else "pass")]
                    for r in comparison.not_judged]  # fmt: skip
        lines += ["", f"### Not judged: not ok or not usable on a side ({len(rows_not)})", "", table(header, rows_not)]
    for side, keys in (("baseline", comparison.only_in_baseline), ("candidate", comparison.only_in_candidate)):
        if keys:
            lines += ["", f"### Only in the {side} ({len(keys)})", "", table(names, [key_cells(key) for key in keys])]
    return "\n".join(lines) + "\n"


# ---- command line -----------------------------------------------------------------------------


def run(cfg: CompareConfig) -> int:
    """Compare, print, publish; return the exit status."""
    try:
        path = markdown_path(cfg)
    except UnusableInput as err:
        print(f"compare: {err}", file=sys.stderr)
        return EXIT_UNUSABLE
    try:
        base = load_results(cfg.baseline, "baseline")
        cand = load_results(cfg.candidate, "candidate")
        notes = check_comparable(base, cand, cfg.allow_cross_gpu, cfg.allow_cross_dtype or cfg.allow_cross_gpu)
    except UnusableInput as err:
        print(f"compare: cannot compare: {err}", file=sys.stderr)
        publish(f"## Performance comparison\n\n**CANNOT COMPARE**: {escape(err)}\n", None)  # job summary only
        return EXIT_UNUSABLE
    comparison = compare(base, cand, rule_of(cfg))
    comparison.notes[:0] = notes
    markdown = render_markdown(base, cand, comparison, cfg)
    print(markdown, end="")
    status = comparison.exit_status()
    if status == EXIT_UNUSABLE:
        print(f"compare: cannot judge: {comparison.unusable_reason()}", file=sys.stderr)
        path = None  # a refused comparison writes no file
    elif path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    publish(markdown, path, step_summary=render_markdown(base, cand, comparison, cfg, full=False))
    return status


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(help_text(__doc__, CompareConfig))
        return EXIT_PASS
    try:
        cfg = load_config(argv)
    except UnusableInput as err:
        print(f"compare: {err}", file=sys.stderr)
        return EXIT_UNUSABLE
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
