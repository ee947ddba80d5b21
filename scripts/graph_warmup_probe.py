"""Probe (GPU): why the `cuda_graph` timer's first replays of a round run slower at large sizes.

What was seen (two default fp32 sweeps at git a375162, docs/perf-notes.md change 29): at
64x4096x768 fwd_bwd, each round's 12 `cuda_graph` samples of copy and of the seeded op start at
about 0.85 ms and fall to about 0.765 ms after 5-8 replays, for good (copy, one round: 0.856 0.853
0.854 0.852 0.850 0.795 0.766 0.766 0.764 ...). The row's median lands on whichever level most
samples hit, so the figure moves by 10% between rounds and sweeps, while the `event` timer's
samples at the same point stay within 0.5%. The timer captures a fresh graph each round: building
the call and capturing leave the GPU idle for a while, and every replay waits for the host.

Guesses, and what each predicts here:
- *the GPU slows while idle and takes several milliseconds of work to come back* (clocks or power
  state): the slow start follows any idle stretch, also on a graph captured long before (variant
  `idle`), and goes away after enough work just before sampling (variant `busy`);
- *a fresh graph or fresh memory pool is slow at first* (mapping, uploads): the slow start follows
  each capture (variant `fresh`) and not an idle stretch on an old graph (`idle`).

Variants, each timed `--rounds` times in turn on one tensor, `--samples` replays each, every replay
timed by events inside the graph (as the timer does), with an L2 flush before each:
- `fresh`: as the timer does now: build, warm up 3 calls, capture, one replay, then sample;
- `idle`: the graph from the first `fresh` round, after `--idle-ms` of host sleep;
- `busy`: the graph from the first `fresh` round, after `--busy-ms` of replays;
- `fresh_busy`: as `fresh`, then `--busy-ms` of replays before sampling;
- `fresh_replays`: as `fresh`, then `--warm-replays` replays before sampling (what the timer now
  does: `timer.settings.cuda_graph.warmup_replays`).
It prints, per variant, the median over rounds of each sample index (the slow start, replay by
replay), and writes every sample to the CSV with its index and its time since the variant began.

    python3 scripts/graph_warmup_probe.py OUT.csv [--shape 64,4096,768] [--impls copy,seeded]
        [--rounds 6] [--samples 16] [--idle-ms 50] [--busy-ms 30] [--warm-replays 10]
"""

from __future__ import annotations

import argparse
import csv
import statistics
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

VARIANTS = ("fresh", "idle", "busy", "fresh_busy", "fresh_replays")


class Captured:
    """One call captured in a CUDA graph, with events inside the graph around it."""

    def __init__(self, make_call):
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            self.mode_call = make_call()
            for _ in range(3):
                self.mode_call.call()
            self.mode_call.reset()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        self.start = torch.cuda.Event(enable_timing=True, external=True)
        self.end = torch.cuda.Event(enable_timing=True, external=True)
        with torch.cuda.graph(self.graph, stream=stream):
            self.start.record()
            self.mode_call.call()
            self.end.record()
        self.replay_times(1)  # uploads the graph

    def replay_for(self, ms: float) -> None:
        """Replays, each waited for, until `ms` of wall time have passed."""
        began = time.perf_counter()
        while (time.perf_counter() - began) * 1e3 < ms:
            self.graph.replay()
            torch.cuda.synchronize()

    def replay_times(self, count: int) -> None:
        """`count` replays, each waited for."""
        for _ in range(count):
            self.graph.replay()
            torch.cuda.synchronize()

    def samples(self, count: int, flush: torch.Tensor) -> list[tuple[float, float]]:
        """(ms of the replay, s since the first) for `count` replays, one at a time as the timer does."""
        out = []
        began = time.perf_counter()
        for _ in range(count):
            flush.zero_()
            self.graph.replay()
            self.end.synchronize()
            out.append((self.start.elapsed_time(self.end), time.perf_counter() - began))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_csv")
    parser.add_argument("--shape", default="64,4096,768")
    parser.add_argument("--impls", default="copy,seeded")
    parser.add_argument("--mode", default="fwd_bwd")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--idle-ms", type=float, default=50.0)
    parser.add_argument("--busy-ms", type=float, default=30.0)
    parser.add_argument("--warm-replays", type=int, default=10)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("graph_warmup_probe needs a CUDA GPU")
    family = family_of("dropout")
    shape = tuple(int(v) for v in args.shape.split(","))
    case = family.case_at(Point("fp32", shape, (1,), 0.5), torch.device("cuda"))
    inputs = family.inputs(case)
    flush = timers._l2_flush_buffer()
    rows = []
    for impl in args.impls.split(","):
        make_call = mode_call_factory(family.implementation(impl).build(case), inputs, args.mode)
        kept = Captured(make_call)
        for round_index in range(args.rounds):
            for variant in VARIANTS:
                if variant.startswith("fresh"):
                    captured = Captured(make_call)
                    if variant == "fresh_busy":
                        captured.replay_for(args.busy_ms)
                    elif variant == "fresh_replays":
                        captured.replay_times(args.warm_replays)
                elif variant == "idle":
                    captured = kept
                    time.sleep(args.idle_ms / 1e3)
                else:
                    captured = kept
                    captured.replay_for(args.busy_ms)
                for index, (ms, t_s) in enumerate(captured.samples(args.samples, flush)):
                    rows.append(dict(impl=impl, variant=variant, round=round_index, index=index, ms=ms,
                                     t_ms=round(1e3 * t_s, 3)))  # fmt: skip
                if captured is not kept:
                    captured.mode_call.reset()
                    del captured
        kept.mode_call.reset()
        del kept
    with open(args.out_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for impl in args.impls.split(","):
        for variant in VARIANTS:
            mine = [r for r in rows if (r["impl"], r["variant"]) == (impl, variant)]
            by_index = [statistics.median(r["ms"] for r in mine if r["index"] == i) for i in range(args.samples)]
            when = [statistics.median(r["t_ms"] for r in mine if r["index"] == i) for i in range(args.samples)]
            print(f"{impl:8s} {variant:13s} ms by replay:", " ".join(f"{v:.3f}" for v in by_index))
            print(f"{'':8s} {'':13s} at ms:        ", " ".join(f"{v:5.1f}" for v in when))


if __name__ == "__main__":
    main()
