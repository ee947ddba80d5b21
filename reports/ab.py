"""The verdict of an A/B job (`python -m runners.ab`): did the candidate slow a gated key down?

    python -m reports.ab dir=results/ab/latest [threshold=0.05] [confidence=0.95] [markdown=PATH]

The unit of evidence is a pair: one process of each side, run back to back on the same GPU in an
order drawn at random. For every key (workload, impl, mode, timer, dtype, shape, dim, p) and pair
k, r_k = candidate p50 / ref p50. Drift that both processes of a pair share (clocks, temperature,
the machine's load) cancels in r_k; what is left varies from pair to pair, and that variation is
the noise the verdict is judged against. Over the K pairs: the estimate is the geometric mean of
r_k, the interval the Student-t interval of the mean of log r_k (K - 1 degrees of freedom, level
`confidence`), exponentiated. With t = `threshold`:

  regressed  the interval lies above 1 and the estimate above 1 + t (a slowdown past the
             threshold that the pairs agree on), or the whole interval lies above 1 + t
  improved   the same, faster: the interval below 1 and the estimate below 1 / (1 + t)
  noisy      neither, and the interval is wider than the threshold: the pairs disagree too much
             to tell a change of t from noise; the report names the key and the smallest change
             it could have told (the interval's half-width)
  unchanged  otherwise
  broken     ok in every ref process, but missing, not ok, or with a time that is not a positive
             finite number in a candidate process

Host timer keys are judged on their `host_ratio` instead of p50 (the call's host time over copy's
call, timed in alternating bursts in the same process: runners/host_ratio.py): r_k = candidate
host_ratio / ref host_ratio, against `host_threshold`. Absolute host time follows the host CPU's
speed, which moved 1.6-1.7x between processes on the H200's machines and can swing within seconds;
the ratio moved 2.5% between two sweeps. A host key that lacks the ratio in some process (a tree
whose harness predates it) is listed, not judged.

Only keys of `gate_impls` (default: seeded, seeded:compile) and `gate_timers` (default: event,
cuda_graph and host), host keys only of `host_gate_impls` (default: seeded; reports/compare.py says
why), event keys only at points where the host timer did not run (reports/comparison.py says why),
count for the gate: it FAILS (exit 1) when one of them regressed or is broken,
naming each; a key that is not ok in the ref processes is listed, not judged. Exit 2 when the job
cannot be judged: no ab.json, fewer than 2 complete pairs, or no gated key judged at all. The
verdict is printed, written to `<dir>/ab.md` (or `markdown=`) and appended to $GITHUB_STEP_SUMMARY
when set (gated and changed keys in full, the rest counted).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from scipy.stats import t as student_t

from reports.comparison import gated_key, host_points, point_of
from reports.markdown import escape, publish, table
from runners.results_io import key_of, samples_path_for
from runners.rows import KEY_COLUMNS, key_text
from runners.settings_args import help_text, parse_settings, wants_help

EXIT_PASS, EXIT_FAIL, EXIT_UNUSABLE = 0, 1, 2
SIDES = ("ref", "candidate")
VERDICTS = ("broken", "regressed", "noisy", "improved", "unchanged")


@dataclass
class ABJudgeConfig:
    """The command line of `python -m reports.ab` (key=value)."""

    dir: str = "results/ab/latest"  # the A/B job's folder (ab.json beside runs/)
    threshold: float = 0.05  # t: the smallest slowdown that counts, as a fraction
    host_threshold: float = 0.05  # t of host keys, on candidate host_ratio / ref host_ratio
    confidence: float = 0.95  # level of the paired interval
    gate_impls: list[str] = field(default_factory=lambda: ["seeded", "seeded:compile"])
    gate_timers: list[str] = field(default_factory=lambda: ["event", "cuda_graph", "host"])
    host_gate_impls: list[str] = field(default_factory=lambda: ["seeded"])  # of gate_impls: host keys gated
    markdown: str | None = None  # default: <dir>/ab.md


class Unjudgeable(Exception):
    """The job cannot be judged at all (exit 2); the message says why."""


@dataclass
class KeyVerdict:
    key: tuple
    verdict: str
    gated: bool
    estimate: float = math.nan  # geometric mean of candidate/ref over the pairs
    low: float = math.nan
    high: float = math.nan
    pairs: int = 0
    ref_p50: float = math.nan  # medians over the ref and candidate processes, ms
    cand_p50: float = math.nan
    reason: str = ""

    @property
    def detectable(self) -> float:
        """The smallest change the pairs could tell from noise: the interval's half-width, as a fraction."""
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low <= 0:
            return math.nan
        return math.sqrt(self.high / self.low) - 1

    @property
    def fails_gate(self) -> bool:
        return self.gated and self.verdict in ("regressed", "broken")


