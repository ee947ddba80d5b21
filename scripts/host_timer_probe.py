"""Probe: why the `host` timer disagrees between processes, and what would make it agree.

One process of this script times, at 64x1x768 fp32, copy / seeded / eager / compile in fwd and
fwd_bwd with the harness's `host` timer (runners.timers.time_host, the default settings), in
`--rounds` rounds; in every round each variant below runs once, in a shuffled order:

- `base`: as the sweep does it today;
- `nogc`: Python's garbage collector off while the timer runs (gc.collect() first), as timeit does;
- `pin`: the main thread pinned to the CPU it is running on while the timer runs;
- `pin_nogc`: both.

It also times a pure-Python loop (`python_loop_us`: no torch, no GPU), a measure of the host CPU's
speed at that moment, once per round. Run it in several processes one after another, then read the
spread of each variant between processes against its spread inside one:

    for i in 1 2 3 4 5 6; do python scripts/host_timer_probe.py --out host-probe-$i.csv; done
    python scripts/host_timer_probe.py --summary host-probe-*.csv
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VARIANTS = ("base", "nogc", "pin", "pin_nogc")
IMPLS = ("copy", "seeded", "eager", "compile")
MODES = ("fwd", "fwd_bwd")
SHAPE = (64, 1, 768)


def current_cpu() -> int:
    """The CPU the calling thread runs on now (field 39 of /proc/thread-self/stat)."""
    fields = Path("/proc/thread-self/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[36])


def python_loop_us(n: int = 200_000) -> float:
    begin = time.perf_counter()
    total = 0
    for i in range(n):
        total += i
    return (time.perf_counter() - begin) * 1e6


def measure(out: Path, rounds: int, seed: int) -> None:
    import torch

    from baselines import DropoutCase
    from runners import gpu_state, implementations, timers
    from runners.modes import make_inputs, mode_call_factory

    device = torch.device("cuda")
    case = DropoutCase(SHAPE, (1,), 0.5, torch.float32, device)
    inputs = make_inputs(SHAPE, torch.float32, device)
    forwards = {impl: implementations.get(impl).build(case) for impl in IMPLS}
    for forward in forwards.values():  # compile and warm every call path once
        for mode in MODES:
            call = mode_call_factory(forward, inputs, mode)()
            for _ in range(3):
                call.reset()
                call.call()
    gpu_state.warm_up(device, 3.0)
    everyone = os.sched_getaffinity(0)
    started = time.time()
    rows = []
    rng = random.Random(seed)
    for round_index in range(rounds):
        loop_us = python_loop_us()
        order = [(v, i, m) for v in VARIANTS for i in IMPLS for m in MODES]
        rng.shuffle(order)
        for variant, impl, mode in order:
            cpu = current_cpu()
            if "pin" in variant:
                os.sched_setaffinity(0, {cpu})
            if "nogc" in variant:
                gc.collect()
                gc.disable()
            try:
                timing = timers.time_host(mode_call_factory(forwards[impl], inputs, mode), warmup=10, reps=3)
            finally:
                gc.enable()
                os.sched_setaffinity(0, everyone)
            rows.append(dict(pid=os.getpid(), seconds=round(time.time() - started, 3), round=round_index,
                             variant=variant, impl=impl, mode=mode, cpu=cpu, python_loop_us=round(loop_us, 1),
                             us=round(statistics.median(timing.samples_ms) * 1e3, 2),
                             samples_us=" ".join(f"{s * 1e3:.2f}" for s in timing.samples_ms)))  # fmt: skip
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    load = os.getloadavg()
    print(f"{out}: {len(rows)} rows, {rounds} rounds, cpus {sorted(everyone)}, load {load[0]:.2f}", flush=True)


def summary(paths: list[Path]) -> None:
    """Per variant: the median over (impl, mode) of the spread between processes (the sd of the log
    of each process's median) and inside one (the sd of the log of round medians)."""
    import numpy as np
    import pandas as pd

    frames = [pd.read_csv(path).assign(process=index) for index, path in enumerate(paths)]
    data = pd.concat(frames)
    data["log_us"] = np.log(data.us)
    per_process = data.groupby(["variant", "impl", "mode", "process"]).log_us.median().reset_index()
    between = per_process.groupby(["variant", "impl", "mode"]).log_us.std()
    inside = data.groupby(["variant", "impl", "mode", "process"]).log_us.std()
    inside = inside.groupby(["variant", "impl", "mode"]).median()
    table = pd.DataFrame({"between_processes": between, "inside_one": inside}).groupby("variant").median()
    print("median over impl x mode of the sd of log(us) (0.05 ~ 5%):")
    print(table.round(4).to_string())
    worst = per_process.assign(us=np.exp(per_process.log_us)).pivot_table(
        index=["variant", "impl", "mode"], columns="process", values="us")
    print("\nmedian us per process:")
    print(worst.round(1).to_string())
    loop = data.groupby("process").python_loop_us.median()
    print("\npython loop (us) per process:", " ".join(f"{v:.0f}" for v in loop))
    print("cpus used per process:", [sorted(set(f.cpu)) for f in frames])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="this process's CSV")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--summary", type=Path, nargs="+", help="summarise these CSVs instead of measuring")
    args = parser.parse_args()
    if args.summary:
        summary(args.summary)
    elif args.out:
        measure(args.out, args.rounds, args.seed)
    else:
        parser.error("give --out (measure) or --summary FILES")


if __name__ == "__main__":
    main()
