"""Probe: why `event` times of tiny calls shift together from one process to the next.

In the A/A sweeps the host-paced `event` rows at T = 2..64 (GPU times of 4-20 us) read 1.4-3.0%
slower in one process than in another, every implementation alike, while GPU-bound rows agreed to
0.5%. This probe times such calls in one process under variants that each isolate one suspect:

- `auto`: the harness's event timer as configured by default (head start 3x the host's issue
  time, at least 50 us; L2 flushed);
- `hs50`, `hs200`, `hs800`: a fixed head start of 50, 200 or 800 us (the GPU idles that long
  before the call: does the time depend on how long the GPU waited?);
- `noflush`: `auto` without the L2 flush (does the flush's write-back reach into the call?);
- `flushmoved`: `auto` with the flush buffer (allocated once per process by the timer) swapped
  for one of `--allocations` others at other addresses (does its placement set the offset?).

Each variant runs on `--allocations` sets of inputs placed at different addresses (a pad tensor
of a different size allocated before each set): does the time depend on where the tensors lie?
Variants and allocations are interleaved in a shuffled order, `--rounds` times. Run it in several
processes, then summarise:

    for i in 1 2 3 4; do python scripts/event_offset_probe.py --out event-offset-$i.csv --seed $i; done
    python scripts/event_offset_probe.py --summary event-offset-*.csv
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VARIANTS = {
    "auto": {},
    "hs50": {"headstart_min_us": 50.0, "headstart_factor": 0.0},
    "hs200": {"headstart_min_us": 200.0, "headstart_factor": 0.0},
    "hs800": {"headstart_min_us": 800.0, "headstart_factor": 0.0},
    "noflush": {"flush_l2": False},
    "flushmoved": {},  # `auto`'s settings; measure() swaps the flush buffer
}
CALLS = [("copy", "fwd"), ("seeded", "fwd"), ("seeded", "bwd"), ("eager", "fwd_bwd")]
SEQ = (2, 16, 64)
BASE = {"warmup": 3, "reps": 6, "min_time_ms": 10.0, "max_reps": 60, "flush_l2": True,
        "headstart_min_us": 50.0, "headstart_factor": 3.0}  # fmt: skip


def measure(out: Path, rounds: int, allocations: int, seed: int) -> None:
    import torch

    from baselines import DropoutCase
    from runners import gpu_state, implementations, timers
    from runners.modes import make_inputs, mode_call_factory

    device = torch.device("cuda")
    gpu_state.warm_up(device, 3.0)
    placed = []  # (t, allocation) -> (inputs, forwards), each set behind a pad of its own size
    pads = []
    setups = {}
    for t in SEQ:
        shape = (64, t, 768)
        case = DropoutCase(shape, (1,), 0.5, torch.float32, device)
        forwards = {impl: implementations.get(impl).build(case) for impl in {impl for impl, _ in CALLS}}
        for allocation in range(allocations):
            pads.append(torch.empty((allocation + 1) * 3 * 2**20 + 4096 * allocation, dtype=torch.int8, device=device))
            setups[t, allocation] = (make_inputs(shape, torch.float32, device), forwards)
            placed.append((t, allocation))
    default_flush = timers._l2_flush_buffer()  # a probe may swap the timer's private buffer
    moved_flush = []
    for allocation in range(allocations):
        pads.append(torch.empty((allocation + 2) * 5 * 2**20, dtype=torch.int8, device=device))
        moved_flush.append(torch.empty_like(default_flush))
    rng = random.Random(seed)
    rows = []
    for round_index in range(rounds):
        order = [(v, t, a, c) for v in VARIANTS for t, a in placed for c in CALLS]
        rng.shuffle(order)
        for variant, t, allocation, (impl, mode) in order:
            inputs, forwards = setups[t, allocation]
            flush = moved_flush[allocation] if variant == "flushmoved" else default_flush
            timers._flush_buffers[torch.cuda.current_device()] = flush
            timing = timers.time_event(mode_call_factory(forwards[impl], inputs, mode), **{**BASE, **VARIANTS[variant]})
            rows.append(dict(round=round_index, variant=variant, shape=f"64x{t}x768", allocation=allocation,
                             address=inputs.x.data_ptr() % 2**32, flush_address=flush.data_ptr() % 2**32,
                             impl=impl, mode=mode,
                             us=round(statistics.median(timing.samples_ms) * 1e3, 3), n=len(timing.samples_ms),
                             host_us=round(timing.host_us, 1), starved=round(timing.starved, 3)))  # fmt: skip
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{out}: {len(rows)} rows", flush=True)


def summary(paths: list[Path]) -> None:
    """Per variant: each process's median time relative to the median over processes (the offset
    of the process), the spread of those offsets, and inside a process the spread over allocations."""
    import numpy as np
    import pandas as pd

    data = pd.concat(pd.read_csv(path).assign(process=index) for index, path in enumerate(paths))
    data["log_us"] = np.log(data.us)
    call = ["shape", "impl", "mode"]
    per_process = data.groupby(["variant", *call, "process"]).log_us.median().rename("p").reset_index()
    per_process["offset"] = per_process.p - per_process.groupby(["variant", *call]).p.transform("median")
    offsets = per_process.groupby(["variant", "process"]).offset.median().unstack("process")
    print("median offset of each process (log; 0.01 ~ 1%), per variant:")
    print(offsets.round(4).to_string())
    spread = per_process.groupby(["variant", *call]).p.std().groupby("variant").median()
    per_allocation = data.groupby(["variant", *call, "process", "allocation"]).log_us.median()
    inside = per_allocation.groupby(["variant", *call, "process"]).std().groupby("variant").median()
    print("\nmedian over calls of the sd of log(us): between processes, between allocations in one:")
    print(pd.DataFrame({"between_processes": spread, "between_allocations": inside}).round(4).to_string())
    # The A/A runs hint that a process whose host ran fast read slower GPU times on tiny calls: inside
    # each process, does a call's time follow the host's issue time of that call (its own speed)?
    relative = data.assign(
        us_rel=data.log_us - data.groupby([*call, "process"]).log_us.transform("median"),
        host_rel=np.log(data.host_us) - np.log(data.groupby([*call, "process"]).host_us.transform("median")),
    )
    follows = relative.groupby("variant")[["us_rel", "host_rel"]].corr(method="spearman").xs("us_rel", level=1)
    print("\nSpearman correlation, inside a process, of a call's time with its host issue time:")
    print(follows.host_rel.round(3).to_string())
    level = data.groupby(["variant", *call]).us.median().unstack("variant")
    print("\nmedian us per call and variant:")
    print(level.round(2).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="this process's CSV")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--allocations", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--summary", type=Path, nargs="+", help="summarise these CSVs instead of measuring")
    args = parser.parse_args()
    if args.summary:
        summary(args.summary)
    elif args.out:
        measure(args.out, args.rounds, args.allocations, args.seed)
    else:
        parser.error("give --out (measure) or --summary FILES")


if __name__ == "__main__":
    main()
