"""Judging two stored results files key by key: the verdicts and the gate (reports/compare.py is the
command line, reports/stored_results.py the loading).

For each key ok on both sides, ratio = candidate p50 / baseline p50 (> 1: slower), and with t the
threshold of the key's impl:

  regressed  ratio > 1 + t, and the rounds show the candidate slower (reports/stats.py)
  improved   ratio < 1 / (1 + t), and the rounds show it faster
  noisy      past the threshold either way, but the rounds cannot tell the change from noise
  unchanged  within the threshold

Host timer keys are judged on their `host_ratio` instead of p50 (runners/host_ratio.py): ratio =
candidate host_ratio / baseline host_ratio, threshold `host_threshold`, and "the rounds show" is
the two intervals of round ratios (`host_ratio_lo`-`host_ratio_hi`) lying apart. Absolute host
times follow the host CPU's speed, which moved 1.6-1.7x between processes on the H200's machines;
the ratio to copy's call in the same process moved 2.5%. A host key without the ratio on a side (a
file written before it existed) is listed, not judged.

Gated keys are the `gate_impls`' rows of the `gate_timers` (event, cuda_graph and host), the host
timer's only for `host_gate_impls` (default: seeded; see reports/compare.py for why), and the event
timer's only at points where the host timer does not run (`host_points`): there the call is
launch-bound by design, the host key gates what the caller waits for and the cuda_graph key the GPU
time alone, while the event key, the few microseconds of GPU time behind a head start, moved about
4% (sd) from process to process on the H200, so that its A/A interval stayed wider than 5% after 6
pairs: a blind key that adds no coverage (docs/harness.md). The gate
fails on a gated key that regressed, and on a gated key that is *broken*: ok in the baseline but
missing, not ok, or unusable in the candidate (a time that is not a positive finite number, a
sample that is not finite).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from reports.stats import shift_significance
from reports.stored_results import StoredResults, UnusableInput, finite_positive
from runners.rows import KEY_COLUMNS

VERDICTS = ("regressed", "improved", "noisy", "unchanged")
IMPL_AT, TIMER_AT = KEY_COLUMNS.index("impl"), KEY_COLUMNS.index("timer")


@dataclass(frozen=True)
class GateRule:
    threshold: float
    thresholds: dict[str, float]  # per impl
    alpha: float
    gate_impls: tuple[str, ...]
    gate_timers: tuple[str, ...]
    host_threshold: float = 0.05  # host keys, judged on their host_ratio
    host_gate_impls: tuple[str, ...] = ("seeded",)  # the gate_impls whose host keys are gated

    def gated(self, key: tuple, host_points: set[tuple]) -> bool:
        """Whether `key` is gated, `host_points` being the points (point_of) the host timer ran at."""
        return gated_key(key[IMPL_AT], key[TIMER_AT], self.gate_impls, self.gate_timers, self.host_gate_impls,
                         point_of(key) in host_points)  # fmt: skip

    def threshold_of(self, key: tuple) -> float:
        if is_host_key(key):
            return float(self.host_threshold)
        return float(self.thresholds.get(key[IMPL_AT], self.threshold))


def gated_key(impl: str, timer: str, gate_impls, gate_timers, host_gate_impls, at_host_point: bool) -> bool:
    """Whether the gate judges the key of `impl` timed by `timer`, at a point where the host timer
    ran or not (compare's and the A/B job's rule: the module docstring says why)."""
    if impl not in gate_impls or timer not in gate_timers:
        return False
    if timer == "host":
        return impl in host_gate_impls
    return timer != "event" or not at_host_point


def point_of(key: tuple) -> tuple:
    """The key without its timer: the point and implementation that every timer of a sweep measured."""
    return key[:TIMER_AT] + key[TIMER_AT + 1 :]


def host_points(keys) -> set[tuple]:
    """The points (point_of) among `keys` that have a host timer key."""
    return {point_of(key) for key in keys if is_host_key(key)}


def is_host_key(key: tuple) -> bool:
    """A row of the host timer: judged on its ratio to the reference call, not on p50."""
    return key[TIMER_AT] == "host"


def host_ratio_of(row: dict) -> tuple[float, tuple[float, float]]:
    """(host_ratio, (lowest, highest round's)) of a row; NaN where the file has no such column."""
    values = [float(row.get(column, math.nan)) for column in ("host_ratio", "host_ratio_lo", "host_ratio_hi")]
    return values[0], (values[1], values[2])


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
    gated: bool = False

    @property
    def broken(self) -> bool:
        """Ok and usable in the baseline, not in the candidate: a gated one fails the gate."""
        return self.base_status == "ok" and self.reason.startswith("broken")


@dataclass
class Comparison:
    judged: list[JudgedRow] = field(default_factory=list)
    not_judged: list[UnjudgedRow] = field(default_factory=list)
    only_in_baseline: list[tuple] = field(default_factory=list)
    only_in_candidate: list[tuple] = field(default_factory=list)
    missing_gated: list[tuple] = field(default_factory=list)  # gated, ok in the baseline, not in the candidate
    rule: GateRule | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def gate_failures(self) -> list:
        """Gated keys that regressed or broke, and gated baseline keys missing from the candidate."""
        failures: list = [row for row in self.judged if row.fails_gate]
        failures += [row for row in self.not_judged if row.gated and row.broken]
        return failures

    def unusable_reason(self) -> str | None:
        """Why this comparison cannot pass or fail, or None when it can."""
        if not self.judged and not self.not_judged:
            return "no common keys: the two files share no (workload, impl, mode, timer, dtype, shape, dim, p)"
        if not self.judged and not self.gate_failures:
            return "no key is ok on both sides"
        gated_any = any(row.gated for row in self.judged) or self.gate_failures or self.missing_gated
        if self.rule is not None and self.rule.gate_impls and not gated_any:
            return (
                f"no key of the gated impls ({', '.join(self.rule.gate_impls)}) and timers "
                f"({', '.join(self.rule.gate_timers)}) is ok on both sides: the gate would check nothing "
                "(set gate_impls=[...] to the impls to gate, [] to report only)"
            )
        return None

    def add_host_key(self, key: tuple, base_row: dict, cand_row: dict, rule: GateRule, gated: bool) -> None:
        """Judge a host key ok on both sides on its host_ratio (the module docstring), or list it
        when a side has no ratio."""
        (base_ratio, base_interval), (cand_ratio, cand_interval) = host_ratio_of(base_row), host_ratio_of(cand_row)
        missing = [side for side, value in (("baseline", base_ratio), ("candidate", cand_ratio))
                   if not (math.isfinite(value) and value > 0)]  # fmt: skip
        if missing:
            reason = (f"no host_ratio in the {' and '.join(missing)} (written before the figure existed): host keys "
                      "are judged on their ratio to the reference call, never on absolute host time")  # fmt: skip
            self.not_judged.append(UnjudgedRow(key, "ok", "ok", reason, gated))
            return
        ratio = cand_ratio / base_ratio
        verdict, evidence = verdict_for(ratio, rule.threshold_of(key), (), (), base_interval, cand_interval,
                                        rule.alpha, "host_ratio_lo-hi")  # fmt: skip
        evidence = f"host ratio: baseline {base_ratio:.3f}, candidate {cand_ratio:.3f}; {evidence}"
        self.judged.append(JudgedRow(key, base_row["p50_ms"], cand_row["p50_ms"], ratio, verdict, evidence, gated))

    def no_common_keys(self) -> bool:
        return not self.judged and not self.not_judged

    def exit_status(self) -> int:
        """0 pass, 1 a gated key regressed, broke or went missing, 2 the two cannot be judged."""
        if self.no_common_keys():
            return 2
        if self.gate_failures or self.missing_gated:
            return 1
        return 2 if self.unusable_reason() else 0


def verdict_for(ratio, threshold, base_rounds, cand_rounds, base_interval, cand_interval, alpha, interval_name):
    """(verdict, evidence) for one key whose p50 changed by `ratio` (candidate / baseline)."""
    if 1.0 / (1.0 + threshold) <= ratio <= 1.0 + threshold:
        return "unchanged", f"within {threshold:.0%}"
    direction = "slower" if ratio > 1.0 else "faster"
    shift = shift_significance(direction, base_rounds, cand_rounds, base_interval, cand_interval, alpha,
                               interval_name)  # fmt: skip
    if not shift.significant:
        return "noisy", shift.detail
    return ("regressed" if direction == "slower" else "improved"), shift.detail


def check_comparable(base: StoredResults, cand: StoredResults, allow_cross_gpu: bool, allow_cross_dtype: bool):
    """Refuse different GPU models or dtype sets unless allowed; return notes on what was allowed."""
    notes = []
    for column, what, flag, allowed in (
        ("gpu", "GPU models", "allow_cross_gpu", allow_cross_gpu),
        ("dtype", "dtypes", "allow_cross_dtype", allow_cross_dtype),
    ):
        base_values = sorted(value or "(empty)" for value in set(base.frame[column]))
        cand_values = sorted(value or "(empty)" for value in set(cand.frame[column]))
        if base_values == cand_values:
            continue
        found = f"baseline has {', '.join(base_values)}; candidate has {', '.join(cand_values)}"
        if not allowed:
            raise UnusableInput(f"different {what}: {found}. Pass {flag}=true to compare them anyway.")
        notes.append(f"different {what} compared ({flag}=true): {found}")
    return notes


def compare(base: StoredResults, cand: StoredResults, rule: GateRule) -> Comparison:
    """Match rows by key and judge each key ok on both sides (see the module docstring)."""
    comparison = Comparison(rule=rule, notes=[*base.notes, *cand.notes])
    comparison.only_in_baseline = [key for key in base.rows if key not in cand.rows]
    at_host = host_points(base.rows)
    comparison.missing_gated = [key for key in comparison.only_in_baseline
                                if rule.gated(key, at_host) and base.rows[key]["status"] == "ok"]
    for key, cand_row in cand.rows.items():
        base_row = base.rows.get(key)
        if base_row is None:
            comparison.only_in_candidate.append(key)
            continue
        statuses = (base_row["status"], cand_row["status"])
        gated = rule.gated(key, at_host)
        base_usable = statuses[0] == "ok" and finite_positive(base_row["p50_ms"]) and key not in base.unusable
        if not base_usable:
            reason = base.unusable.get(key) or base_row.get("error", "")[:200] or "not ok in the baseline"
            comparison.not_judged.append(UnjudgedRow(key, *statuses, reason, gated))
            continue
        if statuses[1] != "ok":
            error = cand_row.get("error", "")[:200]
            comparison.not_judged.append(UnjudgedRow(key, *statuses, f"broken: {statuses[1]} {error}".strip(), gated))
            continue
        if not finite_positive(cand_row["p50_ms"]) or key in cand.unusable:
            why = cand.unusable.get(key) or f"p50 {cand_row['p50_ms']} is not a positive finite time"
            comparison.not_judged.append(UnjudgedRow(key, *statuses, f"broken: {why}", gated))
            continue
        if is_host_key(key):
            comparison.add_host_key(key, base_row, cand_row, rule, gated)
            continue
        ratio = cand_row["p50_ms"] / base_row["p50_ms"]
        base_interval, name = base.interval(key)
        cand_interval, cand_name = cand.interval(key)
        if cand_name != name:  # intervals of two kinds cannot be set side by side: use p20-p80 on both
            base_interval, cand_interval, name = (base_row["p20_ms"], base_row["p80_ms"]), (
                cand_row["p20_ms"], cand_row["p80_ms"]), "p20-p80"  # fmt: skip
        verdict, evidence = verdict_for(ratio, rule.threshold_of(key), base.rounds.get(key, ()),
                                        cand.rounds.get(key, ()), base_interval, cand_interval, rule.alpha, name)
        comparison.judged.append(JudgedRow(key, base_row["p50_ms"], cand_row["p50_ms"], ratio, verdict, evidence,
                                           gated))  # fmt: skip
    return comparison