@dataclass
class ABJob:
    """What `runners.ab` left: the manifest and, per pair, each side's rows by key."""

    folder: Path
    manifest: dict
    pairs: list[tuple[dict, dict]]  # (ref rows, candidate rows); rows: key -> {status, p50_ms, error}
    incomplete: list[str]  # pairs with a side missing, and processes whose CSV is not there


def read_rows(path: Path) -> dict[tuple, dict]:
    if not path.is_file():
        return {}
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise Unjudgeable(f"{path} is not a readable results CSV: {error}") from None
    missing = [c for c in (*KEY_COLUMNS, "status", "p50_ms") if c not in frame.columns]
    if missing:
        raise Unjudgeable(f"{path} lacks column(s) {', '.join(missing)}")
    rows = {}
    for record in frame.to_dict("records"):
        rows[key_of(record)] = {"status": record["status"], "p50_ms": number(record["p50_ms"]),
                                "host_ratio": number(record.get("host_ratio", "")), "error": record.get("error", "")}
    return rows


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def is_host_key(key: tuple) -> bool:
    return key[KEY_COLUMNS.index("timer")] == "host"


def figure_of(key: tuple, row: dict) -> float:
    """What a key is judged on: host_ratio for host keys (runners/host_ratio.py), else p50."""
    return row["host_ratio"] if is_host_key(key) else row["p50_ms"]


def manifest_runs(manifest: dict) -> list[tuple[int | str, str, str]]:
    """(pair, side, csv) of each process in an ab.json, after reading every field the verdict and
    its report use: a KeyError, TypeError or ValueError here means the file is not such a manifest."""
    for name in ("ref", "candidate"):
        str(manifest["sides"][name]["label"])
    str(manifest["config"]["sweep"]), int(manifest["config"]["seed"]), len(manifest["orders"])
    runs = []
    for run in manifest["runs"]:
        float(run["seconds"]), int(run["exit"])
        if run["side"] not in SIDES:
            raise ValueError(f"side {run['side']!r} is none of {', '.join(SIDES)}")
        runs.append((run["pair"] if run["pair"] == "warmup" else int(run["pair"]), run["side"], str(run["csv"])))
    return runs


def load_job(folder: Path) -> ABJob:
    manifest_path = folder / "ab.json"
    if not manifest_path.is_file():
        raise Unjudgeable(f"no {manifest_path}: run python -m runners.ab first")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        runs = manifest_runs(manifest)
    except (ValueError, KeyError, TypeError, AttributeError) as error:  # JSON and UTF-8 errors are ValueErrors
        raise Unjudgeable(
            f"{manifest_path} is not the manifest runners.ab writes ({type(error).__name__}: {error}); "
            "run the A/B job again"
        ) from None
    by_pair: dict[int, dict[str, dict]] = {}
    pairs, incomplete = [], []
    for pair, side, csv in runs:
        if pair != "warmup":
            by_pair.setdefault(pair, {})[side] = read_rows(folder / csv)  # no file: every key missing
            if not (folder / csv).is_file():
                incomplete.append(f"pair {pair} {side}: {folder / csv} is not there (its keys count as missing)")
    orders = len(manifest["orders"])
    for index in range(orders):
        sides = by_pair.get(index, {})
        if {"ref", "candidate"} <= set(sides):
            pairs.append((sides["ref"], sides["candidate"]))
        else:
            incomplete.append(f"pair {index}: ran {sorted(sides) or 'nothing'}")
    return ABJob(folder, manifest, pairs, incomplete)


def usable(row: dict | None) -> bool:
    return row is not None and row["status"] == "ok" and math.isfinite(row["p50_ms"]) and row["p50_ms"] > 0


