"""Probe (GPU): where the host ratio's spread comes from. At the host timer's point of the default
sweep (fp32 64x1x768, mask shared along T), each implementation's call is timed against copy's as
the sweep's `host` timer does (runners/timers.py `time_host`: bursts of calls, each paired with a
burst of copy's), in several variants of the timer, rounds interleaved in one process:

- `default`: the sweep's settings (10 pairs of bursts of 25 calls, Python's garbage collector on);
- `calls_100`: bursts of 100 calls;
- `pin_1`, `pin_2`: every thread of the process held to one CPU, or to two, while timing. A CUDA
  backward runs on autograd's device thread, which the calling thread waits for: how long the
  hand-over takes may depend on where the OS put the two threads, which can change from round to
  round (a compiled backward runs Python there, so it also hands the GIL over);
- `one_thread`: the backward on the calling thread (`torch.autograd.set_multithreading_enabled`),
  no hand-over at all;
- `compiled_ref`: the reference is a compiled call of the least work (`x * 1` under torch.compile,
  as the `compile` implementation is compiled: Dynamo's guards, AOTAutograd's wrapper, one Inductor
  kernel each way) instead of copy's eager call. If a compiled call's host time moves between
  rounds with the state of the host's caches, which a large Python call feels more than copy's
  short C++ path, a reference of the same kind moves with it.

The first run (git 6205e49, which also had the collector off as a variant: no narrower) found
round-to-round shifts of up to 40% in the compiled calls' fwd_bwd ratio that neither 100-call
bursts nor the collector explained, hence the thread variants; the second (git ee83578) found the
thread variants no narrower either, hence `compiled_ref`.

Prints and writes per (impl, mode, variant): the median over rounds of the round's host ratio, its
spread ((max - min) / median) and the interquartile range over the median; the CSV also holds each
round's ratio and the call's own time per call (us), to see whether the ratio moves with the
call's speed. Run it twice, in two
processes, to see how far the medians move between processes.

    python3 scripts/host_noise_probe.py OUT_CSV [--rounds 10] [--impls seeded,compile,seeded:compile]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from baselines.mask_based import compiled_for_case  # noqa: E402
from runners import timers  # noqa: E402
from runners.modes import mode_call_factory  # noqa: E402
from runners.op_families import family_of  # noqa: E402
from runners.plan import Point  # noqa: E402


@dataclass(frozen=True)
class Variant:
    calls: int = 25  # calls a burst
    collector: bool = True  # Python's garbage collector on while timing
    cpus: int | None = None  # the CPUs every thread of the process is held to (None: all)
    backward_threads: bool = True  # False: autograd runs the backward on the calling thread
    compiled_reference: bool = False  # the reference: a compiled x * 1 instead of copy's call


VARIANTS = {"default": Variant(), "calls_100": Variant(calls=100), "pin_1": Variant(cpus=1),
            "pin_2": Variant(cpus=2), "one_thread": Variant(backward_threads=False),
            "compiled_ref": Variant(compiled_reference=True)}  # fmt: skip


def hold_threads(cpus: set[int]) -> None:
    """Every thread of this process (Linux: /proc/self/task) allowed on `cpus` only; a thread that
    ended between the listing and the call is passed over."""
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task), cpus)


def quartile_spread(values: list[float]) -> float:
    q1, _, q3 = statistics.quantiles(values, n=4)
    return (q3 - q1) / statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_csv")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--impls", default="seeded,compile,seeded:compile")
    parser.add_argument("--modes", default="fwd,fwd_bwd")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="which of the variants above to time")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of the probe itself")
    args = parser.parse_args()
    variants = {name: VARIANTS[name] for name in args.variants.split(",")}
    family = family_of("dropout")
    case = family.case_at(Point("fp32", (64, 1, 768), (1,), 0.5), torch.device(args.device))
    inputs = family.inputs(case)
    torch._dynamo.reset()
    impls, modes = args.impls.split(","), args.modes.split(",")
    forwards = {name: family.implementation(name).build(case) for name in impls}
    reference = family.implementation(family.roofline).build(case)
    compiled_reference = compiled_for_case(lambda x: x * 1, case)
    all_cpus = os.sched_getaffinity(0)
    spare_cpus = sorted(all_cpus)[1:] or sorted(all_cpus)  # not the first CPU, which takes interrupts
    ratios: dict[tuple[str, str, str], list[float]] = {}
    call_us: dict[tuple[str, str, str], list[float]] = {}
    for index in range(args.rounds):
        for impl in impls:
            for mode in modes:
                for variant, settings in variants.items():
                    gc.collect()
                    if not settings.collector:
                        gc.disable()
                    if settings.cpus:
                        hold_threads(set(spare_cpus[: settings.cpus]))
                    try:
                        with torch.autograd.set_multithreading_enabled(settings.backward_threads):
                            timing = timers.time_host(
                                mode_call_factory(forwards[impl], inputs, mode),
                                warmup=10 if index == 0 else 1,
                                reps=10,
                                calls_per_rep=settings.calls,
                                make_reference=mode_call_factory(
                                    compiled_reference if settings.compiled_reference else reference, inputs, mode),
                            )
                    finally:
                        gc.enable()
                        hold_threads(all_cpus)
                    ratios.setdefault((impl, mode, variant), []).append(timing.host_ratio)
                    call_us.setdefault((impl, mode, variant), []).append(1e3 * statistics.median(timing.samples_ms))
        print(f"round {index + 1}/{args.rounds} done", flush=True)
    rows = []
    for (impl, mode, variant), values in ratios.items():
        median = statistics.median(values)
        rows.append(dict(impl=impl, mode=mode, variant=variant, rounds=len(values), host_ratio=median,
                         spread=(max(values) - min(values)) / median, iqr_over_median=quartile_spread(values),
                         round_ratios=" ".join(f"{v:.4f}" for v in values),
                         round_call_us=" ".join(f"{v:.1f}" for v in call_us[impl, mode, variant])))  # fmt: skip
        print(f"{impl:15s} {mode:8s} {variant:10s} ratio {median:7.3f}  spread {rows[-1]['spread']:6.3f}  "
              f"iqr/median {rows[-1]['iqr_over_median']:6.3f}")  # fmt: skip
    with open(args.out_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
