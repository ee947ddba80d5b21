"""Probe (GPU): what the planted host slowdown really costs inside the op's call.

What was seen (A/B gate job `host:1.6` at git e894a12): scripts/plant_host_slowdown.py planted a
busy loop of 74 iterations, calibrated in a fresh process to take about 1.6 us, about 10% of the
seeded forward's 14-15 us of host time at 64x1x768. The gate measured +3.4% on the seeded
forward's host ratio and passed the candidate.

Guesses, and what each predicts here:
- *the calibration ran on a cold CPU*: a fresh process counts fewer iterations per microsecond than
  one that has been busy for a while (`fresh` below `after spinning`);
- *the calibration timed the wrong loop*: it timed one loop of 200,000 iterations, and CPython keeps
  the integers up to 256 preallocated, so a loop of 74 allocates nothing and runs faster per
  iteration: the 74-iteration loop alone costs well under 1.6 us (`loop_alone` of `long`).

What it does, in one process: the old calibration (one long loop, `--fresh` fresh processes and here
after `--spin-s` of busy work, scaled to `--us`) and the plant's calibration now
(scripts/plant_host_slowdown.py `--percent`: the planted loop timed against the op's call in
alternating bursts); then, in `--rounds` interleaved rounds of `--calls` calls each, the host time
per call of the seeded forward alone, with each count's loop (the planted statement, as a function)
called in front, and of each loop alone; medians over rounds. (Its first runs, at git e894a12 and
7281f43, found the second guess and then that the CPU's speed moves by up to 2x between processes
and within one; this version measures the plant calibrated as a fraction of the call.)

    python3 scripts/host_plant_probe.py [--us 1.6] [--percent 10] [--shape 64,1,768] [--rounds 9]
        [--calls 2000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from plant_host_slowdown import calibrated_count, cost_ratio, op_call, planted_loop  # noqa: E402


def long_loop_rate(samples: int = 7, iterations: int = 200_000) -> float:
    """The plant's old calibration: iterations per us of one loop of `iterations` (fastest try)."""
    best = float("inf")
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(iterations):
            pass
        best = min(best, time.perf_counter() - start)
    return iterations / (best * 1e6)


def fresh_long_loop_rate() -> float:
    """The old calibration in a fresh interpreter, as scripts/gate_check.sh ran it."""
    code = "import sys; sys.path.insert(0, 'scripts'); import host_plant_probe as p; print(p.long_loop_rate())"
    return float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True,
                                text=True).stdout)  # fmt: skip


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--us", type=float, default=1.6)
    parser.add_argument("--shape", default="64,1,768")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--fresh", type=int, default=5)
    parser.add_argument("--spin-s", type=float, default=1.0)
    parser.add_argument("--percent", type=float, default=10.0)
    args = parser.parse_args(argv)
    from runners.timers import host_us_per_call  # imports torch: not in the fresh processes of the old calibration

    fresh = [fresh_long_loop_rate() for _ in range(args.fresh)]
    spin(args.spin_s)
    warm = [long_loop_rate() for _ in range(3)]
    print("old calibration, iterations per us: fresh processes " + " ".join(f"{v:.1f}" for v in fresh)
          + f"; here after {args.spin_s} s of busy work " + " ".join(f"{v:.1f}" for v in warm))  # fmt: skip
    call = op_call(tuple(int(n) for n in args.shape.split(",")))
    now = calibrated_count(args.percent, call)
    counts = {"long": max(1, round(args.us * statistics.median(fresh))), "now": now}
    print(f"counts: old calibration {counts['long']} for {args.us} us, the plant now {now} for {args.percent}% "
          f"(its ratio here {cost_ratio(planted_loop(now), call, rounds=31):.1%})")

    variants = {"seeded": call}
    for name, count in counts.items():
        loop = planted_loop(count)
        variants[f"planted_{name}"] = lambda loop=loop: (loop(), call())
        variants[f"loop_alone_{name}"] = loop
    for function in variants.values():
        host_us_per_call(function, 200, warmup=0)
    times: dict[str, list[float]] = {name: [] for name in variants}
    rng = random.Random(0)
    for _ in range(args.rounds):
        names = list(variants)
        rng.shuffle(names)
        for name in names:
            times[name].append(host_us_per_call(variants[name], args.calls, warmup=0))
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(f"{name:16s} us per call: median {median[name]:.2f}  rounds " + " ".join(f"{v:.2f}" for v in values))
    asked = {"long": f"{args.us} us", "now": f"{args.percent}%"}
    for name, count in counts.items():
        added = median[f"planted_{name}"] - median["seeded"]
        print(f"{name}: {count} iterations, in the call +{added:.2f} us ({added / median['seeded']:.1%} of the "
              f"seeded call), alone {median[f'loop_alone_{name}']:.2f} us, asked {asked[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