def paired_interval(ratios: list[float], confidence: float) -> tuple[float, float, float]:
    """(geometric mean, low, high) of candidate/ref ratios: Student-t interval of the mean log ratio."""
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    half = student_t.ppf((1 + confidence) / 2, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def classify(estimate: float, low: float, high: float, threshold: float) -> str:
    up, down = 1 + threshold, 1 / (1 + threshold)
    if low > up or (low > 1 and estimate > up):
        return "regressed"
    if high < down or (high < 1 and estimate < down):
        return "improved"
    if math.sqrt(high / low) - 1 > threshold:
        return "noisy"
    return "unchanged"


def judge_key(key: tuple, job: ABJob, cfg: ABJudgeConfig, gated: bool) -> KeyVerdict | str | None:
    """The verdict of one key; None when a ref process has it not ok, or (a host key without its
    ratio in some process) why it is not judged: both listed apart."""
    refs = [ref.get(key) for ref, _ in job.pairs]
    if not all(usable(row) for row in refs):
        return None
    cands = [cand.get(key) for _, cand in job.pairs]
    ref_p50 = statistics.median(row["p50_ms"] for row in refs)
    bad = [row for row in cands if not usable(row)]
    if bad:
        row = bad[0]
        reason = "missing" if row is None else f"{row['status']}: p50 {row['p50_ms']} {row['error'][:120]}".strip()
        return KeyVerdict(key, "broken", gated, ref_p50=ref_p50, pairs=len(cands),
                          reason=f"{len(bad)} of {len(cands)} candidate processes: {reason}")  # fmt: skip
    figures = [(figure_of(key, ref), figure_of(key, cand)) for ref, cand in zip(refs, cands, strict=True)]
    if not all(math.isfinite(a) and a > 0 and math.isfinite(b) and b > 0 for a, b in figures):
        return "no host_ratio in every process (a harness from before the figure): not judged on absolute host time"
    ratios = [cand / ref for ref, cand in figures]
    estimate, low, high = paired_interval(ratios, cfg.confidence)
    threshold = cfg.host_threshold if is_host_key(key) else cfg.threshold
    reason = ""
    if is_host_key(key):
        reason = (f"host ratio: ref {statistics.median(r for r, _ in figures):.3f}, "
                  f"cand {statistics.median(c for _, c in figures):.3f}")  # fmt: skip
    return KeyVerdict(key, classify(estimate, low, high, threshold), gated, estimate, low, high, len(ratios),
                      ref_p50, statistics.median(row["p50_ms"] for row in cands), reason)  # fmt: skip


@dataclass
class Verdict:
    judged: list[KeyVerdict]
    not_ok_in_ref: list[tuple]
    job: ABJob
    without_figure: list[tuple[tuple, str]] = field(default_factory=list)  # (key, why not judged)

    @property
    def failures(self) -> list[KeyVerdict]:
        return [v for v in self.judged if v.fails_gate]

    def exit_status(self) -> int:
        if not any(v.gated and v.verdict != "noisy" for v in self.judged):
            return EXIT_UNUSABLE
        return EXIT_FAIL if self.failures else EXIT_PASS


def judge(job: ABJob, cfg: ABJudgeConfig) -> Verdict:
    if len(job.pairs) < 2:
        raise Unjudgeable(f"{len(job.pairs)} complete pair(s); a paired verdict needs 2 ({'; '.join(job.incomplete)})")
    impl_at, timer_at = KEY_COLUMNS.index("impl"), KEY_COLUMNS.index("timer")
    keys = list(dict.fromkeys(key for ref, _ in job.pairs for key in ref))
    at_host = host_points(keys)
    judged, not_ok, without_figure = [], [], []
    for key in keys:
        gated = gated_key(key[impl_at], key[timer_at], cfg.gate_impls, cfg.gate_timers, cfg.host_gate_impls,
                          point_of(key) in at_host)  # fmt: skip
        verdict = judge_key(key, job, cfg, gated)
        if verdict is None:
            not_ok.append(key)
        elif isinstance(verdict, str):
            without_figure.append((key, verdict))
        else:
            judged.append(verdict)
    return Verdict(judged, not_ok, job, without_figure)


def gated_timers(impl: str, cfg: ABJudgeConfig) -> list[str]:
    """The timers of `impl` that the gate judges somewhere (event: only away from host points)."""
    rule = (cfg.gate_impls, cfg.gate_timers, cfg.host_gate_impls)
    return [t for t in cfg.gate_timers if gated_key(impl, t, *rule, at_host_point=False)]


def verdict_row(v: KeyVerdict) -> list[str]:
    def number(value: float, fmt: str) -> str:
        return format(value, fmt) if math.isfinite(value) else "–"

    interval = f"{number(v.low, '.3f')}-{number(v.high, '.3f')}" if math.isfinite(v.low) else "–"
    return [key_text(v.key), v.verdict, "yes" if v.gated else "no", number(v.ref_p50 * 1e3, ".2f"),
            number(v.cand_p50 * 1e3, ".2f"), number(v.estimate, ".3f"), interval,
            number(v.detectable * 100, ".1f") + ("%" if math.isfinite(v.detectable) else ""), v.reason]  # fmt: skip


def render(verdict: Verdict, cfg: ABJudgeConfig) -> str:
    job, manifest = verdict.job, verdict.job.manifest
    status = verdict.exit_status()
    gated = ", ".join(f"{impl} ({'/'.join(gated_timers(impl, cfg))})" for impl in cfg.gate_impls)
    if status == EXIT_UNUSABLE:
        headline = f"**CANNOT JUDGE**: no gated key ({gated}) could be judged."
    elif status == EXIT_FAIL:
        names = "; ".join(f"{key_text(v.key)} ({v.verdict})" for v in verdict.failures)
        headline = f"**FAIL**: {len(verdict.failures)} gated key(s) regressed or broken: {escape(names)}."
    else:
        headline = f"**PASS**: no gated key ({gated}) regressed."
    sides = manifest["sides"]
    runs = manifest["runs"]
    failed = ", ".join(f"{r['pair']} {r['side']} exit {r['exit']}" for r in runs if r["exit"] != 0)
    lines = [
        "## A/B performance comparison", "", headline, "",
        f"- ref: `{escape(sides['ref']['label'])}`; candidate: `{escape(sides['candidate']['label'])}`",
        f"- {len(job.pairs)} pairs (orders {manifest['orders']}, seed {manifest['config']['seed']}), sweep "
        f"`{escape(manifest['config']['sweep'])}`; processes: {len(runs)}, "
        f"{sum(r['seconds'] for r in runs):.0f} s" + (f"; failed: {escape(failed)}" if failed else ""),
        f"- rule: per pair r = candidate p50 / ref p50; estimate = geometric mean, {cfg.confidence:.0%} paired "
        f"t-interval; regressed when the interval is above 1 and the estimate above {1 + cfg.threshold:.2f} (or "
        f"the interval above it); noisy when the interval's half-width exceeds {cfg.threshold:.0%}; host keys: r = "
        f"candidate host_ratio / ref host_ratio (each the call's host time over copy's in the same process), "
        f"threshold {cfg.host_threshold:.0%}; event keys not gated where the host timer ran",
    ]  # fmt: skip
    lines += [f"- {escape(note)}" for note in job.incomplete]
    counts = {name: sum(v.verdict == name for v in verdict.judged) for name in VERDICTS}
    lines += ["", "Keys: " + ", ".join(f"{n} {name}" for name, n in counts.items() if n)
              + (f", {len(verdict.not_ok_in_ref)} not ok in ref (not judged)" if verdict.not_ok_in_ref else "")]
    header = ["key", "verdict", "gated", "ref µs", "cand µs", "cand/ref", "interval", "detectable", "note"]
    shown = [v for v in verdict.judged if v.gated or v.verdict != "unchanged"]
    shown.sort(key=lambda v: (VERDICTS.index(v.verdict), not v.gated, key_text(v.key)))
    if shown:
        lines += ["", table(header, [verdict_row(v) for v in shown])]
    hidden = len(verdict.judged) - len(shown)
    if hidden:
        lines += ["", f"{hidden} ungated key(s) unchanged, not listed."]
    if verdict.not_ok_in_ref:
        not_ok = "; ".join(map(key_text, verdict.not_ok_in_ref))
        lines += ["", "Not ok in a ref process (not judged): " + escape(not_ok)]
    if verdict.without_figure:
        listed = "; ".join(f"{key_text(key)} ({why})" for key, why in verdict.without_figure)
        lines += ["", "Host keys not judged: " + escape(listed)]
    return "\n".join(lines) + "\n"


def load_config(argv: list[str]) -> ABJudgeConfig:
    cfg = parse_settings(ABJudgeConfig, argv, Unjudgeable)
    if not 0 <= cfg.threshold < 1 or not 0 <= cfg.host_threshold < 1 or not 0 < cfg.confidence < 1:
        raise Unjudgeable(f"threshold and host_threshold must lie in [0, 1), confidence in (0, 1); got "
                          f"{cfg.threshold}, {cfg.host_threshold}, {cfg.confidence}")  # fmt: skip
    return cfg


def markdown_path(cfg: ABJudgeConfig, job: ABJob) -> Path:
    """Where the verdict goes; never onto one of the job's inputs."""
    path = Path(cfg.markdown) if cfg.markdown else job.folder / "ab.md"
    inputs = {(job.folder / "ab.json").resolve()} | {(job.folder / r["csv"]).resolve() for r in job.manifest["runs"]}
    inputs |= {samples_path_for(path).resolve() for path in inputs}
    if path.resolve() in inputs:
        raise Unjudgeable(f"markdown={path} would overwrite an input of the job")
    return path


def run(cfg: ABJudgeConfig) -> int:
    job = load_job(Path(cfg.dir))
    path = markdown_path(cfg, job)
    verdict = judge(job, cfg)
    markdown = render(verdict, cfg)
    print(markdown, end="")
    publish(markdown, path)
    return verdict.exit_status()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(help_text(__doc__, ABJudgeConfig))
        return EXIT_PASS
    try:
        return run(load_config(argv))
    except Unjudgeable as error:
        print(f"ab: cannot judge: {error}", file=sys.stderr)
        return EXIT_UNUSABLE


if __name__ == "__main__":
    sys.exit(main())
