"""Probe (GPU): where the host ratio's round-to-round variation comes from, and what a sweep would
need to make it reproduce. Two questions, one process:

1. *Round effect.* In the sweep, each round's `host` timing builds the call afresh (new leaf
   tensors, new closures: new objects at new addresses) and gives one figure, the median of 10
   pairs of bursts. The compiled calls' round figures vary by 9-14% (coefficient of variation) and
   do not correlate from one round to the next, while bursts of 100 calls in place of 25 did not
   narrow them (docs/perf-notes.md, change 27). If a round's figure is set by the layout of what it
   built (Python-heavy calls are known to be sensitive to where their objects lie), timing the same
   built call again gives the same figure, and a fresh build a fresh draw. If it is set by the
   moment (the shared host's state), both vary alike. Each round here times each key `--subrounds`
   times on one build (`same`) and `--subrounds` times on fresh builds (`fresh`), alternating.
2. *Counting instructions.* Whether this machine lets a process count its own retired instructions
   (`perf_event_open`; CodSpeed's and iai-callgrind's way to a figure that does not move with the
   CPU's speed), and if it does, how far the count per seeded forward call varies.

For each (impl, mode, kind) it prints the variation of figures within a round and of round medians
between rounds, and how often two halves of the rounds (every split into two equal groups, each
half's figure the median of all its sub-round figures) agree within 5%: what a sweep of that many
rounds, each of `--subrounds` short timings, would give. One CSV row per sub-round, with the time
it ended (`t_s`, seconds from the first); the report's last table gives, per key, how far its
figures correlate at lags of under 0.5 s, 0.5-2 s, 2-8 s, 8-30 s and more: over what time a key's
figure stays put, which sets how widely a sweep must spread its host timings.

    python3 scripts/host_round_effect_probe.py OUT.csv [--rounds 6] [--subrounds 6]
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import itertools
import math
import os
import statistics
import struct
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runners import timers  # noqa: E402
from runners.modes import mode_call_factory  # noqa: E402
from runners.op_families import family_of  # noqa: E402
from runners.plan import Point  # noqa: E402


def instruction_counter():
    """A function returning this thread's retired user-space instructions so far, or the reason there
    is none (a string). Linux perf_event_open(2): PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS,
    kernel and hypervisor excluded; x86-64 syscall number 298."""
    try:
        paranoid = Path("/proc/sys/kernel/perf_event_paranoid").read_text().strip()
    except OSError:
        paranoid = "unreadable"
    libc = ctypes.CDLL(None, use_errno=True)
    attr = bytearray(128)
    struct.pack_into("IIQ", attr, 0, 0, 128, 1)  # type HARDWARE, size, config INSTRUCTIONS
    struct.pack_into("Q", attr, 40, 1 | 1 << 5 | 1 << 6)  # disabled, exclude_kernel, exclude_hv
    buffer = (ctypes.c_char * 128).from_buffer(attr)
    fd = libc.syscall(298, buffer, 0, -1, -1, 0)
    if fd < 0:
        return f"perf_event_open failed: errno {ctypes.get_errno()} ({os.strerror(ctypes.get_errno())}); " \
               f"perf_event_paranoid {paranoid}"  # fmt: skip
    libc.ioctl(fd, 0x2400, 0)  # PERF_EVENT_IOC_ENABLE

    def count() -> int:
        return struct.unpack("q", os.read(fd, 8))[0]

    return count


def instructions_per_call(count, call, calls: int = 200, repeats: int = 9) -> list[float]:
    for _ in range(20):
        call()
    timers._synchronize()
    figures = []
    for _ in range(repeats):
        before = count()
        for _ in range(calls):
            call()
        figures.append((count() - before) / calls)
        timers._synchronize()
    return figures


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else float("nan")


def halves_agreement(by_round: list[list[float]], tolerance: float = 0.05) -> tuple[float, float]:
    """Share of splits of the rounds into two equal halves whose medians (over all sub-round figures
    of each half) agree within `tolerance`, and the largest disagreement."""
    rounds = range(len(by_round))
    changes = []
    for half in itertools.combinations(rounds, len(by_round) // 2):
        if 0 not in half:
            continue  # each split once
        a = statistics.median(v for r in half for v in by_round[r])
        b = statistics.median(v for r in rounds if r not in half for v in by_round[r])
        changes.append(abs(b / a - 1))
    return sum(c <= tolerance for c in changes) / len(changes), max(changes)


LAG_BINS_S = (0.0, 0.5, 2.0, 8.0, 30.0, math.inf)


def correlation_by_lag(times: list[float], values: list[float], bins=LAG_BINS_S) -> list[float]:
    """For each bin [bins[i], bins[i+1]) of the time between two figures, the correlation of the
    figures' deviations from their mean over every pair that far apart: near 1 where the figure
    stays put over that time, near 0 where it has forgotten. NaN for a bin without pairs or for
    figures without variation."""
    mean = statistics.fmean(values)
    variance = statistics.fmean((v - mean) ** 2 for v in values)
    sums, counts = [0.0] * (len(bins) - 1), [0] * (len(bins) - 1)
    for (t_a, v_a), (t_b, v_b) in itertools.combinations(zip(times, values, strict=True), 2):
        lag = abs(t_b - t_a)
        index = next(i for i in range(len(bins) - 1) if bins[i] <= lag < bins[i + 1])
        sums[index] += (v_a - mean) * (v_b - mean)
        counts[index] += 1
    if variance == 0:
        return [math.nan] * len(counts)
    return [total / count / variance if count else math.nan for total, count in zip(sums, counts, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_csv")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--subrounds", type=int, default=6)
    parser.add_argument("--reps", type=int, default=10, help="pairs of bursts a sub-round (the sweep's: 10)")
    parser.add_argument("--impls", default="seeded,compile,seeded:compile,per_element_rng,eager,native")
    parser.add_argument("--modes", default="fwd,fwd_bwd")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of the probe itself")
    args = parser.parse_args()
    family = family_of("dropout")
    case = family.case_at(Point("fp32", (64, 1, 768), (1,), 0.5), torch.device(args.device))
    inputs = family.inputs(case)
    torch._dynamo.reset()
    impls, modes = args.impls.split(","), args.modes.split(",")
    forwards = {name: family.implementation(name).build(case) for name in impls}
    reference = family.implementation(family.roofline).build(case)

    counter = instruction_counter()
    if isinstance(counter, str):
        print("instruction counts:", counter, flush=True)
    else:
        seeded_fwd = mode_call_factory(forwards.get("seeded", reference), inputs, "fwd")()
        figures = instructions_per_call(counter, seeded_fwd.call)
        print(f"instruction counts: seeded fwd {statistics.median(figures):.0f} per call, "
              f"cv {cv(figures):.4f} over {len(figures)} repeats", flush=True)  # fmt: skip

    rows = []
    began = time.monotonic()
    for round_index in range(args.rounds):
        for impl in impls:
            for mode in modes:
                make_call = mode_call_factory(forwards[impl], inputs, mode)
                make_reference = mode_call_factory(reference, inputs, mode)
                built, built_reference = make_call(), make_reference()
                for sub in range(args.subrounds):
                    for kind in ("same", "fresh"):
                        if kind == "same":
                            timing = timers.time_host(lambda built=built: built, warmup=10 if round_index == 0 else 1,
                                                      reps=args.reps, calls_per_rep=25,
                                                      make_reference=lambda ref=built_reference: ref)  # fmt: skip
                        else:
                            timing = timers.time_host(make_call, warmup=1, reps=args.reps, calls_per_rep=25,
                                                      make_reference=make_reference)  # fmt: skip
                        rows.append(dict(impl=impl, mode=mode, round=round_index, sub=sub, kind=kind,
                                         t_s=round(time.monotonic() - began, 3),
                                         host_ratio=timing.host_ratio,
                                         call_us=1e3 * statistics.median(timing.samples_ms)))  # fmt: skip
        print(f"round {round_index + 1}/{args.rounds} done", flush=True)
    with open(args.out_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    print(f"{'impl':15s} {'mode':8s} {'kind':5s} {'ratio':>7s} {'cv_in_round':>11s} {'cv_of_rounds':>12s} "
          f"{'halves_within_5%':>16s} {'worst':>6s}")  # fmt: skip
    for impl in impls:
        for mode in modes:
            for kind in ("same", "fresh"):
                by_round = [[r["host_ratio"] for r in rows if (r["impl"], r["mode"], r["kind"], r["round"])
                             == (impl, mode, kind, index)] for index in range(args.rounds)]  # fmt: skip
                within = statistics.mean(cv(values) for values in by_round)
                between = cv([statistics.median(values) for values in by_round])
                share, worst = halves_agreement(by_round)
                median = statistics.median(v for values in by_round for v in values)
                print(f"{impl:15s} {mode:8s} {kind:5s} {median:7.3f} {within:11.3f} {between:12.3f} "
                      f"{share:16.2f} {worst:6.3f}")  # fmt: skip
    bins = [f"{a:g}-{b:g}s" for a, b in itertools.pairwise(LAG_BINS_S)]
    print("\ncorrelation of a key's figures (both kinds) by the time between them:", "  ".join(bins))
    for impl in impls:
        for mode in modes:
            mine = [r for r in rows if (r["impl"], r["mode"]) == (impl, mode)]
            by_lag = correlation_by_lag([r["t_s"] for r in mine], [r["host_ratio"] for r in mine])
            print(f"{impl:15s} {mode:8s}", "  ".join(f"{value:+.2f}" for value in by_lag))


if __name__ == "__main__":
    main()
