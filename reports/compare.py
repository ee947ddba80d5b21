"""Compare a candidate results CSV with a baseline: did a change slow the seeded op down?

usage:
  python -m reports.compare baseline=BASE.csv candidate=CAND.csv [key=value ...]
  make compare BASELINE=BASE.csv CANDIDATE=CAND.csv ARGS="key=value ..."

Rows are matched by key (workload, impl, mode, timer, dtype, shape, dim, p). For each key found in
both files with status ok on both sides, ratio = candidate p50 / baseline p50 (> 1: slower), and
with t = threshold (per impl if set):

  regressed  ratio > 1 + t, and the samples show the candidate slower
  improved   ratio < 1 / (1 + t), and the samples show it faster
  noisy      past the threshold either way, but the samples cannot tell the change from noise
  unchanged  within the threshold

"The samples show": a one-sided Mann-Whitney U test on the raw samples (<stem>.samples.csv beside
each CSV) in the direction of the change, significant at p < alpha (default 0.01). Where samples are
missing or too few for the test to reach alpha, the p20-p80 ranges of the two sides must not
overlap instead. Keys on both sides but not ok on one are listed with their statuses, not judged;
keys found in one file only are listed too.

Only regressions of `gate_impls` (default: seeded) fail the comparison. The other impls are
reported: a slower baseline implementation is not a regression of this project.

Exit status:
  0  no regression of a gated impl
  1  at least one regression of a gated impl
  2  unusable input: a missing or unreadable file, missing columns, duplicate keys, different GPU
     models or dtypes (unless allow_cross_gpu=true / allow_cross_dtype=true), no common keys,
     no row ok on both sides, or no such row of a gated impl (the gate would check nothing)
`make compare` exits 2 on any failure (make's own rule); its line "make: *** [...] Error N" carries N.

The table is printed, written as markdown (markdown=PATH; default <candidate stem>.compare.md
beside the candidate) and appended to $GITHUB_STEP_SUMMARY when that is set.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from reports.stats import shift_significance

CONFIG_PATH = Path(__file__).resolve().parent.parent / "conf" / "compare.yaml"

# The CSV contract, copied from runners/rows.py (reports read CSV only; tests check the copy).
KEY_COLUMNS = ("workload", "impl", "mode", "timer", "dtype", "shape", "dim", "p")
TIMING_COLUMNS = ("p20_ms", "p50_ms", "p80_ms")
REQUIRED_COLUMNS = (*KEY_COLUMNS, "gpu", *TIMING_COLUMNS, "status")
SAMPLES_COLUMNS = (*KEY_COLUMNS, "samples_ms")

VERDICTS = ("regressed", "improved", "noisy", "unchanged")
EXIT_PASS, EXIT_FAIL, EXIT_UNUSABLE = 0, 1, 2


class UnusableInput(Exception):
    """The inputs cannot be compared (exit status 2); the message says why."""


# ---------------------------------------------------------------------------------------------
# reading


@dataclass
class Results:
    """One results CSV: its rows by key (file order), and raw samples by key where known."""

    path: Path
    frame: pd.DataFrame
    rows: dict[tuple, dict]
    samples: dict[tuple, np.ndarray]
    samples_path: Path | None  # None: no samples file beside the CSV


def samples_path_for(csv_path: Path) -> Path:
    return csv_path.with_suffix(".samples.csv")


def canonical_p(text: str) -> str:
    # "0.5", "0.50" and "5e-1" are one key
    try:
        return repr(float(text))
    except ValueError:
        return text


def read_csv_text(path: Path, role: str) -> pd.DataFrame:
    if not path.is_file():
        raise UnusableInput(f"{role} file not found: {path}")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise UnusableInput(f"{role} file {path} is not a readable CSV: {err}") from err


def require_columns(frame: pd.DataFrame, columns, path: Path, role: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UnusableInput(f"{role} file {path} lacks column(s): {', '.join(missing)}")


def keys_of(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(values) for values in frame[list(KEY_COLUMNS)].itertuples(index=False)]


def read_samples(path: Path, role: str) -> dict[tuple, np.ndarray]:
    frame = read_csv_text(path, f"{role} samples")
    require_columns(frame, SAMPLES_COLUMNS, path, f"{role} samples")
    frame["p"] = frame["p"].map(canonical_p)
    samples = {}
    for key, text in zip(keys_of(frame), frame["samples_ms"], strict=True):
        try:
            samples[key] = np.array(text.split(), dtype=float)
        except ValueError as err:
            raise UnusableInput(f"{role} samples file {path}: bad samples for {key}: {err}") from err
    return samples


def load_results(path, role: str) -> Results:
    """Read a results CSV and the samples beside it; `role` ("baseline"/"candidate") names it in errors."""
    path = Path(path)
    frame = read_csv_text(path, role)
    require_columns(frame, REQUIRED_COLUMNS, path, role)
    frame["p"] = frame["p"].map(canonical_p)
    for column in TIMING_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    keys = keys_of(frame)
    duplicated = frame.duplicated(list(KEY_COLUMNS))
    if duplicated.any():
        first = keys[int(np.flatnonzero(duplicated.to_numpy())[0])]
        raise UnusableInput(f"{role} file {path} has {int(duplicated.sum())} duplicate key(s), e.g. {first}")
    rows = dict(zip(keys, frame.to_dict("records"), strict=True))
    samples_path = samples_path_for(path)
    if samples_path.is_file():
        return Results(path, frame, rows, read_samples(samples_path, role), samples_path)
    return Results(path, frame, rows, {}, None)


# ---------------------------------------------------------------------------------------------
# comparing


def distinct(frame: pd.DataFrame, column: str) -> list[str]:
    return sorted(value or "(empty)" for value in set(frame[column]))


def check_comparable(base: Results, cand: Results, allow_cross_gpu: bool, allow_cross_dtype: bool) -> list[str]:
    """Refuse different GPU models or dtype sets unless allowed; return notes on what was allowed."""
    notes = []
    checks = (
        ("gpu", "GPU models", "allow_cross_gpu", allow_cross_gpu),
        ("dtype", "dtypes", "allow_cross_dtype", allow_cross_dtype),
    )
    for column, what, flag, allowed in checks:
        base_values, cand_values = distinct(base.frame, column), distinct(cand.frame, column)
        if base_values == cand_values:
            continue
        found = f"baseline has {', '.join(base_values)}; candidate has {', '.join(cand_values)}"
        if not allowed:
            raise UnusableInput(f"different {what}: {found}. Pass {flag}=true to compare them anyway.")
        notes.append(f"different {what} compared ({flag}=true): {found}")
    return notes


@dataclass
class JudgedRow:
    key: tuple
    base_p50: float
    cand_p50: float
    ratio: float
    verdict: str  # one of VERDICTS
    evidence: str
    gated: bool

    @property
    def fails_gate(self) -> bool:
        return self.gated and self.verdict == "regressed"


@dataclass
class UnjudgedRow:
    key: tuple
    base_status: str
    cand_status: str
    reason: str


@dataclass
class Comparison:
    judged: list[JudgedRow] = field(default_factory=list)
    not_judged: list[UnjudgedRow] = field(default_factory=list)
    only_in_baseline: list[tuple] = field(default_factory=list)
    only_in_candidate: list[tuple] = field(default_factory=list)
    gate_impls: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)

    @property
    def gate_failures(self) -> list[JudgedRow]:
        return [row for row in self.judged if row.fails_gate]

    def unusable_reason(self) -> str | None:
        """Why this comparison cannot pass or fail, or None when it can."""
        if not self.judged and not self.not_judged:
            return "no common keys: the two files share no (workload, impl, mode, timer, dtype, shape, dim, p)"
        if not self.judged:
            return "no key is ok on both sides"
        if self.gate_impls and not any(row.gated for row in self.judged):
            return (
                f"no key of the gated impls ({', '.join(self.gate_impls)}) is ok on both sides: "
                "the gate would check nothing (set gate_impls=[...] to the impls to gate, [] to report only)"
            )
        return None

    def exit_status(self) -> int:
        if self.unusable_reason():
            return EXIT_UNUSABLE
        return EXIT_FAIL if self.gate_failures else EXIT_PASS


def verdict_for(ratio: float, threshold: float, base_samples, cand_samples, base_range, cand_range, alpha):
    """(verdict, evidence) for one key whose p50 changed by `ratio` (candidate / baseline)."""
    if 1.0 / (1.0 + threshold) <= ratio <= 1.0 + threshold:
        return "unchanged", f"within {threshold:.0%}"
    direction = "slower" if ratio > 1.0 else "faster"
    shift = shift_significance(direction, base_samples, cand_samples, base_range, cand_range, alpha)
    if not shift.significant:
        return "noisy", shift.detail
    return ("regressed" if direction == "slower" else "improved"), shift.detail


def host_bound(base: Results, key: tuple, cfg: DictConfig) -> bool:
    """Whether the baseline says this row times the host, not the GPU: then it is reported, not gated.

    An `event` row is host-bound when its p50 exceeds `gpu_bound_ratio` x the p50 of the same key
    timed with `cuda_graph` (GPU time alone) in the baseline; without that row, when its p50 is under
    the timer's `gate_min_ms` floor. Identical H200 runs moved host-bound event rows by 0.3x-3x while
    GPU-bound rows and cuda_graph rows stayed within 5%.
    """
    timer_at = KEY_COLUMNS.index("timer")
    base_p50 = base.rows[key]["p50_ms"]
    if key[timer_at] == "event":
        graph_key = key[:timer_at] + ("cuda_graph",) + key[timer_at + 1 :]
        graph_row = base.rows.get(graph_key)
        if graph_row is not None and graph_row["status"] == "ok" and graph_row["p50_ms"] > 0:
            return base_p50 > float(cfg.gpu_bound_ratio) * graph_row["p50_ms"]
    return base_p50 < float(cfg.gate_min_ms.get(key[timer_at], 0.0))


def compare(base: Results, cand: Results, cfg: DictConfig) -> Comparison:
    """Match rows by key and judge each key ok on both sides (see the module docstring)."""
    gate_impls = tuple(str(impl) for impl in cfg.gate_impls)
    comparison = Comparison(gate_impls=gate_impls)
    comparison.only_in_baseline = [key for key in base.rows if key not in cand.rows]
    impl_at = KEY_COLUMNS.index("impl")
    for key, cand_row in cand.rows.items():
        base_row = base.rows.get(key)
        if base_row is None:
            comparison.only_in_candidate.append(key)
            continue
        statuses = (base_row["status"], cand_row["status"])
        if statuses != ("ok", "ok"):
            error = cand_row.get("error", "") if statuses[1] != "ok" else base_row.get("error", "")
            comparison.not_judged.append(UnjudgedRow(key, *statuses, error[:200]))
            continue
        base_p50, cand_p50 = base_row["p50_ms"], cand_row["p50_ms"]
        if not (base_p50 > 0 and cand_p50 > 0):  # NaN compares False
            comparison.not_judged.append(UnjudgedRow(key, *statuses, "no positive p50 on both sides"))
            continue
        impl = key[impl_at]
        ratio = cand_p50 / base_p50
        verdict, evidence = verdict_for(
            ratio,
            float(cfg.thresholds.get(impl, cfg.threshold)),
            base.samples.get(key, ()),
            cand.samples.get(key, ()),
            (base_row["p20_ms"], base_row["p80_ms"]),
            (cand_row["p20_ms"], cand_row["p80_ms"]),
            float(cfg.alpha),
        )
        gated = impl in gate_impls and not host_bound(base, key, cfg)
        comparison.judged.append(JudgedRow(key, base_p50, cand_p50, ratio, verdict, evidence, gated))
    for results, role in ((base, "baseline"), (cand, "candidate")):
        if results.samples_path is None:
            comparison.notes.append(
                f"no samples file beside the {role} ({samples_path_for(results.path).name}): "
                "changes judged by p20-p80 ranges"
            )
    return comparison


# ---------------------------------------------------------------------------------------------
# reporting


def markdown_cell(value) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(markdown_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def provenance(results: Results) -> str:
    frame = results.frame
    parts = [f"{len(frame)} rows", ", ".join(distinct(frame, "gpu"))]
    if "git_sha" in frame.columns and len(frame):
        sha = str(frame["git_sha"].iloc[0])[:10] or "?"
        dirty = "git_dirty" in frame.columns and str(frame["git_dirty"].iloc[0]).lower() in ("true", "1")
        parts.append(f"git {sha}{' (dirty)' if dirty else ''}")
    for column in ("torch", "triton"):
        if column in frame.columns:
            parts.append(f"{column} {', '.join(distinct(frame, column))}")
    parts.append("raw samples" if results.samples_path else "no raw samples")
    return f"`{results.path}`: " + "; ".join(parts)


def headline(comparison: Comparison) -> str:
    gated = ", ".join(comparison.gate_impls) or "none"
    reason = comparison.unusable_reason()
    if reason:
        return f"**CANNOT JUDGE**: {reason}."
    failures = comparison.gate_failures
    if failures:
        return f"**FAIL**: {len(failures)} regression(s) in gated impls ({gated})."
    return f"**PASS**: no regression in gated impls ({gated})."


def constant_key_columns(keys: list[tuple]) -> dict[str, str]:
    """Key columns with one value in every key: stated once above the tables instead of in each row."""
    if not keys:
        return {}
    return {column: keys[0][i] for i, column in enumerate(KEY_COLUMNS) if len({key[i] for key in keys}) == 1}


def summary_lines(base: Results, cand: Results, comparison: Comparison, cfg: DictConfig) -> list[str]:
    per_impl = "".join(f", {impl} {t:.0%}" for impl, t in cfg.thresholds.items())
    counts = ", ".join(f"{sum(r.verdict == v for r in comparison.judged)} {v}" for v in VERDICTS)
    return [
        f"- baseline {provenance(base)}",
        f"- candidate {provenance(cand)}",
        f"- rule: ratio = candidate p50 / baseline p50; a change past {float(cfg.threshold):.0%}{per_impl} "
        f"counts when a one-sided Mann-Whitney U test on the raw samples gives p < {cfg.alpha} "
        "(without enough samples: p20-p80 ranges apart); otherwise it is `noisy`",
        f"- judged: {counts}; {len(comparison.not_judged)} not judged; "
        f"{len(comparison.only_in_baseline)} only in the baseline; "
        f"{len(comparison.only_in_candidate)} only in the candidate",
    ]


def render_markdown(base: Results, cand: Results, comparison: Comparison, cfg: DictConfig) -> str:
    every_key = list(base.rows) + [key for key in cand.rows if key not in base.rows]
    constant = constant_key_columns(every_key)
    shown = [i for i, column in enumerate(KEY_COLUMNS) if column not in constant]
    shown_names = [KEY_COLUMNS[i] for i in shown]

    def key_cells(key: tuple) -> list[str]:
        return [key[i] for i in shown]

    lines = [f"## Performance comparison: {cand.path.name} vs {base.path.name}", "", headline(comparison), ""]
    lines += summary_lines(base, cand, comparison, cfg)
    if constant:
        lines.append("- in every row: " + ", ".join(f"{column}={value}" for column, value in constant.items()))
    lines += [f"- note: {note}" for note in comparison.notes]

    if comparison.judged:
        header = [*shown_names, "baseline p50 ms", "candidate p50 ms", "ratio", "verdict", "evidence", "gate"]
        rows = [
            [
                *key_cells(row.key),
                f"{row.base_p50:.4g}",
                f"{row.cand_p50:.4g}",
                f"{row.ratio:.3f}",
                row.verdict,
                row.evidence,
                ("FAIL" if row.fails_gate else "pass") if row.gated else "not gated",
            ]
            for row in comparison.judged
        ]
        lines += ["", markdown_table(header, rows)]
    ungated = [row for row in comparison.judged if row.verdict == "regressed" and not row.gated]
    if ungated:
        impls = ", ".join(sorted({row.key[KEY_COLUMNS.index("impl")] for row in ungated}))
        lines += [
            "",
            f"{len(ungated)} regression(s) in impls outside the gate ({impls}): reported only; "
            "a slower baseline implementation is not a regression of this project.",
        ]
    if comparison.not_judged:
        header = [*shown_names, "baseline status", "candidate status", "why"]
        rows = [[*key_cells(r.key), r.base_status, r.cand_status, r.reason] for r in comparison.not_judged]
        lines += ["", f"### Not judged: not ok on both sides ({len(rows)})", "", markdown_table(header, rows)]
    for side, keys in (
        ("baseline", comparison.only_in_baseline),
        ("candidate", comparison.only_in_candidate),
    ):
        if keys:
            table = markdown_table(shown_names, [key_cells(key) for key in keys])
            lines += ["", f"### Only in the {side} ({len(keys)})", "", table]
    return "\n".join(lines) + "\n"


def publish(markdown: str, path: Path | None) -> None:
    """Write the markdown to `path` (atomically) and append it to $GITHUB_STEP_SUMMARY if set."""
    if path is not None:
        partial = path.with_name(path.name + ".partial")
        partial.write_text(markdown)
        partial.replace(path)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as handle:
            handle.write(markdown + "\n")


# ---------------------------------------------------------------------------------------------
# command line


def load_config(argv: list[str]) -> DictConfig:
    """conf/compare.yaml overridden by key=value arguments; unknown keys are an error."""
    for arg in argv:
        if "=" not in arg or arg.startswith(("-", "+", "~")):
            raise UnusableInput(f"arguments are key=value (see --help), got {arg!r}")
    cfg = OmegaConf.load(CONFIG_PATH)
    OmegaConf.set_struct(cfg, True)
    OmegaConf.set_struct(cfg.thresholds, False)  # any impl may get its own threshold
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(argv))
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as err:
        raise UnusableInput(f"bad argument: {err}".splitlines()[0]) from err
    for name in ("baseline", "candidate"):
        if not cfg[name]:
            raise UnusableInput(f"{name}=PATH is required (see --help)")
    thresholds = [cfg.threshold, *cfg.thresholds.values()]
    if not all(isinstance(t, int | float) and not isinstance(t, bool) and t >= 0 for t in thresholds):
        raise UnusableInput(f"thresholds are fractions >= 0, got {thresholds}")
    if not (isinstance(cfg.alpha, float) and 0.0 < cfg.alpha < 1.0):
        raise UnusableInput(f"alpha must lie in (0, 1), got {cfg.alpha!r}")
    for flag in ("allow_cross_gpu", "allow_cross_dtype"):
        if not isinstance(cfg[flag], bool):
            raise UnusableInput(f"{flag} is true or false, got {cfg[flag]!r}")
    if isinstance(cfg.gate_impls, str):
        cfg.gate_impls = [cfg.gate_impls]
    return cfg


def help_text() -> str:
    settings = f"settings (conf/{CONFIG_PATH.name}; override any as key=value):"
    return f"{__doc__}\n{settings}\n\n{CONFIG_PATH.read_text()}"


def markdown_path(cfg: DictConfig) -> Path:
    if cfg.markdown:
        return Path(cfg.markdown)
    candidate = Path(cfg.candidate)
    return candidate.with_name(candidate.stem + ".compare.md")


def run(cfg: DictConfig) -> int:
    """Compare, print, publish; return the exit status."""
    try:
        base = load_results(cfg.baseline, "baseline")
        cand = load_results(cfg.candidate, "candidate")
        notes = check_comparable(base, cand, bool(cfg.allow_cross_gpu), bool(cfg.allow_cross_dtype))
    except UnusableInput as err:
        print(f"compare: cannot compare: {err}", file=sys.stderr)
        path = markdown_path(cfg)
        # a stale table must not outlive a failed comparison; no folder is made for a missing candidate
        publish(
            f"## Performance comparison\n\n**CANNOT COMPARE**: {err}\n",
            path if path.parent.is_dir() else None,
        )
        return EXIT_UNUSABLE
    comparison = compare(base, cand, cfg)
    comparison.notes[:0] = notes
    markdown = render_markdown(base, cand, comparison, cfg)
    print(markdown, end="")
    path = markdown_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    publish(markdown, path)
    reason = comparison.unusable_reason()
    if reason:
        print(f"compare: cannot judge: {reason}", file=sys.stderr)
    return comparison.exit_status()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(arg in ("-h", "--help", "help") for arg in argv):
        print(help_text())
        return EXIT_PASS
    try:
        cfg = load_config(argv)
    except UnusableInput as err:
        print(f"compare: {err}", file=sys.stderr)
        return EXIT_UNUSABLE
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
