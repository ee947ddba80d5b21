"""When an A/B job (runners/ab.py) stops adding pairs: no gated key blind, or no room left.

A gated key is blind when its verdict is `noisy` (reports/ab.py): its paired interval is wider
than the threshold, so a change of the threshold's size could hide in it. The interval narrows
about as 1 / sqrt(pairs) (the Student-t quantile shrinks too), so more pairs turn a noisy key into
a judged one. The job runs `pairs` pairs, then, while some gated key is noisy, two more (one of
each order, so the counterbalanced order stays balanced) as long as they fit under `max_pairs` and
the time budget `budget_s` (`expected_pair_s` predicts the next two from the pairs so far).

The rule looks only at the intervals' widths, never at the estimates, so it cannot stop on a
lucky pass or keep going until a fail: stopping once the data is precise enough is the fixed-width
interval procedure, which leaves the interval's coverage close to its nominal level.
"""

from __future__ import annotations

from pathlib import Path

from reports.ab import Unjudgeable, judge, load_config, load_job
from runners.rows import key_text

STEP = 2  # pairs added at a time: one of each order


def pairs_to_add(done: int, max_pairs: int, blind: int, elapsed_s: float, pair_s: float, budget_s: float) -> int:
    """How many pairs to run next (0: stop), after `done` pairs that took `elapsed_s` in all and
    `pair_s` each on average, with `blind` gated keys still too noisy to judge."""
    add = min(STEP, max_pairs - done)
    if blind == 0 or add <= 0 or elapsed_s + add * pair_s > budget_s:
        return 0
    return add


def expected_pair_s(pair_durations: list[float]) -> float:
    """How long the next pair should take: the mean of the pairs after the first, or the first's
    duration while it is the only one. The first pair on a fresh machine compiles what later pairs
    find cached: on the H200 its processes took 53-58 s against 22-27 s after it, so a mean that
    counts it predicts the next two pairs 30% too long and stops a job pairs early."""
    if not pair_durations:
        raise ValueError("no pair has run yet: nothing predicts the next")
    later = pair_durations[1:] or pair_durations
    return sum(later) / len(later)


def blind_keys(out: Path, judge_args: list[str]) -> list[str]:
    """The gated keys the job in `out` cannot judge yet (verdict `noisy`), judged as reports.ab would
    with `judge_args` (key=value); none when the job cannot be judged at all."""
    try:
        verdict = judge(load_job(out), load_config([f"dir={out}", *judge_args]))
    except Unjudgeable:
        return []
    return [key_text(v.key) for v in verdict.judged if v.gated and v.verdict == "noisy"]
